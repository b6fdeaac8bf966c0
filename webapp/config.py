"""Settings and their defaults, read from the environment.

Every variable is documented in the README. The embedded default needs none of
them: SQLite and generated keys live under ``instance/``.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

# The checkout: templates/, static/, migrations/ and the default instance/ folder live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ACTIONS = (
    "opt_in",
    "opt_out",
    "profile_update",
    "checkout",
    "points_added",
    "points_spent",
    "reward_claimed",
    "coupon_redeemed",
    "tier_change",
    "referral",
)


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_number(name: str, default: float, cast=float):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return cast(value)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {value!r}") from None


def env_networks(name: str) -> tuple:
    """Comma-separated addresses or networks (``10.0.0.5, 192.168.0.0/24, ::1``)."""
    found = []
    for item in (os.environ.get(name) or "").split(","):
        if item.strip():
            try:
                found.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise SystemExit(f"{name} must list addresses or networks like 10.0.0.0/8, got {item.strip()!r}") \
                    from None
    return tuple(found)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_duration(name: str, default: float) -> float:
    """Seconds, from ``90``, ``90s``, ``15m``, ``12h`` or ``5d``."""
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return default
    unit = DURATION_UNITS.get(value[-1])
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise SystemExit(f"{name} must be a duration like 300, 15m, 12h or 5d, got {value!r}") from None
    if seconds <= 0:
        raise SystemExit(f"{name} must be positive, got {value!r}")
    return seconds


PASSWORD_HASH_METHODS = re.compile(r"scrypt(:\d+:\d+:\d+)?|pbkdf2:sha(256|512)(:\d+)?")


def password_hash_method() -> str:
    value = (os.environ.get("WEBHOOKS_PASSWORD_HASH") or "scrypt").strip()
    if not PASSWORD_HASH_METHODS.fullmatch(value):
        raise SystemExit(f"WEBHOOKS_PASSWORD_HASH must be scrypt[:n:r:p] or pbkdf2:sha256[:iterations], got {value!r}")
    return value


def read_or_create_secret(path: Path, make) -> str:
    """A key generated once and kept in instance/, for the embedded default only."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def default_workers() -> int:
    """``flask run-all``'s delivery workers: one per core, at most 4 (each is a process with its own
    threads and ~100 MB; more belong on more machines)."""
    return max(1, min(os.cpu_count() or 1, 4))


def env_workers() -> int:
    workers = env_number("WEBHOOKS_WORKERS", default_workers(), int)
    if workers < 1:
        raise SystemExit(f"WEBHOOKS_WORKERS must be at least 1, got {workers}")
    return workers


