"""Operator login: sessions, the login rate limit, CSRF, security headers and cookie flags."""
from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from redis import Redis
from werkzeug.security import check_password_hash

from tests.support.factories import make_endpoint
from tests.support.web import PASSWORD, FreshContextClient, Operator, csrf_token, login
from webapp.config import load_config
from webapp.domain.tokens import create_token
from webapp.domain.users import remove as remove_operator
from webapp.domain.users import hash_password, set_password
from webapp.extensions import db
from webapp.storage.models import Endpoint, OperatorSession, User, utcnow

pytestmark = pytest.mark.db

PUBLIC_ENDPOINTS = {"static", "login.login", "shell.healthz", "shell.favicon"}


@pytest.fixture
def operator(client):
    """Overrides the shared fixture: these tests log in (or fail to) themselves."""
    return Operator(client).create()


def ui_routes(app):
    """Every route of the app but the public ones, the token-authenticated API and /metrics, with sample arguments."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith(("api.", "metrics.")):  # own tokens
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = re.sub(rf"<(?:[^:>]+:)?{argument}>", "1", path)
        method = "GET" if "GET" in rule.methods else "POST"
        yield rule.endpoint, method, path


def test_every_ui_route_needs_a_session(app, client):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    token = csrf_token(client.get("/login").get_data(as_text=True))  # an anonymous visitor may have one
    routes = list(ui_routes(app))
    assert {"settings.index", "settings.edit", "settings.toggle", "settings.test", "login.logout"} <= {
        name for name, _, _ in routes}
    for name, method, path in routes:
        response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code == 302, f"{method} {path} ({name}) answered {response.status_code}"
        assert response.headers["Location"].startswith("/login?next="), f"{method} {path} ({name})"
    assert db.session.get(Endpoint, endpoint.id).enabled, "the toggle did not run"


def test_htmx_request_without_session_is_sent_to_login_as_a_whole_page(client):
    response = client.get("/log/rows/1", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")


def test_public_routes_need_no_session(client):
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/favicon.ico").headers["Location"] == "/static/favicon.svg"


def test_login_goes_to_the_page_asked_for(client, operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    first = client.get(f"/settings/{endpoint.id}")
    assert first.status_code == 302
    token = csrf_token(client.get(first.headers["Location"]).get_data(as_text=True))
    response = client.post(first.headers["Location"],
                           data={"email": operator.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == f"/settings/{endpoint.id}"
    page = client.get(f"/settings/{endpoint.id}").get_data(as_text=True)
    assert operator.email in page and "Log out" in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_login_never_redirects_off_site(client, operator, target):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", query_string={"next": target},
                           data={"email": operator.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("email, password", [("operator@example.com", "wrong password"), ("nobody@example.com", PASSWORD)])
def test_wrong_email_or_password_is_refused(client, operator, email, password):
    response = login(client, email, password)
    assert response.status_code == 200
    assert "Wrong e-mail or password." in response.get_data(as_text=True)
    assert client.get("/settings").status_code == 302, "no session after a failed login"


def test_email_is_matched_case_insensitively(client, operator):
    assert login(client, "  Operator@Example.COM ", PASSWORD).status_code == 302


def test_logout_ends_the_session(client, operator):
    operator.login()
    assert client.get("/settings/new").status_code == 200
    assert client.get("/logout").status_code == 405, "logging out is a POST (CSRF-protected)"
    response = operator.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "You are logged out." in client.get("/login").get_data(as_text=True)
    assert client.get("/settings/new").status_code == 302


# Server-side sessions: ending one is final


def copied_cookie(app, client):
    """A second browser holding a copy of ``client``'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def is_logged_in(browser) -> bool:
    return browser.get("/settings/new").status_code == 200


def test_a_session_cookie_copied_before_logout_is_refused_after_it(app, client, operator):
    operator.login()
    thief = copied_cookie(app, client)
    assert is_logged_in(thief), "the copy works while the session lasts"
    operator.post("/logout")
    assert not is_logged_in(client)
    response = thief.get("/settings/new")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    assert db.session.scalar(db.select(db.func.count()).select_from(OperatorSession)) == 0


def test_the_cookie_holds_a_token_whose_hash_only_is_stored(app, client, operator):
    operator.login()
    stored = db.session.scalars(db.select(OperatorSession)).one()
    user = db.session.scalars(db.select(User)).one()
    assert stored.user_id == user.id and len(stored.token_hash) == 64
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    token = serializer.loads(client.get_cookie("session").value)["_user_id"]
    assert token != str(user.id) and token not in stored.token_hash
    assert hashlib.sha256(token.encode()).hexdigest() == stored.token_hash


