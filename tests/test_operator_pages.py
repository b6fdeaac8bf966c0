"""No page an operator sees names a shell command or an environment variable: those are for
administrators, and the pages point to the README instead.

The crawl starts at the home page and at every screen of tests/support/screens.py, follows
every link and every htmx GET on the pages it reaches, and also looks at the pages that only
a refused form shows (the proxy checkbox's error, the operators' forms, the login page's errors).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.screens import seed_every_screen
from tests.support.web import Operator

pytestmark = pytest.mark.db

FORBIDDEN = re.compile(
    r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b"        # an environment variable: WEBHOOKS_PROXY_URL, DATABASE_URL
    r"|\bflask\b|\bmake (?:run|test)\b|\bpython3?\b|\bpip\b|\bsudo\b|\bcurl\b|\bexport \w+="
    r"|\$\{?[A-Za-z_]\w*|--[a-z][a-z-]+ ")  # $VAR, --some-flag
# Internal routes that are not pages: the API, file downloads.
NOT_PAGES = re.compile(r"^/(api/|static/|log/export\.|healthz|favicon)")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "hx-get"):
            if attrs.get(name):
                self.found.append(attrs[name])
        if tag in ("script", "style"):
            self._skip += 1
        # What an operator reads also sits in attributes.
        self.chunks += [attrs[name] for name in ("title", "placeholder", "aria-label", "alt", "value") if attrs.get(name)]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


def readable(html: str) -> tuple[str, list[str]]:
    parser = Links()
    parser.feed(html)
    return " ".join(parser.chunks), parser.found


def offenders(html: str) -> list[str]:
    return [match.group(0) for match in FORBIDDEN.finditer(readable(html)[0])]


def test_the_pattern_catches_what_it_is_for():
    assert offenders("<p>Operators are created with <code>flask --app webapp create-user EMAIL</code></p>")
    assert offenders('<input title="set WEBHOOKS_PROXY_URL first">')
    assert offenders("<p>run make run, then $TOKEN</p>")
    assert not offenders("<p>Response code 5xx, X-Amz-Date, an administrator sets it up (see the README).</p>")


def test_no_page_names_a_shell_command_or_an_environment_variable(operator, client):
    seeded = seed_every_screen()
    seen, queue, problems = set(), ["/", *seeded.pages().values()], {}
    while queue:
        path = queue.pop()
        if path in seen or NOT_PAGES.match(path):
            continue
        seen.add(path)
        response = operator.get(path, htmx="hx" in path)
        assert response.status_code < 500, path
        if not response.content_type.startswith("text/html"):
            continue
        html = response.get_data(as_text=True)
        if offenders(html):
            problems[path] = offenders(html)
        for link in readable(html)[1]:
            target = urlsplit(urljoin("http://localhost" + path, link))
            if target.netloc == "localhost" and target.path != "/logout":
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    assert {"/settings/new", "/log", f"/log/{seeded.failed}", "/operators", "/operators/password",
            f"/log/rows/{seeded.waiting}"} <= seen, seen

    refused = {
        "proxy ticked without a proxy": operator.post("/settings/new", {"url": "http://127.0.0.1:9/x", "use_proxy": "y",
                                                                       "actions": "checkout"}),
        "bad operator": operator.post("/operators", {"email": "x", "password": "short"}),
        "bad password change": operator.post("/operators/password", {"current_password": "wrong"}),
        "resend confirmation": operator.post(f"/log/{seeded.waiting}/resend"),
    }
    refused["login"] = Operator(client.application.test_client()).get("/login")
    for name, response in refused.items():
        assert response.status_code in (200, 422), name
        if offenders(response.get_data(as_text=True)):
            problems[name] = offenders(response.get_data(as_text=True))
    assert problems == {}
