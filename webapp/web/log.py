"""The Log screen: filtered, keyset-paged list; one message's view; resend; bulk resend; export.

Filters live in the query string, so a link can be shared and back/forward
work; htmx swaps just the results (``hx-push-url`` keeps the address honest).
Rows still Queued or Resent poll for themselves until they are final.
"""
from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from htmx_flask import make_response as htmx_response
from jinja2_fragments.flask import render_block, render_blocks
from sqlalchemy import select

from ..domain.logbook import export
from ..domain.logbook.filters import LogFilter
from ..domain.logbook.paging import NEW_CAP, count_new, page
from ..domain.logbook.resend import StillBeingDelivered, bulk_plan, bulk_resend, resend
from ..errors import InvalidInput
from ..extensions import db
from ..storage.ids import parse_id
from ..storage.models import Attempt, Endpoint, Message
from ..storage.statuses import STATUSES
from .template_helpers import log_url

bp = Blueprint("log", __name__, url_prefix="/log")

LIST_TEMPLATE = "log/index.html"
VIEW_TEMPLATE = "log/view.html"
COUNT_CAP = 10_000
# How the filters are named beside a value they cannot take.
FILTER_LABELS = {"code": "Response code", "status": "Status", "action": "Action", "customer": "Customer",
                 "endpoint": "Endpoint", "created_from": "Created from", "created_to": "Created to", "before": "Page",
                 "after": "Page"}
CODE_CLASSES = (("2xx", "2xx success"), ("4xx", "4xx client error"), ("5xx", "5xx server error"),
                ("none", "No response"))


@bp.get("")
def index():
    log_filter = LogFilter.from_args(request.args)
    before, after = parse_id(request.args.get("before"), "before"), parse_id(request.args.get("after"), "after")
    results = page(log_filter, before=before, after=after)
    context = list_context(log_filter, results=results, log_is_empty=not results.messages and _log_is_empty())
    if request.htmx and request.htmx.target == "log-results":
        return render_block(LIST_TEMPLATE, "results", **context)
    return render_template(LIST_TEMPLATE, **context)


@bp.get("/new")
def new_messages():
    """Polled by the newest page: "N new, show them" once messages newer than its top row arrive.
    204 (htmx leaves the page alone) while there are none."""
    log_filter = LogFilter.from_args(request.args)
    after = parse_id(request.args.get("after"), "after") or 0
    count = count_new(log_filter, after)
    if not count:
        return "", 204
    return render_block(LIST_TEMPLATE, "new_notice", log_filter=log_filter, after=after, new_count=count,
                        new_cap=NEW_CAP)


def list_context(log_filter: LogFilter, **extra) -> dict:
    return {
        "log_filter": log_filter, "values": log_filter.to_args(), "results": None,
        "problem": None, "problem_field": None, "problem_text": None, "filter_labels": FILTER_LABELS,
        "endpoints": _endpoints(),
        "actions": current_app.config["WEBHOOKS_ACTIONS"], "statuses": STATUSES, "code_classes": CODE_CLASSES,
        "retention_days": current_app.config["WEBHOOKS_RETENTION_DAYS"], **extra,
    }


@bp.errorhandler(InvalidInput)
def bad_filter(exc: InvalidInput):
    """A filter that cannot be applied: the list page, the message beside that filter, and no rows at all
    (an empty table would read as "no messages"). htmx gets the filter form and the results together."""
    label = FILTER_LABELS.get(exc.field, exc.field)
    context = list_context(LogFilter(), values=request.args.to_dict(), problem=f"{label} {exc.problem}",
                           problem_field=exc.field, problem_text=exc.problem)
    if request.htmx:
        page_part = render_block(LIST_TEMPLATE, "filter_and_results", **context)
        return htmx_response(page_part, 422, retarget="#log-main", reswap="outerHTML")
    return render_template(LIST_TEMPLATE, **context), 422


@bp.get("/rows/<bigid:message_id>")
def row(message_id: int):
    """One row, for rows that poll while their message is still on its way."""
    return render_block(LIST_TEMPLATE, "row", message=_message(message_id), log_filter=LogFilter())


@bp.get("/<bigid:message_id>")
def view(message_id: int):
    message = _message(message_id)
    context = _view_context(message)
    if request.htmx and request.htmx.target == "message-live":
        return render_blocks(VIEW_TEMPLATE, ["live", "head_badge", "head_hint"], oob=True, **context)
    return render_template(VIEW_TEMPLATE, **context)


@bp.post("/<bigid:message_id>/resend")
def resend_message(message_id: int):
    """Resend; a message still being delivered gets a confirmation page first (``force=1`` confirms)."""
    message = _message(message_id)
    try:
        outcome = resend(message, force=request.form.get("force") == "1")
    except StillBeingDelivered as busy:
        return render_template("log/resend_confirm.html", message=message, in_flight=busy.in_flight,
                               max_attempts=current_app.config["WEBHOOKS_MAX_ATTEMPTS"])
    if outcome.queued:
        flash(f"Message #{message_id} queued again as #{outcome.message.id}, with the same Webhook-Id.", "success")
    else:
        flash(f"Message #{message_id} is already queued again as #{outcome.message.id}: nothing more was queued.",
              "info")
    return redirect(url_for(".view", message_id=outcome.message.id))


@bp.route("/resend-failed", methods=["GET", "POST"])
def resend_failed():
    """Bulk resend, after a confirmation that shows how many messages it will queue."""
    log_filter = LogFilter.from_args(request.values)
    plan = bulk_plan(log_filter, COUNT_CAP)
    if request.method == "POST":
        queued = bulk_resend(log_filter)
        skipped = f" Skipped: {plan.skipped_text}." if plan.skipped_text else ""
        flash((f"{queued} failed message(s) queued again." if queued else "Nothing was queued.") + skipped,
              "success" if queued else "info")
        return redirect(log_url(".index", log_filter.to_args()))
    return render_template("log/resend_failed.html", log_filter=log_filter, plan=plan, cap=COUNT_CAP)


@bp.get("/export.<fmt>")
def download(fmt: str):
    if fmt not in export.DELIMITERS:
        abort(404)
    log_filter = LogFilter.from_args(request.args)
    filename = f"webhook-log.{fmt}"
    mimetype = "text/csv" if fmt == "csv" else "text/plain"
    return Response(
        stream_with_context(export.stream(log_filter, fmt)),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _view_context(message: Message) -> dict:
    attempts = db.session.scalars(
        select(Attempt).where(Attempt.message_id == message.id).order_by(Attempt.number, Attempt.id)
    ).all()
    resends = db.session.scalars(select(Message).where(Message.resend_of_id == message.id).order_by(Message.id)).all()
    return {"message": message, "event": message.event, "attempts": attempts, "resends": resends}


def _message(message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None:
        abort(404)
    return message


def _log_is_empty() -> bool:
    return db.session.scalar(select(Message.id).limit(1)) is None


def _endpoints() -> list[Endpoint]:
    return list(db.session.scalars(select(Endpoint).order_by(Endpoint.id)))

