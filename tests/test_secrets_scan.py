"""After a real run with secrets configured, no secret is found anywhere we can look:
Redis (every key, every value, RQ's job payloads decompressed), job arguments, the
database's attempt rows, the export, and the worker's log."""
from __future__ import annotations

import base64
import zlib

import pytest
from redis import Redis

from tests.support.factories import final, make_endpoint
from tests.support.receiver import Receiver
from webapp.domain import signing_secrets
from webapp.domain.events import emit_many
from webapp.domain.logbook.export import stream
from webapp.domain.logbook.filters import LogFilter
from webapp.extensions import db
from webapp.storage.crypto import secret_box
from webapp.storage.models import Attempt

pytestmark = pytest.mark.db

PASSWORD = "basic-Pa55word-unique-7d1e"
AWS_SECRET = "aws-Secret-Key-unique-4c2b"
WHSEC_OLD = "whsec_" + base64.b64encode(b"scan-old-standard-webhooks-key!!").decode()
WHSEC_NEW = "whsec_" + base64.b64encode(b"scan-new-standard-webhooks-key!!").decode()
HEADER_SECRET = "header-Value-unique-5a9c"


def redis_dump(redis: Redis) -> bytes:
    """Every key and value, RQ's compressed job data expanded."""
    parts = []
    for key in redis.scan_iter("*"):
        parts.append(key)
        kind = redis.type(key)
        if kind == b"string":
            values = [redis.get(key)]
        elif kind == b"hash":
            values = [v for pair in redis.hgetall(key).items() for v in pair]
        elif kind == b"list":
            values = redis.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(redis.smembers(key))
        elif kind == b"zset":
            values = [member for member, _ in redis.zrange(key, 0, -1, withscores=True)]
        else:
            values = []
        for value in values:
            parts.append(value)
            try:
                parts.append(zlib.decompress(value))
            except (zlib.error, TypeError):
                pass
    return b"\n".join(parts)


def rendered_pages(client, message_ids: list[int], endpoint_ids: list[int]) -> bytes:
    """Every page an operator can open about these messages and endpoints, and the API's views."""
    from tests.support.web import Operator
    from webapp.domain.tokens import create_token

    operator = Operator(client).create().login()
    paths = ["/log", "/log?status=done", "/settings", "/log/export.csv", "/log/export.psv"]
    paths += [f"/log/{i}" for i in message_ids] + [f"/settings/{i}" for i in endpoint_ids]
    pages = [operator.get(path).get_data() for path in paths]
    token = {"Authorization": f"Bearer {create_token('scan')}"}
    pages += [client.get(f"/api/v1/messages/{i}", headers=token).get_data() for i in message_ids]
    pages.append(client.get("/api/v1/endpoints", headers=token).get_data())
    return b"\n".join(pages)


def test_no_secret_in_redis_jobs_database_export_pages_or_logs(app, client, start_worker, redis_server):
    with Receiver(fail_first=2) as receiver:
        make_endpoint(receiver.url, auth_type="basic", auth_username="shop", secret=PASSWORD, actions=["checkout"])
        make_endpoint(receiver.url, auth_type="aws", auth_region="eu-west-1", auth_service="execute-api",
                      auth_access_key_id="AKIDSCAN", auth_algo_prefix="AWS4", auth_vendor_key="Amz",
                      secret=AWS_SECRET, actions=["checkout"])
        signed = make_endpoint(receiver.url, auth_type="hmac", secret=WHSEC_OLD, actions=["checkout"])
        signed.custom_headers = [{"name": "X-Api-Key", "value": secret_box().encrypt(HEADER_SECRET), "secret": True}]
        signing_secrets.rotate(signed, WHSEC_NEW, window_hours=24)  # both secrets sign
        db.session.commit()
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(3)])
        queued = redis_dump(Redis.from_url(redis_server.url))  # the wake-up job, before a worker takes it
        worker = start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "5"})
        receiver.wait_for(9)
        dump = queued + redis_dump(Redis.from_url(redis_server.url))
        for event in events:
            for message in event.messages:
                final(message.id, timeout=30)

        basic_token = base64.b64encode(f"shop:{PASSWORD}".encode())
        forbidden = [PASSWORD.encode(), AWS_SECRET.encode(), basic_token, WHSEC_OLD.encode(), WHSEC_NEW.encode(),
                     HEADER_SECRET.encode()]
        forbidden += [part.encode() for r in receiver.requests if r.header("Webhook-Signature")
                      for part in r.header("Webhook-Signature").split(" ")]  # the signatures sent
        assert len(forbidden) > 6 and all(r.header("X-Api-Key") == HEADER_SECRET for r in receiver.requests
                                          if r.header("Webhook-Signature")), "the scan looks for what was sent"
        assert b"rq:job:" in dump and b"webapp.jobs.deliver" in dump, "the scan saw RQ's jobs"
        attempts = db.session.scalars(db.select(Attempt)).all()
        stored = "\n".join(
            f"{a.request_url} {a.request_headers_json} {a.request_body} {a.response_headers_json} {a.response_body} {a.error}"
            for a in attempts
        ).encode()
        assert b"Basic [redacted]" in stored and b"Signature=[redacted]" in stored
        assert b"v1,[redacted] v1,[redacted]" in stored and b'"X-Api-Key", "[redacted]"' in stored
        export = "".join(stream(LogFilter(), "csv")).encode() + "".join(stream(LogFilter(), "psv")).encode()
        logs = worker.output().encode()
        message_ids = [m.id for e in events for m in e.messages]
        pages = rendered_pages(client, message_ids, sorted({m.endpoint_id for e in events for m in e.messages}))
        assert b"Basic [redacted]" in pages, "the scan saw the attempts' views"
        for secret in forbidden:
            for place, text in (("redis", dump), ("attempts", stored), ("export", export), ("worker log", logs),
                                ("pages", pages)):
                assert secret not in text, f"{secret!r} found in {place}"
