"""Self-tests of the real loopback servers the rest of the suite relies on."""

from __future__ import annotations

import time

import pytest
import requests

from tests.support.forward_proxy import ForwardProxy
from tests.support.receiver import Receiver, refused_url
from tests.support.waiting import wait_until


@pytest.fixture
def receiver():
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def proxy():
    with ForwardProxy() as proxy:
        yield proxy


def test_receiver_records_method_path_headers_and_body(receiver):
    response = requests.post(
        receiver.url + "?attempt=1",
        json={"event": "points.earned", "points": 5},
        headers={"X-Signature": "v1=abc"},
        timeout=5,
    )

    assert (response.status_code, response.content) == (200, b"ok")
    (request,) = receiver.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/hook?attempt=1"
    assert request.header("x-signature") == "v1=abc"
    assert ("X-Signature", "v1=abc") in request.headers
    assert request.header("Content-Type") == "application/json"
    assert request.json() == {"event": "points.earned", "points": 5}
    assert request.status == 200
    assert request.received_at <= time.monotonic()
    assert receiver.url.startswith(receiver.base_url)


def test_receiver_reads_chunked_request_bodies(receiver):
    requests.post(receiver.url, data=iter([b"first,", b"second"]), timeout=5)

    (request,) = receiver.wait_for(1)
    assert request.header("Transfer-Encoding") == "chunked"
    assert request.body == b"first,second"


def test_fail_first_then_status_and_explicit_sequences():
    with Receiver(fail_first=2, fail_status=503) as receiver:
        codes = [requests.post(receiver.url, data=b"x", timeout=5).status_code for _ in range(3)]
        assert codes == [503, 503, 200]

        receiver.behave(statuses=[429, 410], status=204)
        codes = [requests.post(receiver.url, data=b"x", timeout=5).status_code for _ in range(3)]
        assert codes == [429, 410, 204]
        assert [r.status for r in receiver.requests] == [503, 503, 200, 429, 410, 204]


def test_handler_takes_full_control_and_its_errors_are_kept():
    def verify(request):
        if request.header("X-Signature") != "good":
            raise ValueError("bad signature")
        return 202, [("X-Reply", "yes")], b"accepted"

    with Receiver(handler=verify) as receiver:
        good = requests.post(receiver.url, headers={"X-Signature": "good"}, timeout=5)
        bad = requests.post(receiver.url, headers={"X-Signature": "forged"}, timeout=5)

        assert (good.status_code, good.headers["X-Reply"], good.content) == (202, "yes", b"accepted")
        assert bad.status_code == 500
        assert [str(e) for e in receiver.handler_errors] == ["bad signature"]


def test_delay_longer_than_client_timeout_times_out_and_close_is_prompt():
    receiver = Receiver(delay=60)
    try:
        with pytest.raises(requests.Timeout):
            requests.post(receiver.url, data=b"x", timeout=0.2)
        (request,) = receiver.wait_for(1)
    finally:
        started = time.monotonic()
        receiver.close()
    assert time.monotonic() - started < 2
    assert request.status is None


def test_trickle_sends_a_big_body_slowly_with_either_framing():
    for chunked in (False, True):
        with Receiver(trickle=(8 * 1024, 1024, 0.02), trickle_chunked=chunked) as receiver:
            started = time.monotonic()
            response = requests.get(receiver.url, timeout=5)
            assert len(response.content) == 8 * 1024
            assert time.monotonic() - started >= 7 * 0.02
            assert ("Transfer-Encoding" in response.headers) is chunked


def test_close_interrupts_a_trickle():
    receiver = Receiver(trickle=(100 * 1024 * 1024, 1024, 5.0))
    try:
        response = requests.get(receiver.url, stream=True, timeout=5)
        assert response.headers["Content-Length"] == str(100 * 1024 * 1024)
        assert len(next(response.iter_content(1024))) == 1024
    finally:
        started = time.monotonic()
        receiver.close()
    assert time.monotonic() - started < 2


def test_keep_alive_connection_is_reused(receiver):
    with requests.Session() as session:
        for i in range(20):
            assert session.post(receiver.url, json={"n": i}, timeout=5).ok

    assert len(receiver.wait_for(20)) == 20
    assert receiver.accept_count == 1
    assert len({r.client_port for r in receiver.requests}) == 1


def test_wait_for_reports_how_many_arrived(receiver):
    requests.post(receiver.url, data=b"only one", timeout=5)

    with pytest.raises(AssertionError, match="at least 2 request.*1 arrived"):
        receiver.wait_for(2, timeout=0.1)


def test_refused_url_refuses_connections():
    with pytest.raises(requests.ConnectionError):
        requests.post(refused_url(), data=b"x", timeout=5)


def test_wait_until_returns_the_truthy_value_or_fails_at_the_deadline():
    deadline = time.monotonic() + 0.1
    assert wait_until(lambda: time.monotonic() > deadline and "done") == "done"

    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"never ready within 0.2s \(last value: 0\)"):
        wait_until(lambda: 0, timeout=0.2, message="never ready")
    assert 0.2 <= time.monotonic() - started < 1


def test_requests_through_the_proxy_are_marked_and_intact(proxy, receiver):
    payload = {"event": "member.joined", "name": "Zoë", "tags": ["a", "b"]}

    via_proxy = requests.post(receiver.url, json=payload, proxies={"http": proxy.url}, timeout=5)
    direct = requests.post(receiver.url, json=payload, timeout=5)

    assert via_proxy.status_code == direct.status_code == 200
    proxied, unproxied = receiver.wait_for(2)
    assert proxy.marked(proxied)
    assert proxied.header(proxy.marker_header) == str(proxy.port)
    assert proxied.json() == payload
    assert proxied.body == unproxied.body
    assert not proxy.marked(unproxied)
    assert unproxied.header(proxy.marker_header) is None
    assert f"POST {receiver.url}" in proxy.forwarded()


def test_proxy_routes_each_request_of_a_session_to_its_own_target(proxy):
    # proxy.py alone would send the second request to the first target.
    with Receiver() as first, Receiver() as second, requests.Session() as session:
        session.proxies = {"http": proxy.url}
        for target in (first, second, second, first):
            assert session.post(target.url, data=target.url.encode(), timeout=5).ok

        for target in (first, second):
            assert [r.body for r in target.wait_for(2)] == [target.url.encode()] * 2
            assert all(proxy.marked(r) for r in target.requests)


def test_proxy_journals_attempts_to_unreachable_targets(proxy):
    target = refused_url()

    response = requests.post(target, data=b"x", proxies={"http": proxy.url}, timeout=5)

    assert response.status_code == 502
    assert wait_until(lambda: f"POST {target}" in proxy.forwarded())
