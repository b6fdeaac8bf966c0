"""The Settings screen: endpoints (list, add, edit, enable/disable, delete) and the Test button.

With one endpoint the screen is the legacy single settings page: /settings goes
straight to it (or to the new-endpoint form when there is none yet).
HTMX requests get one block of the page's template back, never a whole page.
"""
from __future__ import annotations

import re

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy import func, select

from ..delivery.try_endpoint import send_test
from ..domain import endpoint_health, signing_secrets
from ..domain import endpoints as endpoint_service
from ..errors import InvalidInput
from ..extensions import db
from ..signing import standard_webhooks
from ..signing.auth_types import (
    FIELD_ORDER,
    LABELS,
    PLAIN_FIELDS,
    SECRET_FIELDS,
    TYPES,
    auth_type,
)
from ..storage.endpoint_lookups import live_endpoints, live_or_404
from ..storage.models import ALL_ACTIONS, Endpoint, Message
from ..storage.statuses import PENDING_STATUSES
from .forms import EndpointForm

bp = Blueprint("settings", __name__, url_prefix="/settings")

ROTATE_LABELS = {"window_hours": "“Old secret valid for (hours)” ", "secret": "the new secret "}
LIST_TEMPLATE = "settings/index.html"
EDIT_TEMPLATE = "settings/edit.html"


@bp.get("")
def index():
    endpoints = live_endpoints()
    if not endpoints:
        return redirect(url_for(".new"))
    if len(endpoints) == 1:
        return redirect(url_for(".edit", endpoint_id=endpoints[0].id))
    rates = endpoint_health.hour_rates([e.id for e in endpoints])
    return render_template(LIST_TEMPLATE, endpoints=endpoints,
                           health={e.id: endpoint_health.describe(e, rates) for e in endpoints})


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = EndpointForm()
    if form.validate_on_submit():
        endpoint = endpoint_service.apply_form(Endpoint(), form.data)
        db.session.add(endpoint)
        db.session.commit()
        flash(f"Endpoint “{endpoint.name}” created. Press Test to send it a sample message.", "success")
        return redirect(url_for(".edit", endpoint_id=endpoint.id))
    return render_edit(None, form)


