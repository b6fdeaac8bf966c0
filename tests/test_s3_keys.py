"""S3 object keys stay where the filename format puts them, whatever the placeholder values."""
from __future__ import annotations

import datetime as dt
import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.signing.s3 import check_filename_format, object_url, render_key

CREATED = dt.datetime(2026, 11, 29, 10, 0, 0)


def key(template: str, customer: str = "c1", action: str = "checkout") -> str:
    return render_key(template, action=action, customer=customer, event_id="ev1", message_id=7,
                      created_at=CREATED, ext="json")


@pytest.mark.parametrize("template, customer, expected", [
    ("prefix/{customer}-{message_id}.{ext}", "../../../escape", "prefix/..%2F..%2F..%2Fescape-7.json"),
    ("prefix/{customer}/{message_id}.{ext}", "..", "prefix/%2E%2E/7.json"),
    ("prefix/{customer}/{message_id}.{ext}", ".", "prefix/%2E/7.json"),
    ("prefix/.{customer}/{message_id}.{ext}", ".", "prefix/%2E%2E/7.json"),
    ("prefix/{customer}.{ext}", "a\\..\\b", "prefix/a%5C..%5Cb.json"),
    ("prefix/{customer}.{ext}", "50%2F", "prefix/50%252F.json"),
    ("{customer}/{ext}", "/etc/passwd", "%2Fetc%2Fpasswd/json"),
    ("webhooks/{date:%Y/%m/%d}/{customer}/{action}-{message_id}.{ext}", "Zoë Smith+1",
     "webhooks/2026/11/29/Zoë Smith+1/checkout-7.json"),
    ("prefix/{customer}...{ext}", "x", "prefix/x...json"),
])
def test_placeholder_values_never_add_a_folder_or_a_dot_segment(template, customer, expected):
    assert key(template, customer) == expected


@given(customer=st.text(min_size=1, max_size=30), action=st.text(alphabet="./\\%abc", min_size=1, max_size=8))
def test_any_value_keeps_the_key_inside_the_format_s_folders(customer, action):
    rendered = key("prefix/{customer}/{action}-{message_id}.{ext}", customer, action)
    segments = rendered.split("/")
    assert len(segments) == 3 and segments[0] == "prefix"
    assert not {".", ".."} & set(segments)
    assert posixpath.normpath(rendered) == rendered


@pytest.mark.parametrize("template", ["prefix/../{customer}", "./{customer}.{ext}", "a/./b/{event_id}", "..",
                                      "{date:%Y/..}/{event_id}"])
def test_a_format_with_dot_folders_is_refused(template):
    with pytest.raises(ValueError, match=r"'\.' or '\.\.' folders"):
        check_filename_format(template)


@pytest.mark.parametrize("template", ["webhooks/{date:%Y/%m/%d}/{event_id}.{ext}", "{customer}...{ext}",
                                      ".hidden/{event_id}", "a..b/{message_id}"])
def test_formats_without_dot_folders_are_fine(template):
    check_filename_format(template)


def test_the_object_url_keeps_escaped_slashes_inside_one_segment():
    url = object_url("http://127.0.0.1:9/bucket", key("prefix/{customer}.{ext}", "../x"))
    assert url == "http://127.0.0.1:9/bucket/prefix/..%252Fx.json"
