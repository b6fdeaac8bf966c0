"""Create, update and describe endpoints; shared by the settings page and the API."""
from __future__ import annotations

from .crypto import secret_box
from .extensions import db
from .forms import AUTH_FIELDS, EndpointForm
from .models import FAILED, PENDING_STATUSES, Endpoint, Message, utcnow

PLAIN_AUTH_FIELDS = ("username", "region", "service", "access_key_id", "algo_prefix", "vendor_key", "filename_format")


def apply_form(endpoint: Endpoint, form: EndpointForm) -> Endpoint:
    """Copy a validated form onto the endpoint; a blank secret keeps the stored one."""
    endpoint.name = (form.name.data or "").strip() or "Webhook endpoint"
    endpoint.enabled = bool(form.enabled.data)
    endpoint.use_proxy = bool(form.use_proxy.data)
    endpoint.url = form.url.data
    endpoint.timeout = form.timeout.data or 1
    endpoint.content_type = form.content_type.data
    endpoint.actions = form.actions.data
    endpoint.queue_batches = bool(form.queue_batches.data)
    endpoint.threads = form.threads.data or 8
    previous_type = endpoint.auth_type
    endpoint.auth_type = form.auth_type.data
    required, secret_name = AUTH_FIELDS[endpoint.auth_type]
    for name in PLAIN_AUTH_FIELDS:
        value = (form[name].data or "").strip()
        setattr(endpoint, f"auth_{name}", value if name in required or value else None)
    new_secret = form[secret_name].data if secret_name else None
    if secret_name is None:
        endpoint.auth_secret_encrypted = None
    elif new_secret:
        endpoint.auth_secret_encrypted = secret_box().encrypt(new_secret)
    elif previous_type != endpoint.auth_type and not _same_secret_kind(previous_type, endpoint.auth_type):
        endpoint.auth_secret_encrypted = None
    endpoint.updated_at = utcnow()
    return endpoint


def stored_secret_field(endpoint: Endpoint | None) -> str | None:
    """The secret input ("password" or "secret_key") that the stored secret belongs to."""
    if endpoint is None or not endpoint.has_secret:
        return None
    return AUTH_FIELDS.get(endpoint.auth_type, AUTH_FIELDS["none"])[1]


def secret_fits(endpoint: Endpoint, auth_type: str) -> bool:
    """Whether a blank secret may keep the stored one: a Basic password is no AWS secret key."""
    stored = stored_secret_field(endpoint)
    return stored is not None and stored == AUTH_FIELDS.get(auth_type, AUTH_FIELDS["none"])[1]


def _same_secret_kind(old: str | None, new: str) -> bool:
    """An AWS secret stays valid when switching between aws and aws-s3; a password does not."""
    return {old, new} <= {"aws", "aws-s3"}


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
        **{name: getattr(endpoint, f"auth_{name}") or "" for name in PLAIN_AUTH_FIELDS},
    }


def describe(endpoint: Endpoint) -> dict:
    return {"id": endpoint.id, **form_data(endpoint), "secret_stored": endpoint.has_secret}


def delete(endpoint: Endpoint) -> int:
    """Soft-delete: the log keeps its messages; pending ones end as failed."""
    endpoint.deleted_at = utcnow()
    endpoint.enabled = False
    cancelled = (
        Message.query.filter(Message.endpoint_id == endpoint.id, Message.status.in_(PENDING_STATUSES),
                             Message.lease_owner.is_(None))
        .update({"status": FAILED, "next_attempt_at": None}, synchronize_session=False)
    )
    db.session.commit()
    return cancelled



