"""The Log screen: filtered, keyset-paged list; one message's view; resend; bulk resend; export.

Filters live in the query string, so a link can be shared and back/forward
work; htmx swaps just the results (``hx-push-url`` keeps the address honest).
Rows still Queued or Resent poll for themselves until they are final.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from jinja2_fragments.flask import render_block
from markupsafe import Markup
from sqlalchemy import select

from ..endpoint_health import waiting_reason
from ..errors import InvalidInput
from ..extensions import db
from ..logbook import export
from ..logbook.filters import LogFilter, count_failed, page
from ..logbook.resend import bulk_resend, resend
from ..models import STATUSES, Attempt, Endpoint, Message

bp = Blueprint("log", __name__, url_prefix="/log")

LIST_TEMPLATE = "log/index.html"
VIEW_TEMPLATE = "log/view.html"
COUNT_CAP = 10_000
CODE_CLASSES = (("2xx", "2xx success"), ("4xx", "4xx client error"), ("5xx", "5xx server error"),
                ("none", "No response"))


@bp.get("")
def index():
    problem, log_filter = None, LogFilter()
    try:
        log_filter = LogFilter.from_args(request.args)
        before = _cursor(request.args.get("before"))
    except InvalidInput as exc:
        problem, before = f"{exc.field}: {exc.problem}", None
    results = page(log_filter, before=before)
    context = {
        "log_filter": log_filter, "results": results, "before": before, "problem": problem,
        "endpoints": _endpoints(),
        "actions": current_app.config["WEBHOOKS_ACTIONS"], "statuses": STATUSES, "code_classes": CODE_CLASSES,
        "retention_days": current_app.config["WEBHOOKS_RETENTION_DAYS"],
    }
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "log-results":
        return render_block(LIST_TEMPLATE, "results", **context)
    return render_template(LIST_TEMPLATE, **context)


@bp.get("/rows/<int:message_id>")
def row(message_id: int):
    """One row, for rows that poll while their message is still on its way."""
    return render_block(LIST_TEMPLATE, "row", message=_message(message_id), log_filter=LogFilter())


@bp.get("/<int:message_id>")
def view(message_id: int):
    message = _message(message_id)
    context = _view_context(message)
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "message-live":
        return render_block(VIEW_TEMPLATE, "live", **context)
    return render_template(VIEW_TEMPLATE, **context)


@bp.post("/<int:message_id>/resend")
def resend_message(message_id: int):
    copy = resend(_message(message_id))
    flash(f"Message #{message_id} queued again as #{copy.id}, with the same Webhook-Id.", "success")
    return redirect(url_for(".view", message_id=copy.id))


@bp.route("/resend-failed", methods=["GET", "POST"])
def resend_failed():
    """Bulk resend, after a confirmation that shows how many messages it will queue."""
    log_filter = LogFilter.from_args(request.values)
    if request.method == "POST":
        queued = bulk_resend(log_filter)
        flash(f"{queued} failed message(s) queued again." if queued
              else "Nothing to resend: every failed message in this filter is already resent.", "success")
        return redirect(url_for(".index", **log_filter.to_args()))
    return render_template("log/resend_failed.html", log_filter=log_filter, count=count_failed(log_filter, COUNT_CAP),
                           cap=COUNT_CAP)


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


@bp.errorhandler(InvalidInput)
def bad_filter(exc: InvalidInput):
    flash(f"{exc.field}: {exc.problem}", "error")
    return redirect(url_for(".index"))


@bp.app_template_filter("when")
def when(moment) -> Markup:
    """A UTC timestamp as a <time> element, or a dash."""
    if moment is None:
        return Markup("—")
    return Markup('<time datetime="{}Z">{}</time>').format(moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M:%S"))


bp.add_app_template_global(waiting_reason, "waiting_reason")


@bp.app_template_filter("status_badge")
def status_badge(status: str) -> Markup:
    return Markup('<span class="status status-{}">{}</span>').format(status, status.capitalize())


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


def _endpoints() -> list[Endpoint]:
    return list(db.session.scalars(select(Endpoint).order_by(Endpoint.id)))


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput("before", "must be a message id")
    return int(value)
