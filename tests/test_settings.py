"""The Settings screen: endpoints, the settings form and its rules, write-only secrets, partials, the Test button."""
from __future__ import annotations

import re

import pytest

from tests.support.factories import make_endpoint
from tests.support.receiver import Receiver, refused_url
from webapp.domain.events import emit
from webapp.extensions import db
from webapp.storage.crypto import secret_box
from webapp.storage.models import Attempt, Endpoint, Message
from webapp.storage.statuses import FAILED

pytestmark = pytest.mark.db

SECRET = "pa55-Very-SECRET-xyz"
VALID = {"name": "Shop", "url": "http://127.0.0.1:9/hook", "timeout": "5", "content_type": "json",
         "actions": ["checkout"], "threads": "8", "auth_type": "none", "enabled": "y"}


def html(response) -> str:
    return response.get_data(as_text=True)


def endpoints() -> list[Endpoint]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Endpoint).order_by(Endpoint.id)))


def field_errors(page: str, name: str) -> list[str]:
    """The errors shown under one field: <p id="NAME-error">, which the input names in aria-describedby."""
    return re.findall(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', page)


def input_tag(page: str, name: str) -> str:
    found = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    assert found, f"no input named {name}"
    return found.group(0)


def secret_is_stored(endpoint: Endpoint) -> str:
    db.session.refresh(endpoint)
    return secret_box().decrypt(endpoint.auth_secret_encrypted)


# Which page the Settings tab shows


def test_settings_tab_with_no_endpoint_shows_the_new_endpoint_form(operator):
    response = operator.get("/settings")
    assert response.status_code == 302 and response.headers["Location"] == "/settings/new"
    assert "Set up your webhook endpoint" in html(operator.get("/settings/new"))


def test_settings_tab_with_one_endpoint_goes_straight_to_its_settings(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    response = operator.get("/settings")
    assert response.status_code == 302 and response.headers["Location"] == f"/settings/{endpoint.id}"
    assert operator.get("/").headers["Location"] == "/dashboard"  # the landing page


def test_settings_tab_with_several_endpoints_lists_them(operator):
    make_endpoint("http://127.0.0.1:9/one", name="First shop", actions=["*"])
    make_endpoint("http://127.0.0.1:9/two", name="Second shop", actions=["points_added", "checkout"], auth_type="basic")
    page = html(operator.get("/settings"))
    assert "First shop" in page and "Second shop" in page
    assert "All actions" in page and "Checkout, Points added" in page and "Basic" in page


# Create and edit


def test_new_endpoint_is_saved_and_confirmed(operator):
    response = operator.post("/settings/new", VALID)
    [endpoint] = endpoints()
    assert response.status_code == 302 and response.headers["Location"] == f"/settings/{endpoint.id}"
    assert (endpoint.name, endpoint.url, endpoint.timeout, endpoint.actions) == ("Shop", VALID["url"], 5, ["checkout"])
    page = html(operator.get(response.headers["Location"]))
    assert "Endpoint “Shop” created." in page
    assert 'value="http://127.0.0.1:9/hook"' in page and re.search(r'value="checkout"\s+checked', page)


def test_edit_saves_every_field_and_says_so(app, operator):
    app.config["WEBHOOKS_PROXY_URL"] = "http://proxy.internal:3128"
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    changed = {**VALID, "url": "http://127.0.0.1:9/other", "timeout": "60", "content_type": "form",
               "actions": ["opt_in", "tier_change"], "use_proxy": "y", "queue_batches": "y", "threads": "64",
               "auth_type": "aws", "region": "eu-west-1", "service": "execute-api", "access_key_id": "AKID",
               "secret_key": SECRET, "algo_prefix": "EMS", "vendor_key": "Ems"}
    changed.pop("enabled")  # unticked
    response = operator.post(f"/settings/{endpoint.id}", changed, follow_redirects=True)
    assert "Settings saved." in html(response)
    [saved] = endpoints()
    assert (saved.url, saved.timeout, saved.content_type, saved.actions) == (changed["url"], 60, "form", ["opt_in", "tier_change"])
    assert (saved.use_proxy, saved.queue_batches, saved.threads, saved.enabled) == (True, True, 64, False)
    assert (saved.auth_type, saved.auth_region, saved.auth_service, saved.auth_access_key_id) == (
        "aws", "eu-west-1", "execute-api", "AKID")
    assert (saved.auth_algo_prefix, saved.auth_vendor_key) == ("EMS", "Ems")
    assert secret_is_stored(saved) == SECRET


def test_blank_timeout_is_saved_as_one_second(operator):
    operator.post("/settings/new", {**VALID, "timeout": ""})
    assert endpoints()[0].timeout == 1


def test_deleted_or_unknown_endpoint_is_404(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", deleted_at=db.func.now())
    assert operator.get(f"/settings/{endpoint.id}").status_code == 404
    assert operator.get("/settings/999").status_code == 404


# Every rule of the form, shown next to its field


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"timeout": "0"}, "timeout", "Timeout (s) must be between 1 and 60 seconds"),
        ({"timeout": "61"}, "timeout", "Timeout (s) must be between 1 and 60 seconds"),
        ({"timeout": "abc"}, "timeout", "Timeout (s) must be a whole number of seconds from 1 to 60"),
        ({"timeout": "2.5"}, "timeout", "Timeout (s) must be a whole number of seconds from 1 to 60"),
        ({"url": ""}, "url", "Endpoint URL is required"),
        ({"url": "not a url"}, "url", "Endpoint URL must be an absolute http:// or https:// URL"),
        ({"url": "ftp://example.com/hook"}, "url", "Endpoint URL must be an absolute http:// or https:// URL"),
        ({"use_proxy": "y"}, "use_proxy", "This installation has no static-IP proxy configured: an administrator sets one up"),
        ({"actions": ["no_such_action"]}, "actions", "Not a valid choice"),
        ({"actions": []}, "actions", "Select at least one action"),
        ({"threads": "0"}, "threads", "Threads must be between 1 and 64"),
        ({"threads": "65"}, "threads", "Threads must be between 1 and 64"),
        ({"auth_type": "basic", "username": "bob"}, "password", "Password is required for Basic authentication"),
        ({"auth_type": "basic", "password": SECRET}, "username", "Username is required for Basic authentication"),
        ({"auth_type": "aws", "service": "s", "access_key_id": "k", "secret_key": SECRET}, "region",
         "Region is required for AWS authentication"),
        ({"auth_type": "aws", "region": "r", "access_key_id": "k", "secret_key": SECRET}, "service",
         "Service is required for AWS authentication"),
        ({"auth_type": "aws", "region": "r", "service": "s", "secret_key": SECRET}, "access_key_id",
         "Access Key ID is required for AWS authentication"),
        ({"auth_type": "aws", "region": "r", "service": "s", "access_key_id": "k"}, "secret_key",
         "Access Key Secret is required for AWS authentication"),
        ({"auth_type": "aws", "region": "r", "service": "s", "access_key_id": "k", "secret_key": SECRET,
          "algo_prefix": ""}, "algo_prefix", "Algorithm prefix is required for AWS authentication"),
        ({"auth_type": "aws", "region": "r", "service": "s", "access_key_id": "k", "secret_key": SECRET,
          "vendor_key": ""}, "vendor_key", "Vendor key is required for AWS authentication"),
        ({"auth_type": "aws-s3", "region": "r", "service": "s3", "access_key_id": "k", "secret_key": SECRET},
         "filename_format", "Filename format is required for AWS-S3 authentication"),
        ({"auth_type": "aws-s3", "region": "r", "service": "s3", "access_key_id": "k", "secret_key": SECRET,
          "filename_format": "{nope}.json"}, "filename_format", "nope"),
    ],
)
def test_each_rule_is_shown_next_to_its_field_and_nothing_is_saved(operator, change, field, message):
    response = operator.post("/settings/new", {**VALID, **change})
    page = html(response)
    assert response.status_code == 422
    errors = field_errors(page, field)
    assert errors and message.lower() in errors[0].lower(), f"{field}: {errors}"
    if field not in ("actions", "password", "secret_key"):  # those are fieldsets / write-only inputs
        assert f'aria-describedby="{field}-error' in input_tag(page, field)
    assert "Not saved: correct the fields marked below." in page
    assert endpoints() == []


