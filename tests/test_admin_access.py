"""Every admin page and API: admin-only (403 for analysts and liaison officers), and audited."""

from __future__ import annotations

import pytest

from review_ui.admin import ADMIN_ROUTES, MODULES
from review_ui.permissions import ADMINS, ROUTE_ROLES
from tests.admin_support import admin_env, app, as_role, logins  # noqa: F401

pytestmark = pytest.mark.integration

PARAMS = {"{category}": "grooming", "{name}": "confirmed", "{source_id}": "demo-forum",
          "{username}": "nobody", "{job_id}": "abc"}
PAGES = ("/admin", "/admin/thresholds", "/admin/banks", "/admin/sources", "/admin/users")


def _routes() -> list[tuple[str, str, str]]:
    found = []
    for module in MODULES:
        for route in module.router.routes:
            path = route.path
            for placeholder, value in PARAMS.items():
                path = path.replace(placeholder, value)
            found += [(route.name, method, path) for method in sorted(route.methods - {"HEAD"})]
    return found


def test_the_permission_table_names_exactly_the_apps_routes():
    """One static table, read whole: every named route of the app has its roles there, no
    entry names a route that does not exist, and importing the UI's packages adds none."""
    from review_ui.app import create_app
    from review_ui.permissions import PUBLIC_ROUTES

    before = dict(ROUTE_ROLES)
    ui = create_app()
    names = set(_route_names(ui.routes)) - PUBLIC_ROUTES
    assert names == set(ROUTE_ROLES), (names ^ set(ROUTE_ROLES))
    assert before == ROUTE_ROLES


def _route_names(routes) -> list[str]:
    """Named routes, through included routers (FastAPI wraps each as ``original_router``)."""
    names = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            names += _route_names(inner.routes)
        elif getattr(route, "name", None):
            names.append(route.name)
    return names


def test_every_admin_route_is_admin_only():
    assert {name for name, _, _ in _routes()} == ADMIN_ROUTES
    assert all(ROUTE_ROLES[name] == ADMINS for name in ADMIN_ROUTES)


@pytest.mark.parametrize("role", ["analyst", "liaison"])
def test_non_admins_are_refused_everything(app, logins, role):  # noqa: F811
    csrf = as_role(app, logins[role])
    refused = []
    for name, method, path in _routes():
        response = app.request(method, path, headers={"X-CSRF-Token": csrf},
                               **({"json": {}} if path.startswith("/api/") and method != "GET"
                                  else {}))
        if response.status_code != 403:
            refused.append((name, method, response.status_code))
    assert refused == []
    nav = app.get("/queue").text
    assert 'href="/admin"' not in nav


def test_signed_out_is_sent_to_login(app):  # noqa: F811
    app.cookies.clear()
    for _, method, path in _routes():
        response = app.request(method, path)
        expected = 401 if path.startswith("/api/") else 303
        assert response.status_code in (expected, 422), (path, response.status_code)


def test_every_admin_page_renders_for_admins(app, logins):  # noqa: F811
    as_role(app, logins["admin"])
    for path in PAGES:
        response = app.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert 'class="admin-tabs"' in response.text
        assert "<script>" not in response.text and " style=" not in response.text  # CSP
    assert 'href="/admin"' in app.get("/queue").text
