"""The outbound URL guard against DNS rebinding: a name that looks public when the endpoint
is saved but points inside when the worker connects is refused at connect time.

DNS answers are simulated in-process (there is no DNS on this machine); every real
connection goes to 127.0.0.1 only.
"""
from __future__ import annotations

import socket

import pytest

from tests.support.receiver import Receiver
from webapp.delivery.test_send import send_test
from webapp.extensions import db
from webapp.forms import EndpointForm
from webapp.models import Endpoint

pytestmark = pytest.mark.db

PUBLIC_ADDRESS = "93.184.216.34"


@pytest.fixture
def rebinding_dns(monkeypatch):
    """``rebind.test`` resolves to whatever ``answer["address"]`` says at the moment."""
    real = socket.getaddrinfo
    answer = {"address": PUBLIC_ADDRESS}

    def getaddrinfo(host, port, *args, **kwargs):
        return real(answer["address"] if host == "rebind.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answer


def test_a_name_rebound_to_loopback_after_the_check_is_refused_when_connecting(app, rebinding_dns):
    app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = False
    with Receiver() as receiver:
        url = f"http://rebind.test:{receiver.port}/hook"
        with app.test_request_context():
            form = EndpointForm(formdata=None, meta={"csrf": False}, data={
                "url": url, "actions": ["checkout"], "auth_type": "none", "content_type": "json", "threads": 8})
            assert form.validate(), form.errors  # at save time the name looks public
        rebinding_dns["address"] = "127.0.0.1"  # ...and now it points at us
        endpoint = Endpoint(url=url, actions_json='["checkout"]')
        db.session.add(endpoint)
        db.session.commit()

        result = send_test(endpoint, "checkout")

        assert receiver.requests == [], "nothing reached the loopback receiver"
    assert result.outcome.error == "refused to connect to rebind.test: it resolves to a loopback address (127.0.0.1)"
    assert result.message.status == "failed"