def database_uri(instance_path: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{instance_path / 'webhooks.db'}"
    # Plain postgresql:// URLs should use psycopg 3, the driver we ship.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(instance_path: Path) -> dict:
    """The app's configuration; tests pass overrides to create_app()."""
    catalogue = os.environ.get("WEBHOOKS_ACTIONS")
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY")
        or read_or_create_secret(instance_path / "secret_key", lambda: secrets.token_hex(32)),
        "SQLALCHEMY_DATABASE_URI": database_uri(instance_path),
        # Database errors in logs name the statement, never its values (payloads, customers).
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True},
        "REDIS_URL": os.environ.get("REDIS_URL"),
        "WEBHOOKS_ENCRYPTION_KEY": os.environ.get("WEBHOOKS_ENCRYPTION_KEY")
        or read_or_create_secret(instance_path / "encryption_key", lambda: Fernet.generate_key().decode()),
        "WEBHOOKS_PROXY_URL": os.environ.get("WEBHOOKS_PROXY_URL") or None,
        "WEBHOOKS_MAX_ATTEMPTS": env_number("WEBHOOKS_MAX_ATTEMPTS", 5, int),
        "WEBHOOKS_RETRY_INTERVAL": env_number("WEBHOOKS_RETRY_INTERVAL", 10.0),
        "WEBHOOKS_ALLOW_PRIVATE_TARGETS": env_flag("WEBHOOKS_ALLOW_PRIVATE_TARGETS"),
        "WEBHOOKS_QUEUE": os.environ.get("WEBHOOKS_QUEUE", "webhooks"),
        "WEBHOOKS_SWEEP_INTERVAL": env_number("WEBHOOKS_SWEEP_INTERVAL", 5.0),
        "WEBHOOKS_LEASE_MARGIN": env_number("WEBHOOKS_LEASE_MARGIN", 30.0),
        # The delivery engine (webapp/delivery/engine.py) and endpoint health (webapp/delivery/health.py).
        "WEBHOOKS_DELIVERY_THREADS": env_number("WEBHOOKS_DELIVERY_THREADS", 256, int),
        "WEBHOOKS_WORKERS": env_workers(),  # worker processes `flask run-all` starts
        "WEBHOOKS_MAX_RETRY_AFTER": env_duration("WEBHOOKS_MAX_RETRY_AFTER", 300.0),
        "WEBHOOKS_DISABLE_AFTER": env_duration("WEBHOOKS_DISABLE_AFTER", 5 * 86400.0),
        "WEBHOOKS_DNS_SERVERS": os.environ.get("WEBHOOKS_DNS_SERVERS") or None,
        # Notices to operators when an endpoint fails or is disabled (webapp/notices.py).
        "WEBHOOKS_NOTIFY_EMAILS": tuple(a.strip() for a in os.environ.get("WEBHOOKS_NOTIFY_EMAILS", "").split(",")
                                        if a.strip()),
        "WEBHOOKS_SMTP_URL": os.environ.get("WEBHOOKS_SMTP_URL") or None,
        "WEBHOOKS_NOTIFY_FROM": os.environ.get("WEBHOOKS_NOTIFY_FROM") or "webhooks@localhost",
        "WEBHOOKS_RETENTION_DAYS": env_number("WEBHOOKS_RETENTION_DAYS", 90, int),
        "WEBHOOKS_RESPONSE_BODY_LIMIT": env_number("WEBHOOKS_RESPONSE_BODY_LIMIT", 64 * 1024, int),
        "WEBHOOKS_MAX_EVENT_BYTES": env_number("WEBHOOKS_MAX_EVENT_BYTES", 256 * 1024, int),
        "WEBHOOKS_ACTIONS": tuple(a.strip() for a in catalogue.split(",") if a.strip())
        if catalogue
        else DEFAULT_ACTIONS,
        "MAX_CONTENT_LENGTH": env_number("WEBHOOKS_MAX_EVENT_BYTES", 256 * 1024, int) + 4096,
        # POST /api/v1/events with a list of events (webapp/web/api.py); one event keeps the limit above.
        "WEBHOOKS_MAX_BATCH_BYTES": env_number("WEBHOOKS_MAX_BATCH_BYTES", 8 * 1024 * 1024, int),
        # The web UI (see webapp/web_security.py and webapp/auth.py).
        "SESSION_COOKIE_SECURE": env_flag("SESSION_COOKIE_SECURE"),
        # Reverse proxies in front of the web app that set X-Forwarded-For/-Proto/-Host:
        # 0 ignores those headers (a client could forge them to dodge the login rate limit).
        "WEBHOOKS_PROXY_HOPS": env_number("WEBHOOKS_PROXY_HOPS", 0, int),
        "WEBHOOKS_LOGIN_RATE_LIMIT": os.environ.get("WEBHOOKS_LOGIN_RATE_LIMIT") or "5/minute",
        # Werkzeug's hash method for operator passwords (webapp/domain/users.py); the default is scrypt
        # at werkzeug's cost. The test suite lowers it, since every test logs an operator in.
        "WEBHOOKS_PASSWORD_HASH": password_hash_method(),
        # An operator session ends at logout or after this many hours (webapp/operator_sessions.py).
        "WEBHOOKS_SESSION_HOURS": env_number("WEBHOOKS_SESSION_HOURS", 12.0),
        # Who may read /metrics (webapp/web/metrics.py): a bearer token, and/or client addresses or networks.
        "WEBHOOKS_METRICS_TOKEN": os.environ.get("WEBHOOKS_METRICS_TOKEN") or None,
        "WEBHOOKS_METRICS_ALLOW": env_networks("WEBHOOKS_METRICS_ALLOW"),
        # Login attempts are counted in Redis when there is one, so every web process shares them.
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        "RATELIMIT_ENABLED": True,
    }
