"""Connections for webhook deliveries: keep-alive pools, the SSRF guard, the attempt deadline.

Deliveries go through requests' own transport layer, urllib3, directly:
requests' per-request machinery (Session, adapter, hooks, cookie jar, header
merging) cost more than the socket work itself. requests still prepares the
URL (see ``send.wire_url``), so what is signed is exactly what is sent.

Every new connection resolves the host within the attempt's time left, checks
every address it resolved against the SSRF guard *before* connecting (nothing
is sent to a refused address, and what we connect to is what we checked, so
DNS rebinding cannot slip between the two), and registers its socket with the
attempt's deadline, as does every reused connection.
"""
from __future__ import annotations

import ipaddress
import socket
import threading

from urllib3 import BaseHTTPResponse, PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import Timeout, parse_url

from . import deadline, names
from .names import Resolver, dns_servers_resolver, system_resolver
from .urlguard import ForbiddenTarget, forbidden_reason

POOL_SIZE = 128  # idle keep-alive connections kept per host
HOSTS = 1024     # hosts whose pools are kept (the least used beyond that are closed)
URL_CACHE = 4096


def literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def addresses_of(host: str, port: int, resolver: Resolver) -> list[str]:
    literal = literal_address(host)
    return [literal] if literal else names.resolve(host, port, resolver)


def refuse_forbidden(host: str, addresses: list[str]) -> None:
    for address in addresses:
        reason = forbidden_reason(address)
        if reason:
            raise ForbiddenTarget(f"refused to connect to {host}: it resolves to {reason} ({address})")


class _WatchedConnection:
    """Mixed into urllib3's connections: resolve, guard and connect under the attempt's deadline."""

    guard = False
    resolver: Resolver = staticmethod(system_resolver)

    def _new_conn(self) -> socket.socket:
        host, port = self._dns_host, self.port
        try:
            addresses = addresses_of(host, port, self.resolver)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        if self.guard:
            refuse_forbidden(self.host, addresses)
        attempt = deadline.current()
        failure: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                if attempt is not None:
                    attempt.watch(sock)
                sock.settimeout(attempt.remaining() if attempt else self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect((address, port))
                return sock
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from exc
            except OSError as exc:
                sock.close()
                failure = exc
            except BaseException:
                sock.close()
                raise
        raise NewConnectionError(self, f"Failed to establish a new connection: {failure}") from failure

    def request(self, *args, **kwargs):
        attempt = deadline.current()
        if attempt is not None and self.sock is not None:
            attempt.watch(self.sock)  # a kept-alive connection joins this attempt
        return super().request(*args, **kwargs)


def _pools(guard: bool, resolver: Resolver) -> dict:
    """Pool classes whose connections carry ``guard`` and ``resolver``."""
    settings = {"guard": guard, "resolver": staticmethod(resolver)}
    http = type("WatchedHTTPConnection", (_WatchedConnection, HTTPConnection), settings)
    https = type("WatchedHTTPSConnection", (_WatchedConnection, HTTPSConnection), settings)
    return {
        "http": type("WatchedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("WatchedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }


class Transport:
    """The process's connection pools: one for direct sends, one per proxy URL.

    ``guard`` refuses addresses that are not globally routable. Through a proxy
    the connection goes to the installation's proxy (its own choice, not
    checked); the target host is resolved and checked before the request is
    handed to the proxy.
    """

    def __init__(self, *, guard: bool, resolver: Resolver = system_resolver, pool_size: int = POOL_SIZE):
        self.guard = guard
        self.resolver = resolver
        self.pool_size = pool_size
        self.direct = PoolManager(num_pools=HOSTS, maxsize=pool_size, retries=False)
        self.direct.pool_classes_by_scheme = _pools(guard, resolver)
        self._proxies: dict[str, ProxyManager] = {}
        self._lock = threading.Lock()
        self._by_url: dict[str, tuple[HTTPConnectionPool, str]] = {}

    @classmethod
    def from_config(cls, config, pool_size: int = POOL_SIZE) -> Transport:
        servers = config.get("WEBHOOKS_DNS_SERVERS")
        return cls(guard=not config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"],
                   resolver=dns_servers_resolver(servers) if servers else system_resolver, pool_size=pool_size)

    def urlopen(self, method: str, url: str, *, body: bytes, headers: dict, timeout: Timeout,
                proxy_url: str | None) -> BaseHTTPResponse:
        """One exchange: no retries, no redirects, the body left to be read."""
        options = {"body": body, "headers": headers, "redirect": False, "retries": False,
                   "preload_content": False, "assert_same_host": False, "timeout": timeout}
        if proxy_url:
            parts = parse_url(url)
            self.check_target(parts.host or "", parts.port or (443 if parts.scheme == "https" else 80))
            return self._proxy(proxy_url).urlopen(method, url, **options)
        pool, target = self._direct_pool(url)
        return pool.urlopen(method, target, **options)

    def _direct_pool(self, url: str) -> tuple[HTTPConnectionPool, str]:
        """The pool of the URL's origin and the request target, looked up once per URL: the
        PoolManager's own lookup (URL parsing, pool key) costs as much as writing the request."""
        found = self._by_url.get(url)
        if found is None or found[0].pool is None:  # new, or closed by the manager as least used
            parts = parse_url(url)
            found = (self.direct.connection_from_host(parts.host, parts.port, parts.scheme), parts.request_uri)
            if len(self._by_url) >= URL_CACHE:
                self._by_url.clear()
            self._by_url[url] = found
        return found

    def _proxy(self, proxy_url: str) -> ProxyManager:
        with self._lock:
            proxy = self._proxies.get(proxy_url)
            if proxy is None:
                proxy = ProxyManager(proxy_url, num_pools=16, maxsize=self.pool_size, retries=False)
                proxy.pool_classes_by_scheme = _pools(False, self.resolver)
                self._proxies[proxy_url] = proxy
            return proxy

    def check_target(self, host: str, port: int) -> None:
        """Through a proxy: the guard's check of the target itself, before anything is sent."""
        if self.guard:
            refuse_forbidden(host, addresses_of(host, port, self.resolver))

    def close(self) -> None:
        self._by_url.clear()
        self.direct.clear()
        with self._lock:
            for proxy in self._proxies.values():
                proxy.clear()
            self._proxies.clear()
