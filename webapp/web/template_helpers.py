"""Filters and globals every template may use, registered once by the app factory."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from flask import Flask, url_for
from markupsafe import Markup

from ..domain.endpoint_health import waiting_reason
from .forms import action_label


def when(moment) -> Markup:
    """A UTC timestamp as a <time> element, or a dash."""
    if moment is None:
        return Markup("—")
    return Markup('<time datetime="{}Z">{}</time>').format(moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M:%S"))


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


def register(app: Flask) -> None:
    for name, function in {"when": when, "status_badge": status_badge, "pretty_body": pretty_body,
                           "action_label": action_label}.items():
        app.add_template_filter(function, name)
    for name, function in {"log_url": log_url, "waiting_reason": waiting_reason}.items():
        app.add_template_global(function, name)
