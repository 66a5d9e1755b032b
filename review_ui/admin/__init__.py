"""Admin tools: thresholds, hash banks, crawl sources, users, dashboard and reports.

One :data:`router` holds every admin page (``/admin/...``) and API (``/api/admin/...``).
Importing this package registers, in the UI's existing extension points:

* each route name as admin-only in :data:`review_ui.permissions.ROUTE_ROLES` — the one
  role mapping :func:`review_ui.security.authorize` reads, so the route matrix tests and
  the fail-closed gate cover the admin pages without a second permission system;
* the admin templates under the ``admin/`` prefix of the shared template environment, so
  :func:`review_ui.rendering.render` (navigation, CSRF token, gettext) is reused as is;
* one navigation entry, shown only to admins.
"""

from __future__ import annotations

from fastapi import APIRouter
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

from review_ui.admin import banks, dashboard, sources, thresholds, users
from review_ui.admin.common import TEMPLATE_DIR
from review_ui.permissions import ADMINS, ROUTE_ROLES
from review_ui.rendering import NAV, templates

MODULES = (dashboard, thresholds, banks, sources, users)

router = APIRouter()
for _module in MODULES:
    router.include_router(_module.router)

ADMIN_ROUTES: frozenset[str] = frozenset(
    route.name for module in MODULES for route in module.router.routes)


def _register() -> None:
    """Hook the admin pages into the UI's permission table, templates and navigation."""
    ROUTE_ROLES.update(dict.fromkeys(ADMIN_ROUTES, ADMINS))
    env = templates.env
    loader = env.loader
    present = isinstance(loader, ChoiceLoader) and any(
        isinstance(inner, PrefixLoader) and "admin" in inner.mapping for inner in loader.loaders)
    if not present:  # wrap, never replace: the liaison pages extend the UI's own loader
        env.loader = ChoiceLoader([loader,  # type: ignore[list-item]
                                   PrefixLoader({"admin": FileSystemLoader(TEMPLATE_DIR)})])
    if ("admin_dashboard", "Admin") not in NAV:
        NAV.append(("admin_dashboard", "Admin"))


_register()

__all__ = ["ADMIN_ROUTES", "MODULES", "router"]
