"""``GET /metrics``: Prometheus' text format, for a bearer token or allowed addresses only.

Off (404) until ``WEBHOOKS_METRICS_TOKEN`` or ``WEBHOOKS_METRICS_ALLOW`` is set. No operator
session is needed (auth.PUBLIC_BLUEPRINTS); the numbers come from the database
(webapp/domain/metrics.py), so every web process answers alike.
"""
from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client.exposition import choose_encoder

from ..domain.metrics import registry

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    check_access()
    # The text format 0.0.4 every Prometheus reads, or OpenMetrics when the scraper asks for it.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(registry()), content_type=content_type)


def check_access() -> None:
    token = current_app.config.get("WEBHOOKS_METRICS_TOKEN")
    networks = [ipaddress.ip_network(n, strict=False) for n in current_app.config.get("WEBHOOKS_METRICS_ALLOW") or ()]
    if not token and not networks:
        abort(404)
    sent = request.headers.get("Authorization", "")
    if token and sent.startswith("Bearer ") and hmac.compare_digest(sent[7:].strip().encode(), token.encode()):
        return
    if networks and address_allowed(request.remote_addr, networks):
        return
    if token:
        abort(Response("metrics: a valid bearer token is needed\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                       mimetype="text/plain"))
    abort(Response("metrics: this address may not read them\n", 403, mimetype="text/plain"))


def address_allowed(address: str | None, networks) -> bool:
    try:
        client = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped:
        client = client.ipv4_mapped
    return any(client in network for network in networks)
