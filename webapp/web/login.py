"""Log in and out. Operators are created with ``flask --app webapp create-user EMAIL``."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from ..domain import operator_sessions, users
from ..text_rules import CONTROL_CHARACTERS
from .auth import Operator, limiter, login_rate_limit
from .forms import BrowserForm, PlainText

bp = Blueprint("login", __name__)


class LoginForm(BrowserForm):
    email = EmailField("E-mail", validators=[DataRequired(message="Enter your e-mail address."), Length(max=255),
                                             PlainText()],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")],
                             render_kw={"autocomplete": "current-password"})


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_rate_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(next_page())
    form = LoginForm()
    failed = False
    if form.validate_on_submit():
        user = users.verify(form.email.data, form.password.data)
        if user is not None:
            fresh_session()
            login_user(Operator(user, operator_sessions.start(user)))
            return redirect(next_page())
        failed = True
    return render_template("login/login.html", form=form, failed=failed), 422 if form.errors else 200


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        operator_sessions.end(current_user.get_id())  # a copy of the cookie is worth nothing now
    logout_user()
    fresh_session()
    flash("You are logged out.", "info")
    return redirect(url_for("login.login"))


@bp.errorhandler(429)
def too_many_attempts(_error):
    message = "Too many login attempts from your address. Wait a minute, then try again."
    return render_template("login/login.html", form=LoginForm(), rate_limited=message), 429


def fresh_session() -> None:
    """A new session, hence a new CSRF token; the token cached for this request belonged to the old one."""
    session.clear()
    g.pop("csrf_token", None)


def next_page() -> str:
    """Where to go after logging in: a path on this site only, never another host."""
    target = request.args.get("next", "")
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or CONTROL_CHARACTERS.search(target) or any(ch.isspace() for ch in target)):
        return url_for("shell.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("shell.home")
    return target
