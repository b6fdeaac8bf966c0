"""Filters and globals every template may use, registered once by the app factory."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from flask import Flask, url_for
from markupsafe import Markup

from ..domain.endpoint_health import waiting_reason
from . import charts
from .forms import action_label


def when(moment) -> Markup:
    """A UTC timestamp as a <time> element, or a dash. static/app.js shows it in the browser's time zone
    (UTC on hover); without script it reads as UTC."""
    if moment is None:
        return Markup("—")
    return Markup('<time datetime="{}Z">{} UTC</time>').format(
        moment.isoformat(timespec="seconds"), moment.strftime("%Y-%m-%d %H:%M:%S"))


def status_badge(status: str) -> Markup:
    return Markup('<span class="status status-{}">{}</span>').format(status, status.capitalize())


def pretty_body(body: str) -> str:
    """JSON bodies indented for reading; anything else as it was sent."""
    if not body or body.lstrip()[:1] not in ("{", "["):
        return body
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON, or a receiver's answer nested past the parser's limit
        return body


def log_url(view: str, query: dict[str, str] | None = None, **values) -> str:
    """url_for(view, **values) with the filters as the query string. Not url_for(view, **filters):
    the endpoint filter is called ``endpoint``, the name of url_for's own first argument."""
    url = url_for(view, **values)
    return f"{url}?{urlencode(query)}" if query else url


def duration(seconds: float | None) -> str:
    """An age or a latency for people: 850 ms, 4.2 s, 12 min, 3 h 5 min, 2 days."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def percent(share: float | None) -> str:
    if share is None:
        return "—"
    return f"{share * 100:.1f} %" if 0.995 > share > 0.9 else f"{share * 100:.0f} %"


def register(app: Flask) -> None:
    for name, function in {"when": when, "status_badge": status_badge, "pretty_body": pretty_body,
                           "action_label": action_label, "duration": duration, "percent": percent}.items():
        app.add_template_filter(function, name)
    for name, function in {"log_url": log_url, "waiting_reason": waiting_reason, "svg": charts.svg,
                           "chart_rows": charts.table_rows}.items():
        app.add_template_global(function, name)
