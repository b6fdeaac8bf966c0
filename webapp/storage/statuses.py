"""The message status machine and the retry rules: every status change of a message is named here.

::

    queued --attempt--> done                       (2xx)
    queued --attempt--> resent  --attempt--> ...   (unsuccessful, attempts left: due again after the interval,
                                                    or later when the receiver asked with Retry-After)
    queued/resent --attempt--> failed              (unsuccessful, the last attempt)
    queued/resent --endpoint deleted--> failed     (cancelled: nothing will deliver it)
    failed --resend--> a new queued message        (the old one stays failed, linked to the copy)
    Test button: one attempt, never retried        (done or failed)

An interrupted attempt (the worker died holding the message) counts, but its
outcome is unknown, so it never ends a message: see ``after_interruption``.
Delivery, the Test button, resend and endpoint changes all take their
statuses from here.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

QUEUED, RESENT, DONE, FAILED = "queued", "resent", "done", "failed"
STATUSES = (QUEUED, RESENT, FAILED, DONE)
PENDING_STATUSES = (QUEUED, RESENT)  # still to be sent: the engine claims these
FINAL_STATUSES = (DONE, FAILED)

# A new message, and the copy a resend makes, starts here.
NEW = QUEUED
# Deleting an endpoint ends what still waits for it.
CANCELLED = FAILED


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    interval: float

    @classmethod
    def from_config(cls, config) -> RetryPolicy:
        return cls(int(config["WEBHOOKS_MAX_ATTEMPTS"]), float(config["WEBHOOKS_RETRY_INTERVAL"]))

    def next_status(self, succeeded: bool, attempt_number: int) -> str:
        """After an attempt with a known outcome."""
        if succeeded:
            return DONE
        return FAILED if attempt_number >= self.max_attempts else RESENT

    def after_interruption(self, attempt_number: int) -> str:
        """An interrupted attempt counts as unsuccessful, but its outcome is unknown: the
        receiver may have answered 2xx. So a message never ends failed on one; an interrupted
        last attempt gets one more try (and a message that keeps killing workers still ends)."""
        return FAILED if attempt_number > self.max_attempts else RESENT

    def retry_at(self, finished_at: dt.datetime, receiver_wait_until: dt.datetime | None) -> dt.datetime:
        """When a message that will be retried is due: the interval after the attempt ended,
        or later if the receiver asked for that (Retry-After)."""
        due = finished_at + dt.timedelta(seconds=self.interval)
        return max(due, receiver_wait_until) if receiver_wait_until else due


def after_test(succeeded: bool) -> str:
    """The Test button's message ends with its one attempt."""
    return DONE if succeeded else FAILED
