"""Endpoint settings as JSON: the settings form's fields, their JSON types, and the conversion to form data.

The API validates endpoints with the settings form (one set of rules for both); this
module says how each form field looks in JSON. The API's type checks and the OpenAPI
document are both read from it, so a field added to the form is in the API and its
document at once.
"""
from __future__ import annotations

from wtforms import (
    BooleanField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.core import UnboundField
from wtforms.validators import DataRequired, Length

from ..errors import InvalidInput
from .forms import EndpointForm, WholeNumberField


def endpoint_fields() -> dict[str, UnboundField]:
    """The settings form's fields, in the form's order (the CSRF token is not a setting)."""
    found = [(name, value) for name, value in vars(EndpointForm).items() if isinstance(value, UnboundField)]
    return dict(sorted(found, key=lambda item: item[1].creation_counter))


ENDPOINT_FIELDS = frozenset(endpoint_fields())


def as_form_values(name: str, field: UnboundField, value) -> list[str]:
    """A JSON value as the form data the settings form reads; InvalidInput when its JSON type is wrong.
    ``null`` is the field left blank (its default; a blank secret keeps the stored one)."""
    kind = field.field_class
    if issubclass(kind, SelectMultipleField):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(name, "must be a list of action names")
        return value
    if issubclass(kind, BooleanField):
        if not isinstance(value, bool):
            raise InvalidInput(name, f"must be true or false, got {value!r}")
        return ["y"] if value else []
    if value is None:
        return [""]
    if issubclass(kind, WholeNumberField):
        if isinstance(value, bool) or not isinstance(value, int):
            limits = field.kwargs
            raise InvalidInput(name, f"must be a whole number from {limits['minimum']} to {limits['maximum']}"
                                     f" or null, got {value!r}")
        return [str(value)]
    if not isinstance(value, str):
        raise InvalidInput(name, f"must be a string, got {type(value).__name__}")
    return [value]


def field_schema(name: str, field: UnboundField, choices: dict[str, list[str]]) -> dict:
    """The JSON Schema of one setting, for the OpenAPI document; ``choices`` of the select fields by name."""
    kind, kwargs = field.field_class, field.kwargs
    label = field.args[0] if field.args else name
    described = {"title": label, **({"description": kwargs["description"]} if kwargs.get("description") else {})}
    if issubclass(kind, SelectMultipleField):
        return {**described, "type": "array", "items": {"type": "string", "enum": choices[name]}, "minItems": 1}
    if issubclass(kind, BooleanField):
        return {**described, "type": "boolean"}
    if issubclass(kind, WholeNumberField):
        return {**described, "type": ["integer", "null"], "minimum": kwargs["minimum"], "maximum": kwargs["maximum"],
                "default": kwargs.get("default", kwargs["blank"])}
    if issubclass(kind, SelectField):
        return {**described, "type": "string", "enum": choices[name]}
    assert issubclass(kind, StringField), f"no JSON type for {name} ({kind.__name__})"
    validators = kwargs.get("validators", ())
    required = any(isinstance(v, DataRequired) for v in validators)
    schema = {**described, "type": "string" if required else ["string", "null"]}
    lengths = [v.max for v in validators if isinstance(v, Length) and v.max > 0]
    if lengths:
        schema["maxLength"] = min(lengths)
    if issubclass(kind, PasswordField):
        schema["writeOnly"] = True
    return schema
