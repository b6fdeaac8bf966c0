"""The outbound URL guard at connect time: every address a name resolves to is checked before
anything is sent, directly and through the installation's proxy, which also defeats DNS rebinding.

Names are resolved by a real DNS server on 127.0.0.1 (tests/support/dns_server.py) that the
product asks through ``WEBHOOKS_DNS_SERVERS``; its answer can change between save and send.
Every connection a test lets through goes to 127.0.0.1; refused ones are never attempted.
"""
from __future__ import annotations

import pytest

from tests.support.dns_server import SlowDNS
from tests.support.receiver import Receiver
from webapp.delivery.try_endpoint import send_test
from webapp.extensions import db
from webapp.storage.models import Endpoint
from webapp.web.forms import EndpointForm

pytestmark = pytest.mark.db

PUBLIC_ADDRESS = "93.184.216.34"


@pytest.fixture
def dns(app):
    with SlowDNS(address=PUBLIC_ADDRESS) as server:
        app.config["WEBHOOKS_DNS_SERVERS"] = server.server
        app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = False
        yield server


def saved_endpoint(url: str, **settings) -> Endpoint:
    endpoint = Endpoint(url=url, actions_json='["checkout"]', **settings)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def test_a_name_rebound_to_loopback_after_the_check_is_refused_when_connecting(app, dns):
    with Receiver() as receiver:
        url = f"http://rebind.test:{receiver.port}/hook"
        with app.test_request_context():
            form = EndpointForm(formdata=None, meta={"csrf": False}, data={
                "url": url, "actions": ["checkout"], "auth_type": "none", "content_type": "json", "threads": 8})
            assert form.validate(), form.errors  # at save time the name does not point inside
        dns.address = "127.0.0.1"  # ...and now it points at us
        result = send_test(saved_endpoint(url), "checkout")
        assert receiver.requests == [], "nothing reached the loopback receiver"
    assert "rebind.test." in dns.questions, "the product asked our DNS server"
    assert result.outcome.error == "refused to connect to rebind.test: it resolves to a loopback address (127.0.0.1)"
    assert result.message.status == "failed"


@pytest.mark.parametrize("address, reason", [("10.1.2.3", "a private address"),
                                             ("169.254.169.254", "a link-local address")])
def test_a_name_pointing_inside_is_refused_before_any_connection(app, dns, address, reason):
    dns.address = address
    result = send_test(saved_endpoint("http://inside.test/hook"), "checkout")
    assert result.outcome.error == f"refused to connect to inside.test: it resolves to {reason} ({address})"
    assert result.outcome.response_code is None and result.outcome.duration_ms < 1000


def test_through_the_proxy_a_loopback_target_is_refused_before_the_proxy_sees_it(app, dns, forward_proxy):
    app.config["WEBHOOKS_PROXY_URL"] = forward_proxy.url
    with Receiver() as receiver:
        endpoint = saved_endpoint(receiver.url, use_proxy=True)
        result = send_test(endpoint, "checkout")
        assert receiver.requests == []
    assert forward_proxy.forwarded() == [], "the proxy was never asked"
    assert result.outcome.error == "refused to connect to 127.0.0.1: it resolves to a loopback address (127.0.0.1)"


def test_through_the_proxy_a_name_pointing_inside_is_refused_too(app, dns, forward_proxy):
    app.config["WEBHOOKS_PROXY_URL"] = forward_proxy.url
    dns.address = "127.0.0.1"
    with Receiver() as receiver:
        result = send_test(saved_endpoint(f"http://sneaky.test:{receiver.port}/hook", use_proxy=True), "checkout")
        assert receiver.requests == []
    assert forward_proxy.forwarded() == []
    assert result.outcome.error == "refused to connect to sneaky.test: it resolves to a loopback address (127.0.0.1)"


def test_through_the_proxy_an_allowed_target_goes_through(app, forward_proxy):
    """The same path with the guard lifted (development): the request does reach the receiver via the proxy."""
    app.config["WEBHOOKS_PROXY_URL"] = forward_proxy.url
    with Receiver() as receiver:
        result = send_test(saved_endpoint(receiver.url, use_proxy=True), "checkout")
        [request] = receiver.wait_for(1)
    assert result.outcome.succeeded and forward_proxy.marked(request)
