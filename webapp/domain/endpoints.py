"""Create, update and describe endpoints; shared by the settings page and the API."""
from __future__ import annotations

from sqlalchemy import Select, func, select

from ..delivery import dispatch
from ..extensions import db
from ..signing.auth_types import PLAIN_FIELDS, auth_type, same_secret
from ..storage import pending
from ..storage.crypto import secret_box
from ..storage.models import HEALTHY, Endpoint, Message, utcnow
from ..storage.statuses import CANCELLED
from . import endpoint_health, signing_secrets
from .logbook.resend import failed_not_resent, resend_all


def apply_form(endpoint: Endpoint, values: dict, by: str | None = None) -> Endpoint:
    """Copy validated settings (the settings form's ``data``) onto the endpoint; a blank secret keeps the
    stored one. ``by`` names who saves (an operator's e-mail, an API token), in case it disables the endpoint."""
    endpoint.name = (values["name"] or "").strip() or "Webhook endpoint"
    if endpoint.id is None:
        endpoint.enabled = bool(values["enabled"])
    else:
        set_enabled(endpoint, bool(values["enabled"]), by)
    endpoint.use_proxy = bool(values["use_proxy"])
    endpoint.url = values["url"]
    endpoint.timeout = values["timeout"] or 1
    endpoint.content_type = values["content_type"]
    endpoint.actions = values["actions"]
    endpoint.queue_batches = bool(values["queue_batches"])
    endpoint.threads = values["threads"] or 8
    previous_type = endpoint.auth_type
    endpoint.auth_type = values["auth_type"]
    kind = auth_type(endpoint.auth_type)
    for name in PLAIN_FIELDS:
        value = (values[name] or "").strip()
        setattr(endpoint, f"auth_{name}", value if name in kind.fields or value else None)
    new_secret = values[kind.secret] if kind.secret else None
    if kind.secret is None:
        endpoint.auth_secret_encrypted = None
    elif new_secret:
        endpoint.auth_secret_encrypted = secret_box().encrypt(new_secret)
    elif previous_type != endpoint.auth_type and not same_secret(previous_type, endpoint.auth_type):
        endpoint.auth_secret_encrypted = None
    if new_secret or not endpoint.auth_secret_encrypted or not kind.rotates:
        # A secret typed in replaces the stored one at once: no rotation window any more.
        endpoint.auth_previous_secret_encrypted = endpoint.auth_previous_secret_until = None
    endpoint.custom_headers = stored_headers(endpoint, values.get("custom_headers") or [])
    endpoint.updated_at = utcnow()
    return endpoint


def stored_headers(endpoint: Endpoint, rows: list[dict]) -> list[dict]:
    """Validated header rows as stored: empty rows dropped, secret values encrypted, a blank secret
    value keeping the stored one of that name."""
    kept = {header["name"].lower(): header["value"] for header in endpoint.custom_headers if header.get("secret")}
    stored = []
    for row in rows:
        name, value, secret = (row.get("name") or "").strip(), row.get("value") or "", bool(row.get("secret"))
        if not name:
            continue
        if secret:
            value = secret_box().encrypt(value) if value else kept[name.lower()]
        stored.append({"name": name, "value": value, "secret": secret})
    return stored


def secret_header_names(endpoint: Endpoint | None) -> frozenset[str]:
    """Lower-case names of the endpoint's secret headers (a blank value in the form keeps those)."""
    return frozenset(h["name"].lower() for h in (endpoint.custom_headers if endpoint else []) if h.get("secret"))


def stored_secret_field(endpoint: Endpoint | None) -> str | None:
    """The secret input (e.g. "password" or "secret_key") that the stored secret belongs to."""
    if endpoint is None or not endpoint.has_secret:
        return None
    return auth_type(endpoint.auth_type).secret


def secret_fits(endpoint: Endpoint, new_type: str) -> bool:
    """Whether a blank secret may keep the stored one: a Basic password is no AWS secret key."""
    return endpoint.has_secret and same_secret(endpoint.auth_type, new_type)


