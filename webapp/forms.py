"""The endpoint settings form: one set of rules for the settings page and the JSON API."""
from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError
from wtforms.fields import IntegerField

from .delivery.authenticate import AUTH_TYPES
from .delivery.payload import FORM, JSON
from .errors import InvalidInput
from .urlguard import check_url

ALL_ACTIONS = "*"
MAX_TIMEOUT = 60
# Per authentication type: (required plain fields, the secret field it needs).
AUTH_FIELDS = {
    "none": ((), None),
    "basic": (("username",), "password"),
    "aws": (("region", "service", "access_key_id", "algo_prefix", "vendor_key"), "secret_key"),
    "aws-s3": (("region", "service", "access_key_id", "filename_format"), "secret_key"),
}
SECRET_FIELDS = ("password", "secret_key")
AUTH_LABELS = {"none": "None", "basic": "Basic", "aws": "AWS", "aws-s3": "AWS-S3"}


def action_label(action: str) -> str:
    return "All actions" if action == ALL_ACTIONS else action.replace("_", " ").replace(".", " ").capitalize()


class TimeoutField(StringField):
    """Whole seconds 1..60; blank means the default of 1 second."""

    def process_formdata(self, valuelist):
        raw = valuelist[0] if valuelist else ""
        self.raw = "" if raw is None else str(raw).strip()
        self.data = self.raw

    def pre_validate(self, form):
        if self.raw == "":
            self.data = 1
            return
        if isinstance(self.raw, bool) or not self.raw.lstrip("+").isdigit():
            raise ValidationError(f"must be a whole number of seconds from 1 to {MAX_TIMEOUT}")
        value = int(self.raw)
        if not 1 <= value <= MAX_TIMEOUT:
            raise ValidationError(f"must be between 1 and {MAX_TIMEOUT} seconds")
        self.data = value

    def process_data(self, value):
        self.data = value
        self.raw = "" if value is None else str(value)

    def _value(self):
        return self.raw


class EndpointForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=100)], default="Webhook endpoint")
    enabled = BooleanField("Enabled", default=True)
    use_proxy = BooleanField("Use static-IP proxy")
    url = StringField("Endpoint URL", validators=[DataRequired(message="is required")])
    timeout = TimeoutField("Timeout (s)")
    content_type = SelectField(
        "Content type",
        choices=[
            SelectChoice(JSON, "JSON (application/json)"),
            SelectChoice(FORM, "URL-encoded (application/x-www-form-urlencoded)"),
        ],
        default=JSON,
    )
    actions = SelectMultipleField("Actions")
    queue_batches = BooleanField("Queue batches")
    threads = IntegerField(
        "Threads", default=8,
        validators=[Optional(), NumberRange(1, 64, message="must be between 1 and 64")],
    )
    auth_type = SelectField("Authentication", choices=[SelectChoice(t, AUTH_LABELS[t]) for t in AUTH_TYPES], default="none")
    username = StringField("Username", validators=[Length(max=255)])
    password = PasswordField("Password", validators=[Length(max=1024)])
    region = StringField("Region", validators=[Length(max=64)])
    service = StringField("Service", validators=[Length(max=64)])
    access_key_id = StringField("Access Key ID", validators=[Length(max=255)])
    secret_key = PasswordField("Access Key Secret", validators=[Length(max=1024)])
    algo_prefix = StringField("Algorithm prefix", default="AWS4", validators=[Length(max=32)])
    vendor_key = StringField("Vendor key", default="Amz", validators=[Length(max=32)])
    filename_format = StringField("Filename format", validators=[Length(max=512)])

    def __init__(self, *args, has_secret: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_secret = has_secret
        catalogue = current_app.config["WEBHOOKS_ACTIONS"]
        self.actions.choices = [SelectChoice(a, action_label(a)) for a in (ALL_ACTIONS, *catalogue)]

    def validate_url(self, field):
        try:
            field.data = check_url(field.data, allow_private=current_app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"])
        except InvalidInput as exc:
            raise ValidationError(exc.problem) from None

    def validate_use_proxy(self, field):
        if field.data and not current_app.config.get("WEBHOOKS_PROXY_URL"):
            raise ValidationError("this installation has no static-IP proxy configured (WEBHOOKS_PROXY_URL)")

    def validate_actions(self, field):
        if not field.data:
            raise ValidationError("select at least one action")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        return self._validate_auth() and valid

    def _validate_auth(self) -> bool:
        required, secret = AUTH_FIELDS.get(self.auth_type.data, ((), None))
        ok = True
        for name in required:
            field = self[name]
            field.data = (field.data or "").strip()
            if not field.data:
                field.errors.append(f"is required for {AUTH_LABELS[self.auth_type.data]} authentication")
                ok = False
        if secret and not self[secret].data and not self.has_secret:
            self[secret].errors.append(f"is required for {AUTH_LABELS[self.auth_type.data]} authentication")
            ok = False
        if self.auth_type.data == "aws-s3" and self.filename_format.data:
            ok = self._validate_filename_format() and ok
        return ok

    def _validate_filename_format(self) -> bool:
        from .signing.s3 import check_filename_format

        try:
            check_filename_format(self.filename_format.data)
        except ValueError as exc:
            self.filename_format.errors.append(str(exc))
            return False
        return True

    def first_error(self) -> tuple[str, str] | None:
        for name, errors in self.errors.items():
            if errors:
                return name, errors[0]
        return None
