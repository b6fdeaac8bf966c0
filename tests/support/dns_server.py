"""A DNS server on 127.0.0.1 (UDP) that answers every A question with one address, after a delay.

For the slow-name-resolution test: the product is pointed at it with
``WEBHOOKS_DNS_SERVERS`` and must give up at the attempt's deadline.
"""
from __future__ import annotations

import socket
import threading

import dns.message
import dns.rdatatype
import dns.rrset


class SlowDNS:
    def __init__(self, address: str = "127.0.0.1", delay: float = 0.0):
        self.address = address
        self.delay = delay
        self.questions: list[str] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # how soon close() is noticed: closing does not wake recvfrom()
        self.port = self._sock.getsockname()[1]
        self.server = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name=f"dns-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(wire, client), daemon=True).start()

    def _answer(self, wire: bytes, client) -> None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        self.questions.append(question.name.to_text())
        if self._stop.wait(self.delay):
            return
        response = dns.message.make_response(query)
        if question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 5, "IN", "A", self.address))
        try:
            self._sock.sendto(response.to_wire(), client)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlowDNS:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
