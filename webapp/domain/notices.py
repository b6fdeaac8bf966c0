"""E-mail operators when an endpoint starts failing, is disabled by the product, or recovers.

The maintenance tick runs ``send_notices`` (one worker at a time). Each endpoint
keeps the state operators were last told about (``notified_state``): a notice
goes out when its state differs. A worker first claims the notice with a
conditional update (so two workers never send it twice), then sends it; if
sending fails the claim is undone and the next tick tries again. Mail goes through
``WEBHOOKS_SMTP_URL`` to ``WEBHOOKS_NOTIFY_EMAILS``; without both, nothing is sent.
"""
from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from flask import current_app
from sqlalchemy import or_, select, update

from ..extensions import db
from ..storage.endpoint_lookups import live
from ..storage.models import FAILING, HEALTHY, Endpoint
from .endpoint_health import describe

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 10
SUBJECTS = {
    "failing": "Webhooks: endpoint “{name}” is failing",
    "disabled": "Webhooks: endpoint “{name}” was disabled",
    HEALTHY: "Webhooks: endpoint “{name}” is healthy again",
}


def notice_state(endpoint: Endpoint) -> str:
    if not endpoint.enabled:
        return "disabled"
    return FAILING if endpoint.health == FAILING else HEALTHY


def send_notices() -> int:
    """Send what operators have not been told yet; returns how many e-mails went out."""
    config = current_app.config
    url, recipients = config.get("WEBHOOKS_SMTP_URL"), config.get("WEBHOOKS_NOTIFY_EMAILS")
    if not url or not recipients:
        return 0
    changed = db.session.scalars(select(Endpoint).where(
        live(),
        or_(Endpoint.enabled.is_(False), Endpoint.health == FAILING,
            Endpoint.notified_state.is_not(None) & (Endpoint.notified_state != HEALTHY)),
    )).all()
    sent = 0
    for endpoint in changed:
        told, state = endpoint.notified_state, notice_state(endpoint)
        if state == (told or HEALTHY):
            continue
        mail = compose(endpoint, state)
        if not _claim(endpoint.id, told, state):
            continue  # another worker is telling them
        if state == "disabled" and endpoint.disabled_by is not None:
            continue  # an operator did it: they know
        try:
            deliver_mail(url, config["WEBHOOKS_NOTIFY_FROM"], recipients, mail)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("could not e-mail the notice for endpoint %s (%s); next tick tries again",
                        endpoint.id, type(exc).__name__)
            _claim(endpoint.id, state, told)
            break
        sent += 1
    db.session.rollback()  # end the read: a long-lived session must not keep an old snapshot
    return sent


def _claim(endpoint_id: int, told: str | None, state: str | None) -> bool:
    """Move ``notified_state`` from ``told`` to ``state``; False if someone else did first."""
    done = db.session.execute(
        update(Endpoint).where(Endpoint.id == endpoint_id, Endpoint.notified_state.is_not_distinct_from(told))
        .values(notified_state=state).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return done == 1


def compose(endpoint: Endpoint, state: str) -> EmailMessage:
    view = describe(endpoint)
    mail = EmailMessage()
    mail["Subject"] = SUBJECTS[state].format(name=endpoint.name)
    lines = [f"Endpoint: {endpoint.name} ({urlsplit(endpoint.url).hostname})", "", view.detail]
    if state != HEALTHY and view.last_error:
        lines += ["", f"Last error: {view.last_error}"]
    if state == "disabled":
        lines += ["", "Nothing is sent to it until an operator enables it again in Settings; its messages wait.",
                  "After enabling, its page offers to resend the messages that failed while it was down."]
    mail.set_content("\n".join(lines) + "\n")
    return mail


def deliver_mail(url: str, sender: str, recipients, mail: EmailMessage) -> None:
    """``smtp://[user:password@]host[:port]``; ``smtp+starttls://`` upgrades the connection, ``smtps://`` is TLS from the start."""
    parts = urlsplit(url)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=SMTP_TIMEOUT)
    else:
        client = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=SMTP_TIMEOUT)
    with client:
        if parts.scheme == "smtp+starttls":
            client.starttls()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(mail)
