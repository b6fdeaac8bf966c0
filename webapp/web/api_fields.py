"""Endpoint settings as JSON: the settings form's fields, their JSON types, and the conversion to form data.

The API validates endpoints with the settings form (one set of rules for both); this
module says how each form field looks in JSON. The API's type checks and the OpenAPI
document are both read from it, so a field added to the form is in the API and its
document at once.
"""
from __future__ import annotations

from wtforms import (
    BooleanField,
    FieldList,
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


HEADER_KEYS = {"name", "value", "secret"}


def as_form_items(name: str, field: UnboundField, value) -> list[tuple[str, str]]:
    """A JSON value as (form key, value) pairs; a list of header objects becomes ``name-0-value`` keys."""
    if not issubclass(field.field_class, FieldList):
        return [(name, item) for item in as_form_values(name, field, value)]
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise InvalidInput(name, "must be a list of {\"name\", \"value\", \"secret\"} objects")
    if len(value) > field.kwargs["max_entries"]:
        raise InvalidInput(name, f"at most {field.kwargs['max_entries']} headers")
    items = []
    for number, row in enumerate(value):
        unknown = sorted(set(row) - HEADER_KEYS)
        if unknown:
            raise InvalidInput(name, f"header {number + 1}: unknown key {unknown[0][:40]!r}; allowed: name, value, secret")
        if not isinstance(row.get("name"), str) or not isinstance(row.get("value", ""), (str, type(None))):
            raise InvalidInput(name, f"header {number + 1}: name must be a string, value a string or null")
        if not isinstance(row.get("secret", False), bool):
            raise InvalidInput(name, f"header {number + 1}: secret must be true or false")
        items += [(f"{name}-{number}-name", row["name"]), (f"{name}-{number}-value", row.get("value") or "")]
        items += [(f"{name}-{number}-secret", "y")] if row.get("secret") else []
    return items


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
    label = next((arg for arg in field.args if isinstance(arg, str)), name)  # a FieldList's first is its entry
    described = {"title": label, **({"description": kwargs["description"]} if kwargs.get("description") else {})}
    if issubclass(kind, SelectMultipleField):
        return {**described, "type": "array", "items": {"type": "string", "enum": choices[name]}, "minItems": 1}
    if issubclass(kind, FieldList):
        return {**described, "type": "array", "maxItems": kwargs["max_entries"], "items": HEADER_SCHEMA}
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


HEADER_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
    "name": {"type": "string", "description": "An HTTP header name the product does not set itself"},
    "value": {"type": ["string", "null"], "description": "Printable ASCII. Shown back as \"\" when secret; "
                                                        "a blank secret value keeps the stored one"},
    "secret": {"type": "boolean", "default": False,
               "description": "Write-only, stored encrypted, redacted in the log"},
}}
