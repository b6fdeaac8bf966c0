"""Flask commands: run-all, create-user, set-password, remove-user, create-token, sweep, purge, rotate-key."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from flask import Flask, current_app
from flask_migrate import upgrade
from sqlalchemy import select

from ..config import PROJECT_ROOT
from ..delivery.sweep import sweep as run_sweep
from ..domain import tokens, users
from ..domain.logbook.retention import purge as run_purge
from ..errors import InvalidInput
from ..extensions import db
from ..storage.crypto import secret_box
from ..storage.models import Endpoint
from .supervisor import Supervisor


def register(app: Flask) -> None:
    for command in (run_all, create_user, set_password, remove_user, create_token, sweep, purge, rotate_key):
        app.cli.add_command(command)


def refusing_bad_input(action, *args):
    """Run a domain call; its InvalidInput becomes click's usage error naming the field."""
    try:
        return action(*args)
    except InvalidInput as exc:
        raise click.BadParameter(exc.problem, param_hint=exc.field) from None


@click.command("run-all")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", 5000)), show_default="$PORT or 5000")
def run_all(port: int) -> None:
    """Migrate, then run Redis (embedded unless REDIS_URL), the workers and the web app."""
    upgrade(directory=str(PROJECT_ROOT / "migrations"))
    if users.count() == 0:
        password = secrets.token_urlsafe(12)
        users.create_user("admin@example.com", password)
        click.echo(f"First operator created: admin@example.com / {password}  (shown once; keep it)")
    db.session.remove()
    db.engine.dispose()  # children open their own connections
    code = Supervisor(PROJECT_ROOT, Path(current_app.instance_path), port,
                      workers=current_app.config["WEBHOOKS_WORKERS"]).run(click.echo)
    raise SystemExit(code)


@click.command("create-user")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user(email: str, password: str) -> None:
    """Create an operator who can log in to the web UI."""
    user = refusing_bad_input(users.create_user, email, password)
    click.echo(f"Operator {user.email} created.")


@click.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def set_password(email: str, password: str) -> None:
    """Change an operator's password; their open sessions end."""
    ended = refusing_bad_input(users.set_password, email, password)
    click.echo(f"Password of {email.strip().lower()} changed; {ended} session(s) ended.")


@click.command("remove-user")
@click.argument("email")
def remove_user(email: str) -> None:
    """Remove an operator; their open sessions end."""
    ended = refusing_bad_input(users.remove, email)
    click.echo(f"Operator {email.strip().lower()} removed; {ended} session(s) ended.")


@click.command("create-token")
@click.argument("name")
def create_token(name: str) -> None:
    """Create an API token; it is printed once, as the last line."""
    token = refusing_bad_input(tokens.create_token, name)
    click.echo(f"API token {name!r} created. Send it as 'Authorization: Bearer <token>':")
    click.echo(token)


@click.command("sweep")
def sweep() -> None:
    """Recover lost claims and re-enqueue due messages now."""
    report = run_sweep()
    click.echo(f"recovered {report.recovered} claims, kicked {report.kicked} endpoints")


@click.command("purge")
@click.option("--days", type=int, default=None, help="retention in days (default WEBHOOKS_RETENTION_DAYS)")
def purge(days: int | None) -> None:
    """Delete log entries older than the retention period."""
    report = run_purge(days if days is not None else current_app.config["WEBHOOKS_RETENTION_DAYS"])
    click.echo(f"deleted {report.messages} messages, {report.attempts} attempts, {report.events} events")


@click.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret with the first key of WEBHOOKS_ENCRYPTION_KEY."""
    box = secret_box()
    count = 0
    for endpoint in db.session.scalars(select(Endpoint)).all():
        for column in ("auth_secret_encrypted", "auth_previous_secret_encrypted"):
            if getattr(endpoint, column):
                setattr(endpoint, column, box.rotate(getattr(endpoint, column)))
                count += 1
        headers = endpoint.custom_headers
        for header in headers:
            if header.get("secret"):
                header["value"] = box.rotate(header["value"])
                count += 1
        endpoint.custom_headers = headers
    db.session.commit()
    click.echo(f"re-encrypted {count} secrets with the current key")
