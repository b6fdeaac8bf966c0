"""Log filters from the query string, applied as indexed conditions, and keyset pages.

Every filter has an index ending in ``id`` (see models.Message), and pages are
``id < cursor ORDER BY id DESC LIMIT n``: the cost of a page does not grow with
how deep it is. A date range is also turned into an id range, so the range and
any other filter are served by one index together.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, replace

from sqlalchemy import Select, func, select

from ...errors import InvalidInput
from ...extensions import db
from ...storage.ids import MAX_ID, parse_id
from ...storage.models import Message
from ...storage.statuses import STATUSES
from ...text_rules import control_character_problem

CODE_PATTERN = re.compile(r"[1-5][0-9][0-9]|[1-5]xx|none")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
GLOB_SPECIALS = re.compile(r"[*?\[\]]")
LIKE_SPECIALS = re.compile(r"[%_\\]")
PREFIX_SORT_LIMIT = 2_000  # matches the index may hand over to be sorted by id; more: walk the log by id


@dataclass(frozen=True)
class LogFilter:
    code: str = ""          # "404", "2xx", "4xx", "5xx" or "none" (no response at all)
    status: str = ""
    action: str = ""
    customer: str = ""      # a prefix: "cust" finds "customer-42"
    endpoint: int | None = None
    created_from: dt.date | None = None   # inclusive, UTC days
    created_to: dt.date | None = None     # inclusive

    @classmethod
    def from_args(cls, args) -> "LogFilter":
        code = (args.get("code") or "").strip().lower()
        if code and not CODE_PATTERN.fullmatch(code):
            raise InvalidInput("code", "must be a status code like 404, a class like 5xx, or none")
        status = (args.get("status") or "").strip().lower()
        if status and status not in STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
        created_from = _date_or_none(args.get("created_from"), "created_from")
        created_to = _date_or_none(args.get("created_to"), "created_to")
        if created_from and created_to and created_from > created_to:
            raise InvalidInput("created_from", f"must not be after the end of the range ({created_from} is after "
                                               f"{created_to}): no message can match")
        return cls(
            code=code,
            status=status,
            action=_text(args.get("action"), "action"),
            customer=_text(args.get("customer"), "customer"),
            endpoint=parse_id(args.get("endpoint"), "endpoint", MAX_ID),
            created_from=created_from,
            created_to=created_to,
        )

    def to_args(self) -> dict[str, str]:
        """Only the filters in use, as query-string values."""
        return {k: str(v) for k, v in asdict(self).items() if v not in ("", None)}

    @property
    def active(self) -> bool:
        return bool(self.to_args())

    def without(self, name: str) -> "LogFilter":
        return replace(self, **{name: LogFilter.__dataclass_fields__[name].default})


def _text(value, field: str) -> str:
    text = (value or "").strip()
    problem = control_character_problem(text)
    if problem:
        raise InvalidInput(field, problem)
    return text


def _date_or_none(value, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if not DATE_PATTERN.fullmatch(value.strip()):
        raise InvalidInput(field, "must be a date like 2026-11-29 (year-month-day, digits 0-9)")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, f"is not a date in the calendar: {value.strip()}") from None


def apply(query: Select, log_filter: LogFilter) -> Select:
    f = log_filter
    if f.code == "none":
        query = query.where(Message.response_class.is_(None))
    elif f.code.endswith("xx"):
        query = query.where(Message.response_class == int(f.code[0]))
    elif f.code:
        query = query.where(Message.response_code == int(f.code))
    if f.status:
        query = query.where(Message.status == f.status)
    if f.action:
        query = query.where(Message.action == f.action)
    if f.customer:
        query = query.where(customer_prefix(f.customer))
    if f.endpoint is not None:
        query = query.where(Message.endpoint_id == f.endpoint)
    # The id range does the work: it combines with any index above and keeps the
    # id order, so no planner sorts a whole day's rows. The created_at check keeps
    # every row shown inside the range; coalesce(x, x) stops it steering the plan.
    exact_created_at = func.coalesce(Message.created_at, Message.created_at)
    if f.created_from:
        start = dt.datetime.combine(f.created_from, dt.time())
        query = query.where(Message.id >= _first_id_from(start), exact_created_at >= start)
    if f.created_to and f.created_to < dt.date.max:  # up to 9999-12-31 is no upper bound at all
        end = dt.datetime.combine(f.created_to + dt.timedelta(days=1), dt.time())
        query = query.where(Message.id <= _last_id_before(end), exact_created_at < end)
    return query


def customer_prefix(prefix: str):
    """Customers starting with ``prefix``, taken literally, as a condition an index can serve.

    SQLite: GLOB (case-sensitive, so it seeks on the BINARY index ix_message_customer_id;
    its LIKE would need a NOCASE index). PostgreSQL: LIKE, which seeks on that index
    because it is built with varchar_pattern_ops (migration 0006). Wildcards typed by
    the operator are escaped: "50%_off" finds only what starts with exactly that.

    A common prefix ("customer-1": a fifth of the log) would make the index hand over
    every match to be sorted by id (seconds at a million rows). So the index is first
    asked whether there are at least PREFIX_SORT_LIMIT matches (one short range scan);
    if so, the condition is put so that no index can serve it, and the log is walked
    newest first by id instead, which finds a page of a common prefix quickly.
    """
    if _matches_at_least(_prefix_match(Message.customer, prefix), PREFIX_SORT_LIMIT):
        return _prefix_match(func.coalesce(Message.customer, Message.customer), prefix)
    return _prefix_match(Message.customer, prefix)


def _prefix_match(column, prefix: str):
    if db.session.get_bind().dialect.name == "sqlite":
        return column.op("GLOB")(GLOB_SPECIALS.sub(r"[\g<0>]", prefix) + "*")
    return column.like(LIKE_SPECIALS.sub(r"\\\g<0>", prefix) + "%", escape="\\")


def _matches_at_least(condition, count: int) -> bool:
    capped = select(Message.id).where(condition).limit(count).subquery()
    return db.session.scalar(select(func.count()).select_from(capped)) >= count


# Ids grow with created_at (both are set at insert); only transactions running at
# the same instant can interleave, so the edges are exact to within one transaction.
# Each bound is one seek on ix_message_created_at, not a min()/max() over the log.
def _first_id_from(moment: dt.datetime) -> int:
    found = db.session.scalar(
        select(Message.id).where(Message.created_at >= moment).order_by(Message.created_at, Message.id).limit(1))
    return found if found is not None else 2**62


def _last_id_before(moment: dt.datetime) -> int:
    found = db.session.scalar(
        select(Message.id).where(Message.created_at < moment)
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))
    return found if found is not None else 0
