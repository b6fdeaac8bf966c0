"""The Operators screen: add and remove operators, change one's own password; sessions end; CSRF; rate limit."""
from __future__ import annotations

import pytest

from tests.support.web import PASSWORD, FreshContextClient, Operator, login
from webapp.domain.users import count, create_user
from webapp.extensions import db
from webapp.storage.models import OperatorSession, User

pytestmark = pytest.mark.db

NEW_PASSWORD = "a brand new passphrase"


def text(response) -> str:
    return response.get_data(as_text=True)


def second_browser(app, email: str, password: str = PASSWORD) -> Operator:
    client = app.test_client()
    return Operator(client, email, password).login()


def user_id(email: str) -> int:
    return db.session.scalar(db.select(User.id).where(User.email == email))


def test_an_operator_adds_another_who_can_log_in(operator, app):
    page = operator.get("/operators")
    assert page.status_code == 200 and operator.email in text(page) and "Add an operator" in text(page)
    done = operator.post("/operators", {"email": " New@Example.com ", "password": "long enough pw"})
    assert done.status_code == 302 and done.headers["Location"] == "/operators"
    assert "Operator new@example.com added" in text(operator.get("/operators"))
    second_browser(app, "new@example.com", "long enough pw")


@pytest.mark.parametrize("form, field, says", [
    ({"email": "", "password": "long enough pw"}, "email", "E-mail is required"),
    ({"email": "not-an-address", "password": "long enough pw"}, "email", "must be an e-mail address"),
    ({"email": "a@example.com", "password": "short"}, "password", "must be at least 8 characters"),
    ({"email": "operator@example.com", "password": "long enough pw"}, "email", "already exists"),
    ({"email": "a\x00b@example.com", "password": "long enough pw"}, "email", "control character"),
    ({"email": "a@example.com"}, "password", "Password is required"),
])
def test_a_bad_new_operator_is_refused_beside_the_field_and_nothing_is_written(operator, form, field, says):
    response = operator.post("/operators", form)
    assert response.status_code == 422
    assert f'id="{field}-error"' in text(response) and says in text(response)
    assert count() == 1


def test_adding_needs_the_csrf_token(operator, client):
    response = client.post("/operators", data={"email": "x@example.com", "password": "long enough pw"})
    assert response.status_code == 400 and count() == 1


def test_removing_an_operator_ends_their_sessions(operator, app):
    create_user("other@example.com", PASSWORD)
    other = second_browser(app, "other@example.com")
    other_id = user_id("other@example.com")
    assert "Remove operator other@example.com?" in text(operator.get(f"/operators/{other_id}/remove"))
    done = operator.post(f"/operators/{other_id}/remove")
    assert done.status_code == 302 and count() == 1
    assert "1 open session(s) of theirs ended" in text(operator.get("/operators"))
    assert other.get("/log").status_code == 302, "their browser is logged out at once"
    assert db.session.scalar(db.select(db.func.count()).select_from(OperatorSession)) == 1


def test_nobody_removes_themselves_or_the_last_operator(operator):
    me = user_id(operator.email)
    assert f"/operators/{me}/remove" not in text(operator.get("/operators")), "no Remove button on one's own row"
    for attempt in (operator.get(f"/operators/{me}/remove"), operator.post(f"/operators/{me}/remove")):
        assert attempt.status_code == 422 and "you cannot remove yourself" in text(attempt)
    assert count() == 1 and operator.get("/log").status_code == 200
    assert operator.post("/operators/999999/remove").status_code == 404


def test_changing_ones_password_keeps_this_browser_and_logs_out_the_others(operator, app):
    elsewhere = second_browser(app, operator.email)
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
    done = operator.post("/operators/password", form)
    assert done.status_code == 302
    page = operator.get("/operators")
    assert page.status_code == 200 and "Password changed. 1 other session(s) of yours were logged out." in text(page)
    assert elsewhere.get("/log").status_code == 302
    fresh = app.test_client()
    assert login(fresh, operator.email, PASSWORD).status_code == 200, "the old password no longer works"
    assert login(fresh, operator.email, NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize("form, field, says", [
    ({"current_password": "wrong password", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
     "current_password", "Current password is not your current password"),
    ({"current_password": PASSWORD, "new_password": "short", "repeat_password": "short"},
     "new_password", "New password must be at least 8 characters"),
    ({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD + "x"},
     "repeat_password", "must be the same as the new password"),
    ({"new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}, "current_password", "is required"),
])
def test_a_bad_password_change_is_refused_beside_the_field(operator, form, field, says):
    before = db.session.scalar(db.select(User.password_hash))
    response = operator.post("/operators/password", form)
    assert response.status_code == 422
    assert f'id="{field}-error"' in text(response) and says in text(response)
    db.session.rollback()
    assert db.session.scalar(db.select(User.password_hash)) == before
    assert operator.get("/log").status_code == 200, "still logged in"


def test_password_attempts_are_rate_limited_like_the_login(app):
    from webapp import create_app

    limited = create_app({"TESTING": True, "WEBHOOKS_LOGIN_RATE_LIMIT": "3/minute"})  # ``app`` emptied Redis
    limited.test_client_class = FreshContextClient
    with limited.app_context():
        operator = Operator(limited.test_client(), "limited@example.com").create().login()
        wrong = {"current_password": "wrong guess!", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
        answers = [operator.post("/operators/password", wrong).status_code for _ in range(4)]
        assert answers == [422, 422, 422, 429]
        right = {**wrong, "current_password": PASSWORD}
        blocked = operator.post("/operators/password", right)
        assert blocked.status_code == 429 and "Too many attempts" in text(blocked)
        db.session.rollback()
        assert operator.get("/log").status_code == 200
