"""Property-based: every route of the app, driven with hostile input, never answers 5xx, and a 4xx writes nothing.

Routes come from ``app.url_map``, so a route added later is covered without touching
this file. Each route and method gets hostile path parameters (ids past 64 bits,
negative, non-ASCII digits, text), query strings, form fields and JSON bodies (lone
surrogates, NUL and other controls, deep nesting, huge numbers, impossible and extreme
dates, non-ASCII digits), from a logged-in operator with a valid CSRF token and a valid
API bearer token at once. Field names are the ones the code reads (the settings form,
the log filters, the API bodies, the login form). Every URL a request could make the app
contact points at 127.0.0.1.
"""
from __future__ import annotations

import dataclasses
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.support.web import PASSWORD, FreshContextClient, Operator
from webapp.domain.logbook.filters import LogFilter
from webapp.domain.tokens import create_token
from webapp.domain.users import set_password
from webapp.extensions import db
from webapp.storage.models import Attempt, Endpoint, Event, Message, User, utcnow
from webapp.web import api
from webapp.web.api_fields import ENDPOINT_FIELDS

pytestmark = pytest.mark.db

EXAMPLES_PER_ROUTE = 20
RULE_ARGUMENT = re.compile(r"<(?:[^:>]+:)?(\w+)>")
LOOPBACK_URL = "http://127.0.0.1:9/hook"  # connections refused at once: nothing leaves the machine
# Columns that a rejected request may still touch: a token's last use is noted once a minute.
VOLATILE = {("api_token", "last_used_at")}
QUERY_NAMES = sorted({f.name for f in dataclasses.fields(LogFilter)} | {"before", "after", "next"})
PASSWORD_FIELDS = {"current_password", "new_password", "repeat_password"}
FIELD_NAMES = sorted(
    set(ENDPOINT_FIELDS) | set(QUERY_NAMES) | api.EVENT_FIELDS | api.RESEND_FIELDS | {"email", "password", "action"} | PASSWORD_FIELDS
)

hostile_words = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\r\n", "line\nbreak", "tab\there", "\x1b[31m", "\x7f", "\u2028", "\u202e",
    "²", "٣", "٢٠٢٦-١١-٢٩", "1_000", "+5", "-1", "0", "1.5", "1e309", "NaN", "Infinity", str(2**63), str(2**64),
    "9" * 400, "9999-12-31", "0001-01-01", "2026-02-30", "0000-00-00", "2026-11-29", "../../../etc/passwd",
    "<script>alert(1)</script>", "' OR 1=1 --", "%00", "{bad}", "{customer}/../{action}.{ext}", "=HYPERLINK(1)",
    "checkout", "*", "json", "form", "basic", "aws", "aws-s3", "none", "5xx", "404", "failed", "y", "1", "60",
    LOOPBACK_URL, "http://127.0.0.1:9/a\r\nb", "javascript:alert(1)", "//evil.example/", "/settings\r\nX: 1",
])
text_values = st.one_of(hostile_words, st.text(max_size=40), st.integers(-(2**70), 2**70).map(str))
form_values = st.one_of(text_values, st.lists(text_values, max_size=3))
# JSON may carry what form encoding cannot: lone surrogates, huge and non-finite numbers, any nesting.
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(),
                         st.text(st.characters(exclude_categories=()), max_size=20), text_values)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)
