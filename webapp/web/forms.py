"""The endpoint settings form: one set of rules for the settings page and the JSON API."""
from __future__ import annotations

import re

from flask import current_app, has_request_context, request
from flask_wtf import FlaskForm
from flask_wtf.form import SUBMIT_METHODS
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..delivery import custom_headers as header_rules
from ..delivery.payload import FORM, JSON
from ..delivery.urlguard import MAX_URL_LENGTH, check_url
from ..errors import InvalidInput
from ..signing.auth_types import FIELD_DEFAULTS, LABELS, TYPES, auth_type
from ..storage.models import ALL_ACTIONS
from ..text_rules import control_character_problem

MAX_TIMEOUT = 60
MAX_THREADS = 64


def strip(value):
    return value.strip() if isinstance(value, str) else value


class PlainText:
    """No control characters (CR, LF, NUL, ...): PostgreSQL cannot store NUL, headers cannot carry line breaks."""

    def __call__(self, form, field):
        problem = control_character_problem(field.data or "")
        if problem:
            raise ValidationError(problem)


class Matches:
    """The whole value matches ``pattern`` (ASCII only); blank is left to the required-field rules."""

    def __init__(self, pattern: str, explanation: str):
        self.pattern = re.compile(pattern, re.ASCII)
        self.explanation = explanation

    def __call__(self, form, field):
        if field.data and not self.pattern.fullmatch(field.data):
            raise ValidationError(self.explanation)


# Fields that end up in request headers (Authorization, X-<vendor>-Date/-Auth) or the S3 key.
HEADER_TOKEN = Matches(r"[A-Za-z0-9._-]+", "must be letters, digits, '.', '_' or '-' only")
VENDOR_KEY = Matches(r"[A-Za-z0-9-]+", "must be letters, digits or '-' only: it becomes part of the header "
                                       "names X-<vendor key>-Date and X-<vendor key>-Auth")
ACCESS_KEY_ID = Matches(r"[!-+\--.0-~]+", "must be printable ASCII without spaces, '/' or ','")
NO_COLON = Matches(r"[^:]*", "must not contain ':' (Basic authentication separates the username from the "
                             "password with it)")


def action_label(action: str) -> str:
    return "All actions" if action == ALL_ACTIONS else action.replace("_", " ").replace(".", " ").capitalize()


class WholeNumberField(StringField):
    """A whole number in ASCII digits within [minimum, maximum]; blank means ``blank``.

    Hand-written rather than wtforms' IntegerField: int() takes any Unicode digit ("٣" is 3,
    and "²".isdigit() is True but int("²") raises) and any size.
    """

    def __init__(self, label=None, validators=None, *, minimum: int, maximum: int, blank: int, unit: str = "",
                 **kwargs):
        super().__init__(label, validators, **kwargs)
        self.minimum, self.maximum, self.blank, self.unit = minimum, maximum, blank, unit

    def process_formdata(self, valuelist):
        raw = valuelist[0] if valuelist else ""
        self.raw = "" if raw is None else str(raw).strip()
        self.data = self.raw

    def pre_validate(self, form):
        if self.raw == "":
            self.data = self.blank
            return
        unit = f" {self.unit}" if self.unit else ""
        if not re.fullmatch(r"\+?[0-9]{1,9}", self.raw, re.ASCII):
            of = f" of {self.unit}" if self.unit else ""
            raise ValidationError(f"must be a whole number{of} from {self.minimum} to {self.maximum}")
        value = int(self.raw)
        if not self.minimum <= value <= self.maximum:
            raise ValidationError(f"must be between {self.minimum} and {self.maximum}{unit}")
        self.data = value

    def process_data(self, value):
        self.data = value
        self.raw = "" if value is None else str(value)

    def _value(self):
        return self.raw


class HeaderForm(Form):
    """One custom header; a secret value is write-only (blank keeps the stored one)."""

    name = StringField("Name", filters=[strip])
    value = StringField("Value")
    secret = BooleanField("Secret")


_FROM_REQUEST = object()