def test_private_targets_are_refused_unless_the_installation_allows_them(app, operator):
    app.config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = False
    page = html(operator.post("/settings/new", {**VALID, "url": "http://127.0.0.1:9/hook"}))
    assert "loopback" in field_errors(page, "url")[0]


def test_proxy_can_be_ticked_when_the_installation_has_one(app, operator):
    app.config["WEBHOOKS_PROXY_URL"] = "http://proxy.internal:3128"
    assert operator.post("/settings/new", {**VALID, "use_proxy": "y"}).status_code == 302
    assert endpoints()[0].use_proxy is True


def test_a_page_with_errors_keeps_what_was_typed_and_counts_as_unsaved(operator):
    page = html(operator.post("/settings/new", {**VALID, "timeout": "61", "url": "http://127.0.0.1:9/typed"}))
    assert 'value="61"' in input_tag(page, "timeout") and 'value="http://127.0.0.1:9/typed"' in input_tag(page, "url")
    assert re.search(r"<form[^>]*data-warn-unsaved[^>]*data-dirty", page)


# Secrets are write-only


def test_secret_is_never_sent_back_blank_keeps_it_and_the_page_says_it_is_stored(operator):
    created = operator.post("/settings/new", {**VALID, "auth_type": "basic", "username": "bob", "password": SECRET})
    [endpoint] = endpoints()
    assert secret_is_stored(endpoint) == SECRET and SECRET not in endpoint.auth_secret_encrypted
    bodies = [created, operator.get(f"/settings/{endpoint.id}")]
    page = html(bodies[-1])
    assert "Stored" in page and 'placeholder="stored — leave blank to keep"' in page
    assert "value" not in input_tag(page, "password"), "a secret input carries no value attribute at all"

    bodies.append(operator.post(f"/settings/{endpoint.id}", {**VALID, "auth_type": "basic", "username": "bob2",
                                                             "password": ""}, follow_redirects=True))
    assert secret_is_stored(endpoint) == SECRET and endpoint.auth_username == "bob2"
    bodies.append(operator.post(f"/settings/{endpoint.id}", {**VALID, "auth_type": "basic", "username": "bob",
                                                             "password": SECRET, "timeout": "99"}))
    assert "Not saved yet: type it again" in html(bodies[-1])
    bodies.append(operator.post(f"/settings/{endpoint.id}/auth-fields", {"auth_type": "aws", "password": SECRET},
                                htmx=True))
    bodies.append(operator.get("/settings", follow_redirects=True))
    for response in bodies:
        assert SECRET not in html(response), response.request.path

    operator.post(f"/settings/{endpoint.id}", {**VALID, "auth_type": "basic", "username": "bob", "password": "new one"})
    assert secret_is_stored(endpoint) == "new one"


