"""Outbound URL guard: webhook targets may not reach into our own network.

Checked twice: when an endpoint is saved (syntax, and literal or resolved
addresses), and before every connection, against every address the host
resolves to, which are the addresses then connected to: DNS rebinding cannot
slip between check and connect (webapp/delivery/transport.py). Through the
installation's proxy the target is checked the same way before the request is
handed over. ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` turns the address checks off
(development, tests).

Only globally reachable unicast addresses pass ``forbidden_reason``: every block of
the IANA IPv4 and IPv6 Special-Purpose Address Registries whose "Globally
Reachable" is False or N/A is refused, and so are multicast, the IPv6 space
outside global unicast (2000::/3), and the IPv6 forms that carry an IPv4 address
(IPv4-mapped, IPv4-compatible, 6to4, Teredo, local-use NAT64). The well-known
NAT64 prefix 64:ff9b::/96 is globally reachable by the registry (DNS64 networks
reach IPv4-only hosts through it), so it is judged by the IPv4 address it carries.
"""
from __future__ import annotations

import ipaddress
import socket
import unicodedata
from urllib.parse import urlsplit

import idna

from ..errors import InvalidInput

MAX_URL_LENGTH = 2048

LOOPBACK = "a loopback address"
PRIVATE = "a private address"
LINK_LOCAL = "a link-local address"
DOCUMENTATION = "a documentation address"
RESERVED = "a reserved address"
MULTICAST = "a multicast address"

# The registries as of 2025, pinned here rather than taken from ipaddress's
# is_private/is_global: their answers changed between 3.11, 3.12 and 3.13 patch
# releases (and 3.11 still calls 2002::/16, 3fff::/20 and 100.64.0.0/10's
# neighbours global), so the product would guard differently on each Python.
# Order matters: the first block that holds the address names it.
IPV4_BLOCKS = tuple((ipaddress.IPv4Network(net), what) for net, what in (
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", PRIVATE),
    ("100.64.0.0/10", "a shared address space (carrier-grade NAT) address"),
    ("127.0.0.0/8", LOOPBACK),
    ("169.254.0.0/16", LINK_LOCAL),
    ("172.16.0.0/12", PRIVATE),
    # The whole block, though two anycast services in it (192.0.0.9-10) are reachable: no webhook receiver.
    ("192.0.0.0/24", "an IETF protocol assignments address"),
    ("192.0.2.0/24", DOCUMENTATION),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("192.168.0.0/16", PRIVATE),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", DOCUMENTATION),
    ("203.0.113.0/24", DOCUMENTATION),
    ("224.0.0.0/4", MULTICAST),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", RESERVED),
))

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
TEREDO = ipaddress.IPv6Network("2001::/32")
GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
IPV6_BLOCKS = tuple((ipaddress.IPv6Network(net), what) for net, what in (
    ("::/128", "the unspecified address"),
    ("::1/128", LOOPBACK),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("100:0:0:1::/64", "a dummy-prefix address"),
    # The whole block, though a few anycast services in it (2001:1::1-3, AMT, AS112, ORCHIDv2) are reachable.
    ("2001::/23", "an IETF protocol assignments address"),
    ("2001:db8::/32", DOCUMENTATION),
    ("3fff::/20", DOCUMENTATION),
    ("5f00::/16", "a segment-routing (SRv6) address"),
    ("fc00::/7", "a unique-local (private) address"),
    ("fe80::/10", LINK_LOCAL),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", MULTICAST),
))


class ForbiddenTarget(Exception):
    """The target resolved to an address webhooks may not reach."""


def forbidden_reason(address: str) -> str | None:
    """Why webhooks may not reach ``address`` (an IPv4 or IPv6 literal, zone allowed), or None if they may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv4Address):
        return _first_block(ip, IPV4_BLOCKS)
    carried = embedded_ipv4(ip)
    if ip in NAT64_WELL_KNOWN:
        inner = _first_block(carried, IPV4_BLOCKS)
        return f"a NAT64 address that carries {carried}, {inner}" if inner else None
    if carried is not None:
        inner = _first_block(carried, IPV4_BLOCKS)
        return f"{_embedding_kind(ip)} that carries {carried}" + (f", {inner}" if inner else "")
    reason = _first_block(ip, IPV6_BLOCKS)
    if reason is None and ip not in GLOBAL_UNICAST:
        reason = RESERVED
    return reason


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if ip in IPV4_MAPPED:
        return ip.ipv4_mapped
    if ip in NAT64_WELL_KNOWN or (ip in IPV4_COMPATIBLE and int(ip) > 1):  # :: and ::1 are not IPv4
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in SIX_TO_FOUR:
        return ip.sixtofour
    if ip in TEREDO:
        return ip.teredo[1]  # the client's address (the server's is in bits 32-63)
    return None


def _embedding_kind(ip: ipaddress.IPv6Address) -> str:
    for network, kind in ((IPV4_MAPPED, "an IPv4-mapped address"), (SIX_TO_FOUR, "a 6to4 address"),
                          (TEREDO, "a Teredo address")):
        if ip in network:
            return kind
    return "an IPv4-compatible address"


def _first_block(ip, blocks) -> str | None:
    return next((what for network, what in blocks if ip in network), None)


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> str:
    """Return the URL stripped of surrounding blanks, or raise InvalidInput on ``url``."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("url", "is required")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput("url", f"must be at most {MAX_URL_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in url):
        raise InvalidInput("url", "must not contain control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput("url", f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url", "must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise InvalidInput("url", "must include a host name")
    if parts.username or parts.password:
        raise InvalidInput("url", "must not contain credentials; use Basic authentication instead")
    if any(ch.isspace() for ch in url):
        raise InvalidInput("url", "must not contain spaces")
    if parts.fragment:
        raise InvalidInput("url", "must not contain a #fragment")
    host = wire_host(parts.hostname)
    if not allow_private:
        for address in literal_or_resolved(host, port, resolve):
            reason = forbidden_reason(address)
            if reason:
                raise InvalidInput("url", f"points to {reason} ({address}), which is not allowed")
    return url


def wire_host(host: str) -> str:
    """The host name as requests sends it (IDNA, UTS #46 mapping), so the check sees what is connected to."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidInput("url", f"has a host name that is not a valid international domain name ({exc})") from None


def literal_or_resolved(host: str, port: int | None, resolve: bool) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1"]
    if all(ch in "0123456789abcdefx." for ch in name):
        try:  # the shorthand IPv4 forms the resolver accepts: 127.1, 0x7f000001, 2130706433, 0177.0.0.1
            return [socket.inet_ntoa(socket.inet_aton(name))]
        except OSError:
            pass
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return []  # unresolvable today; checked again when connecting
    return sorted({info[4][0] for info in infos})
