"""The UI shell: the home page and a health check."""
from flask import Blueprint, jsonify, render_template
from sqlalchemy import text

from ..extensions import db

bp = Blueprint("shell", __name__)


@bp.get("/")
def home():
    return render_template("shell/home.html")


@bp.get("/healthz")
def healthz():
    db.session.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})