def test_a_stored_password_does_not_count_as_an_aws_secret(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", auth_type="basic", auth_username="bob", secret=SECRET)
    response = operator.post(f"/settings/{endpoint.id}", {**VALID, "auth_type": "aws", "region": "r", "service": "s",
                                                          "access_key_id": "k", "secret_key": ""})
    assert response.status_code == 422
    assert field_errors(html(response), "secret_key") == ["Access Key Secret is required for AWS authentication"]
    assert secret_is_stored(endpoint) == SECRET


# The authentication partial


def test_auth_fields_partial_is_only_the_fragment(operator):
    response = operator.post("/settings/new/auth-fields", {"auth_type": "basic"}, htmx=True)
    fragment = html(response).strip()
    assert response.status_code == 200
    assert fragment.startswith('<div id="auth-fields"') and fragment.endswith("</div>")
    assert "<html" not in fragment and "<nav" not in fragment and "<body" not in fragment
    assert 'name="username"' in fragment and 'type="password" id="password"' in fragment


def test_switching_auth_type_shows_that_types_fields_and_keeps_typed_values(operator):
    typed = {"username": "bob", "region": "eu-west-1", "service": "", "access_key_id": "AKID",
             "algo_prefix": "AWS4", "vendor_key": "Amz", "filename_format": "{event_id}.{ext}"}
    to_aws = html(operator.post("/settings/new/auth-fields", {**typed, "auth_type": "aws"}, htmx=True))
    assert 'type="text" value="eu-west-1"' in input_tag(to_aws, "region")
    assert input_tag(to_aws, "username") == '<input type="hidden" name="username" value="bob">'
    assert 'for="region"' in to_aws and 'for="username"' not in to_aws and 'for="filename_format"' not in to_aws

    carried = {name: re.search(r'value="([^"]*)"', input_tag(to_aws, name)).group(1) for name in typed}
    back = html(operator.post("/settings/new/auth-fields", {**carried, "auth_type": "basic"}, htmx=True))
    assert 'value="bob"' in input_tag(back, "username") and 'for="username"' in back
    assert input_tag(back, "region") == '<input type="hidden" name="region" value="eu-west-1">'
    assert 'for="password"' in back and 'for="secret_key"' not in back

    to_s3 = html(operator.post("/settings/new/auth-fields", {**carried, "auth_type": "aws-s3"}, htmx=True))
    assert 'value="s3"' in input_tag(to_s3, "service"), "aws-s3 suggests service s3"
    assert 'value="{event_id}.{ext}"' in input_tag(to_s3, "filename_format")
    assert 'for="algo_prefix"' not in to_s3


def test_secret_inputs_are_preserved_by_the_browser_not_echoed(operator):
    fragment = html(operator.post("/settings/new/auth-fields", {"auth_type": "basic"}, htmx=True))
    for name in ("password", "secret_key"):
        tag = re.search(rf'<input type="password" id="{name}"[^>]*>', fragment).group(0)
        assert "hx-preserve" in tag and "value" not in tag


def test_auth_type_select_swaps_the_fields_without_sending_secrets(operator):
    page = html(operator.get("/settings/new"))
    select = re.search(r'<select[^>]*name="auth_type"[^>]*>', page).group(0)
    assert 'hx-post="/settings/new/auth-fields"' in select and 'hx-target="#auth-fields"' in select
    assert 'hx-include="#auth-fields input:not([type=password])"' in select
    assert ('hx-params="auth_type,username,region,service,access_key_id,algo_prefix,vendor_key,filename_format"'
            in select), "typed secrets (and custom header values) are never sent to the partial"


# Enable, disable, delete


def test_toggle_disables_and_enables_an_endpoint(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Shop")
    response = operator.post(f"/settings/{endpoint.id}/toggle")
    assert response.status_code == 302 and endpoints()[0].enabled is False
    assert "Endpoint “Shop” disabled." in html(operator.get("/settings", follow_redirects=True))

    row = html(operator.post(f"/settings/{endpoint.id}/toggle", htmx=True)).strip()
    assert endpoints()[0].enabled is True
    assert row.startswith(f'<tr id="endpoint-{endpoint.id}">') and row.endswith("</tr>")
    assert "<nav" not in row and ">Disable</button>" in row and "Healthy" in row


def test_a_disabled_endpoint_gets_no_new_messages(app, operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    operator.post(f"/settings/{endpoint.id}/toggle")
    assert emit("checkout", "c1", {}).messages == []


def test_delete_asks_first_then_keeps_the_log(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Shop")
    event = emit("checkout", "c1", {"total": 1})
    done = Message(event_id=event.id, endpoint_id=endpoint.id, action="checkout", customer="c1", status="done")
    db.session.add(done)
    db.session.commit()

    confirm = html(operator.get(f"/settings/{endpoint.id}/delete"))
    assert "Delete endpoint “Shop”?" in confirm and "Its 2 log entries stay" in confirm and "1 queued message" in confirm
    assert endpoints()[0].deleted_at is None, "asking deletes nothing"

    response = operator.post(f"/settings/{endpoint.id}/delete", follow_redirects=True)
    assert "Endpoint “Shop” deleted. Its log entries stay in the Log." in html(response)
    assert endpoints()[0].deleted_at is not None
    statuses = sorted(db.session.scalars(db.select(Message.status).where(Message.endpoint_id == endpoint.id)))
    assert statuses == ["done", FAILED], "messages stay; the queued one will not be sent"
    assert operator.get(f"/settings/{endpoint.id}").status_code == 404
    assert operator.get("/settings").headers["Location"] == "/settings/new"


# The action catalogue


def test_actions_come_from_the_catalogue_with_readable_labels(app, operator):
    app.config["WEBHOOKS_ACTIONS"] = ("member_joined", "voucher.issued")
    page = html(operator.get("/settings/new"))
    assert re.findall(r'name="actions" value="([^"]+)"', page) == ["*", "member_joined", "voucher.issued"]
    assert "All actions" in page and "Member joined" in page and "Voucher issued" in page
    assert 'value="points_added"' not in page


# The Test button


@pytest.fixture
def receiver_202():
    with Receiver(status=202, response_body=b'{"accepted":true,"id":7}',
                  response_headers={"Content-Type": "application/json"}) as server:
        yield server


def test_test_button_sends_with_the_saved_settings_and_shows_request_and_response(operator, receiver_202):
    endpoint = make_endpoint(receiver_202.url, actions=["checkout"], auth_type="basic", auth_username="bob", secret=SECRET)
    page = html(operator.get(f"/settings/{endpoint.id}"))
    assert "with the <strong>saved</strong> settings" in page
    assert re.search(r'<option value="checkout" selected>Checkout</option>', page), "defaults to a selected action"

    response = operator.post(f"/settings/{endpoint.id}/test", {"action": "points_added"}, htmx=True)
    fragment = html(response).strip()
    [request] = receiver_202.wait_for(1)
    assert response.status_code == 200
    assert fragment.startswith('<section id="test-result"') and "<nav" not in fragment and "<html" not in fragment
    assert f"<code>POST {receiver_202.url}</code>" in fragment
    assert f"<th scope=\"row\">Webhook-Id</th><td>{request.header('Webhook-Id')}</td>" in fragment
    assert "Basic [redacted]" in fragment and request.header("Authorization") not in fragment and SECRET not in fragment
    assert '  &#34;action&#34;: &#34;points_added&#34;,' in fragment, "the JSON body is pretty-printed"
    assert '<span class="result-code">202</span>' in fragment and "<code>HTTP 202</code>" in fragment
    assert '  &#34;accepted&#34;: true,' in fragment, "so is a JSON response"
    [message] = db.session.scalars(db.select(Message)).all()
    assert message.is_test and message.action == "points_added" and message.response_code == 202
    assert f"message #{message.id}" in fragment


def test_test_button_shows_the_exact_error_when_there_is_no_response(operator):
    endpoint = make_endpoint(refused_url())
    fragment = html(operator.post(f"/settings/{endpoint.id}/test", {"action": "checkout"}, htmx=True))
    attempt = db.session.scalars(db.select(Attempt)).one()
    assert attempt.error and attempt.response_code is None
    assert f"<strong>Error:</strong> {attempt.error}" in fragment and "No response" in fragment


def test_test_button_refuses_an_action_outside_the_catalogue(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    response = operator.post(f"/settings/{endpoint.id}/test", {"action": "nope"}, htmx=True)
    assert response.status_code == 422 and "Choose an action from the catalogue" in html(response)
    assert db.session.scalars(db.select(Message)).all() == []


def test_test_button_works_without_javascript_too(operator, receiver_202):
    endpoint = make_endpoint(receiver_202.url)
    page = html(operator.post(f"/settings/{endpoint.id}/test", {"action": "checkout"}))
    assert "<nav" in page and '<span class="result-code">202</span>' in page
    assert '<option value="checkout" selected>' in page


def test_test_with_a_form_encoded_endpoint_shows_the_body_as_sent(operator, receiver_202):
    endpoint = make_endpoint(receiver_202.url, content_type="form")
    fragment = html(operator.post(f"/settings/{endpoint.id}/test", {"action": "checkout"}, htmx=True))
    [request] = receiver_202.wait_for(1)
    assert request.body.decode() in fragment.replace("&amp;", "&")
