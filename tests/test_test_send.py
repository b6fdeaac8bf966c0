"""The Test button's backend: same request path as deliveries, recorded as a test, never retried."""
import pytest

from tests.support.factories import make_endpoint
from tests.support.receiver import Receiver, refused_url
from webapp.delivery.try_endpoint import send_test
from webapp.extensions import db
from webapp.storage.models import Attempt
from webapp.storage.statuses import DONE, FAILED

pytestmark = pytest.mark.db


def test_sends_a_sample_now_and_records_it_as_a_test(app):
    with Receiver(status=201, response_body=b'{"ok":true}') as receiver:
        endpoint = make_endpoint(receiver.url, auth_type="basic", auth_username="shop", secret="pw-123456")
        result = send_test(endpoint, "tier_change")

        [request] = receiver.requests
        assert request.json()["action"] == "tier_change" and request.json()["data"]["test"] is True
        assert request.header("Authorization").startswith("Basic ")
        assert result.outcome.response_code == 201 and result.outcome.response_body == '{"ok":true}'
        assert result.message.is_test and result.message.event.is_test
        assert result.message.status == DONE and result.message.next_attempt_at is None
        stored = db.session.scalars(db.select(Attempt)).one()
        assert dict(stored.request_headers)["Authorization"] == "Basic [redacted]"


def test_a_refused_connection_is_shown_and_not_retried(app):
    endpoint = make_endpoint(refused_url())
    result = send_test(endpoint, "checkout")
    assert result.outcome.error == "connection refused"
    assert result.message.status == FAILED and result.message.next_attempt_at is None
