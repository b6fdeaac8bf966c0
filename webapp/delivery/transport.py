"""Connections for webhook deliveries: keep-alive pools, the SSRF guard, the attempt deadline.

Deliveries go through requests' own transport layer, urllib3, directly:
requests' per-request machinery (Session, adapter, hooks, cookie jar, header
merging) cost more than the socket work itself. requests still prepares the
URL (see ``send.wire_url``), so what is signed is exactly what is sent.
Direct sends use urllib3's connections, kept alive here, with the leaner
exchange of ``exchange``; sends through a proxy use urllib3's ProxyManager.

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
from collections import OrderedDict
from typing import NamedTuple

from urllib3 import BaseHTTPResponse, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util import Timeout, parse_url

from . import deadline, names
from .exchange import Response, exchange, request_head
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
        if self.sock is not None:
            join_attempt(self.sock)
        return super().request(*args, **kwargs)


def join_attempt(sock: socket.socket) -> None:
    """A kept-alive connection's socket joins the attempt that reuses it (new ones join in ``_new_conn``)."""
    attempt = deadline.current()
    if attempt is not None:
        attempt.watch(sock)


def _connection_classes(guard: bool, resolver: Resolver) -> dict:
    """urllib3's connection classes, by scheme, carrying ``guard`` and ``resolver``."""
    settings = {"guard": guard, "resolver": staticmethod(resolver)}
    return {"http": type("WatchedHTTPConnection", (_WatchedConnection, HTTPConnection), settings),
            "https": type("WatchedHTTPSConnection", (_WatchedConnection, HTTPSConnection), settings)}


def _pools(guard: bool, resolver: Resolver) -> dict:
    """Pool classes whose connections carry ``guard`` and ``resolver``."""
    connections = _connection_classes(guard, resolver)
    return {
        "http": type("WatchedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": connections["http"]}),
        "https": type("WatchedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": connections["https"]}),
    }


class Route(NamedTuple):
    """Where a URL's requests go."""

    origin: tuple[str, str, int]  # scheme, host (no IPv6 brackets), port: the keep-alive pool's key
    target: str
    host_header: str


def route_of(url: str) -> Route:
    parts = parse_url(url)
    scheme, host = parts.scheme or "http", (parts.host or "").rstrip(".")
    default_port = 443 if scheme == "https" else 80
    port = parts.port or default_port
    return Route((scheme, host.strip("[]").lower(), port), parts.request_uri,
                 host if port == default_port else f"{host}:{port}")


class KeptAlive:
    """Idle connections per origin, the most recently used first; beyond ``origins`` origins the
    least recently used ones are closed, beyond ``per_origin`` idle connections a returning one is."""

    def __init__(self, per_origin: int, origins: int = HOSTS):
        self.per_origin = per_origin
        self.origins = origins
        self._idle: OrderedDict[tuple, list] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, origin: tuple):
        """An idle connection to ``origin`` that the receiver has not closed meanwhile, or None."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                connection = idle.pop()
            if connection.is_connected:
                return connection
            connection.close()

    def give_back(self, origin: tuple, connection) -> None:
        closing = []
        with self._lock:
            idle = self._idle.get(origin)
            if idle is None:
                idle = self._idle[origin] = []
                while len(self._idle) > self.origins:
                    closing += self._idle.popitem(last=False)[1]
            else:
                self._idle.move_to_end(origin)
            if len(idle) < self.per_origin:
                idle.append(connection)
            else:
                closing.append(connection)
        for extra in closing:
            extra.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, OrderedDict()
        for connections in idle.values():
            for connection in connections:
                connection.close()


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
        self._connections = _connection_classes(guard, resolver)
        self._kept_alive = KeptAlive(per_origin=pool_size)
        self._proxies: dict[str, ProxyManager] = {}
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}

    @classmethod
    def from_config(cls, config, pool_size: int = POOL_SIZE) -> Transport:
        servers = config.get("WEBHOOKS_DNS_SERVERS")
        return cls(guard=not config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"],
                   resolver=dns_servers_resolver(servers) if servers else system_resolver, pool_size=pool_size)

    def urlopen(self, method: str, url: str, *, body: bytes, headers: dict, timeout: float,
                proxy_url: str | None) -> Response | BaseHTTPResponse:
        """One exchange within ``timeout`` seconds: no retries, no redirects, the body left to be read."""
        route = self._route(url)
        if proxy_url:
            _, host, port = route.origin
            self.check_target(host, port)
            return self._proxy(proxy_url).urlopen(
                method, url, body=body, headers=headers, redirect=False, retries=False, preload_content=False,
                assert_same_host=False, timeout=Timeout(connect=timeout, read=timeout))
        head = request_head(method, route.target, route.host_header, headers, len(body))
        connection = self._kept_alive.take(route.origin)
        try:
            if connection is None:
                connection = self._connect(route.origin, timeout)
            else:
                join_attempt(connection.sock)
                connection.sock.settimeout(timeout)
            return exchange(connection, head, body, lambda done: self._kept_alive.give_back(route.origin, done))
        except BaseException:
            if connection is not None:
                connection.close()
            raise

    def _route(self, url: str) -> Route:
        """Looked up once per URL: parsing it costs as much as writing the request."""
        route = self._routes.get(url)
        if route is None:
            route = route_of(url)
            if len(self._routes) >= URL_CACHE:
                self._routes.clear()
            self._routes[url] = route
        return route

    def _connect(self, origin: tuple, timeout: float):
        scheme, host, port = origin
        connection = self._connections[scheme](host=host, port=port, timeout=timeout)
        try:
            connection.connect()
            connection.sock.settimeout(timeout)
        except BaseException:
            connection.close()
            raise
        return connection

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
        self._routes.clear()
        self._kept_alive.close()
        with self._lock:
            for proxy in self._proxies.values():
                proxy.clear()
            self._proxies.clear()
