"""Sessions, CSRF, login throttling and the one authorisation dependency.

* The session cookie holds only a random id, signed with the UI secret; the session
  itself (user, CSRF token, reveal counter, expiry) lives in Elasticsearch, so logout and
  password changes end sessions for real and several UI processes share them.
* A fresh id is issued at every login (no session fixation) and the old one deleted.
* State-changing requests carry the session's CSRF token — a ``csrf_token`` form field
  or an ``X-CSRF-Token`` header — compared in constant time; a cross-site ``Origin`` is
  refused as well. The login form uses a signed double-submit cookie instead.
* :func:`authorize` runs on every route; it reads :mod:`review_ui.permissions`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from elasticsearch import ConflictError, Elasticsearch, NotFoundError
from fastapi import Request
from itsdangerous import BadSignature, Signer
from starlette.concurrency import run_in_threadpool

from harmwatch.contract import utcnow
from harmwatch.settings import Settings
from review_ui import i18n
from review_ui.accounts import User, get_user
from review_ui.audit import Actor
from review_ui.indices import sessions_alias, throttle_alias
from review_ui.permissions import PUBLIC_ROUTES, allowed

SESSION_COOKIE = "hw_session"
LOGIN_COOKIE = "hw_login"
LANGUAGE_COOKIE = "hw_lang"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_HOURS = 10
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):  # noqa: N818 - it is a control-flow signal, not an error
    """No valid session: pages redirect to the login form, the API answers 401."""


class Forbidden(Exception):  # noqa: N818
    """Signed in, but this role may not do this (or the CSRF check failed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Principal:
    """The signed-in user of one request."""

    user: User
    session_id: str
    csrf: str
    reveals: int
    ip: str | None
    user_agent: str | None

    @property
    def actor(self) -> Actor:
        return Actor(self.user.username, self.user.role, self.ip, self.user_agent)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def anonymous_actor(request: Request, username: str) -> Actor:
    return Actor(username, None, client_ip(request), request.headers.get("user-agent"))


class SessionStore:
    """Server-side sessions in Elasticsearch, addressed by a signed cookie."""

    def __init__(self, client: Elasticsearch, settings: Settings, secret: str) -> None:
        self.client, self.settings = client, settings
        self.signer = Signer(secret, salt="harmwatch.session")
        self.login_signer = Signer(secret, salt="harmwatch.login-csrf")

    def create(self, username: str, ip: str | None) -> tuple[str, str]:
        """A new session for ``username``: (cookie value, CSRF token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        self.client.index(index=sessions_alias(self.settings), id=session_id,
                          document={"user": username, "csrf": csrf, "created_at": now,
                                    "expires_at": now + timedelta(hours=SESSION_HOURS),
                                    "ip": ip, "reveals": 0})
        return self.signer.sign(session_id).decode(), csrf

    def load(self, cookie: str | None) -> tuple[str, dict[str, Any]] | None:
        """(session id, session) for a valid, unexpired cookie, else None."""
        session_id = self.unsign(cookie)
        if session_id is None:
            return None
        try:
            source = self.client.get(index=sessions_alias(self.settings), id=session_id)["_source"]
        except NotFoundError:
            return None
        if source["expires_at"] <= utcnow().isoformat():
            self.delete(session_id)
            return None
        return session_id, source

    def unsign(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self.signer.unsign(cookie).decode()
        except BadSignature:
            return None

    def delete(self, session_id: str) -> None:
        self.client.options(ignore_status=404).delete(index=sessions_alias(self.settings),
                                                      id=session_id)

    def delete_for_user(self, username: str, keep: str | None = None) -> None:
        """End every session of a user except ``keep`` (after a password change)."""
        self.client.indices.refresh(index=sessions_alias(self.settings))  # see new sessions
        hits = self.client.search(index=sessions_alias(self.settings), size=1000,
                                  query={"term": {"user": username}}, source=False)
        for hit in hits["hits"]["hits"]:
            if hit["_id"] != keep:
                self.delete(hit["_id"])

    def purge_expired(self, batch: int = 200) -> int:
        """Delete up to ``batch`` expired sessions (run at sign-in; no delete_by_query here).

        The minimal Elasticsearch distribution has no delete-by-query, so expired sessions
        are found by search and deleted one by one, a bounded batch per sign-in.
        """
        hits = self.client.search(
            index=sessions_alias(self.settings), size=batch, source=False,
            query={"range": {"expires_at": {"lt": utcnow().isoformat()}}})["hits"]["hits"]
        for hit in hits:
            self.delete(hit["_id"])
        return len(hits)

    def count_reveal(self, session_id: str) -> int:
        """Add one to the session's revealed-media counter and return the new count.

        A conditional write (``if_seq_no``) so two tabs revealing at once both count.
        """
        for _ in range(20):
            doc = self.client.get(index=sessions_alias(self.settings), id=session_id)
            count = int(doc["_source"].get("reveals", 0)) + 1
            try:
                self.client.update(index=sessions_alias(self.settings), id=session_id,
                                   doc={"reveals": count}, if_seq_no=doc["_seq_no"],
                                   if_primary_term=doc["_primary_term"])
                return count
            except ConflictError:
                continue
        raise RuntimeError("the session's reveal counter is under too much contention")

    def login_token(self) -> tuple[str, str]:
        """(cookie value, form token) of the pre-login double-submit CSRF pair."""
        token = secrets.token_urlsafe(24)
        return self.login_signer.sign(token).decode(), token

    def check_login_token(self, cookie: str | None, form_token: str | None) -> bool:
        if not cookie or not form_token:
            return False
        try:
            expected = self.login_signer.unsign(cookie).decode()
        except BadSignature:
            return False
        return hmac.compare_digest(expected, form_token)


class LoginThrottle:
    """Fixed-window limit on sign-in attempts, per account and per address.

    Each attempt is counted *before* its password is checked, by an atomic increment of
    a counter document in Elasticsearch (a conditional write on ``if_seq_no`` /
    ``if_primary_term``, retried on conflict): so N parallel attempts get N distinct
    counts and at most the limit of them reach the password check, every UI process and
    host shares the count, and a restart does not reset it. A successful sign-in gives its
    attempt back: the account's count restarts and the address's goes down by one, so
    the counts are of failed (and refused) attempts.
    """

    def __init__(self, client: Elasticsearch, settings: Settings, per_user: int = 5,
                 per_ip: int = 30, window_s: float = 900) -> None:
        self.client, self.settings = client, settings
        self.per_user, self.per_ip, self.window_s = per_user, per_ip, window_s

    def attempt(self, username: str, ip: str | None) -> bool:
        """Count one attempt for the address and the account; False when over a limit."""
        if self._add(_counter_id("ip", ip or ""), 1) > self.per_ip:
            return False
        return self._add(_counter_id("user", username), 1) <= self.per_user

    def succeeded(self, username: str, ip: str | None) -> None:
        """A right password: the account starts again, the address's attempt is given back."""
        self._add(_counter_id("user", username), None)
        self._add(_counter_id("ip", ip or ""), -1)

    def _add(self, counter: str, delta: int | None) -> int:
        """Add ``delta`` (``None``: reset to 0) to a counter atomically; the new count.

        A counter whose window has passed starts again from 0 first.
        """
        index = throttle_alias(self.settings)
        for _ in range(100):
            try:
                doc = self.client.get(index=index, id=counter)
            except NotFoundError:
                doc = None
            fresh = doc is None or self._expired(doc["_source"])
            before = 0 if fresh else int(doc["_source"]["count"])  # type: ignore[index]
            count = 0 if delta is None else max(0, before + delta)
            body = {"scope": counter.split("-", 1)[0], "count": count,
                    "window_start": utcnow().isoformat() if fresh
                    else doc["_source"]["window_start"]}  # type: ignore[index]
            try:
                if doc is None:
                    self.client.create(index=index, id=counter, document=body)
                else:
                    self.client.index(index=index, id=counter, document=body,
                                      if_seq_no=doc["_seq_no"],
                                      if_primary_term=doc["_primary_term"])
                return count
            except ConflictError:
                time.sleep(random.uniform(0, 0.02))  # noqa: S311 - jitter, not a secret
        raise RuntimeError("the sign-in counter is under too much contention")

    def _expired(self, counter: dict[str, Any]) -> bool:
        started = datetime.fromisoformat(counter["window_start"])
        return utcnow() - started >= timedelta(seconds=self.window_s)

    def purge_stale(self, batch: int = 200) -> int:
        """Delete up to ``batch`` counters whose window has passed (run at sign-in).

        Each delete is conditional on the version the search saw, so a counter an attempt
        has just started again is never deleted under it.
        """
        index = throttle_alias(self.settings)
        cutoff = (utcnow() - timedelta(seconds=self.window_s)).isoformat()
        hits = self.client.search(index=index, size=batch, source=False,
                                  seq_no_primary_term=True, query={
                                      "range": {"window_start": {"lt": cutoff}}})["hits"]["hits"]
        for hit in hits:
            self.client.options(ignore_status=(404, 409)).delete(
                index=index, id=hit["_id"], if_seq_no=hit["_seq_no"],
                if_primary_term=hit["_primary_term"])
        return len(hits)


def _counter_id(scope: str, value: str) -> str:
    """A counter's document id: hashed, as usernames and addresses can be any length."""
    return f"{scope}-{hashlib.sha256(value.encode()).hexdigest()}"


def anonymous_language(request: Request) -> str:
    """Language before sign-in: the last one chosen on this browser, else Accept-Language."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in i18n.LANGUAGES:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else i18n.DEFAULT_LANGUAGE


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


async def _csrf_token_sent(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def authorize(request: Request) -> Principal | None:
    """Every route's gate: session, role (from the permissions table) and CSRF."""
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    if name in PUBLIC_ROUTES:
        i18n.set_language(anonymous_language(request))
        return None
    store: SessionStore = request.app.state.sessions
    loaded = await run_in_threadpool(store.load, request.cookies.get(SESSION_COOKIE))
    if loaded is None:
        raise LoginRequired()
    session_id, session = loaded
    user = await run_in_threadpool(get_user, store.client, store.settings, session["user"])
    if user is None or user.disabled:
        await run_in_threadpool(store.delete, session_id)
        raise LoginRequired()
    i18n.set_language(user.locale)
    if name is None or not allowed(name, user.role):
        raise Forbidden("role")
    if request.method not in SAFE_METHODS:
        sent = await _csrf_token_sent(request)
        if not sent or not hmac.compare_digest(sent, session["csrf"]) or not _same_origin(
                request):
            raise Forbidden("csrf")
    principal = Principal(user, session_id, session["csrf"], int(session.get("reveals", 0)),
                          client_ip(request), request.headers.get("user-agent"))
    request.state.principal = principal
    return principal


def current(request: Request) -> Principal:
    """The principal :func:`authorize` put on the request (routes that need a user)."""
    return request.state.principal
