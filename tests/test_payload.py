"""Message bodies: JSON envelope and form flattening."""
import datetime as dt
import json
from urllib.parse import parse_qsl

import pytest

from webapp.delivery.payload import envelope, flatten, render_body
from webapp.storage.models import EVENT_DATA_ENCODER

CREATED = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)


def test_json_body_is_the_envelope():
    body = render_body("json", envelope("e1", "checkout", "c1", CREATED, '{"a":[1,{"b":null}]}'))
    assert json.loads(body) == {
        "id": "e1", "action": "checkout", "customer": "c1",
        "created_at": "2026-01-02T03:04:05.678Z", "data": {"a": [1, {"b": None}]},
    }


@pytest.mark.parametrize("data", [
    {}, [], None, 0, -1.5e-300, 2**70, "plain", "quote \" backslash \\ slash / newline \n tab \t",
    {"ü": "日本語 ✓ \U0001f600", "nul": "\u0000", "ctl": "\u001f\u007f", "line": "\u2028\u2029"},
    {"nested": [{"a": [1, 2.25, True, False, None]}, {"": {"deeper": [[]]}}], "order": {"z": 1, "a": 2}},
])
def test_the_json_body_carries_the_stored_data_as_if_the_whole_envelope_were_encoded_at_once(data):
    """Delivery splices the event's stored JSON text into the envelope instead of decoding and encoding it
    again: the bytes must be those of encoding the envelope in one go, as every earlier attempt sent them."""
    stored = EVENT_DATA_ENCODER.encode(data)
    body = render_body("json", envelope("evt_\"1", "checkout", "cust ✓", CREATED, stored))
    whole = {"id": "evt_\"1", "action": "checkout", "customer": "cust ✓", "created_at": "2026-01-02T03:04:05.678Z",
             "data": data}
    assert body == json.dumps(whole, ensure_ascii=False, separators=(",", ":")).encode()
    assert json.loads(body)["data"] == data


def test_form_body_flattens_nested_data():
    body = render_body("form", envelope("e1", "checkout", "c 1", CREATED, {"a": {"b": {"c": 1}}, "l": [True, None], "e": {}}))
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    assert pairs == [
        ("id", "e1"), ("action", "checkout"), ("customer", "c 1"),
        ("created_at", "2026-01-02T03:04:05.678Z"),
        ("data[a][b][c]", "1"), ("data[l][0]", "true"), ("data[l][1]", ""), ("data[e]", ""),
    ]


def test_flatten_of_a_scalar_keeps_its_name():
    assert flatten(3.5, "x") == [("x", "3.5")]
