"""The review UI's own Elasticsearch indices: users, sessions, sign-in counters, audit.

They follow the same convention as :mod:`harmwatch.documents` — a versioned index behind
an alias (``<prefix>-users`` → ``<prefix>-users-v1``) — so a mapping change is a new
version plus a reindex, never an in-place edit. Kept here rather than in ``harmwatch/``
because only the review UI (and the liaison/admin pages built on it) read them.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from harmwatch.documents import ensure_indices, ensure_versioned_index
from harmwatch.settings import Settings

USERS_VERSION = 1
SESSIONS_VERSION = 1
AUDIT_VERSION = 1
THROTTLE_VERSION = 1

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}
_OPAQUE = {"type": "object", "enabled": False}

USERS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": USERS_VERSION},
    "properties": {
        "username": _KEYWORD,
        "password_hash": {"type": "keyword", "index": False, "doc_values": False},
        "role": _KEYWORD,
        "disabled": {"type": "boolean"},
        "locale": _KEYWORD,
        "timezone": _KEYWORD,
        "prefs": _OPAQUE,
        "created_at": _DATE,
        "created_by": _KEYWORD,
        "password_changed_at": _DATE,
        "last_login_at": _DATE,
    },
}

SESSIONS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": SESSIONS_VERSION},
    "properties": {
        "user": _KEYWORD,
        "csrf": {"type": "keyword", "index": False, "doc_values": False},
        "created_at": _DATE,
        "expires_at": _DATE,
        "ip": _KEYWORD,
        "reveals": {"type": "integer"},
    },
}

AUDIT_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": AUDIT_VERSION},
    "properties": {
        "seq": {"type": "long"},
        "at": _DATE,
        "actor": _KEYWORD,
        "role": _KEYWORD,
        "action": _KEYWORD,
        "target": _KEYWORD,
        "ip": _KEYWORD,
        "user_agent": {"type": "keyword", "index": False},
        "details": _OPAQUE,
        "prev_hash": _KEYWORD,
        "hash": _KEYWORD,
    },
}

# One counter per account and per address: sign-in attempts in the current window.
THROTTLE_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": THROTTLE_VERSION},
    "properties": {"scope": _KEYWORD, "count": {"type": "integer"}, "window_start": _DATE},
}

# The head document only remembers the newest record, as a hint for appenders.
AUDIT_HEAD_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {"seq": {"type": "long"}, "hash": _KEYWORD, "at": _DATE},
}


def users_alias(settings: Settings) -> str:
    return settings.index_name("users")


def sessions_alias(settings: Settings) -> str:
    return settings.index_name("sessions")


def audit_alias(settings: Settings) -> str:
    return settings.index_name("audit")


def throttle_alias(settings: Settings) -> str:
    return settings.index_name("login-throttle")


def audit_head_alias(settings: Settings) -> str:
    return settings.index_name("audit-head")


def ensure_audit_indices(client: Elasticsearch, settings: Settings) -> None:
    """Idempotently create the audit chain's indices (for tools that only write audit)."""
    ensure_versioned_index(client, audit_alias(settings), AUDIT_VERSION, AUDIT_MAPPING, shards=1)
    ensure_versioned_index(client, audit_head_alias(settings), 1, AUDIT_HEAD_MAPPING, shards=1)


def ensure_ui_indices(client: Elasticsearch, settings: Settings) -> None:
    """Idempotently create every index the UI reads or writes (including ``items``)."""
    ensure_indices(client, settings)
    ensure_versioned_index(client, users_alias(settings), USERS_VERSION, USERS_MAPPING,
                            shards=1)
    ensure_versioned_index(client, sessions_alias(settings), SESSIONS_VERSION,
                            SESSIONS_MAPPING, shards=1)
    ensure_versioned_index(client, throttle_alias(settings), THROTTLE_VERSION,
                            THROTTLE_MAPPING, shards=1)
    ensure_audit_indices(client, settings)