def test_changing_the_password_ends_every_session_of_that_operator(app, client, operator):
    other_operator = Operator(app.test_client(), "other@example.com").create().login()
    operator.login()
    second_browser = app.test_client()
    login(second_browser, operator.email, PASSWORD)
    assert is_logged_in(client) and is_logged_in(second_browser)

    assert set_password(operator.email, "a brand new password") == 2
    assert not is_logged_in(client) and not is_logged_in(second_browser)
    assert is_logged_in(other_operator.client), "other operators stay logged in"
    assert login(client, operator.email, PASSWORD).status_code == 200, "the old password is refused"
    assert login(client, operator.email, "a brand new password").status_code == 302


def test_removing_an_operator_ends_their_sessions(app, client, operator):
    operator.login()
    thief = copied_cookie(app, client)
    assert remove_operator(operator.email) == 1
    assert not is_logged_in(client) and not is_logged_in(thief)
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_the_commands_change_a_password_and_remove_an_operator(app, client, operator):
    runner = app.test_cli_runner()
    operator.login()
    changed = runner.invoke(args=["set-password", operator.email, "--password", "changed by cli"])
    assert changed.exit_code == 0 and "1 session(s) ended" in changed.output, changed.output
    assert not is_logged_in(client)
    assert runner.invoke(args=["set-password", operator.email, "--password", "short"]).exit_code != 0
    assert runner.invoke(args=["set-password", "nobody@example.com", "--password", "long enough"]).exit_code != 0
    assert login(client, operator.email, "changed by cli").status_code == 302
    removed = runner.invoke(args=["remove-user", operator.email])
    assert removed.exit_code == 0 and "1 session(s) ended" in removed.output, removed.output
    assert not is_logged_in(client)


def test_a_session_ends_after_its_lifetime(app, client, operator):
    operator.login()
    stored = db.session.scalars(db.select(OperatorSession)).one()
    stored.created_at = utcnow() - dt.timedelta(hours=app.config["WEBHOOKS_SESSION_HOURS"], minutes=1)
    db.session.commit()
    assert not is_logged_in(client)
    login(app.test_client(), operator.email, PASSWORD)  # the next login purges it
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(OperatorSession)) == 1


def test_sixth_login_attempt_within_a_minute_is_refused_with_429(app, client, operator):
    for attempt in range(5):
        assert login(client, operator.email, "wrong password").status_code == 200, f"attempt {attempt + 1}"
    response = login(client, operator.email, PASSWORD)  # even the right password
    assert response.status_code == 429
    assert "Too many login attempts" in response.get_data(as_text=True)
    assert client.get("/settings").status_code == 302, "not logged in"
    # Counted in the app's Redis, so every web process shares the count.
    assert Redis.from_url(app.config["REDIS_URL"]).keys("LIMITS*")


def fail_logins_then_try_from(client, operator, first: str, then: str) -> int:
    """Five wrong passwords claiming X-Forwarded-For ``first``, then the right one from ``then``."""
    for _ in range(5):
        login(client, operator.email, "wrong password", headers={"X-Forwarded-For": first})
    return login(client, operator.email, PASSWORD, headers={"X-Forwarded-For": then}).status_code


def test_a_forged_forwarded_for_header_does_not_dodge_the_login_limit(client, operator):
    assert fail_logins_then_try_from(client, operator, "203.0.113.1", "203.0.113.2") == 429


def test_behind_a_reverse_proxy_the_login_limit_counts_each_client(app, operator):
    from webapp import create_app

    proxied = create_app({"TESTING": True, "WEBHOOKS_PROXY_HOPS": 1})
    proxied.test_client_class = FreshContextClient
    assert fail_logins_then_try_from(proxied.test_client(), operator, "203.0.113.1", "203.0.113.2") == 302
    again = login(proxied.test_client(), operator.email, PASSWORD, headers={"X-Forwarded-For": "203.0.113.1"})
    assert again.status_code == 429, "the first client is still limited"


