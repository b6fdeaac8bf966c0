"""Drive the web UI with Flask's test client the way a browser does: log in, send the CSRF token.

CSRF protection stays on in these tests: the token is read from the page
(every page carries it in <body hx-headers>), as htmx and the forms do.

    operator = Operator(client, "op@example.com", PASSWORD).create().login()
    operator.post("/settings/new", {"url": ...})
"""
from __future__ import annotations

import re

from flask.testing import FlaskClient

from webapp.domain.users import create_user

PASSWORD = "correct horse battery"
CSRF_ON_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context (its own ``g`` and DB session), as on a real
    server: without this it would share the test's context, and ``g`` would leak between requests."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def csrf_token(html: str) -> str:
    found = CSRF_ON_PAGE.search(html)
    assert found, "page carries no CSRF token in <body hx-headers>"
    return found.group(1)


def login(client, email: str, password: str, **extra):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, **extra)


class Operator:
    """A logged-in operator's browser: posts carry the session's CSRF token."""

    def __init__(self, client, email: str = "operator@example.com", password: str = PASSWORD):
        self.client = client
        self.email = email
        self.password = password
        self.token = ""

    def create(self) -> Operator:
        create_user(self.email, self.password)
        return self

    def login(self) -> Operator:
        response = login(self.client, self.email, self.password)
        assert response.status_code == 302, response.get_data(as_text=True)
        # Logging in starts a fresh session, so the token is read after it.
        self.token = csrf_token(self.client.get("/settings/new").get_data(as_text=True))
        return self

    def get(self, path: str, *, htmx: bool = False, **kwargs):
        return self.client.get(path, headers=htmx_headers(htmx), **kwargs)

    def post(self, path: str, data: dict | None = None, *, htmx: bool = False, **kwargs):
        """A form post; with htmx=True the token goes in the X-CSRFToken header, as htmx sends it."""
        data = dict(data or {})
        headers = htmx_headers(htmx)
        if htmx:
            headers["X-CSRFToken"] = self.token
        else:
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, headers=headers, **kwargs)


def htmx_headers(htmx: bool) -> dict:
    return {"HX-Request": "true"} if htmx else {}
