"""The Dashboard: figures from the rollups, charts with text alternatives, bad query values refused."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.support.factories import make_endpoint
from webapp.domain.delivery_stats import Quantile, quantile
from webapp.extensions import db
from webapp.storage.models import (
    LATENCY_BUCKETS_MS,
    Event,
    Message,
    StatsDay,
    StatsHour,
    utcnow,
)

pytestmark = pytest.mark.db


def rollups(*rows: tuple) -> list:
    """(endpoint_id, hour, counts) as the delivery path keeps them: an hour row each, summed into day rows."""
    made, days = [], {}
    for endpoint_id, start, counts in rows:
        made.append(StatsHour(endpoint_id=endpoint_id, start=start, **columns(counts)))
        day = days.setdefault((endpoint_id, start.replace(hour=0)), {})
        for name, number in columns(counts).items():
            day[name] = day.get(name, 0) + number
    return made + [StatsDay(endpoint_id=e, start=start, **counts) for (e, start), counts in days.items()]


def columns(counts: dict) -> dict:
    done, retried, failed = (counts.get(k, 0) for k in ("done", "retried", "failed"))
    latency = counts.get("latency", {})
    return {"attempts": done + retried + failed, "succeeded": done, "done": done, "retried": retried, "failed": failed,
            "duration_ms": 0, "latency_ms": 0, **{f"d{i}": 0 for i in range(11)},
            **{f"l{i}": latency.get(i, 0) for i in range(len(LATENCY_BUCKETS_MS) + 1)}}


def test_quantiles_from_bucket_counts_interpolate_inside_the_bucket():
    bounds = (100, 200, 400)
    assert quantile(bounds, [0, 0, 0, 0], 0.5) is None
    assert quantile(bounds, [10, 0, 0, 0], 0.5) == Quantile(50.0)
    assert quantile(bounds, [5, 5, 0, 0], 0.5) == Quantile(100.0)
    assert quantile(bounds, [0, 10, 10, 0], 0.95) == Quantile(380.0)
    assert quantile(bounds, [1, 0, 0, 9], 0.5) == Quantile(400, over=True)


def test_dashboard_shows_hourly_and_daily_outcomes_rates_latency_and_the_oldest_waiting(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="CRM partner")
    other = make_endpoint("http://127.0.0.1:9/other", name="Other")
    now = utcnow()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    # 24 h: 90 done (latency 250-500 ms), 6 retried, 4 failed; 10 days ago 1,000 done more.
    db.session.add_all(rollups(
        (endpoint.id, this_hour, {"done": 60, "retried": 6, "failed": 4, "latency": {2: 60}}),
        (endpoint.id, this_hour - dt.timedelta(hours=5), {"done": 30, "latency": {2: 30}}),
        (endpoint.id, this_hour - dt.timedelta(days=10), {"done": 1000, "latency": {0: 1000}}),
        (endpoint.id, this_hour - dt.timedelta(days=40), {"done": 77777}),  # outside both windows
        (other.id, this_hour, {"done": 5555}),
    ))
    event = Event(action="checkout", customer="c1", data_json="{}", created_at=now - dt.timedelta(minutes=7))
    db.session.add(event)
    db.session.flush()
    db.session.add(Message(event_id=event.id, endpoint_id=endpoint.id, action="checkout", customer="c1",
                           created_at=event.created_at, next_attempt_at=now))
    db.session.commit()

    response = operator.get(f"/dashboard?endpoint={endpoint.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "CRM partner" in page and "5,555" not in page, "only the chosen endpoint"
    assert "90" in tile(page, "Delivered") and "1,090" in tile(page, "Delivered")
    assert "<strong>90 %</strong>" in tile(page, "Success rate")  # 90 of 100 attempts succeeded
    assert "99.1 %" in tile(page, "Success rate")  # 1,090 of 1,100 in 30 days
    assert "375 ms / 488 ms" in tile(page, "Latency")  # p50 and p95 inside the 250-500 ms bucket
    waiting = tile(page, "Waiting")
    assert "<strong>1</strong>" in waiting and "7 min old" in waiting
    # Charts: an SVG with a title and a description, and the numbers as a table.
    assert page.count('role="img"') == 2 and "<title id=" in page and "<desc id=" in page
    assert "100 attempts in all: 90 done, 6 retried, 4 failed" in page
    assert f"<tr><th scope=\"row\">{this_hour:%H}:00–" in page
    assert "77777" not in page and "77,777" not in page
    assert " style=" not in page, "no inline styles under the CSP"


def tile(page: str, heading: str) -> str:
    found = re.search(r'<div class="tile[^"]*"><dt>' + heading + r".*?</div>", page, re.S)
    assert found, heading
    return found.group(0)


def test_dashboard_is_the_landing_page_and_says_what_to_do_without_endpoints(client, operator):
    assert client.get("/").headers["Location"] == "/dashboard"
    page = operator.get("/dashboard").get_data(as_text=True)
    assert "No endpoints yet" in page and 'href="/settings/new"' in page


@pytest.mark.parametrize("value", ["abc", "0", "-1", str(2**31), "٣", "1\x00", "9" * 40])
def test_a_bad_endpoint_value_is_refused_naming_the_field(operator, value):
    make_endpoint("http://127.0.0.1:9/hook", name="Shop")
    response = operator.get("/dashboard", query_string={"endpoint": value})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "endpoint: must be an id" in page
    assert 'class="tile' not in page, "no figures beside the error"


def test_an_endpoint_that_does_not_exist_is_refused(operator):
    response = operator.get("/dashboard?endpoint=999")
    assert response.status_code == 400 and "endpoint: no endpoint has the id 999" in response.get_data(as_text=True)


def test_chart_axis_tops_are_round_and_never_below_the_tallest_bar():
    from webapp.web.charts import compact, nice_ceiling

    for tallest in range(0, 3000):
        top = nice_ceiling(tallest)
        assert top >= max(tallest, 1)
        assert top <= max(2.5 * tallest, 3), (tallest, top)
    assert [compact(n) for n in (0, 2.5, 950, 1250, 10_000, 2_500_000)] == ["0", "2.5", "950", "1.2k", "10k", "2.5M"]
