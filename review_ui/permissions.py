"""Which roles may reach which route — the one place authorisation is declared.

Every page and API route is named; :func:`review_ui.security.authorize` looks the name
up here on every request and refuses anything not listed (fail closed), so a route
added without an entry is unreachable rather than open. Pages added later (liaison
cases, admin tools) add their names here; the role x route test matrix reads this
table, so it covers them automatically.
"""

from __future__ import annotations

ANALYST, LIAISON, ADMIN = "analyst", "liaison", "admin"
EVERYONE = frozenset({ANALYST, LIAISON, ADMIN})
DECIDERS = frozenset({ANALYST, ADMIN})
ADMINS = frozenset({ADMIN})

# Routes anyone may reach, signed in or not. The OpenAPI description is not one of them:
# it maps every admin route, which an anonymous prober has no business reading.
PUBLIC_ROUTES = frozenset({"login_page", "login", "healthz", "static"})

ROUTE_ROLES: dict[str, frozenset[str]] = {
    # pages
    "home": EVERYONE,
    "logout": EVERYONE,
    "queue_page": EVERYONE,
    "queue_bulk": DECIDERS,
    "item_page": EVERYONE,
    "item_claim": DECIDERS,
    "item_release": DECIDERS,
    "item_decision": DECIDERS,
    "item_note": DECIDERS,
    "item_reveal": EVERYONE,
    "item_snapshot": EVERYONE,
    "media_preview": EVERYONE,
    "media_original": EVERYONE,
    "settings_page": EVERYONE,
    "settings_save": EVERYONE,
    "password_change": EVERYONE,
    "locale_switch": EVERYONE,
    "audit_page": ADMINS,
    "audit_export": ADMINS,
    # JSON API
    "api_me": EVERYONE,
    "api_settings": EVERYONE,
    "api_queue": EVERYONE,
    "api_item": EVERYONE,
    "api_claim": DECIDERS,
    "api_release": DECIDERS,
    "api_decision": DECIDERS,
    "api_note": DECIDERS,
    "api_reveal": EVERYONE,
    "api_bulk": DECIDERS,
    "api_audit": ADMINS,
    "api_audit_verify": ADMINS,
    "openapi": ADMINS,  # /api/openapi.json; FastAPI's /docs and /redoc are switched off
}

# Item statuses each role may see. Liaison officers work only on what analysts passed on.
VISIBLE_STATUSES: dict[str, tuple[str, ...]] = {
    ANALYST: ("new", "confirmed", "dismissed", "escalated"),
    ADMIN: ("new", "confirmed", "dismissed", "escalated"),
    LIAISON: ("escalated", "confirmed"),
}

# Item statuses each role may claim and decide. Escalations are resolved by admins.
DECIDABLE_STATUSES: dict[str, tuple[str, ...]] = {
    ANALYST: ("new",),
    ADMIN: ("new", "escalated"),
    LIAISON: (),
}


def allowed(route_name: str, role: str) -> bool:
    """Whether ``role`` may use the route named ``route_name`` (unknown routes: nobody)."""
    return route_name in PUBLIC_ROUTES or role in ROUTE_ROLES.get(route_name, frozenset())