def form_data(endpoint: Endpoint) -> dict:
    """The endpoint as form/API values (secrets never included)."""
    return {
        "name": endpoint.name,
        "enabled": endpoint.enabled,
        "use_proxy": endpoint.use_proxy,
        "url": endpoint.url,
        "timeout": endpoint.timeout,
        "content_type": endpoint.content_type,
        "actions": endpoint.actions,
        "queue_batches": endpoint.queue_batches,
        "threads": endpoint.threads,
        "auth_type": endpoint.auth_type,
        **{name: getattr(endpoint, f"auth_{name}") or "" for name in PLAIN_FIELDS},
        "custom_headers": [{"name": h["name"], "value": "" if h.get("secret") else h["value"],
                            "secret": bool(h.get("secret"))} for h in endpoint.custom_headers],
    }


def describe(endpoint: Endpoint) -> dict:
    view = endpoint_health.describe(endpoint)
    return {
        "id": endpoint.id, **form_data(endpoint), "secret_stored": endpoint.has_secret,
        "previous_secret_valid_until": iso(signing_secrets.window_end(endpoint)),
        "health": {
            "state": view.state,
            "since": iso(view.since),
            "last_error": view.last_error,
            "last_error_at": iso(view.last_error_at),
            "success_rate_last_hour": view.success_rate,
            "disabled_reason": endpoint.disabled_reason,
            "disabled_by": endpoint.disabled_by,
        },
    }


def iso(moment) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def set_enabled(endpoint: Endpoint, enabled: bool, by: str | None) -> None:
    """Enable or disable by hand. Enabling starts afresh (healthy, no Retry-After) and keeps the
    window it was down in, so what failed meanwhile can be resent (``resend_failed_while_down``).
    The caller commits; call ``after_enabled`` once it has."""
    if enabled == endpoint.enabled:
        return
    now = utcnow()
    endpoint.updated_at = now
    if not enabled:
        endpoint.enabled = False
        endpoint.disabled_by, endpoint.disabled_reason, endpoint.disabled_at = by, None, now
        endpoint.outage_from, endpoint.outage_to = endpoint.failing_since, None
        return
    endpoint.enabled = True
    if endpoint.outage_from is None and endpoint.health != HEALTHY:
        endpoint.outage_from = endpoint.failing_since
    endpoint.outage_to = now if endpoint.outage_from else None
    endpoint.disabled_by = endpoint.disabled_reason = endpoint.disabled_at = None
    endpoint.health, endpoint.consecutive_failures, endpoint.failing_since = HEALTHY, 0, None
    endpoint.retry_after_until = None


def after_enabled(endpoint: Endpoint) -> None:
    """Messages that waited while it was disabled go out now (the sweep would, a little later)."""
    if endpoint.enabled:
        dispatch.kick([endpoint.id])


def failed_while_down(endpoint: Endpoint) -> Select:
    """Failed, not yet resent messages whose last attempt fell in the endpoint's last outage."""
    if endpoint.outage_from is None:
        return failed_not_resent().where(Message.id.is_(None))
    query = failed_not_resent().where(Message.endpoint_id == endpoint.id,
                                      Message.last_attempt_at >= endpoint.outage_from)
    if endpoint.outage_to is not None:
        query = query.where(Message.last_attempt_at <= endpoint.outage_to)
    return query


def count_failed_while_down(endpoint: Endpoint, cap: int = 10_000) -> int:
    capped = failed_while_down(endpoint).limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(capped)) or 0


def resend_failed_while_down(endpoint: Endpoint) -> int:
    """One idempotent click after re-enabling: each failed message is resent once, however often it is pressed."""
    return resend_all(failed_while_down(endpoint))


def delete(endpoint: Endpoint) -> int:
    """Soft-delete: the log keeps its messages; pending ones end as failed."""
    endpoint.deleted_at = utcnow()
    set_enabled(endpoint, False, None)
    cancelled = pending.end_unheld(db.session.connection(), endpoint.id, CANCELLED)
    db.session.commit()
    return cancelled



