"""Browser-facing protections: CSRF on every mutating request, security headers, session cookie flags.

CSRF: Flask-WTF checks a token on every POST/PUT/PATCH/DELETE. Forms carry it
as a hidden field; htmx requests send it in the ``X-CSRFToken`` header (set on
<body> with ``hx-headers``). The JSON API is exempt: it authenticates with
bearer tokens, which a browser never attaches by itself.

The CSP allows scripts and styles from our own origin only: htmx is served
from static/ and told not to inject its indicator styles (see base.html).
"""
from __future__ import annotations

from flask import Blueprint, Flask, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect

csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # SESSION_COOKIE_SECURE comes from the environment (config.py): on behind HTTPS.
    app.config.setdefault("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"])
    # The token lives as long as the login session, so a page left open for an
    # afternoon can still be saved; logging out ends both.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.after_request(add_security_headers)
    app.register_error_handler(CSRFError, csrf_failed)


def exempt(blueprint: Blueprint) -> None:
    csrf.exempt(blueprint)


def add_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def csrf_failed(error: CSRFError):
    return render_template("errors/csrf.html", reason=error.description), 400
