"""Name resolution for deliveries, bounded by the attempt's deadline.

``getaddrinfo`` cannot be interrupted, so a lookup runs on its own daemon
thread and is waited for no longer than the attempt's time left: a slow
resolver makes a timeout attempt, never a stuck worker. Daemon threads by
hand: a ThreadPoolExecutor's threads are joined when the process exits, so
one stuck lookup would hold a stopping worker as long as the resolver hangs.

By default the operating system resolves (hosts file, then its DNS servers);
``WEBHOOKS_DNS_SERVERS`` sends the questions to the servers it names instead
(dnspython).
"""
from __future__ import annotations

import socket
import threading
from typing import Callable
from urllib.parse import urlsplit

from . import deadline
from .deadline import DeadlineExceeded

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Addresses of ``host`` from the operating system's resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def dns_servers_resolver(servers: str) -> Resolver:
    """A resolver asking the DNS servers in ``servers`` ("10.0.0.2, 10.0.0.3:5353") for A and AAAA records."""
    import dns.exception
    import dns.nameserver
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [_nameserver(item.strip(), dns.nameserver) for item in servers.split(",") if item.strip()]
    resolver.lifetime = 60.0  # the attempt's own deadline is the real bound

    def resolve_with_servers(host: str, _port: int) -> list[str]:
        found: list[str] = []
        for record_type in ("A", "AAAA"):
            try:
                answer = resolver.resolve(host, record_type, search=False)
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as exc:
                raise socket.gaierror(socket.EAI_AGAIN, f"DNS servers gave no answer ({type(exc).__name__})") from exc
            found.extend(record.to_text() for record in answer)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found

    return resolve_with_servers


def _nameserver(item: str, module):
    """``10.0.0.2``, ``10.0.0.2:5353``, ``[2001:db8::53]:53`` or a bare IPv6 address."""
    parts = urlsplit("//" + (item if item.count(":") < 2 or item.startswith("[") else f"[{item}]"))
    return module.Do53Nameserver(parts.hostname, parts.port or 53)


def resolve(host: str, port: int, resolver: Resolver = system_resolver) -> list[str]:
    """Resolve within the current attempt's time left; a slow lookup is a timeout."""
    attempt = deadline.current()
    if attempt is None:
        return resolver(host, port)
    lookup = Lookup(resolver, host, port)
    if not lookup.finished.wait(attempt.remaining()):
        attempt.expired = True
        raise DeadlineExceeded()
    if lookup.error is not None:
        raise lookup.error
    return lookup.addresses


class Lookup:
    """One resolution on a daemon thread; ``finished`` is set when it answered or failed."""

    def __init__(self, resolver: Resolver, host: str, port: int):
        self.addresses: list[str] = []
        self.error: BaseException | None = None
        self.finished = threading.Event()
        threading.Thread(target=self._run, args=(resolver, host, port), name="resolve", daemon=True).start()

    def _run(self, resolver: Resolver, host: str, port: int) -> None:
        try:
            self.addresses = resolver(host, port)
        except Exception as exc:  # handed to the waiting attempt, which raises it
            self.error = exc
        finally:
            self.finished.set()
