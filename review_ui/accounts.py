"""User accounts: argon2 password hashes, roles and per-user preferences, in Elasticsearch.

The username is the document id, so creating an account twice is refused by
Elasticsearch itself (``op_type=create``) rather than by a racy look-up first.
:func:`ensure_user` is what the demo and deployment scripts call to create the first
admin idempotently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from harmwatch.contract import utcnow
from harmwatch.search import es_client
from harmwatch.settings import Settings
from review_ui.indices import ensure_ui_indices, users_alias

Role = Literal["analyst", "liaison", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
LOCALES = ("vi", "en")
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
MIN_PASSWORD_LENGTH = 10
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")

# Wellness defaults: protect first, let each reviewer relax them.
DEFAULT_PREFS: dict[str, Any] = {
    "blur": True,
    "grayscale": True,
    "autoplay": False,
    "break_every": 20,
    "text_only_on_match": True,
}

_hasher = PasswordHasher()
# A fixed hash verified when the user does not exist, so timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing")


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message says why."""


@dataclass
class User:
    username: str
    role: str
    disabled: bool = False
    locale: str = "vi"
    timezone: str = DEFAULT_TIMEZONE
    prefs: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PREFS))
    last_login_at: str | None = None
    created_at: str | None = None

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> User:
        return cls(
            username=source["username"], role=source["role"],
            disabled=bool(source.get("disabled")), locale=source.get("locale") or "vi",
            timezone=source.get("timezone") or DEFAULT_TIMEZONE,
            prefs={**DEFAULT_PREFS, **(source.get("prefs") or {})},
            last_login_at=source.get("last_login_at"), created_at=source.get("created_at"),
        )


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def _validate_new(username: str, role: str, locale: str) -> None:
    if not USERNAME_RE.match(username):
        raise AccountError("username must be 2-63 of a-z 0-9 . _ - and start with a letter/digit")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if locale not in LOCALES:
        raise AccountError(f"locale must be one of {', '.join(LOCALES)}")


def create_user(
    client: Elasticsearch, settings: Settings, username: str, password: str, role: str,
    *, locale: str = "vi", created_by: str = "cli",
) -> User:
    """Create an account; refuses an existing username."""
    _validate_new(username, role, locale)
    validate_password(password)
    now = utcnow()
    doc = {
        "username": username, "password_hash": _hasher.hash(password), "role": role,
        "disabled": False, "locale": locale, "timezone": DEFAULT_TIMEZONE,
        "prefs": dict(DEFAULT_PREFS), "created_at": now, "created_by": created_by,
        "password_changed_at": now,
    }
    try:
        client.create(index=users_alias(settings), id=username, document=doc)
    except ConflictError as exc:
        raise AccountError(f"user {username!r} already exists") from exc
    return User.from_source(doc)


def get_user(client: Elasticsearch, settings: Settings, username: str) -> User | None:
    try:
        doc = client.get(index=users_alias(settings), id=username)
    except NotFoundError:
        return None
    return User.from_source(doc["_source"])


def authenticate(
    client: Elasticsearch, settings: Settings, username: str, password: str
) -> User | None:
    """The user if the password is right and the account enabled; rehashes old parameters."""
    try:
        doc = client.get(index=users_alias(settings), id=username)["_source"]
    except NotFoundError:
        _verify_quietly(_DUMMY_HASH, password)
        return None
    if not _verify_quietly(doc["password_hash"], password) or doc.get("disabled"):
        return None
    update: dict[str, Any] = {"last_login_at": utcnow()}
    if _hasher.check_needs_rehash(doc["password_hash"]):
        update["password_hash"] = _hasher.hash(password)
    client.update(index=users_alias(settings), id=username, doc=update)
    return User.from_source({**doc, **update})


def _verify_quietly(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def change_password(
    client: Elasticsearch, settings: Settings, username: str, old: str, new: str
) -> None:
    """Change a password after checking the old one (the caller ends other sessions)."""
    doc = client.get(index=users_alias(settings), id=username)["_source"]
    if not _verify_quietly(doc["password_hash"], old):
        raise AccountError("current password is wrong")
    set_password(client, settings, username, new)


def set_password(client: Elasticsearch, settings: Settings, username: str, new: str) -> None:
    """Set a password without the old one (admin reset, ``ensure_user``)."""
    validate_password(new)
    client.update(index=users_alias(settings), id=username,
                  doc={"password_hash": _hasher.hash(new), "password_changed_at": utcnow()})


def update_user(client: Elasticsearch, settings: Settings, username: str, **fields: Any) -> None:
    """Update role/disabled/locale/timezone/prefs of an existing account."""
    allowed = {"role", "disabled", "locale", "timezone", "prefs"}
    unknown = set(fields) - allowed
    if unknown:
        raise AccountError(f"cannot update {', '.join(sorted(unknown))}")
    if "role" in fields and fields["role"] not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if "locale" in fields and fields["locale"] not in LOCALES:
        raise AccountError(f"locale must be one of {', '.join(LOCALES)}")
    try:
        client.update(index=users_alias(settings), id=username, doc=fields)
    except NotFoundError as exc:
        raise AccountError(f"no user {username!r}") from exc


def list_users(client: Elasticsearch, settings: Settings) -> list[User]:
    """All accounts, by username (a programme has tens of reviewers, not thousands)."""
    client.indices.refresh(index=users_alias(settings))  # include accounts created just now
    hits = client.search(index=users_alias(settings), size=1000, sort=[{"username": "asc"}],
                         source_excludes=["password_hash"])["hits"]["hits"]
    return [User.from_source(h["_source"]) for h in hits]


def ensure_user(
    settings: Settings, username: str, password: str, role: str, *, locale: str = "vi"
) -> User:
    """Create the account, or reset its password/role/enabled state to the given ones.

    For deployment and the demo: running it twice leaves one account that logs in with
    ``password``.
    """
    client = es_client(settings)
    ensure_ui_indices(client, settings)
    existing = get_user(client, settings, username)
    if existing is None:
        return create_user(client, settings, username, password, role, locale=locale,
                           created_by="ensure_user")
    set_password(client, settings, username, password)
    update_user(client, settings, username, role=role, disabled=False)
    return get_user(client, settings, username)  # type: ignore[return-value]


DEMO_USERS = (("analyst", "analyst"), ("liaison", "liaison"), ("admin", "admin"))


def seed_demo_users(settings: Settings, password: str) -> list[User]:
    """One demo account per role (``analyst``, ``liaison``, ``admin``), all with ``password``."""
    return [ensure_user(settings, name, password, role) for name, role in DEMO_USERS]
