"""The SSRF guard's classification (forbidden_reason) and the save-time URL check, form and API.

Nothing here connects anywhere: addresses are classified, and names are "resolved" by an
in-process stand-in for DNS (there is no DNS on this machine). Connect-time checks are
tested with the delivery engine.
"""
from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.delivery.urlguard import (
    IPV4_BLOCKS,
    IPV6_BLOCKS,
    check_url,
    forbidden_reason,
)
from webapp.domain.tokens import create_token
from webapp.errors import InvalidInput
from webapp.extensions import db
from webapp.storage.models import Endpoint

# Every block of the IANA special-purpose registries that is not globally reachable.
REFUSED = {
    "0.0.0.0": "'this network'", "0.255.255.255": "'this network'",
    "10.0.0.1": "private", "10.255.255.255": "private",
    "100.64.0.0": "shared address space", "100.127.255.255": "shared address space",
    "127.0.0.1": "loopback", "127.255.255.254": "loopback",
    "169.254.169.254": "link-local",
    "172.16.0.1": "private", "172.31.255.255": "private",
    "192.0.0.1": "IETF protocol assignments", "192.0.0.170": "IETF protocol assignments",
    "192.0.2.1": "documentation", "198.51.100.7": "documentation", "203.0.113.200": "documentation",
    "192.88.99.1": "6to4 relay anycast",
    "192.168.1.1": "private",
    "198.18.0.1": "benchmarking", "198.19.255.255": "benchmarking",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast",
    "240.0.0.1": "reserved", "255.255.255.254": "reserved", "255.255.255.255": "broadcast",
    "::": "unspecified", "::1": "loopback",
    "::ffff:127.0.0.1": "IPv4-mapped address that carries 127.0.0.1",
    "::ffff:8.8.8.8": "IPv4-mapped address that carries 8.8.8.8",
    "::127.0.0.1": "IPv4-compatible address that carries 127.0.0.1",
    "::8.8.8.8": "IPv4-compatible address that carries 8.8.8.8",
    "2002:7f00:1::": "6to4 address that carries 127.0.0.1",
    "2002:a00:1:1::5": "6to4 address that carries 10.0.0.1",
    "2002:808:808::1": "6to4 address that carries 8.8.8.8",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo address that carries 192.0.2.45",
    "64:ff9b::7f00:1": "NAT64 address that carries 127.0.0.1, a loopback address",
    "64:ff9b::a9fe:a9fe": "NAT64 address that carries 169.254.169.254, a link-local address",
    "64:ff9b::6440:1": "NAT64 address that carries 100.64.0.1, a shared address space",
    "64:ff9b:1::808:808": "local-use NAT64",
    "100::1": "discard-only", "100:0:0:1::1": "dummy-prefix",
    "2001:2::1": "IETF protocol assignments", "2001:10::1": "IETF protocol assignments",
    "2001:db8::1": "documentation", "3fff::1": "documentation",
    "5f00::1": "segment-routing",
    "fc00::1": "unique-local", "fd12:3456::1": "unique-local",
    "fe80::1": "link-local", "fe80::1%eth0": "link-local", "febf::1": "link-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "1::": "reserved", "4000::1": "reserved", "e000::1": "reserved",
}
ALLOWED = [
    "8.8.8.8", "93.184.216.34", "1.1.1.1", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
    "126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
    "192.0.1.0", "192.0.3.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
    "223.255.255.255",
    "2606:4700:4700::1111", "2a00:1450:4001::200e", "2001:200::1", "2620:4f:8000::1", "3ffe::1",
    "64:ff9b::808:808",  # NAT64 of a public address: how IPv6-only (DNS64) networks reach IPv4 receivers
]


@pytest.mark.parametrize("address, fragment", sorted(REFUSED.items()))
def test_every_address_that_is_not_globally_reachable_is_refused(address, fragment):
    reason = forbidden_reason(address)
    assert reason is not None and fragment in reason, (address, reason)


@pytest.mark.parametrize("address", ALLOWED)
def test_globally_reachable_unicast_addresses_pass(address):
    assert forbidden_reason(address) is None


@pytest.mark.parametrize("network", [str(net) for net, _ in IPV4_BLOCKS + IPV6_BLOCKS])
def test_each_block_is_refused_from_its_first_to_its_last_address(network):
    block = ipaddress.ip_network(network)
    assert forbidden_reason(str(block[0])) and forbidden_reason(str(block[-1]))


def test_something_that_is_not_an_address_is_refused_not_raised():
    assert forbidden_reason("example.com") == "not an IP address"
    assert forbidden_reason("") == "not an IP address"


def ipv6_forms(v4: ipaddress.IPv4Address) -> dict[str, ipaddress.IPv6Address]:
    n = int(v4)
    return {
        "mapped": ipaddress.IPv6Address((0xFFFF << 32) | n),
        "compatible": ipaddress.IPv6Address(n),
        "6to4": ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | 1),
        "nat64": ipaddress.IPv6Address((0x64FF9B << 96) | n),
        "nat64-local": ipaddress.IPv6Address((0x64FF9B0001 << 80) | n),
    }


