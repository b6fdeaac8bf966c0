"""Data that puts every screen in its fullest state, and the list of those screens, for the tests that
look at all of them (tests/test_operator_pages.py, tests/test_browser_a11y.py)."""
from __future__ import annotations

from dataclasses import dataclass

from tests.support.factories import make_endpoint
from tests.support.web import PASSWORD
from webapp.domain.users import create_user
from webapp.extensions import db
from webapp.storage.models import Attempt, Event, Message, response_class, utcnow

OTHER_OPERATOR = "colleague@example.com"


@dataclass
class Seeded:
    endpoint: int
    other_endpoint: int
    failed: int
    waiting: int
    done: int
    other_operator: int

    def pages(self) -> dict[str, str]:
        """Every screen an operator sees, by name: path."""
        return {
            "dashboard": "/dashboard", "dashboard of one endpoint": f"/dashboard?endpoint={self.endpoint}",
            "queue": "/queue", "endpoints": "/settings", "new endpoint": "/settings/new",
            "endpoint": f"/settings/{self.endpoint}", "delete endpoint": f"/settings/{self.endpoint}/delete",
            "log": "/log", "log filtered": "/log?code=5xx&customer=cust",
            "log older": f"/log?before={self.done}", "log bad filter": "/log?code=abc",
            "log empty filter": "/log?customer=nobody", "message": f"/log/{self.failed}",
            "message waiting": f"/log/{self.waiting}", "resend failed": "/log/resend-failed",
            "operators": "/operators", "remove operator": f"/operators/{self.other_operator}/remove",
            "change password": "/operators/password",
        }


def seed_every_screen() -> Seeded:
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Loyalty shop")
    other = make_endpoint("http://127.0.0.1:9/other", name="CRM partner", actions=("checkout",))
    made = {}
    for i, (status, code) in enumerate([("failed", 503), ("resent", None), ("done", 200)] + [("done", 200)] * 3):
        event = Event(id=f"evt{i:04d}", action="checkout", customer=f"customer-{i}", data_json='{"points": 10}')
        message = Message(event=event, endpoint_id=endpoint.id, action="checkout", customer=event.customer,
                          status=status, response_code=code, response_class=response_class(code), attempts=2,
                          last_attempt_at=utcnow(), next_attempt_at=utcnow() if status == "resent" else None)
        db.session.add_all([event, message])
        db.session.flush()
        made.setdefault(status, message.id)
        db.session.add(Attempt(message_id=message.id, number=1, started_at=utcnow(), duration_ms=12,
                               request_method="POST", request_url=endpoint.url,
                               request_headers_json='[["Content-Type", "application/json"]]', request_body='{"points": 10}',
                               response_code=code, response_headers_json='[["Content-Type", "text/plain"]]',
                               response_body="busy" if code == 503 else "ok"))
    db.session.commit()
    colleague = create_user(OTHER_OPERATOR, PASSWORD)
    return Seeded(endpoint=endpoint.id, other_endpoint=other.id, failed=made["failed"], waiting=made["resent"],
                  done=made["done"], other_operator=colleague.id)
