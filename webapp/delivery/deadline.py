"""A hard deadline for one attempt: from the start of connecting to the last byte of the response.

Socket timeouts bound each read, not the attempt: a receiver that trickles a
byte every half second never trips them. So every socket an attempt opens or
reuses is registered here, and one watchdog thread shuts those sockets down at
the attempt's deadline; whatever call was blocked on them (the TLS handshake,
reading headers or body) returns at once and the attempt ends as a timeout.
Name resolution cannot be interrupted that way: see ``names``.

DESIGN: one watchdog thread with a heap of deadlines costs O(log n) per attempt;
a timer thread per attempt would cost a thread start each (thousands a second).
Nothing in requests or urllib3 offers a total deadline, hence this module.
"""
from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time

_local = threading.local()


class DeadlineExceeded(Exception):
    """The attempt ran out of time (raised where a step notices it first)."""


class Attempt:
    """The deadline of one attempt and the sockets it uses (guarded by the watchdog's lock)."""

    __slots__ = ("timeout", "deadline", "expired", "finished", "sockets")

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.expired = False
        self.finished = False
        self.sockets: list[tuple[int, int]] = []  # (file descriptor, its inode)

    def remaining(self) -> float:
        """Seconds left; raises DeadlineExceeded when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0 or self.expired:
            self.expired = True
            raise DeadlineExceeded()
        return left

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down if the attempt is still running at its deadline.

        Kept by file descriptor: wrapping a socket in TLS detaches the Python
        object we were given, while the descriptor lives on in the TLS socket.
        """
        fd = sock.fileno()
        if fd >= 0:
            WATCHDOG.watch(self, (fd, os.fstat(fd).st_ino))


def _shut(handle: tuple[int, int]) -> None:
    """shutdown(2) the socket behind ``handle``: any call blocked on it returns at once.

    The inode check makes sure the descriptor still is our socket (a closed
    descriptor number may already belong to another connection). The plain
    system call leaves a TLS socket's SSL object alone for the thread reading it.
    """
    fd, inode = handle
    try:
        if os.fstat(fd).st_ino != inode:
            return
        view = socket.socket(fileno=fd)
    except OSError:
        return  # closed meanwhile
    try:
        view.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or already shut
    finally:
        view.detach()  # the descriptor stays open: its owner closes it


class Watchdog:
    """One thread that expires attempts at their deadlines; one lock for all of it.

    Finished attempts stay in the heap until they reach its top; when they
    outnumber the running ones the heap is rebuilt, so it never grows with the
    number of attempts made, only with the number in flight. The thread is
    woken only when a new deadline comes before the one it sleeps until.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Attempt]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = 0
        self._sleeping_until = float("inf")

    def start(self, attempt: Attempt) -> None:
        with self._changed:
            self._running += 1
            if len(self._heap) > 1024 and len(self._heap) > 2 * self._running:
                self._heap = [entry for entry in self._heap if not entry[2].finished]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (attempt.deadline, next(self._order), attempt))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="attempt-watchdog", daemon=True)
                self._thread.start()
            if attempt.deadline < self._sleeping_until:
                self._changed.notify()

    def watch(self, attempt: Attempt, handle: tuple[int, int]) -> None:
        with self._changed:
            if attempt.expired:
                _shut(handle)
                raise DeadlineExceeded()
            if not attempt.finished:
                attempt.sockets.append(handle)

    def finish(self, attempt: Attempt) -> None:
        with self._changed:
            attempt.finished = True
            attempt.sockets = []
            self._running -= 1

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].finished or self._heap[0][0] <= now):
                    attempt = heapq.heappop(self._heap)[2]
                    if not attempt.finished:
                        attempt.expired = True
                        for handle in attempt.sockets:
                            _shut(handle)
                        attempt.sockets = []
                self._sleeping_until = self._heap[0][0] if self._heap else float("inf")
                self._changed.wait(self._sleeping_until - now if self._heap else None)


WATCHDOG = Watchdog()


class running:
    """``with running(timeout) as attempt:`` - the current thread's attempt, watched."""

    def __init__(self, timeout: float):
        self.attempt = Attempt(timeout)

    def __enter__(self) -> Attempt:
        _local.attempt = self.attempt
        WATCHDOG.start(self.attempt)
        return self.attempt

    def __exit__(self, *exc) -> None:
        WATCHDOG.finish(self.attempt)
        _local.attempt = None


def current() -> Attempt | None:
    """The attempt running on this thread, if any (connections register their sockets with it)."""
    return getattr(_local, "attempt", None)
