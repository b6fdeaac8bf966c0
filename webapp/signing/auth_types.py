"""Every authentication type in one place: its name, label, fields, secret, defaults and signer.

Adding a type means an entry here plus its signer module (and the form's field
definitions when it has new fields); the form, the settings page, the API, its
OpenAPI document and delivery all read from this registry.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from . import basic, s3, sigv4, standard_webhooks
from .request import MessageContent, OutgoingRequest, SigningSettings

Signer = Callable[[SigningSettings, OutgoingRequest, MessageContent, dt.datetime], OutgoingRequest]


@dataclass(frozen=True)
class AuthType:
    name: str
    label: str
    # The type's inputs in the order the form shows them, its secret among them; all required.
    fields: tuple[str, ...] = ()
    secret: str | None = None
    sign: Signer | None = None
    # Values a blank field stands for (the form starts with them; delivery falls back on them).
    defaults: dict[str, str] = field(default_factory=dict)
    # Filled into a blank field when the operator picks the type in the form.
    suggested: dict[str, str] = field(default_factory=dict)
    # Extra checks of a field's value: raise ValueError with the problem.
    checks: dict[str, Callable[[str], None]] = field(default_factory=dict)
    # Headers it sets (lower case, fnmatch patterns; {vendor_key} is the endpoint's): no custom header may.
    headers: tuple[str, ...] = ()
    # Its secret can be generated and rotated with a window during which the old one stays valid.
    rotates: bool = False

    @property
    def plain_fields(self) -> tuple[str, ...]:
        return tuple(name for name in self.fields if name != self.secret)


NONE = AuthType("none", "None")
TYPES: dict[str, AuthType] = {kind.name: kind for kind in (
    NONE,
    AuthType("basic", "Basic", ("username", "password"), "password", basic.with_basic, headers=("authorization",)),
    AuthType("aws", "AWS", ("region", "service", "access_key_id", "secret_key", "algo_prefix", "vendor_key"),
             "secret_key", sigv4.with_sigv4, defaults={"algo_prefix": "AWS4", "vendor_key": "Amz"},
             headers=("authorization", "x-amz-*", "x-{vendor_key}-date", "x-{vendor_key}-auth")),
    AuthType("aws-s3", "AWS-S3", ("region", "service", "access_key_id", "secret_key", "filename_format"),
             "secret_key", s3.as_s3_put, suggested={"service": "s3"}, headers=("authorization", "x-amz-*"),
             checks={"filename_format": s3.check_filename_format}),
    AuthType("hmac", "HMAC signature (Standard Webhooks)", ("signing_secret",), "signing_secret",
             standard_webhooks.with_signature, checks={"signing_secret": standard_webhooks.check_secret},
             rotates=True),
)}


def _in_order(names) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


# Every authentication input, in the form's order; the secret ones; the stored plain ones (auth_<name> columns).
FIELD_ORDER = _in_order(name for kind in TYPES.values() for name in kind.fields)
SECRET_FIELDS = _in_order(kind.secret for kind in TYPES.values() if kind.secret)
PLAIN_FIELDS = tuple(name for name in FIELD_ORDER if name not in SECRET_FIELDS)
FIELD_DEFAULTS = {name: value for kind in TYPES.values() for name, value in kind.defaults.items()}
LABELS = {kind.name: kind.label for kind in TYPES.values()}


def auth_type(name: str | None) -> AuthType:
    """The registered type, or "none" for an unknown name (validation refuses those before they are stored)."""
    return TYPES.get(name or "none", NONE)


def same_secret(old: str | None, new: str | None) -> bool:
    """Whether a stored secret stays valid for the new type: an AWS secret key serves aws and aws-s3 alike,
    a Basic password is no AWS secret."""
    return auth_type(old).secret is not None and auth_type(old).secret == auth_type(new).secret