@bp.route("/<id:endpoint_id>", methods=["GET", "POST"])
def edit(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    form = EndpointForm(data=endpoint_service.form_data(endpoint),
                        stored_secret_headers=endpoint_service.secret_header_names(endpoint))
    form.has_secret = endpoint_service.secret_fits(endpoint, form.auth_type.data)
    if form.validate_on_submit():
        endpoint_service.apply_form(endpoint, form.data, by=current_user.email)
        db.session.commit()
        endpoint_service.after_enabled(endpoint)
        flash("Settings saved.", "success")
        return redirect(url_for(".edit", endpoint_id=endpoint.id))
    return render_edit(endpoint, form)


@bp.post("/<id:endpoint_id>/toggle")
def toggle(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    endpoint_service.set_enabled(endpoint, not endpoint.enabled, by=current_user.email)
    db.session.commit()
    endpoint_service.after_enabled(endpoint)
    if request.htmx:
        return render_block(LIST_TEMPLATE, "endpoint_row", endpoint=endpoint,
                            health={endpoint.id: endpoint_health.describe(endpoint)})
    state = "enabled" if endpoint.enabled else "disabled"
    flash(f"Endpoint “{endpoint.name}” {state}.", "success")
    back_to_edit = request.form.get("back") == "edit"
    return redirect(url_for(".edit", endpoint_id=endpoint.id) if back_to_edit else url_for(".index"))


@bp.post("/<id:endpoint_id>/resend-failed-while-down")
def resend_failed_while_down(endpoint_id: int):
    """The one click offered after re-enabling: resend what failed while the endpoint was down."""
    endpoint = live_or_404(endpoint_id)
    queued = endpoint_service.resend_failed_while_down(endpoint)
    flash(f"{queued} message(s) that failed while the endpoint was down queued again." if queued
          else "Nothing to resend: those messages have already been resent.", "success")
    return redirect(url_for(".edit", endpoint_id=endpoint.id))


@bp.route("/<id:endpoint_id>/delete", methods=["GET", "POST"])
def delete(endpoint_id: int):
    endpoint = live_or_404(endpoint_id)
    if request.method == "POST":
        cancelled = endpoint_service.delete(endpoint)
        note = f" {cancelled} queued message(s) were marked failed." if cancelled else ""
        flash(f"Endpoint “{endpoint.name}” deleted. Its log entries stay in the Log.{note}", "success")
        return redirect(url_for(".index"))
    return render_template("settings/delete.html", endpoint=endpoint, **message_counts(endpoint))


@bp.post("/new/auth-fields", defaults={"endpoint_id": None})
@bp.post("/<id:endpoint_id>/auth-fields")
def auth_fields(endpoint_id: int | None):
    """The authentication inputs for the chosen type, keeping what was typed (secrets stay in the browser).

    A POST (CSRF-checked like any other), so typed usernames and key ids stay
    out of URLs, and so out of access logs and browser history.
    """
    endpoint = live_or_404(endpoint_id) if endpoint_id is not None else None
    form = EndpointForm(formdata=request.form, meta={"csrf": False})
    for name, value in auth_type(form.auth_type.data).suggested.items():
        if not (form[name].data or "").strip():
            form[name].data = value
    return render_block(EDIT_TEMPLATE, "auth_fields", **auth_context(endpoint, form))


@bp.post("/generate-secret")
def generate_secret():
    """A new Standard Webhooks secret in the form, shown this once; Save stores it (write-only from then on)."""
    return render_block(EDIT_TEMPLATE, "generated_secret", secret=standard_webhooks.new_secret())


@bp.post("/<id:endpoint_id>/rotate-secret")
def rotate_secret(endpoint_id: int):
    """Rotate: the new secret signs at once, the old one too until the window ends. Shown this once."""
    endpoint = live_or_404(endpoint_id)
    form = EndpointForm(formdata=None, data=endpoint_service.form_data(endpoint))
    raw = request.form.get("window_hours", "").strip()
    # Anything but ASCII digits reaches rotate() as -1, which it refuses naming the field.
    hours = int(raw) if re.fullmatch(r"[0-9]{1,6}", raw, re.ASCII) else (
        signing_secrets.DEFAULT_WINDOW_HOURS if raw == "" else -1)
    given = request.form.get("new_secret", "").strip() or None
    try:
        secret = signing_secrets.rotate(endpoint, given, hours)
    except InvalidInput as exc:
        db.session.rollback()
        named = ROTATE_LABELS.get(exc.field, "")
        page, _ = render_edit(endpoint, form, rotation_problem=f"Not rotated: {named}{exc.problem}.")
        return page, 422
    db.session.commit()
    return render_edit(endpoint, form, new_secret=None if given else secret, rotated=True)


@bp.post("/<id:endpoint_id>/test")
def test(endpoint_id: int):
    """Send one sample message with the saved settings and show the request and response."""
    endpoint = live_or_404(endpoint_id)
    action = request.form.get("action", "")
    if action not in current_app.config["WEBHOOKS_ACTIONS"]:
        return render_test(endpoint, action, problem=f"Choose an action from the catalogue (got “{action}”).")
    try:
        result = send_test(endpoint, action)
    except ValueError as exc:  # the stored secret cannot be decrypted with the current key
        db.session.rollback()
        return render_test(endpoint, action, problem=f"The test could not be sent: {exc}.")
    return render_test(endpoint, action, result=result)


# Rendering


def render_edit(endpoint: Endpoint | None, form: EndpointForm, *, test_action: str | None = None,
                result=None, problem: str | None = None, **rotation):
    errors = bool(form.errors)
    # Room for new headers: blank rows are ignored when saving.
    for _ in range(min(2, form.custom_headers.max_entries - len(form.custom_headers.entries))):
        form.custom_headers.append_entry()
    page = render_template(
        EDIT_TEMPLATE,
        endpoint=endpoint,
        health=endpoint_health.describe(endpoint) if endpoint else None,
        failed_while_down=endpoint_service.count_failed_while_down(endpoint)
        if endpoint and endpoint.enabled else 0,
        endpoint_count=len(live_endpoints()),
        proxy_configured=bool(current_app.config.get("WEBHOOKS_PROXY_URL")),
        test_actions=current_app.config["WEBHOOKS_ACTIONS"],
        test_action=test_action or default_test_action(endpoint),
        result=result,
        problem=problem,
        **auth_context(endpoint, form),
        **signing_context(endpoint),
        **rotation,
    )
    return page, 422 if errors else 200


def render_test(endpoint: Endpoint, action: str, *, result=None, problem: str | None = None):
    status = 422 if problem else 200
    if request.htmx:
        return render_block(EDIT_TEMPLATE, "test_result", endpoint=endpoint, result=result, problem=problem,
                            **signing_context(endpoint)), status
    form = EndpointForm(formdata=None, data=endpoint_service.form_data(endpoint))
    page, _ = render_edit(endpoint, form, test_action=action, result=result, problem=problem)
    return page, status


def auth_context(endpoint: Endpoint | None, form: EndpointForm) -> dict:
    kind = auth_type(form.auth_type.data)
    return {
        "form": form,
        "auth_fields_url": url_for(".auth_fields", endpoint_id=endpoint.id if endpoint else None),
        "auth_field_order": FIELD_ORDER,
        # A field of another type that was sent with a bad value is shown too, so its error is seen.
        "auth_shown": [name for name in FIELD_ORDER if name in kind.fields or form[name].errors],
        "secret_fields": SECRET_FIELDS,
        # The only values the type switch sends: never a secret, nor a custom header's value.
        "auth_plain_fields": list(PLAIN_FIELDS),
        "generated_fields": [kind.secret for kind in TYPES.values() if kind.rotates],
        "stored_secret_headers": endpoint_service.secret_header_names(endpoint),
        "stored_secret": endpoint_service.stored_secret_field(endpoint),
        # Secrets never come back from the server: after a failed save the operator types them again.
        "retype_secrets": [name for name in SECRET_FIELDS if form.errors and request.form.get(name)],
    }


def signing_context(endpoint: Endpoint | None) -> dict:
    """What the page says about a Standard Webhooks secret: fingerprints and the rotation window."""
    rotates = endpoint is not None and auth_type(endpoint.auth_type).rotates and endpoint.has_secret
    return {
        "signing_fingerprints": signing_secrets.fingerprints(endpoint) if rotates else [],
        "rotation_window_end": signing_secrets.window_end(endpoint) if rotates else None,
        "default_window_hours": signing_secrets.DEFAULT_WINDOW_HOURS,
        "max_window_hours": signing_secrets.MAX_WINDOW_HOURS,
    }


# Queries and small rules


def message_counts(endpoint: Endpoint) -> dict:
    count = select(func.count()).select_from(Message).where(Message.endpoint_id == endpoint.id)
    return {
        "logged": db.session.scalar(count) or 0,
        "pending": db.session.scalar(count.where(Message.status.in_(PENDING_STATUSES))) or 0,
    }


def default_test_action(endpoint: Endpoint | None) -> str | None:
    catalogue = current_app.config["WEBHOOKS_ACTIONS"]
    chosen = [a for a in (endpoint.actions if endpoint else []) if a in catalogue]
    return (chosen or list(catalogue) or [None])[0]


@bp.context_processor
def labels() -> dict:
    return {"auth_labels": LABELS, "all_actions": ALL_ACTIONS}

