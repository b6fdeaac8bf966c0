"""Fields that end up in request headers or S3 keys refuse what would break them, in the form and the API;
no error text, page or log line carries a signature or a secret, even for settings saved before these rules."""
from __future__ import annotations

import re

import pytest

from tests.support.factories import attempts_of, final, make_endpoint
from tests.support.receiver import Receiver
from webapp.domain.events import emit
from webapp.domain.tokens import create_token
from webapp.extensions import db
from webapp.storage.models import Attempt, Endpoint
from webapp.storage.statuses import FAILED

pytestmark = pytest.mark.db

SECRET = "header-Secret-unique-91f3"
# A complete, valid set of settings per authentication type.
VALID = {
    "basic": {"auth_type": "basic", "username": "shop", "password": SECRET},
    "aws": {"auth_type": "aws", "region": "eu-west-1", "service": "execute-api", "access_key_id": "AKIDHEADERS",
            "secret_key": SECRET, "algo_prefix": "EMS", "vendor_key": "Ems"},
    "aws-s3": {"auth_type": "aws-s3", "region": "eu-west-1", "service": "s3", "access_key_id": "AKIDHEADERS",
               "secret_key": SECRET, "filename_format": "hooks/{customer}-{message_id}.{ext}"},
}
HEADER_BOUND = [("basic", "username"), ("aws", "region"), ("aws", "service"), ("aws", "access_key_id"),
                ("aws", "algo_prefix"), ("aws", "vendor_key"), ("aws-s3", "region"), ("aws-s3", "service"),
                ("aws-s3", "access_key_id"), ("aws-s3", "filename_format")]
CONTROLS = ["eu\r\nwest-1", "eu\nwest", "eu\rwest", "a\x00b", "a\tb", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b"]
# Rules of each field beyond control characters.
FIELD_RULES = [
    ("aws", "region", "eu/west-1", "letters, digits"),
    ("aws", "region", "eu west", "letters, digits"),
    ("aws", "service", "api,x", "letters, digits"),
    ("aws", "algo_prefix", "AWS4 HMAC", "letters, digits"),
    ("aws", "vendor_key", "Ems_X", "header names"),
    ("aws", "vendor_key", "Amz:", "header names"),
    ("aws", "access_key_id", "AKID/2026", "without spaces, '/' or ','"),
    ("aws", "access_key_id", "AKID,x", "without spaces, '/' or ','"),
    ("aws", "access_key_id", "AKÏD", "printable ASCII"),
    ("basic", "username", "shop:admin", "must not contain ':'"),
    ("aws-s3", "filename_format", "hooks/../{customer}.{ext}", "'.' or '..' folders"),
    ("aws-s3", "filename_format", "./{customer}.{ext}", "'.' or '..' folders"),
]


@pytest.fixture
def bearer(app):
    return {"Authorization": f"Bearer {create_token('headers')}"}


def saved_endpoints() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(Endpoint))


@pytest.mark.parametrize("auth_type, field", HEADER_BOUND)
def test_control_characters_are_refused_in_the_api_and_the_form(app, client, operator, bearer, auth_type, field):
    for bad in CONTROLS:
        settings = {"url": "http://127.0.0.1:9/hook", "actions": ["checkout"], **VALID[auth_type], field: bad}
        answer = client.post("/api/v1/endpoints", json=settings, headers=bearer)
        assert answer.status_code == 400, (bad, answer.get_json())
        assert answer.get_json()["field"] == field and "control characters" in answer.get_json()["error"], bad

        page = operator.post("/settings/new", {**settings, "actions": "checkout"})
        assert page.status_code == 422, bad
        shown = re.findall(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page.get_data(as_text=True))
        assert shown and "control characters" in shown[0], (bad, shown)
    assert saved_endpoints() == 0


@pytest.mark.parametrize("auth_type, field, bad, fragment", FIELD_RULES)
def test_each_header_field_keeps_to_what_its_header_allows(app, client, bearer, auth_type, field, bad, fragment):
    settings = {"url": "http://127.0.0.1:9/hook", "actions": ["checkout"], **VALID[auth_type], field: bad}
    answer = client.post("/api/v1/endpoints", json=settings, headers=bearer)
    assert answer.status_code == 400 and answer.get_json()["field"] == field, answer.get_json()
    assert fragment in answer.get_json()["error"]
    assert saved_endpoints() == 0


@pytest.mark.parametrize("auth_type", sorted(VALID))
def test_valid_settings_with_surrounding_blanks_are_saved_trimmed(app, client, bearer, auth_type):
    padded = {key: f"  {value} " if key not in ("auth_type", "password", "secret_key") else value
              for key, value in VALID[auth_type].items()}
    answer = client.post("/api/v1/endpoints", headers=bearer,
                         json={"url": "http://127.0.0.1:9/hook", "actions": ["checkout"], **padded})
    assert answer.status_code == 201, answer.get_json()
    for key, value in VALID[auth_type].items():
        if key not in ("password", "secret_key"):
            assert answer.get_json()[key] == value


def legacy_aws_endpoint(url: str) -> Endpoint:
    """AWS settings as an older version saved them: a region with a line break in it."""
    return make_endpoint(url, auth_type="aws", auth_region="eu-west-1\r\nX-Injected: 1", auth_service="execute-api",
                         auth_access_key_id="AKIDLEGACY", auth_algo_prefix="AWS4", auth_vendor_key="Amz",
                         secret=SECRET, actions=["checkout"])


SIGNATURE_VALUE = re.compile(r"Signature=[0-9a-f]{16,}")


def test_a_header_that_cannot_be_sent_fails_the_test_button_without_showing_the_signature(app, operator):
    with Receiver() as receiver:
        endpoint = legacy_aws_endpoint(receiver.url)
        response = operator.post(f"/settings/{endpoint.id}/test", {"action": "checkout"})
        assert receiver.requests == [], "nothing was sent"
    page = response.get_data(as_text=True)
    [attempt] = db.session.scalars(db.select(Attempt)).all()
    assert attempt.error.startswith("invalid request header: a header name or value holds a line break")
    for text in (attempt.error, page, attempt.request_headers_json):
        assert not SIGNATURE_VALUE.search(text) and SECRET not in text
    assert "invalid request header" in page


def test_a_worker_delivery_with_such_a_header_records_no_signature_in_the_error_or_the_log(app, start_worker):
    with Receiver() as receiver:
        endpoint = legacy_aws_endpoint(receiver.url)
        worker = start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "1"})
        message = final(emit("checkout", "c1", {"n": 1}).messages[0].id)
        assert receiver.requests == []
    assert message.status == FAILED and message.endpoint_id == endpoint.id
    [attempt] = attempts_of(message.id)
    assert "invalid request header" in attempt.error
    for place, text in (("error", attempt.error), ("headers", attempt.request_headers_json),
                        ("worker log", worker.output())):
        assert not SIGNATURE_VALUE.search(text), f"a signature in the {place}: {text}"
        assert SECRET not in text, place
