"""Outbound URL guard: webhook targets may not reach into our own network.

Checked twice: when an endpoint is saved (syntax, and literal or resolved
addresses) and on every connection, against the address the socket actually
connected to, which also defeats DNS rebinding between check and connect.
``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` turns the address checks off (development,
tests). Connections through the installation's proxy are not checked here:
the proxy is the installation's own choice.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import InvalidInput

MAX_URL_LENGTH = 2048


class ForbiddenTarget(Exception):
    """The target resolved to an address webhooks may not reach."""


def forbidden_reason(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "a reserved address"
    return None


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> str:
    """Return the URL stripped of surrounding blanks, or raise InvalidInput on ``url``."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("url", "is required")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput("url", f"must be at most {MAX_URL_LENGTH} characters")
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
    if not allow_private:
        for address in literal_or_resolved(parts.hostname, port, resolve):
            reason = forbidden_reason(address)
            if reason:
                raise InvalidInput("url", f"points to {reason} ({address}), which is not allowed")
    return url


def literal_or_resolved(host: str, port: int | None, resolve: bool) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return ["127.0.0.1"]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return []  # unresolvable today; checked again when connecting
    return sorted({info[4][0] for info in infos})


class _GuardedConnectionMixin:
    def connect(self):
        super().connect()
        address = self.sock.getpeername()[0]
        reason = forbidden_reason(address)
        if reason:
            self.sock.close()
            raise ForbiddenTarget(f"refused to connect to {self.host}: it resolves to {reason} ({address})")


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose direct connections refuse forbidden peers."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}
