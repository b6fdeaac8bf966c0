"""The Dashboard, the landing page: per endpoint, deliveries over 24 hours and 30 days, success
rate, latency, and what waits. Served from the rollups (webapp/domain/delivery_stats.py) and the
pending-message indexes (webapp/domain/queue.py): as fast at 10 million messages as at ten."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from ..domain import delivery_stats, endpoint_health, queue
from ..errors import InvalidInput
from ..storage.endpoint_lookups import live_endpoints
from ..storage.ids import MAX_ID, parse_id
from ..storage.models import utcnow
from . import charts

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

TEMPLATE = "dashboard/index.html"


@bp.get("")
def index():
    chosen = parse_id(request.args.get("endpoint"), "endpoint", MAX_ID)
    return render_template(TEMPLATE, **dashboard_context(chosen))


@bp.errorhandler(InvalidInput)
def bad_query(exc: InvalidInput):
    """A query value that cannot be used: said in words, and no figures that could be mistaken for its answer."""
    return render_template(TEMPLATE, endpoints=[], all_endpoints=live_endpoints(), chosen=None,
                           problem=f"{exc.field}: {exc.problem}"), 400


def dashboard_context(chosen: int | None) -> dict:
    every = live_endpoints()
    shown = [e for e in every if chosen is None or e.id == chosen]
    if chosen is not None and not shown:
        raise InvalidInput("endpoint", f"no endpoint has the id {chosen}")
    now = utcnow()
    ids = [e.id for e in shown]
    stats = delivery_stats.endpoint_stats(ids, now)
    backlogs = queue.backlogs(ids)
    rates = endpoint_health.hour_rates(ids, now)
    cards = []
    for endpoint in shown:
        figures = stats[endpoint.id]
        day, month = figures.summary("hours"), figures.summary("days")
        cards.append({
            "endpoint": endpoint, "health": endpoint_health.describe(endpoint, rates, now),
            "hourly": charts.hourly(figures.hours), "daily": charts.daily(figures.days),
            "day": day, "month": month,
            "rates": (delivery_stats.success_rate(day), delivery_stats.success_rate(month)),
            "latency": [(delivery_stats.latency(p, 0.5), delivery_stats.latency(p, 0.95)) for p in (day, month)],
            "backlog": backlogs.get(endpoint.id, queue.Backlog()),
        })
    return {"endpoints": cards, "all_endpoints": every, "chosen": chosen, "problem": None, "now": now}