def test_rate_limit_storage_is_redis_when_configured_else_memory(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6399/0")
    assert load_config(tmp_path)["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6399/0"
    monkeypatch.delenv("REDIS_URL")
    assert load_config(tmp_path)["RATELIMIT_STORAGE_URI"] == "memory://"


def test_passwords_are_hashed_with_werkzeugs_full_scrypt_cost_unless_configured(app, monkeypatch, tmp_path):
    monkeypatch.delenv("WEBHOOKS_PASSWORD_HASH", raising=False)
    app.config["WEBHOOKS_PASSWORD_HASH"] = load_config(tmp_path)["WEBHOOKS_PASSWORD_HASH"]
    stored = hash_password("a long password")
    assert stored.startswith("scrypt:32768:8:1$"), stored.split("$")[0]
    assert check_password_hash(stored, "a long password")
    monkeypatch.setenv("WEBHOOKS_PASSWORD_HASH", "pbkdf2:sha256:600000")
    assert load_config(tmp_path)["WEBHOOKS_PASSWORD_HASH"] == "pbkdf2:sha256:600000"


@pytest.mark.parametrize("method", ["md5", "plain", "scrypt:1:2", "pbkdf2:sha1:1000", "scrypt;rm"])
def test_an_unknown_password_hash_method_stops_the_start(monkeypatch, tmp_path, method):
    monkeypatch.setenv("WEBHOOKS_PASSWORD_HASH", method)
    with pytest.raises(SystemExit, match="WEBHOOKS_PASSWORD_HASH"):
        load_config(tmp_path)


def test_create_user_command_makes_an_operator_who_can_log_in(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "cli@example.com", "--password", "a long password"])
    assert result.exit_code == 0, result.output
    prompted = runner.invoke(args=["create-user", "prompted@example.com"], input="another password\nanother password\n")
    assert prompted.exit_code == 0, prompted.output
    assert login(client, "cli@example.com", "a long password").status_code == 302


# CSRF


def test_post_without_csrf_token_is_rejected(client, operator):
    operator.login()
    response = client.post("/settings/new", data={"url": "http://127.0.0.1:9/hook", "actions": ["*"]})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Endpoint)) == 0


def test_every_mutating_ui_route_refuses_a_request_without_the_token(app, client, operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    operator.login()
    mutating = [(name, rule) for name, rule in ((r.endpoint, r) for r in app.url_map.iter_rules())
                if {"POST", "PATCH", "PUT", "DELETE"} & rule.methods and not name.startswith("api.")]
    assert {"settings.auth_fields", "settings.toggle", "settings.delete", "log.resend_message", "log.resend_failed", "login.logout"} <= {
        name for name, _ in mutating}
    for name, rule in mutating:
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", str(endpoint.id), rule.rule)
        for htmx in (False, True):
            response = client.post(path, data={}, headers={"HX-Request": "true"} if htmx else {})
            assert response.status_code == 400, f"POST {path} ({name}, htmx={htmx}) answered {response.status_code}"
    assert db.session.get(Endpoint, endpoint.id).enabled and endpoint.deleted_at is None


def test_login_form_needs_its_csrf_token_too(client, operator):
    response = client.post("/login", data={"email": operator.email, "password": PASSWORD})
    assert response.status_code == 400


def test_htmx_post_with_token_only_in_the_header_is_accepted(client, operator):
    operator.login()
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    refused = client.post(f"/settings/{endpoint.id}/toggle", headers={"HX-Request": "true"})
    assert refused.status_code == 400
    accepted = operator.post(f"/settings/{endpoint.id}/toggle", htmx=True)
    assert accepted.status_code == 200
    db.session.refresh(endpoint)  # the request ran in its own session
    assert endpoint.enabled is False


def test_api_is_exempt_from_csrf_and_uses_bearer_tokens(client):
    token = create_token("backend")
    response = client.post("/api/v1/endpoints", headers={"Authorization": f"Bearer {token}"},
                           json={"url": "http://127.0.0.1:9/hook", "actions": ["*"]})
    assert response.status_code == 201, response.get_data(as_text=True)


# Headers and cookies


@pytest.mark.parametrize("path", ["/login", "/settings/new", "/static/app.css", "/healthz", "/api/v1/endpoints"])
def test_security_headers_on_every_response(client, operator, path):
    operator.login()
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_need_no_inline_script_or_style(client, operator):
    operator.login()
    make_endpoint("http://127.0.0.1:9/hook")
    for path in ("/login", "/settings/new", "/settings"):
        html = client.get(path, follow_redirects=True).get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == [], path
        assert " style=" not in html and "<style" not in html, path
        assert re.search(r'<meta name="htmx-config" content=\'[^\']*"includeIndicatorStyles": false', html), path


def test_session_cookie_is_httponly_and_samesite_lax(client, operator):
    cookie = login(client, operator.email, PASSWORD).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie, "off by default: the embedded default serves plain http on 127.0.0.1"


def test_session_cookie_secure_comes_from_the_environment(app, client, operator, monkeypatch, tmp_path):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is True
    app.config["SESSION_COOKIE_SECURE"] = True
    https = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/login"}}
    token = csrf_token(client.get("/login", **https).get_data(as_text=True))
    response = client.post("/login", data={"email": operator.email, "password": PASSWORD, "csrf_token": token}, **https)
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
