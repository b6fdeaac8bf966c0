"""The Queue view: what waits per endpoint and why, with Try now and Pause / Resume.

The buttons are forms (they work without script); with htmx they swap just the
endpoint's row. Rules and the difference between pausing and disabling live in
webapp/domain/queue.py.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block

from ..domain import endpoint_health, queue
from ..storage.endpoint_lookups import live_endpoints, live_or_404
from ..storage.models import utcnow

bp = Blueprint("queue", __name__, url_prefix="/queue")

TEMPLATE = "queue/index.html"


@bp.get("")
def index():
    endpoints = live_endpoints()
    return render_template(TEMPLATE, rows=rows_for(endpoints))


@bp.post("/<id:endpoint_id>/try-now")
def try_now(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    try:
        moved = queue.try_now(endpoint)
    except queue.QueueConflict as exc:
        return answer(endpoint, f"Try now: {exc}.", "error", 409)
    return answer(endpoint, f"{endpoint.name}: {moved} message(s) made due now; sending." if moved
                  else f"{endpoint.name}: everything waiting was already due; delivery woken.", "success")


@bp.post("/<id:endpoint_id>/pause")
def pause(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    changed = queue.pause(endpoint, by=current_user.email)
    return answer(endpoint, f"{endpoint.name}: deliveries paused. New messages wait until you resume." if changed
                  else f"{endpoint.name} was already paused.", "success")


@bp.post("/<id:endpoint_id>/resume")
def resume(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    changed = queue.resume(endpoint)
    return answer(endpoint, f"{endpoint.name}: deliveries resumed." if changed
                  else f"{endpoint.name} was not paused.", "success")


def answer(endpoint, text: str, category: str, status: int = 200):
    """htmx: the endpoint's row with the outcome in it (a refusal as 422, which htmx swaps in);
    a plain form post: back to the list, or the list with the refusal and its 4xx."""
    if request.htmx:
        [row] = rows_for([endpoint])
        page_part = render_block(TEMPLATE, "queue_row", row=row, note=text, note_kind=category)
        return page_part, 422 if status >= 400 else status
    flash(text, category)
    if status >= 400:
        return render_template(TEMPLATE, rows=rows_for(live_endpoints())), status
    return redirect(url_for(".index"), code=303)


def rows_for(endpoints) -> list[dict]:
    now = utcnow()
    backlogs = queue.backlogs([e.id for e in endpoints])
    reasons = queue.why_waiting([e for e in endpoints if e.id in backlogs], now)
    rows = []
    for endpoint in endpoints:
        backlog = backlogs.get(endpoint.id, queue.Backlog())
        rows.append({"endpoint": endpoint, "health": endpoint_health.describe(endpoint, {}, now), "backlog": backlog,
                     "age": backlog.age_seconds(now), "why": reasons.get(endpoint.id)})
    return rows