class BrowserForm(FlaskForm):
    """A form a browser posts: read from ``request.form`` only. Left to itself, Flask-WTF takes a
    JSON body as the form's data when there is no form data, objects and lists included, which
    no field expects (a 500 for ``{"name": {}}``, a RecursionError for deep nesting)."""

    def __init__(self, formdata=_FROM_REQUEST, **kwargs):
        if formdata is _FROM_REQUEST:
            formdata = request.form if has_request_context() and request.method in SUBMIT_METHODS else None
        super().__init__(formdata=formdata, **kwargs)


class EndpointForm(BrowserForm):
    name = StringField("Name", validators=[Optional(), Length(max=100), PlainText()], default="Webhook endpoint",
                       description="Shown in the endpoint list and the log.")
    enabled = BooleanField("Enabled", default=True,
                           description="A disabled endpoint gets no new messages; queued ones wait until it is enabled.")
    use_proxy = BooleanField(
        "Use static-IP proxy",
        description="Ticked: every request goes through the installation's proxy, from one static IP address. "
        "Unticked: sent directly (various IP addresses may be used).",
    )
    url = StringField("Endpoint URL", validators=[DataRequired(message="is required"), Length(max=MAX_URL_LENGTH)],
                      description="The external endpoint your developers set up: an absolute http:// or https:// URL.",
                      render_kw={"placeholder": "https://example.com/webhooks", "inputmode": "url",
                                 "autocomplete": "off", "spellcheck": "false"})
    timeout = WholeNumberField("Timeout (s)", minimum=1, maximum=MAX_TIMEOUT, blank=1, unit="seconds",
                           description="How long to wait for a response before the attempt counts as failed. "
                           "Blank = 1 second; 60 at most.",
                           render_kw={"inputmode": "numeric", "placeholder": "1", "autocomplete": "off"})
    content_type = SelectField(
        "Content type",
        choices=[
            SelectChoice(JSON, "JSON (application/json)"),
            SelectChoice(FORM, "URL-encoded (application/x-www-form-urlencoded)"),
        ],
        default=JSON,
        description="How the message body is encoded for your developers.",
    )
    actions = SelectMultipleField("Actions", description="Only the selected customer actions create webhook messages.")
    queue_batches = BooleanField(
        "Queue batches",
        description="Deliver in parallel in several threads. Off: one message at a time, in the order they were created.",
    )
    threads = WholeNumberField(
        "Threads", default=8, minimum=1, maximum=MAX_THREADS, blank=8,
        description="Parallel threads when queue batches is on: 1 to 64.",
        render_kw={"type": "text", "inputmode": "numeric", "autocomplete": "off"},
    )
    auth_type = SelectField("Authentication", choices=[SelectChoice(t, LABELS[t]) for t in TYPES], default="none",
                            description="An authentication header lets the receiver check that a message comes from us.")
    username = StringField("Username", filters=[strip], validators=[Length(max=255), PlainText(), NO_COLON],
                           render_kw={"autocomplete": "off"})
    password = PasswordField("Password", validators=[Length(max=1024)], render_kw={"autocomplete": "new-password"})
    region = StringField("Region", filters=[strip], validators=[Length(max=64), PlainText(), HEADER_TOKEN],
                         render_kw={"placeholder": "eu-west-1", "autocomplete": "off"})
    service = StringField("Service", filters=[strip], validators=[Length(max=64), PlainText(), HEADER_TOKEN],
                          render_kw={"autocomplete": "off"})
    access_key_id = StringField("Access Key ID", filters=[strip], validators=[Length(max=255), PlainText(), ACCESS_KEY_ID],
                                render_kw={"autocomplete": "off"})
    secret_key = PasswordField("Access Key Secret", validators=[Length(max=1024)],
                               render_kw={"autocomplete": "new-password"})
    algo_prefix = StringField("Algorithm prefix", default=FIELD_DEFAULTS["algo_prefix"], filters=[strip],
                              validators=[Length(max=32), PlainText(), HEADER_TOKEN],
                              description="AWS4 for AWS; another prefix (for example EMS) for Escher-style signatures.")
    vendor_key = StringField("Vendor key", default=FIELD_DEFAULTS["vendor_key"], filters=[strip], validators=[Length(max=32), PlainText(), VENDOR_KEY],
                             description="Amz for AWS. Another vendor key V sends X-V-Date and the signature in X-V-Auth.")
    filename_format = StringField(
        "Filename format", filters=[strip], validators=[Length(max=512), PlainText()],
        description="The object key of each message. Placeholders: {action}, {customer}, {event_id}, "
        "{message_id}, {date} or {date:%Y/%m/%d}, {ext}.",
        render_kw={"placeholder": "webhooks/{date:%Y/%m/%d}/{event_id}.{ext}", "autocomplete": "off",
                   "spellcheck": "false"},
    )

    signing_secret = PasswordField(
        "Signing secret", validators=[Length(max=200)], render_kw={"autocomplete": "new-password"},
        description="A Standard Webhooks secret: whsec_ followed by base64 of 24 to 64 random bytes. "
                    "Generate one, or paste the one your receiver already has.")
    custom_headers = FieldList(
        FormField(HeaderForm), "Custom headers", max_entries=header_rules.MAX_HEADERS,
        description="Sent on every attempt, e.g. an API key or a tenant id. A secret value is write-only, "
                    "stored encrypted and redacted in the log.")

    def __init__(self, *args, has_secret: bool = False, stored_secret_headers: frozenset[str] = frozenset(),
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.has_secret = has_secret
        # Lower-case names of the secret headers stored: a blank value keeps the stored one.
        self.stored_secret_headers = stored_secret_headers
        catalogue = current_app.config["WEBHOOKS_ACTIONS"]
        self.actions.choices = [SelectChoice(a, action_label(a)) for a in (ALL_ACTIONS, *catalogue)]

    def validate_url(self, field):
        try:
            field.data = check_url(field.data, allow_private=current_app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"])
        except InvalidInput as exc:
            raise ValidationError(exc.problem) from None

    def validate_use_proxy(self, field):
        if field.data and not current_app.config.get("WEBHOOKS_PROXY_URL"):
            raise ValidationError("this installation has no static-IP proxy configured: an administrator sets one up "
                                  "(see the README), then it can be ticked")

    def validate_actions(self, field):
        if not field.data:
            raise ValidationError("select at least one action")

    def validate_custom_headers(self, field):
        seen = set()
        for number, entry in enumerate(field.entries, start=1):
            name, value, secret = entry.form.name.data or "", entry.form.value.data or "", entry.form.secret.data
            if not name and not value:
                continue  # an empty row
            keeps = secret and not value and name.lower() in self.stored_secret_headers
            problem = (header_rules.name_problem(name, self.auth_type.data, self.vendor_key.data or "")
                       or ("is a second header of that name" if name.lower() in seen else None)
                       or header_rules.value_problem(value)
                       or (None if value or keeps else "needs a value"))
            seen.add(name.lower())
            if problem:
                raise ValidationError(f"header {number} ({name[:40] or 'no name'}): {problem}")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        return self._validate_auth() and valid

    def _validate_auth(self) -> bool:
        kind = auth_type(self.auth_type.data)
        ok = True
        for name in kind.fields:
            field = self[name]
            if name == kind.secret:
                missing = not field.data and not self.has_secret
            else:
                field.data = (field.data or "").strip()
                missing = not field.data
            if missing:
                field.errors.append(f"is required for {kind.label} authentication")
                ok = False
            elif name in kind.checks and field.data:
                ok = self._check(field, kind.checks[name]) and ok
        return ok

    @staticmethod
    def _check(field, check) -> bool:
        try:
            check(field.data)
        except ValueError as exc:
            field.errors.append(str(exc))
            return False
        return True

    def first_error(self) -> tuple[str, str] | None:
        for name, errors in self.errors.items():
            if errors:
                return name, errors[0]
        return None
