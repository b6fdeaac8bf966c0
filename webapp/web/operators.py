"""The Operators screen: who can log in, adding and removing operators, and changing one's own password.

The flask commands (create-user, set-password, remove-user) stay for administrators.
Removing an operator or changing a password ends that operator's sessions (domain/users).
Every POST here is rate-limited like the login form: each one can test a password or
create an account, so a stolen session must not get unlimited tries.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from ..domain import operator_sessions, users
from ..errors import InvalidInput
from ..extensions import db
from ..storage.models import User
from .auth import Operator, limiter, login_rate_limit
from .forms import BrowserForm, PlainText
from .login import fresh_session

bp = Blueprint("operators", __name__, url_prefix="/operators")

rate_limited = limiter.limit(login_rate_limit, methods=["POST"])
NEW_PASSWORD_HINT = f"At least {users.MIN_PASSWORD_LENGTH} characters."


class AddOperatorForm(BrowserForm):
    email = EmailField("E-mail", validators=[DataRequired(message="is required"), Length(max=255), PlainText()],
                       render_kw={"autocomplete": "off", "spellcheck": "false"})
    password = PasswordField("Password", validators=[DataRequired(message="is required"), Length(max=1024)],
                             description=f"{NEW_PASSWORD_HINT} Give it to them in person; they can change it "
                                         "after logging in.",
                             render_kw={"autocomplete": "new-password"})


class PasswordForm(BrowserForm):
    current_password = PasswordField("Current password", validators=[DataRequired(message="is required")],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField("New password", validators=[DataRequired(message="is required"), Length(max=1024)],
                                 description=NEW_PASSWORD_HINT, render_kw={"autocomplete": "new-password"})
    repeat_password = PasswordField("Repeat the new password",
                                    validators=[DataRequired(message="is required"),
                                                EqualTo("new_password", message="must be the same as the new password")],
                                    render_kw={"autocomplete": "new-password"})


@bp.get("")
def index(form: AddOperatorForm | None = None, status: int = 200):
    return render_template("operators/index.html", operators=users.all_users(), form=form or AddOperatorForm(),
                           me=current_user.id), status


@bp.post("")
@rate_limited
def add():
    form = AddOperatorForm()
    if form.validate():
        try:
            user = users.create_user(form.email.data, form.password.data)
        except InvalidInput as problem:
            getattr(form, problem.field).errors = [problem.problem]
        else:
            flash(f"Operator {user.email} added: they can log in now.", "success")
            return redirect(url_for(".index"))
    return index(form, 422)


@bp.route("/<id:user_id>/remove", methods=["GET", "POST"])
@rate_limited
def remove(user_id: int):
    """A confirmation page, then the removal. Refusals (yourself, the last operator) are said on the page."""
    user = _operator(user_id)
    try:
        if request.method == "POST":
            email, ended = users.remove_by(current_user.id, user_id)
            flash(f"Operator {email} removed; {ended} open session(s) of theirs ended.", "success")
            return redirect(url_for(".index"))
        users.check_removable(current_user.id, user_id)
    except InvalidInput as refused:
        return render_template("operators/remove.html", user=user, problem=refused.problem), 422
    return render_template("operators/remove.html", user=user, problem=None)


@bp.route("/password", methods=["GET", "POST"])
@rate_limited
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            ended = users.change_own_password(current_user.id, form.current_password.data, form.new_password.data)
        except InvalidInput as problem:
            field = "new_password" if problem.field == "password" else problem.field
            getattr(form, field).errors = [problem.problem]
        else:
            # Every session of this operator ended, this browser's too: give this one a fresh session.
            user = _operator(current_user.id)
            fresh_session()
            login_user(Operator(user, operator_sessions.start(user)))
            others = ended - 1
            flash("Password changed." + (f" {others} other session(s) of yours were logged out." if others > 0
                                        else ""), "success")
            return redirect(url_for(".index"))
    return render_template("operators/password.html", form=form), 422 if form.errors else 200


@bp.errorhandler(429)
def too_many_attempts(_error):
    flash("Too many attempts from your address. Wait a minute, then try again.", "error")
    return index(status=429)


def _operator(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user
