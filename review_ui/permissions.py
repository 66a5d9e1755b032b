"""Which roles may reach which route — the one place authorisation is declared.

Every page and API route is named; :func:`review_ui.security.authorize` looks the name
up here on every request and refuses anything not listed (fail closed), so a route
added without an entry is unreachable rather than open. The table is static — every
package's routes (review, API, liaison cases, admin tools) are listed here and nothing
edits it at run time; a test checks it names exactly the app's routes, and the role x
route test matrix reads it whole.
"""

from __future__ import annotations

ANALYST, LIAISON, ADMIN = "analyst", "liaison", "admin"
EVERYONE = frozenset({ANALYST, LIAISON, ADMIN})
DECIDERS = frozenset({ANALYST, ADMIN})
ADMINS = frozenset({ADMIN})
CASE_ROLES = frozenset({LIAISON, ADMIN})  # police liaison work, and admins overseeing it

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
    # liaison: cases and evidence packs (review_ui/evidence/routes.py)
    "cases_page": CASE_ROLES,
    "case_create": CASE_ROLES,
    "case_page": CASE_ROLES,
    "case_add_items": CASE_ROLES,
    "case_remove_items": CASE_ROLES,
    "case_status": CASE_ROLES,
    "case_export": CASE_ROLES,
    "evidence_verify_page": CASE_ROLES,
    "evidence_verify": CASE_ROLES,
    "evidence_public_key": CASE_ROLES,
    "evidence_key_page": ADMINS,
    # admin tools (review_ui/admin/)
    "admin_bank_entries": ADMINS,
    "admin_bank_entries_state": ADMINS,
    "admin_bank_export": ADMINS,
    "admin_bank_import": ADMINS,
    "admin_bank_lookup": ADMINS,
    "admin_bank_state": ADMINS,
    "admin_bank_thresholds": ADMINS,
    "admin_banks": ADMINS,
    "admin_dashboard": ADMINS,
    "admin_report_chart": ADMINS,
    "admin_report_csv": ADMINS,
    "admin_report_pdf": ADMINS,
    "admin_source_add": ADMINS,
    "admin_source_edit": ADMINS,
    "admin_source_enable": ADMINS,
    "admin_source_run": ADMINS,
    "admin_sources": ADMINS,
    "admin_thresholds": ADMINS,
    "admin_thresholds_histogram": ADMINS,
    "admin_thresholds_pr": ADMINS,
    "admin_thresholds_save": ADMINS,
    "admin_user_create": ADMINS,
    "admin_user_disable": ADMINS,
    "admin_user_password": ADMINS,
    "admin_user_role": ADMINS,
    "admin_users": ADMINS,
    "api_admin_bank_import": ADMINS,
    "api_admin_bank_lookup": ADMINS,
    "api_admin_bank_state": ADMINS,
    "api_admin_bank_thresholds": ADMINS,
    "api_admin_banks": ADMINS,
    "api_admin_report": ADMINS,
    "api_admin_source_add": ADMINS,
    "api_admin_source_edit": ADMINS,
    "api_admin_source_enable": ADMINS,
    "api_admin_source_run": ADMINS,
    "api_admin_source_run_status": ADMINS,
    "api_admin_sources": ADMINS,
    "api_admin_thresholds": ADMINS,
    "api_admin_thresholds_preview": ADMINS,
    "api_admin_thresholds_save": ADMINS,
    "api_admin_user_change": ADMINS,
    "api_admin_user_create": ADMINS,
    "api_admin_users": ADMINS,
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
