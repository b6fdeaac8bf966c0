"""Endpoint look-ups: what "live" and "deliverable" mean, in one place for the UI, the API and the engine.

Live: not deleted. A deleted endpoint stays in the database so that the log
keeps its messages, but nothing lists, edits or delivers to it any more.
Deliverable: live and enabled: new events make messages for it, and the
sweep wakes it when work is due.
"""
from __future__ import annotations

from flask import abort
from sqlalchemy import ColumnElement, and_, select

from ..extensions import db
from .models import Endpoint


def live() -> ColumnElement[bool]:
    return Endpoint.deleted_at.is_(None)


def deliverable() -> ColumnElement[bool]:
    return and_(Endpoint.enabled.is_(True), live())


def live_endpoints() -> list[Endpoint]:
    return list(db.session.scalars(select(Endpoint).where(live()).order_by(Endpoint.id)))


def live_or_404(endpoint_id: int) -> Endpoint:
    endpoint = db.session.get(Endpoint, endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        abort(404, f"endpoint {endpoint_id} not found")
    return endpoint
