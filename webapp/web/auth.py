"""Operator sessions: Flask-Login, the login rate limiter, and the rule that every page needs a session.

The rule is app-wide (not a decorator per view) so a screen added later is
protected without anyone remembering to. Public: the login page, static files,
the health check, the JSON API (it has its own bearer tokens) and /metrics (its own token).
"""
from __future__ import annotations

from flask import Flask, current_app, redirect, request, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user
from htmx_flask import make_response as htmx_response

from ..domain import operator_sessions
from ..storage.models import User

PUBLIC_ENDPOINTS = {"static", "login.login", "shell.healthz", "shell.favicon"}
PUBLIC_BLUEPRINTS = {"api", "metrics"}  # metrics: its own token or address rule

login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)


class Operator(UserMixin):
    """The logged-in operator: what the UI needs of a User, without the password hash.

    Flask-Login keeps ``get_id()`` in the cookie: here the server-side session's token,
    not the user id, so ending the session (operator_sessions) logs the cookie out.
    """

    def __init__(self, user: User, session_token: str):
        self.id = user.id
        self.email = user.email
        self.session_token = session_token

    def get_id(self) -> str:
        return self.session_token


@login_manager.user_loader
def load_operator(session_token: str) -> Operator | None:
    user = operator_sessions.find_user(session_token)
    return Operator(user, session_token) if user else None


@login_manager.unauthorized_handler
def send_to_login():
    login_url = url_for("login.login", next=request.full_path.rstrip("?"))
    if request.htmx:
        # A redirect would be followed by htmx and the login page swapped into a fragment.
        return htmx_response("", 401, redirect=login_url)
    return redirect(login_url)


def require_login():
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if request.blueprint in PUBLIC_BLUEPRINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def login_rate_limit() -> str:
    return current_app.config["WEBHOOKS_LOGIN_RATE_LIMIT"]


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)  # Redis down must not lock everyone out
    login_manager.init_app(app)
    limiter.init_app(app)
    app.before_request(require_login)
