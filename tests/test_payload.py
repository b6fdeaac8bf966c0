"""Message bodies: JSON envelope and form flattening."""
import datetime as dt
import json
from urllib.parse import parse_qsl

from webapp.delivery.payload import envelope, flatten, render_body

CREATED = dt.datetime(2026, 1, 2, 3, 4, 5, 678000)


def test_json_body_is_the_envelope():
    body = render_body("json", envelope("e1", "checkout", "c1", CREATED, '{"a":[1,{"b":null}]}'))
    assert json.loads(body) == {
        "id": "e1", "action": "checkout", "customer": "c1",
        "created_at": "2026-01-02T03:04:05.678Z", "data": {"a": [1, {"b": None}]},
    }


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