@given(st.ip_addresses(v=4))
def test_no_ipv6_form_carries_a_forbidden_ipv4_address_through(v4):
    forms = ipv6_forms(v4)
    if forbidden_reason(str(v4)):
        for kind, v6 in forms.items():
            assert forbidden_reason(str(v6)), f"{kind} {v6} carries {v4}"
    # The transition forms are refused whatever they carry; only the well-known NAT64 prefix is judged by it.
    for kind in ("mapped", "compatible", "6to4", "nat64-local"):
        assert forbidden_reason(str(forms[kind])), f"{kind} {forms[kind]}"
    assert (forbidden_reason(str(forms["nat64"])) is None) == (forbidden_reason(str(v4)) is None)


@given(st.ip_addresses(v=6))
def test_ipv6_outside_global_unicast_is_refused(v6):
    if v6 not in ipaddress.ip_network("2000::/3") and v6 not in ipaddress.ip_network("64:ff9b::/96"):
        assert forbidden_reason(str(v6))


# Save time: check_url, as the settings form and the API call it


@pytest.fixture
def dns(monkeypatch):
    """An in-process stand-in for DNS: ``answers[name]`` is what the name resolves to."""
    answers: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.parametrize("url, shown", [
    ("http://100.64.0.1/hook", "shared address space"),
    ("http://[2002:7f00:1::]/hook", "6to4 address that carries 127.0.0.1"),
    ("http://[64:ff9b::7f00:1]/hook", "NAT64 address that carries 127.0.0.1"),
    ("http://[::ffff:7f00:1]/hook", "IPv4-mapped"),
    ("http://[::127.0.0.1]/hook", "IPv4-compatible"),
    ("http://[fe80::1%25eth0]/hook", "link-local"),
    ("http://127.1/hook", "loopback"),                # shorthand IPv4 forms the resolver accepts
    ("http://0x7f000001/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),
    ("http://0177.0.0.1/hook", "loopback"),
    ("http://localhost./hook", "loopback"),
    ("http://api.localhost/hook", "loopback"),
    ("http://ｌｏｃａｌｈｏｓｔ/hook", "loopback"),       # full-width letters: IDNA maps them to "localhost"
    ("http://198.51.100.10/hook", "documentation"),
])
def test_save_refuses_urls_that_point_inside(dns, url, shown):
    with pytest.raises(InvalidInput) as refused:
        check_url(url, allow_private=False)
    assert refused.value.field == "url" and shown in refused.value.problem and "not allowed" in refused.value.problem


def test_save_refuses_a_name_that_resolves_inside_even_once(dns):
    dns["hooks.example.com"] = ["93.184.216.34", "100.64.1.2"]
    with pytest.raises(InvalidInput, match="shared address space"):
        check_url("https://hooks.example.com/in", allow_private=False)
    dns["hooks.example.com"] = ["2606:4700::1", "2002:a9fe:a9fe::1"]
    with pytest.raises(InvalidInput, match="6to4 address that carries 169.254.169.254"):
        check_url("https://hooks.example.com/in", allow_private=False)
    dns["hooks.example.com"] = ["93.184.216.34", "2606:4700::1"]
    assert check_url(" https://hooks.example.com/in ", allow_private=False) == "https://hooks.example.com/in"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/\x00", "http://127.0.0.1:9/a\rb", "http://exa\x00mple.com/",
                                 "http://127.0.0.1:9/\u202e", "http://127.0.0.1:9/\x7f"])
def test_control_characters_are_refused_even_when_private_targets_are_allowed(url):
    with pytest.raises(InvalidInput, match="control characters"):
        check_url(url, allow_private=True)


def test_a_host_that_is_not_a_valid_international_name_is_refused():
    # requests could never send it (it IDNA-encodes hosts the same way), so it is not saved either.
    with pytest.raises(InvalidInput, match="international domain name"):
        check_url("http://\u2603.example/hook", allow_private=True)


@pytest.mark.db
@pytest.mark.parametrize("use_proxy", [False, True])
def test_the_settings_form_and_the_api_refuse_them_with_and_without_the_proxy(app, client, operator, dns, use_proxy):
    app.config.update(WEBHOOKS_ALLOW_PRIVATE_TARGETS=False, WEBHOOKS_PROXY_URL="http://127.0.0.1:3128")
    dns["cgnat.example"] = ["100.100.100.100"]
    bearer = {"Authorization": f"Bearer {create_token('guard')}"}
    proxy = {"use_proxy": "y"} if use_proxy else {}
    for url in ("http://100.64.0.1/hook", "http://[2002:7f00:1::]/hook", "http://[64:ff9b::a00:1]/hook",
                "http://cgnat.example/hook"):
        page = operator.post("/settings/new", {"url": url, "actions": "checkout", **proxy})
        assert page.status_code == 422, url
        assert 'id="url-error"' in page.get_data(as_text=True) and "which is not allowed" in page.get_data(as_text=True)
        answer = client.post("/api/v1/endpoints", headers=bearer,
                             json={"url": url, "actions": ["checkout"], "use_proxy": use_proxy})
        assert answer.status_code == 400 and answer.get_json()["field"] == "url", (url, answer.get_json())
        assert "not allowed" in answer.get_json()["error"]
    assert db.session.scalar(db.select(db.func.count()).select_from(Endpoint)) == 0
    dns["hooks.example.com"] = ["93.184.216.34"]
    saved = client.post("/api/v1/endpoints", headers=bearer,
                        json={"url": "https://hooks.example.com/in", "actions": ["checkout"], "use_proxy": use_proxy})
    assert saved.status_code == 201, saved.get_json()
