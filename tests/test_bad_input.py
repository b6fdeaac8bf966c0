"""Bad input found by hand, each once a 500: now a 4xx naming the field, on SQLite and PostgreSQL.

The property-based sweep over every route is tests/test_every_route.py; these are the
cases from the report, kept as plain examples.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.support.factories import make_endpoint
from webapp import jobs
from webapp.domain.events import emit
from webapp.domain.tokens import create_token
from webapp.errors import InvalidInput
from webapp.extensions import db
from webapp.storage.models import ApiToken, Attempt, Endpoint, Event, Message, utcnow

pytestmark = pytest.mark.db

HUGE = str(2**64)  # past any 64-bit column


@pytest.fixture
def bearer(app):
    return {"Authorization": f"Bearer {create_token('bad-input')}"}


@pytest.fixture
def endpoint(app):
    return make_endpoint("http://127.0.0.1:9/hook", name="Shop", actions=["checkout"])


def add_message(endpoint, status="failed", customer="alice") -> Message:
    event = emit("checkout", customer, {"n": 1})
    message = db.session.get(Message, event.messages[0].id)
    message.status, message.attempts, message.next_attempt_at = status, 5, None
    db.session.commit()
    return message


def counts() -> tuple[int, ...]:
    return tuple(db.session.scalar(db.select(db.func.count()).select_from(model))
                 for model in (Endpoint, Event, Message, Attempt))


def text(response) -> str:
    return response.get_data(as_text=True)


def rows(page: str) -> list[str]:
    return re.findall(r'<tr id="message-(\d+)"', page)


# The log filtered by endpoint


def test_the_log_filtered_by_endpoint_lists_its_messages_and_keeps_the_filter_in_its_links(operator, endpoint):
    message = add_message(endpoint)
    page = operator.get(f"/log?endpoint={endpoint.id}")
    assert page.status_code == 200
    assert rows(text(page)) == [str(message.id)]
    assert f"/log/resend-failed?endpoint={endpoint.id}" in text(page)
    assert f"/log/export.csv?endpoint={endpoint.id}" in text(page)


def test_resend_failed_with_the_endpoint_filter_queues_and_returns_to_the_filtered_log(operator, endpoint):
    add_message(endpoint)
    confirm = operator.get(f"/log/resend-failed?endpoint={endpoint.id}")
    assert confirm.status_code == 200 and ">Resend 1</button>" in text(confirm)
    done = operator.post("/log/resend-failed", {"endpoint": str(endpoint.id)})
    assert done.status_code == 302 and done.headers["Location"] == f"/log?endpoint={endpoint.id}"
    assert counts()[2] == 2


# Ids and cursors


@pytest.mark.parametrize("path", [f"/log/{HUGE}", f"/log/rows/{HUGE}", f"/settings/{HUGE}", f"/settings/{2**31}",
                                  f"/settings/{HUGE}/delete", "/log/٣", "/settings/٣", "/log/0", "/log/-1"])
def test_ids_out_of_range_or_not_in_ascii_digits_are_404_in_the_ui(operator, path):
    assert operator.get(path).status_code == 404


@pytest.mark.parametrize("path", [f"/settings/{HUGE}/toggle", f"/settings/{HUGE}/test", f"/log/{HUGE}/resend",
                                  f"/settings/{HUGE}/auth-fields"])
def test_posts_to_ids_out_of_range_are_404(operator, path):
    assert operator.post(path, {"action": "checkout"}).status_code == 404


@pytest.mark.parametrize("method, path", [("get", f"/messages/{HUGE}"), ("get", f"/endpoints/{HUGE}"),
                                          ("patch", f"/endpoints/{2**40}"), ("delete", f"/endpoints/{HUGE}"),
                                          ("get", "/messages/٣")])
def test_ids_out_of_range_are_404_json_in_the_api(client, bearer, method, path):
    response = getattr(client, method)(f"/api/v1{path}", headers=bearer, json={})
    assert response.status_code == 404 and response.is_json and "error" in response.get_json()


@pytest.mark.parametrize("query, field", [(f"before={HUGE}", "before"), ("before=²", "before"), ("before=٣", "before"),
                                          (f"endpoint={HUGE}", "endpoint"), ("endpoint=٣", "endpoint"),
                                          ("endpoint=1_0", "endpoint"), ("code=4٠4", "code"),
                                          (f"after={HUGE}", "after"), ("after=٣", "after"),
                                          ("before=5&after=3", "after")])
def test_cursors_and_ids_in_the_query_string_are_checked(operator, endpoint, query, field):
    add_message(endpoint)
    page = operator.get(f"/log?{query}")
    assert page.status_code == 422
    from webapp.web.log import FILTER_LABELS

    assert f'id="filter-{field}-error"' in text(page) and f"{FILTER_LABELS[field]} " in text(page)
    assert rows(text(page)) == [] and 'class="log-table"' not in text(page), "no rows, no empty table"


# Date ranges


def test_the_widest_dates_are_accepted(operator, endpoint):
    message = add_message(endpoint)
    for query in ("created_to=9999-12-31", "created_from=0001-01-01", "created_from=0001-01-01&created_to=9999-12-31"):
        page = operator.get(f"/log?{query}")
        assert page.status_code == 200 and rows(text(page)) == [str(message.id)], query
    export = operator.get("/log/export.csv?created_to=9999-12-31")
    assert export.status_code == 200 and str(message.id) in text(export)


@pytest.mark.parametrize("query, field, fragment", [
    ("created_from=2026-12-01&created_to=2026-11-01", "created_from", "must not be after the end of the range"),
    ("created_to=2026-02-30", "created_to", "not a date in the calendar"),
    ("created_from=0000-01-01", "created_from", "not a date in the calendar"),
    ("created_from=٢٠٢٦-١١-٢٩", "created_from", "digits 0-9"),
    ("created_from=20261129", "created_from", "like 2026-11-29"),
    ("customer=a%00b", "customer", "control characters"),
    ("action=a%0d%0ab", "action", "control characters"),
])
def test_an_impossible_range_says_why_beside_the_filter_and_lists_nothing(operator, endpoint, query, field, fragment):
    add_message(endpoint, customer="a")
    page = operator.get(f"/log?{query}")
    assert page.status_code == 422
    shown = re.search(rf'<p class="field-error" id="filter-{field}-error">([^<]*)</p>', text(page))
    assert shown and fragment in shown.group(1), text(page)[:3000]
    assert rows(text(page)) == [] and "No messages are listed until the filter is corrected" in text(page)


def test_htmx_gets_the_filter_form_back_with_the_message_when_the_range_is_reversed(operator, endpoint):
    add_message(endpoint)
    response = operator.client.get("/log?created_from=2026-12-01&created_to=2026-11-01",
                                   headers={"HX-Request": "true", "HX-Target": "log-results"})
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#log-main" and response.headers["HX-Reswap"] == "outerHTML"
    body = text(response)
    assert body.lstrip().startswith('<div id="log-main">') and 'id="filter-created_from-error"' in body
    assert 'value="2026-12-01"' in body, "what was typed stays in the form"


def test_export_and_bulk_resend_with_a_bad_filter_do_nothing_and_say_why(operator, endpoint):
    add_message(endpoint)
    before = counts()
    for response in (operator.get("/log/export.csv?created_from=2026-12-01&created_to=2026-11-01"),
                     operator.get("/log/resend-failed?endpoint=٣"),
                     operator.post("/log/resend-failed", {"created_to": "9999-99-99"})):
        assert response.status_code == 422 and "No messages are listed" in text(response)
    assert counts() == before


# JSON the parser or the database cannot take


def test_json_nested_thousands_of_levels_is_a_400(client, bearer, endpoint):
    deep = "[" * 5000 + "]" * 5000
    response = client.post("/api/v1/events", data=deep, headers={**bearer, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.get_json()["field"] == "body"
    nested = {"action": "checkout", "customer": "c", "data": json.loads('{"a":' * 100 + "1" + "}" * 100)}
    response = client.post("/api/v1/events", json=nested, headers=bearer)
    assert response.status_code == 400 and response.get_json() == {
        "field": "data", "error": "data: is nested more than 64 levels deep"}
    assert counts() == (1, 0, 0, 0)


@pytest.mark.parametrize("path, body, field", [
    ("/events", '{"action": "checkout", "customer": "\\ud800", "data": {}}', "customer"),
    ("/events", '{"action": "\\udfff", "customer": "c", "data": {}}', "action"),
    ("/events", '{"action": "checkout", "customer": "c", "data": {"\\ud800": 1}}', "data"),
    ("/events", '{"action": "checkout", "customer": "c", "data": {"a": ["x", "\\ud83d"]}}', "data"),
    ("/endpoints", '{"url": "http://127.0.0.1:9/", "actions": ["checkout"], "name": "\\ud800"}', "name"),
    ("/endpoints", '{"url": "http://127.0.0.1:9/", "actions": ["checkout"], "auth_type": "basic", '
                   '"username": "u", "password": "\\ud800"}', "password"),
    ("/endpoints", '{"url": "http://127.0.0.1:9/\\ud800", "actions": ["checkout"]}', "url"),
    ("/endpoints", '{"url": "http://127.0.0.1:9/", "actions": ["\\ud800"]}', "actions"),
])
def test_a_lone_surrogate_in_any_string_is_a_400_naming_the_field(client, bearer, endpoint, path, body, field):
    before = counts()
    response = client.post(f"/api/v1{path}", data=body, headers={**bearer, "Content-Type": "application/json"})
    assert response.status_code == 400, text(response)
    assert response.get_json()["field"] == field and "surrogate" in response.get_json()["error"]
    assert counts() == before


@pytest.mark.parametrize("customer", ["\ud800", "a\x00b", "line\nbreak", "tab\there"])
def test_emit_and_the_rq_job_refuse_customers_no_database_can_store(app, endpoint, customer):
    for call in (emit, jobs.emit):
        with pytest.raises(InvalidInput) as refused:
            call("checkout", customer, {})
        assert refused.value.field == "customer"
    assert counts() == (1, 0, 0, 0)


def test_deep_data_from_python_is_refused_not_a_recursion_error(app, endpoint):
    data = inner = {}
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(InvalidInput, match="nested more than 64 levels"):
        emit("checkout", "c", data)
    cyclic = {}
    cyclic["self"] = cyclic
    with pytest.raises(InvalidInput, match="nested more than 64 levels"):
        emit("checkout", "c", cyclic)


def test_a_receiver_answer_nested_past_the_parser_s_limit_still_shows(operator, endpoint):
    message = add_message(endpoint)
    db.session.add(Attempt(message_id=message.id, number=1, started_at=utcnow(), request_method="POST",
                           request_url=endpoint.url, response_code=500, response_body="[" * 5000 + "]" * 5000))
    db.session.commit()
    page = operator.get(f"/log/{message.id}")
    assert page.status_code == 200 and "[[[[" in text(page)


# Form fields


@pytest.mark.parametrize("change, field, fragment", [
    ({"timeout": "²"}, "timeout", "whole number of seconds"),
    ({"timeout": "٣"}, "timeout", "whole number of seconds"),
    ({"timeout": "9" * 5000}, "timeout", "whole number of seconds"),
    ({"threads": "٣"}, "threads", "whole number"),
    ({"threads": "²"}, "threads", "whole number"),
    ({"name": "Shop\x00"}, "name", "control characters"),
    ({"url": "http://127.0.0.1:9/\x00"}, "url", "control characters"),
])
def test_the_settings_form_names_the_field(operator, change, field, fragment):
    form = {"url": "http://127.0.0.1:9/hook", "actions": "checkout", **change}
    page = operator.post("/settings/new", form)
    assert page.status_code == 422
    shown = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', text(page))
    assert shown and fragment in shown.group(1), shown
    assert counts() == (0, 0, 0, 0)


@pytest.mark.parametrize("change, field", [({"timeout": "²"}, "timeout"), ({"timeout": "٣"}, "timeout"),
                                           ({"threads": 10**30}, "threads"), ({"name": "a\x00"}, "name"),
                                           ({"url": "http://127.0.0.1:9/a\r\nb"}, "url")])
def test_the_api_names_the_field(client, bearer, change, field):
    response = client.post("/api/v1/endpoints", headers=bearer,
                           json={"url": "http://127.0.0.1:9/hook", "actions": ["checkout"], **change})
    assert response.status_code == 400 and response.get_json()["field"] == field, response.get_json()
    assert counts() == (0, 0, 0, 0)


# Login and the API's own 404/405


@pytest.mark.parametrize("target", ["/settings\r\nSet-Cookie: x=1", "/log\n", "/\x00", "/log?a=\r"])
def test_next_with_a_line_break_goes_home(client, target):
    from tests.support.web import Operator

    operator = Operator(client).create()
    from tests.support.web import PASSWORD, csrf_token
    token = csrf_token(text(client.get("/login")))
    response = client.post("/login", query_string={"next": target},
                           data={"email": operator.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_login_email_with_nul_is_a_form_error(client):
    from tests.support.web import csrf_token

    token = csrf_token(text(client.get("/login")))
    response = client.post("/login", data={"email": "a\x00@example.com", "password": "x" * 8, "csrf_token": token})
    assert response.status_code == 422 and 'id="email-error"' in text(response)


def test_unknown_api_paths_and_methods_answer_json(client, bearer):
    for path in ("/api/v1/nope", "/api/v1/", "/api/v1", "/api/v1/endpoints/abc"):
        response = client.get(path, headers=bearer)
        assert response.status_code == 404 and response.is_json and response.get_json()["error"], path
    response = client.put("/api/v1/events", headers=bearer, json={})
    assert response.status_code == 405 and response.is_json and "POST" in response.headers["Allow"]
    assert client.get("/nope").status_code == 404 and not client.get("/nope").is_json, "UI paths keep HTML"


@pytest.mark.parametrize("body", ['{"name": {"a": 1}, "url": []}', "[" * 5000 + "]" * 5000, '{"email": ["x"]}'])
def test_ui_forms_never_read_a_json_body(operator, body):
    """Flask-WTF takes a JSON body as form data when there is none; objects, lists and deep nesting were 500s."""
    for path in ("/settings/new", "/login"):
        response = operator.client.post(path, data=body, content_type="application/json",
                                        headers={"X-CSRFToken": operator.token})
        assert response.status_code in (302, 422), (path, response.status_code)
    assert counts() == (0, 0, 0, 0)


@pytest.mark.parametrize("name", ["", "a\x00b", "x" * 101])
def test_create_token_refuses_a_name_no_database_can_store(app, name):
    result = app.test_cli_runner().invoke(args=["create-token", name])
    assert result.exit_code != 0 and "name" in result.output
    assert db.session.scalar(db.select(db.func.count()).select_from(ApiToken)) == 0
