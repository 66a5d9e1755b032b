"""Accounts, sessions, CSRF, throttling and the full role x route matrix of the review UI."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute

from review_ui import api, pages
from review_ui.accounts import AccountError, authenticate, create_user, get_user, update_user
from review_ui.permissions import PUBLIC_ROUTES, ROUTE_ROLES, allowed
from review_ui.security import SESSION_COOKIE
from tests.ui_support import PASSWORD, login, login_token, new_user, seed_one, ui_client

pytestmark = pytest.mark.integration

ROLES = ("analyst", "liaison", "admin")


MINE = {route.name for router in (pages.router, api.router) for route in router.routes}


def _walk(routes, prefix=""):
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's included routers
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield prefix, route


def _routes(app) -> list[tuple[str, str, str]]:
    """(name, method, path) of every page and API route of the whole app.

    Routes added by the liaison and admin pages are included, so the matrix covers them.
    """
    return [(route.name, method, prefix + route.path) for prefix, route in _walk(app.routes)
            for method in sorted(route.methods - {"HEAD"})]


@pytest.fixture(scope="module")
def app_client(services):
    with ui_client(services) as client:
        yield client


@pytest.fixture(scope="module")
def item(services):
    return seed_one(services, media=[b"\x89PNG\r\n\x1a\n" + b"0" * 32], snapshot=b"<p>x</p>")


def test_every_route_is_in_the_permissions_table(app_client):
    names = {name for name, _, _ in _routes(app_client.app)}
    assert names - set(ROUTE_ROLES) - PUBLIC_ROUTES == set()
    assert set(ROUTE_ROLES) - names == set(), "stale entries in ROUTE_ROLES"


def _request(client, method, path, item_id, headers):
    url = re.sub(r"\{[a-z_]+\}", "x", path.replace("{item_id}", item_id).replace("{index}", "0"))
    if method == "GET":
        return client.get(url, headers=headers)
    if url.startswith("/api/"):
        return client.request(method, url, headers=headers, json={})
    return client.request(method, url, headers=headers, data={})


@pytest.mark.parametrize("role", ROLES)
def test_role_route_matrix(services, app_client, item, role):
    """Each role is refused exactly the routes the permissions table does not give it."""
    username = new_user(services, role)
    store = app_client.app.state.sessions
    app_client.cookies.clear()
    failures = []
    session = store.create(username, "testclient")
    for name, method, path in _routes(app_client.app):
        if name in PUBLIC_ROUTES:
            continue
        # Signing out ends the session, so that route gets one of its own.
        cookie, csrf = store.create(username, "testclient") if name == "logout" else session
        response = _request(app_client, method, path, item["item_id"],
                            {"X-CSRF-Token": csrf, "Cookie": f"{SESSION_COOKIE}={cookie}"})
        denied = response.status_code == 403 and "may not" in response.text
        crashed = response.status_code == 500 and name in MINE
        if denied == allowed(name, role) or response.status_code == 401 or crashed:
            failures.append((name, method, response.status_code))
    app_client.cookies.clear()
    assert failures == []


def test_signed_out_requests_are_sent_to_login(app_client, item):
    app_client.cookies.clear()
    for name, method, path in _routes(app_client.app):
        if name in PUBLIC_ROUTES:
            continue
        response = _request(app_client, method, path, item["item_id"], {})
        if path.startswith("/api/"):
            assert response.status_code in (401, 422), (name, response.status_code)
        else:
            assert response.status_code in (303, 422), (name, response.status_code)
            if response.status_code == 303:
                assert response.headers["location"].startswith("/login?next=")


def _set_cookie(response, name: str) -> str | None:
    for key, value in response.headers.multi_items():
        if key == "set-cookie" and value.startswith(f"{name}="):
            return value.split(";", 1)[0].split("=", 1)[1]
    return None


def test_login_rotates_the_session_id(services, app_client):
    """A session id planted before sign-in is never the one used after (no fixation)."""
    username = new_user(services, "analyst")
    store = app_client.app.state.sessions
    planted, _ = store.create(new_user(services, "analyst"), "attacker")
    app_client.cookies.clear()
    page = app_client.get("/login")
    login_cookie = _set_cookie(page, "hw_login")
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    app_client.cookies.clear()
    response = app_client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": form_token},
        headers={"Cookie": f"hw_login={login_cookie}; {SESSION_COOKIE}={planted}"})
    assert response.status_code == 303
    after = _set_cookie(response, SESSION_COOKIE)
    assert after and after != planted
    assert store.load(planted) is None, "the old session must be deleted at login"
    assert store.load(after) is not None


def test_session_cookie_flags(services, app_client):
    username = new_user(services, "analyst")
    response = app_client.post("/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": login_token(app_client)})
    header = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith(SESSION_COOKIE))
    assert "HttpOnly" in header and "SameSite=strict" in header.replace("Strict", "strict")
    assert "Secure" not in header  # ui_secure_cookies is off in tests
    app_client.cookies.clear()


def test_secure_cookie_setting(services):
    with ui_client(services.model_copy(update={"ui_secure_cookies": True})) as client:
        username = new_user(services, "analyst")
        response = client.post("/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": login_token(client)})
        assert "Secure" in response.headers["set-cookie"]


def test_csrf_is_required_on_forms_and_api(services, app_client, item):
    username = new_user(services, "analyst")
    csrf = login(app_client, username)
    url = f"/api/items/{item['item_id']}/notes"
    assert app_client.post(url, json={"text": "x"}).status_code == 403
    assert app_client.post(url, json={"text": "x"},
                           headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert app_client.post(f"/items/{item['item_id']}/notes",
                           data={"text": "x", "csrf_token": "forged"}).status_code == 403
    cross_site = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    assert app_client.post(url, json={"text": "x"}, headers=cross_site).status_code == 403
    assert app_client.post(url, json={"text": "x"},
                           headers={"X-CSRF-Token": csrf}).status_code == 200
    app_client.cookies.clear()


def test_login_form_needs_its_token(services, app_client):
    username = new_user(services, "analyst")
    response = app_client.post("/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": "made-up"})
    assert response.status_code == 403
    assert SESSION_COOKIE not in app_client.cookies


def test_failed_logins_are_throttled(services):
    username = new_user(services, "analyst")
    with ui_client(services) as client:
        for _ in range(5):
            response = client.post("/login", data={"username": username, "password": "wrong!",
                                                   "csrf_token": login_token(client)})
            assert response.status_code == 401
        response = client.post("/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": login_token(client)})
        assert response.status_code == 429, "the right password is refused while throttled"


def test_the_throttle_is_shared_by_every_ui_process_and_reset_by_a_login(services):
    """Two apps stand for two UI workers: failures on either count for both."""
    username = new_user(services, "analyst")

    def attempt(client, password: str) -> int:
        return client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": login_token(client)}).status_code

    with ui_client(services) as first, ui_client(services) as second:
        assert [attempt(first, "wrong!") for _ in range(2)] == [401, 401]
        assert attempt(second, PASSWORD) == 303  # a success starts the count again
        assert [attempt(first, "wrong!") for _ in range(3)] == [401] * 3
        assert [attempt(second, "wrong!") for _ in range(2)] == [401, 401]
        assert attempt(first, PASSWORD) == 429
        assert attempt(second, PASSWORD) == 429


def test_logout_ends_the_session(services, app_client):
    username = new_user(services, "analyst")
    csrf = login(app_client, username)
    cookie = app_client.cookies.get(SESSION_COOKIE)
    assert app_client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    app_client.cookies.set(SESSION_COOKIE, cookie)
    assert app_client.get("/api/me").status_code == 401
    app_client.cookies.clear()


def test_password_change_ends_other_sessions(services, app_client):
    username = new_user(services, "analyst")
    with ui_client(services) as other:
        login(other, username)
        csrf = login(app_client, username)
        response = app_client.post("/settings/password", data={
            "csrf_token": csrf, "current_password": PASSWORD,
            "new_password": "a-new-long-password"})
        assert response.headers["location"] == "/settings?saved=password"
        assert other.get("/api/me").status_code == 401
        assert app_client.get("/api/me").status_code == 200
    client, settings = app_client.app.state.es, services
    assert authenticate(client, settings, username, "a-new-long-password")
    assert not authenticate(client, settings, username, PASSWORD)
    app_client.cookies.clear()


def test_wrong_current_password_is_refused(services, app_client):
    username = new_user(services, "analyst")
    csrf = login(app_client, username)
    response = app_client.post("/settings/password", data={
        "csrf_token": csrf, "current_password": "nope-nope-nope", "new_password": "x" * 12})
    assert response.headers["location"] == "/settings?error=wrong_password"
    app_client.cookies.clear()


def test_disabled_user_is_signed_out_and_cannot_log_in(services, app_client):
    username = new_user(services, "analyst")
    login(app_client, username)
    update_user(app_client.app.state.es, services, username, disabled=True)
    assert app_client.get("/api/me").status_code == 401
    response = app_client.post("/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": login_token(app_client)})
    assert response.status_code == 401
    app_client.cookies.clear()


def test_accounts_validate_and_hash(services, app_client):
    client = app_client.app.state.es
    with pytest.raises(AccountError):
        create_user(client, services, "Bad Name", PASSWORD, "analyst")
    with pytest.raises(AccountError):
        create_user(client, services, "shortpw", "short", "analyst")
    with pytest.raises(AccountError):
        create_user(client, services, "badrole", PASSWORD, "root")
    username = new_user(services, "admin")
    with pytest.raises(AccountError, match="exists"):
        create_user(client, services, username, PASSWORD, "admin")
    stored = client.get(index=f"{services.es_index_prefix}-users", id=username)["_source"]
    assert stored["password_hash"].startswith("$argon2id$")
    assert get_user(client, services, username).role == "admin"


def test_open_redirects_are_refused(services, app_client):
    username = new_user(services, "analyst")
    response = app_client.post("/login", data={
        "username": username, "password": PASSWORD, "csrf_token": login_token(app_client),
        "next": "//evil.example/x"})
    assert response.headers["location"] == "/queue"
    app_client.cookies.clear()


def test_login_page_language(app_client):
    page = app_client.get("/login?lang=vi")
    assert "Đăng nhập" in page.text
    assert re.search(r'<html lang="vi">', page.text)
    assert "English" in app_client.get("/login").text  # the other language is offered


def test_expired_sessions_are_purged(services, app_client):
    from datetime import timedelta

    from harmwatch.contract import utcnow
    from review_ui.indices import sessions_alias

    store = app_client.app.state.sessions
    es = app_client.app.state.es
    es.index(index=sessions_alias(services), id="stale-session", refresh=True, document={
        "user": "nobody", "csrf": "x", "created_at": utcnow() - timedelta(days=2),
        "expires_at": utcnow() - timedelta(days=1), "ip": None, "reveals": 0})
    assert store.purge_expired() >= 1
    assert not es.exists(index=sessions_alias(services), id="stale-session")


@pytest.fixture
def cli(services, monkeypatch, tmp_path):
    """``harmwatch``'s main, with settings pointing at the test session's indices."""
    from harmwatch.cli import main
    from harmwatch.settings import get_settings

    monkeypatch.setenv("HARMWATCH_ES_INDEX_PREFIX", services.es_index_prefix)
    monkeypatch.setenv("HARMWATCH_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield main
    get_settings.cache_clear()


def test_users_cli(services, cli, capsys):
    name = f"cli-{new_user(services, 'analyst')}"
    assert cli(["users", "create", name, "--role", "liaison", "--password", PASSWORD]) == 0
    assert cli(["users", "create", name, "--role", "liaison", "--password", PASSWORD]) == 1
    assert cli(["users", "create", name, "--role", "admin", "--password", PASSWORD,
                "--if-missing"]) == 0
    assert cli(["users", "disable", name]) == 0
    assert cli(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"{re.escape(name)}\s+liaison\s+disabled", out)
    assert cli(["audit", "verify"]) == 0


def _parallel_logins(app, attempts: list[tuple[str, str]], ip: str = "testclient") -> list[int]:
    """Send the (username, password) attempts at once, one thread and client each."""
    import threading

    from fastapi.testclient import TestClient

    clients = [TestClient(app, follow_redirects=False, client=(ip, 50000)) for _ in attempts]
    tokens = [login_token(client) for client in clients]
    start = threading.Barrier(len(attempts))
    statuses: list[int] = [0] * len(attempts)

    def attempt(i: int) -> None:
        username, password = attempts[i]
        start.wait()
        statuses[i] = clients[i].post("/login", data={
            "username": username, "password": password, "csrf_token": tokens[i]}).status_code

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(attempts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_parallel_wrong_passwords_get_at_most_the_limit_of_password_checks(services):
    """Issue 18.3: 20 parallel wrong-password logins to one account all got a password
    check (401) although the limit is 5: the attempt must be counted before the check."""
    username = new_user(services, "analyst")
    with ui_client(services) as client:
        statuses = _parallel_logins(client.app, [(username, "wrong-password!")] * 20,
                                    ip=f"10.18.3.{uuid.uuid4().int % 250 + 1}")
    assert statuses.count(401) <= 5, statuses
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 15


def test_parallel_logins_from_one_address_get_at_most_its_limit(services):
    """Issue 18.3: one address reached 42 failures against a limit of 30 in parallel."""
    ip = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    run = uuid.uuid4().hex[:6]
    with ui_client(services) as client:
        statuses = _parallel_logins(client.app, [(f"nobody-{run}-{i}", "wrong-password!")
                                                 for i in range(40)], ip=ip)
    assert statuses.count(401) <= 30, statuses
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 10


WEAK = [(" " * 10, "blank"), ("\u200b" * 10, "blank"), ("\u200b\u00a0\u2060\ufeff" * 3, "blank"),
        ("a" + "\u200b" * 9, "too_short"), ("password12", "common"), ("PassWord12", "common"),
        ("qwertyuiop", "common"), ("1234567890", "common")]


@pytest.mark.parametrize("role", ["analyst", "admin"])
@pytest.mark.parametrize(("password", "reason"), WEAK)
def test_weak_passwords_are_refused_with_the_reason(services, app_client, role, password,
                                                     reason):
    """Issue 18.5: only length was checked, so blank, invisible and common passwords were
    accepted, admins included."""
    from review_ui.accounts import PasswordRejected

    client = app_client.app.state.es
    name = f"weak-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PasswordRejected) as refused:
        create_user(client, services, name, password, role)
    assert refused.value.reason == reason
    assert get_user(client, services, name) is None


def test_a_password_containing_the_username_is_refused(services, app_client):
    from review_ui.accounts import PasswordRejected, set_password

    client = app_client.app.state.es
    name = f"sysadmin{uuid.uuid4().hex[:6]}"
    for password in (name, name.upper(), f"my-{name}-2026"):
        with pytest.raises(PasswordRejected, match="username"):
            create_user(client, services, name, password, "admin")
    existing = new_user(services, "admin")
    with pytest.raises(PasswordRejected, match="username"):
        set_password(client, services, existing, f"{existing}!!")
    assert authenticate(client, services, existing, PASSWORD), "the old password still works"


def test_the_settings_page_says_why_a_new_password_is_refused(services, app_client):
    username = new_user(services, "analyst")
    csrf = login(app_client, username)
    response = app_client.post("/settings/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": "password12"},
        follow_redirects=True)
    assert "on the list of the most common passwords" in response.text
    response = app_client.post("/settings/password", data={
        "csrf_token": csrf, "current_password": PASSWORD, "new_password": " " * 12},
        follow_redirects=True)
    assert "cannot be only spaces or invisible characters" in response.text
    assert authenticate(app_client.app.state.es, services, username, PASSWORD)
    app_client.cookies.clear()


def test_the_cli_says_why_a_password_is_refused(cli, capsys):
    name = f"cli-weak-{uuid.uuid4().hex[:6]}"
    assert cli(["users", "create", name, "--role", "admin", "--password", "password12"]) == 1
    assert "most common passwords" in capsys.readouterr().err
    assert cli(["users", "create", name, "--role", "admin", "--password", "\u200b" * 12]) == 1
    assert "only spaces or invisible characters" in capsys.readouterr().err
