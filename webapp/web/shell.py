"""The UI shell: the home address, the top navigation's links, and a health check."""
from flask import Blueprint, current_app, jsonify, redirect, url_for
from flask_login import current_user
from sqlalchemy import text

from ..domain import endpoint_health
from ..extensions import db

bp = Blueprint("shell", __name__)

# Top navigation: (label, view). A tab whose screen is not installed is not shown.
TABS = (("Dashboard", "dashboard.index"), ("Queue", "queue.index"), ("Settings", "settings.index"),
        ("Log", "log.index"), ("Operators", "operators.index"))


@bp.get("/")
def home():
    return redirect(url_for("dashboard.index"))


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on their own, whatever the page links."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.get("/healthz")
def healthz():
    db.session.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


@bp.app_context_processor
def navigation():
    tabs = [(label, view) for label, view in TABS if view in current_app.view_functions]
    return {"nav_tabs": tabs}


@bp.app_context_processor
def attention():
    """The banner on every page while an endpoint is failing, waiting or disabled."""
    if not current_user.is_authenticated:
        return {}
    return {"endpoints_needing_attention": endpoint_health.attention()}
