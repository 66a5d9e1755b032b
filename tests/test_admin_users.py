"""Users page: create, role, disable, reset password, last login — each change audited."""

from __future__ import annotations

import pytest

from harmwatch.search import es_client
from review_ui.accounts import get_user
from review_ui.audit import search_records
from review_ui.indices import audit_alias
from tests.admin_support import admin_env, app, as_role, logins  # noqa: F401
from tests.ui_support import PASSWORD, login

pytestmark = pytest.mark.integration


def _actions(settings, target: str) -> list[str]:
    client = es_client(settings)
    client.indices.refresh(index=audit_alias(settings))
    return [r["action"] for r in search_records(client, settings, target=target)
            if r["action"].startswith("user_")]


def test_user_lifecycle(app, admin_env, logins):  # noqa: F811
    csrf = as_role(app, logins["admin"])
    form = {"csrf_token": csrf}
    created = app.post("/admin/users", data={**form, "username": "newbie", "password": PASSWORD,
                                             "role": "analyst", "locale": "en"})
    assert created.status_code == 303
    page = app.get("/admin/users").text
    assert 'id="user-newbie"' in page
    assert app.post("/admin/users/newbie/role", data={**form, "role": "liaison"}).status_code == 303
    assert get_user(es_client(admin_env), admin_env, "newbie").role == "liaison"
    new_password = "another-long-password"
    assert app.post("/admin/users/newbie/password",
                    data={**form, "password": new_password}).status_code == 303
    assert app.post("/admin/users/newbie/disable",
                    data={**form, "disabled": "true"}).status_code == 303
    assert get_user(es_client(admin_env), admin_env, "newbie").disabled
    assert app.post("/admin/users/newbie/disable",
                    data={**form, "disabled": "false"}).status_code == 303
    app.cookies.clear()
    login(app, "newbie", new_password)  # the reset password works, the account is enabled
    csrf = as_role(app, logins["admin"])
    rows = {u["username"]: u for u in app.get("/api/admin/users").json()}
    assert rows["newbie"]["last_login_at"] and rows["newbie"]["role"] == "liaison"
    assert _actions(admin_env, "newbie") == ["user_enable", "user_disable",
                                             "user_password_reset", "user_role", "user_create"]


def test_refusals(app, logins):  # noqa: F811
    csrf = as_role(app, logins["admin"])
    me = logins["admin"]
    headers = {"X-CSRF-Token": csrf}
    assert app.put(f"/api/admin/users/{me}", json={"disabled": True},
                   headers=headers).status_code == 400
    assert app.put(f"/api/admin/users/{me}", json={"role": "analyst"},
                   headers=headers).status_code == 400
    assert app.post("/api/admin/users", json={"username": "x!", "password": PASSWORD,
                                              "role": "analyst"}, headers=headers).status_code == 400
    assert app.post("/api/admin/users", json={"username": "shorty", "password": "short",
                                              "role": "analyst"}, headers=headers).status_code == 400
    assert app.put("/api/admin/users/ghost", json={"role": "analyst"},
                   headers=headers).status_code == 400


def test_disabling_ends_sessions(app, admin_env, logins):  # noqa: F811
    victim = logins["analyst"]
    store = app.app.state.sessions
    cookie, _ = store.create(victim, "test")
    assert store.load(cookie) is not None
    csrf = as_role(app, logins["admin"])
    assert app.put(f"/api/admin/users/{victim}", json={"disabled": True},
                   headers={"X-CSRF-Token": csrf}).status_code == 200
    assert store.load(cookie) is None
    app.put(f"/api/admin/users/{victim}", json={"disabled": False}, headers={"X-CSRF-Token": csrf})


def test_a_refused_password_says_why_to_the_admin(app, logins):  # noqa: F811
    """Issue 18.5: an admin creating or resetting an account with a weak password is told
    which rule refused it (and an admin account gets no exemption)."""
    csrf = as_role(app, logins["admin"])
    headers = {"X-CSRF-Token": csrf}
    created = app.post("/api/admin/users", headers=headers, json={
        "username": "weakadmin", "password": "password12", "role": "admin"})
    assert created.status_code == 400 and "most common passwords" in created.json()["detail"]
    reset = app.put(f"/api/admin/users/{logins['analyst']}", headers=headers,
                    json={"password": "\u200b" * 12})
    assert reset.status_code == 400
    assert "only spaces or invisible characters" in reset.json()["detail"]
