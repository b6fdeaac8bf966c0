"""The README's "Verifying our webhooks" examples, run as written against real deliveries: each code
block is taken from README.md, executed, and its ``verify`` answers a real receiver on 127.0.0.1
that a worker delivers to; with the right secret every message is accepted, with a wrong one refused."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from requests.structures import CaseInsensitiveDict

from tests.support.factories import final, make_endpoint
from tests.support.receiver import Receiver
from webapp.domain.events import emit
from webapp.storage.statuses import DONE, FAILED

pytestmark = pytest.mark.db

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)\n```", re.DOTALL)
WHSEC = "whsec_" + base64.b64encode(b"readme-example-secret-bytes-012345").decode()
OTHER_WHSEC = "whsec_" + base64.b64encode(b"another-secret-entirely-0123456789").decode()

# Per example: the endpoint's settings, the receiver's environment, and the same with a wrong secret.
CASES = {
    "standard-webhooks": (
        {"auth_type": "hmac", "secret": WHSEC},
        {"WEBHOOK_SECRET": WHSEC}, {"WEBHOOK_SECRET": OTHER_WHSEC}),
    "basic": (
        {"auth_type": "basic", "auth_username": "shop", "secret": "pässword-1"},
        {"WEBHOOK_USERNAME": "shop", "WEBHOOK_PASSWORD": "pässword-1"},
        {"WEBHOOK_USERNAME": "shop", "WEBHOOK_PASSWORD": "password-1"}),
    "aws": (
        {"auth_type": "aws", "auth_region": "eu-west-1", "auth_service": "execute-api",
         "auth_access_key_id": "AKIDREADME", "auth_algo_prefix": "AWS4", "auth_vendor_key": "Amz",
         "secret": "aws-readme-secret"},
        {"WEBHOOK_ACCESS_KEY_ID": "AKIDREADME", "WEBHOOK_SECRET_KEY": "aws-readme-secret",
         "WEBHOOK_REGION": "eu-west-1", "WEBHOOK_SERVICE": "execute-api"},
        {"WEBHOOK_ACCESS_KEY_ID": "AKIDREADME", "WEBHOOK_SECRET_KEY": "not-the-secret",
         "WEBHOOK_REGION": "eu-west-1", "WEBHOOK_SERVICE": "execute-api"}),
}


def examples() -> dict[str, str]:
    return {found["name"]: found["code"] for found in EXAMPLE.finditer(README.read_text(encoding="utf-8"))}


def receiver_of(code: str, env: dict, monkeypatch) -> Receiver:
    """A receiver that answers 200 when the README's ``verify`` accepts the request, else 401."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    verify = namespace["verify"]

    def answer(request):
        url = f"http://{request.header('Host')}{request.path}"
        accepted = verify(request.method, url, request.body, CaseInsensitiveDict(request.headers))
        return (200, {}, b"verified") if accepted else (401, {}, b"refused")

    return Receiver(handler=answer)


def test_the_readme_has_an_example_for_each_type():
    assert set(examples()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("content_type", ["json", "form"])
def test_readme_example_accepts_our_deliveries_and_refuses_a_wrong_secret(app, start_worker, monkeypatch, name,
                                                                          content_type):
    settings, good_env, bad_env = CASES[name]
    code = examples()[name]
    with receiver_of(code, good_env, monkeypatch) as good, receiver_of(code, bad_env, monkeypatch) as bad:
        make_endpoint(good.url + "?tenant=a%20b", content_type=content_type, **settings)
        make_endpoint(bad.url, content_type=content_type, **settings)
        start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "1"})
        event = emit("checkout", "cust-1", {"total": 12.5, "note": "ünïcödé & = ?"})
        accepted, refused = (final(m.id) for m in event.messages)
        assert accepted.status == DONE and accepted.response_code == 200
        assert refused.status == FAILED and refused.response_code == 401
        assert [r.status for r in good.requests] == [200] and [r.status for r in bad.requests] == [401]
