"""User accounts: argon2 password hashes, roles and per-user preferences, in Elasticsearch.

The username is the document id, so creating an account twice is refused by
Elasticsearch itself (``op_type=create``) rather than by a racy look-up first.
:func:`ensure_user` is what the demo and deployment scripts call to create the first
admin idempotently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
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


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional marker name
    """Mark a message for translation where it is defined; it is translated when shown."""
    return message


# Why a password is refused, in English; the UI shows them through gettext.
PASSWORD_REASONS: dict[str, str] = {
    "blank": N_("The password cannot be only spaces or invisible characters."),
    "too_short": N_("The password must be at least %(min)d visible characters."),
    "username": N_("The password must not contain the username."),
    "common": N_("The password is on the list of the most common passwords; choose another."),
}
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "common-passwords.txt"
# Characters that show nothing: controls, format characters (zero-width space, joiners,
# BOM, bidi marks), lone combining marks, and the Hangul and Braille blank letters.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


class PasswordRejected(AccountError):
    """A password the policy refuses; ``reason`` is a key of :data:`PASSWORD_REASONS`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.explain(lambda message: message))

    def explain(self, gettext: Callable[[str], str]) -> str:
        """The reason in the language of ``gettext`` (English by default)."""
        return gettext(PASSWORD_REASONS[self.reason]) % {"min": MIN_PASSWORD_LENGTH}


def _shows(char: str) -> bool:
    return unicodedata.category(char) not in _INVISIBLE_CATEGORIES and char not in _BLANK_LETTERS


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list (lower-cased), read once."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("# "))


def password_problem(password: str, username: str) -> str | None:
    """Why the policy refuses ``password`` for ``username`` (a reason key), or None.

    The one password policy, for every way a password is set (UI, API, CLI, demo):
    characters that show nothing do not count, so ten zero-width spaces are not a
    password; spaces count towards the length but a password cannot be only spaces; it
    may not contain the username, nor be one of the bundled most common passwords —
    both compared case-insensitively after Unicode (NFKC) normalisation.
    """
    visible = "".join(char for char in unicodedata.normalize("NFKC", password) if _shows(char))
    folded = visible.strip().casefold()
    if not folded:
        return "blank"
    if len(visible) < MIN_PASSWORD_LENGTH:
        return "too_short"
    if username and username.casefold() in folded:
        return "username"
    if folded in common_passwords():
        return "common"
    return None


def validate_password(password: str, username: str) -> None:
    """Raise :class:`PasswordRejected` (saying why) if the policy refuses the password."""
    problem = password_problem(password, username)
    if problem:
        raise PasswordRejected(problem)


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
    validate_password(password, username)
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
    validate_password(new, username)
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
