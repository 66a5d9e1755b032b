"""Admin tools: thresholds, hash banks, crawl sources, users, dashboard and reports.

One :data:`router` holds every admin page (``/admin/...``) and API (``/api/admin/...``).
Their roles are declared, with every other route's, in the static table
:data:`review_ui.permissions.ROUTE_ROLES`; their templates are the ``admin/`` prefix of
the one template environment (:mod:`review_ui.rendering`), and their navigation entry is
in its ``NAV``. Importing this package changes nothing elsewhere.
"""

from __future__ import annotations

from fastapi import APIRouter

from review_ui.admin import banks, dashboard, sources, thresholds, users

MODULES = (dashboard, thresholds, banks, sources, users)

router = APIRouter()
for _module in MODULES:
    router.include_router(_module.router)

ADMIN_ROUTES: frozenset[str] = frozenset(
    route.name for module in MODULES for route in module.router.routes)


__all__ = ["ADMIN_ROUTES", "MODULES", "router"]
