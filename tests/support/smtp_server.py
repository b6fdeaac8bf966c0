"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps the mail it receives, for notice tests."""
from __future__ import annotations

import email
import email.policy
import threading

from aiosmtpd.controller import Controller

from webapp.runtime.embedded_redis import free_port


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.changed:
            self.messages.append(parsed)
            self.changed.notify_all()
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        self.inbox = _Inbox()
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list:
        with self.inbox.changed:
            if not self.inbox.changed.wait_for(lambda: len(self.inbox.messages) >= count, timeout):
                subjects = [m["Subject"] for m in self.inbox.messages]
                raise AssertionError(f"expected {count} mail(s) within {timeout}s, got {subjects}")
            return list(self.inbox.messages)

    def close(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SMTPServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