raw_bodies = st.sampled_from(["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, "{", "\x00", "null",
                              '{"action": "\\ud800"}', '{"data": {"\\udfff": 1}}', "1" * 5000, "\xff\xfe"])


def path_values(ids: dict[str, list[int]], name: str) -> st.SearchStrategy[str]:
    ours = st.sampled_from([str(i) for i in ids.get(name, [])] or ["1"])
    odd = st.sampled_from(["0", "-1", str(2**31), str(2**63), str(2**64), "9" * 30, "٣", "²", "1e3", "..", "%00",
                           "csv", "psv", "app.css", "../app.py"])
    return st.one_of(ours, odd, st.text(min_size=1, max_size=10))


def valid_values(ids: dict[str, list[int]]) -> dict[str, list]:
    """Values each field accepts, so that examples also get past validation (where the bugs were)."""
    catalogue = ["checkout", "opt_in", "tier_change"]
    return {
        "endpoint": [str(i) for i in ids["endpoint_id"]], "before": [str(i) for i in ids["message_id"]],
        "after": [str(i) for i in ids["message_id"]],
        # The operator's own password, kept: the next examples log in with it.
        **{name: [PASSWORD] for name in PASSWORD_FIELDS},
        "code": ["404", "503", "5xx", "2xx", "none"], "status": ["failed", "resent", "done", "queued"],
        "action": catalogue, "customer": ["c1"], "created_from": ["2026-01-01", "0001-01-01"],
        "created_to": ["9999-12-31", "2026-12-31"], "next": ["/log", "/settings"], "force": ["1", True],
        "url": [LOOPBACK_URL], "timeout": ["5", 5, None], "threads": ["8", 8], "content_type": ["json", "form"],
        "actions": [["checkout"], "checkout", ["*"]], "auth_type": ["none", "basic", "aws", "aws-s3"],
        "name": ["Shop"], "enabled": ["y", True], "use_proxy": [False], "queue_batches": ["y", True],
        "username": ["shop"], "password": ["a secret pw"], "region": ["eu-west-1"], "service": ["s3"],
        "access_key_id": ["AKID"], "secret_key": ["a secret key"], "algo_prefix": ["AWS4"], "vendor_key": ["Amz"],
        "filename_format": ["{event_id}.{ext}"], "email": ["operator@example.com"], "data": [{"n": 1}],
    }


def field_values(valid: dict[str, list], names, hostile) -> st.SearchStrategy[dict]:
    """Either every field valid but one, which is hostile (it reaches past validation to where the
    bugs were), or any mix of the fields, each valid or hostile."""
    known = {name: st.sampled_from(valid[name]) if name in valid else hostile for name in names}
    all_valid = st.fixed_dictionaries(known)
    one_bad = st.builds(lambda base, name, bad: {**base, name: bad}, all_valid, st.sampled_from(sorted(names)), hostile)
    mixed = st.fixed_dictionaries({}, optional={name: st.one_of(known[name], hostile) for name in names})
    return st.one_of(one_bad, mixed, all_valid)


def seed() -> dict[str, list[int]]:
    """An endpoint, a failed message with an attempt, and one still waiting for a retry."""
    endpoint = Endpoint(url=LOOPBACK_URL, name="Shop", actions_json='["*"]')
    event = Event(id="e" * 32, action="checkout", customer="c1", data_json='{"n": 1}')
    db.session.add_all([endpoint, event])
    db.session.flush()
    failed = Message(event_id=event.id, endpoint_id=endpoint.id, action="checkout", customer="c1", status="failed",
                     attempts=5, response_code=503, response_class=5)
    waiting = Message(event_id=event.id, endpoint_id=endpoint.id, action="checkout", customer="c1", status="resent",
                      attempts=2, next_attempt_at=utcnow(), resend_of_id=None)
    db.session.add_all([failed, waiting])
    db.session.flush()
    db.session.add(Attempt(message_id=failed.id, number=1, started_at=utcnow(), request_method="POST",
                           request_url=LOOPBACK_URL, response_code=503, response_body='{"deep": [[[]]]}'))
    db.session.commit()
    if not db.session.scalar(select(User).where(User.email == "colleague@example.com")):
        db.session.add(User(email="colleague@example.com", password_hash="x"))  # one the operator may remove
        db.session.commit()
    return {"endpoint_id": [endpoint.id], "message_id": [failed.id, waiting.id], "fmt": [], "filename": [],
            "user_id": list(db.session.scalars(select(User.id)))}


def reset_data() -> None:
    for table in ("attempt", "message", "event", "endpoint"):
        db.session.execute(db.text(f"DELETE FROM {table}"))
    db.session.commit()


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, volatile columns left out."""
    db.session.rollback()
    found = {}
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
        found[table.name] = sorted(map(tuple, db.session.execute(select(*columns)).all()), key=repr)
    db.session.rollback()
    return found


def build_path(rule, values: dict[str, str]) -> str:
    return RULE_ARGUMENT.sub(lambda m: quote(values[m.group(1)], safe="/" if m.group(1) == "filename" else ""),
                             rule.rule)


@pytest.fixture
def routed_app(app):
    """The app under test, with the login rate limit off (these tests post /login many times and log in again)."""
    from webapp import create_app

    tested = create_app({"TESTING": True, "RATELIMIT_ENABLED": False})
    tested.test_client_class = FreshContextClient
    with tested.app_context():
        yield tested


@pytest.mark.slow  # every route, many examples each: minutes, not seconds
@pytest.mark.timeout(1200)
def test_every_route_answers_hostile_input_without_5xx_or_partial_writes(routed_app):
    client = routed_app.test_client()
    operator = Operator(client).create().login()
    bearer = create_token("every-route")
    pairs = [(rule, method) for rule in routed_app.url_map.iter_rules()
             for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    covered = {rule.endpoint for rule, _ in pairs}
    assert {"settings.edit", "log.index", "log.resend_message", "api.post_event", "api.update_endpoint",
            "login.login", "login.logout", "log.new_messages", "operators.add", "operators.remove",
            "operators.password"} <= covered, covered
    for rule, method in pairs:
        reset_data()
        ids = seed()
        drive(client, operator, bearer, rule, method, ids)
    for rule in routed_app.url_map.iter_rules():  # and a method each route does not take
        wrong = next(m for m in ("PUT", "DELETE", "PATCH", "POST") if m not in rule.methods)
        before = snapshot()
        response = client.open(build_path(rule, {a: "1" for a in rule.arguments}), method=wrong,
                               headers={"Authorization": f"Bearer {bearer}", "X-CSRFToken": operator.token})
        assert response.status_code in (404, 405), (wrong, rule.rule, response.status_code)
        assert snapshot() == before


def drive(client, operator, bearer, rule, method, ids) -> None:
    has_body = method in ("POST", "PUT", "PATCH", "DELETE")
    path_strategy = st.fixed_dictionaries({name: path_values(ids, name) for name in rule.arguments})
    valid = valid_values(ids)
    body_strategy = (st.one_of(
        st.tuples(st.just("form"), field_values(valid, FIELD_NAMES, form_values)),
        st.tuples(st.just("json"), field_values(valid, FIELD_NAMES, json_values)),
        st.tuples(st.just("json"), json_values),
        st.tuples(st.just("raw"), raw_bodies),
    ) if has_body else st.just(("none", None)))

    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(path=path_strategy, query=field_values(valid, QUERY_NAMES, text_values), body=body_strategy,
           htmx=st.booleans())
    def answers_without_5xx(path, query, body, htmx):
        headers = {"Authorization": f"Bearer {bearer}", "X-CSRFToken": operator.token}
        if htmx:
            headers.update({"HX-Request": "true", "HX-Target": "log-results"})
        kind, payload = body
        request = {"query_string": query, "headers": headers}
        if kind == "form":
            request["data"] = {**payload, "csrf_token": operator.token}
        elif kind == "json":
            request["data"] = json.dumps(payload)  # ensure_ascii: lone surrogates travel as \\ud800
            request["content_type"] = "application/json"
        elif kind == "raw":
            request["data"] = payload.encode("utf-8", "surrogatepass")
            request["content_type"] = "application/json"
        before = snapshot()
        target = build_path(rule, path)
        response = client.open(target, method=method, **request)
        status = response.status_code
        assert status < 500, f"{method} {target} {kind} {payload!r:.300} -> {status}"
        if 400 <= status < 500:
            assert snapshot() == before, f"{method} {target} answered {status} but changed the database"
        if rule.endpoint == "login.logout" and status == 302:
            operator.login()  # the next example needs the session again
        if rule.endpoint == "operators.password" and status == 302:
            set_password(operator.email, operator.password)  # a hostile new password that was accepted
            operator.login()

    answers_without_5xx()
