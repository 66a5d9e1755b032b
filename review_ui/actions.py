"""What a signed-in user does, with its audit record: shared by the pages and the JSON API.

Each function pairs one review operation with the audit record it owes, so the HTML
form and the API call of the same action can never differ in what they record. Reading
actions (a view, a reveal) are recorded *before* the content is returned; writing
actions right after their conditional write succeeded.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elasticsearch import ApiError, TransportError

from harmwatch.blobstore import get_blob_store
from review_ui import accounts, errors, review
from review_ui.banking import add_confirmed_hashes
from review_ui.context import Ctx
from review_ui.evidence import atrest


def view_item(ctx: Ctx, item_id: str) -> dict[str, Any]:
    source = review.get_item(ctx.client, ctx.settings, item_id, ctx.role)
    ctx.record("item_view", item_id, status=source.get("status"))
    return source


def claim(ctx: Ctx, item_id: str) -> dict[str, Any]:
    held = review.claim(ctx.client, ctx.settings, item_id, ctx.username, ctx.role)
    ctx.record("claim", item_id, expires_at=held["expires_at"])
    return held


def release(ctx: Ctx, item_id: str) -> None:
    review.release(ctx.client, ctx.settings, item_id, ctx.username, ctx.role)
    ctx.record("release", item_id)


def decide(ctx: Ctx, item_id: str, decision: review.Decision) -> dict[str, Any]:
    """Decide; a confirmation also feeds the item's image hashes to the confirmed bank and
    seals its media and snapshot at rest, as they are now evidence.

    The decision is already stored when those run, so a failure in either must not prevent
    the decision's audit record: it is recorded alongside, for an admin to re-run
    (``harmwatch evidence seal`` seals whatever a failure left in plaintext).
    """
    stored = review.decide(ctx.client, ctx.settings, item_id, ctx.username, ctx.role, decision)
    follow_up: dict[str, Any] = {}
    if stored["status"] == "confirmed":
        source = review.get_item(ctx.client, ctx.settings, item_id, ctx.role)
        follow_up = {**_feed_confirmed_bank(ctx, source, stored), **_seal_evidence(ctx, source)}
    ctx.record("decision", item_id, status=stored["status"], category=stored["category"],
               severity=stored["severity"], note=stored["note"], **follow_up)
    return stored


def _seal_evidence(ctx: Ctx, source: dict[str, Any]) -> dict[str, Any]:
    try:
        sealed = atrest.seal_item(get_blob_store(ctx.settings, ctx.client), source)
    except (OSError, RuntimeError, ApiError, TransportError) as exc:
        return {"seal_error": f"{type(exc).__name__}: {exc}"}
    if sealed:
        ctx.record("evidence_seal", source["item_id"], blobs=sealed)
    return {"blobs_sealed": sealed}


def _feed_confirmed_bank(ctx: Ctx, source: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """Add the hashes; a bank failure is reported in the audit record, not lost with it."""
    try:
        return {"bank_entries_added": add_confirmed_hashes(ctx.settings, {**source,
                                                                           "decision": stored})}
    except (ValueError, OSError, sqlite3.Error) as exc:
        return {"bank_error": f"{type(exc).__name__}: {exc}"}


def add_note(ctx: Ctx, item_id: str, text: str) -> dict[str, Any]:
    note = review.add_note(ctx.client, ctx.settings, item_id, ctx.username, ctx.role, text)
    ctx.record("note", item_id, text=note["text"])
    return note


@dataclass
class RevealResult:
    reveals_this_session: int
    break_every: int

    @property
    def break_due(self) -> bool:
        every = self.break_every
        return every > 0 and self.reveals_this_session % every == 0


def reveal(ctx: Ctx, item_id: str, index: int) -> RevealResult:
    """Record that this user is about to see one media file in full, and count it."""
    source = review.get_item(ctx.client, ctx.settings, item_id, ctx.role)
    entry = review.media_entry(source, index)
    ctx.record("media_reveal", item_id, media_index=index, sha256=entry.get("sha256"))
    review.record_reveal(ctx.client, ctx.settings, item_id, ctx.username, ctx.role, index)
    count = ctx.sessions.count_reveal(ctx.principal.session_id)
    return RevealResult(count, int(ctx.principal.user.prefs.get("break_every") or 0))


@dataclass
class BulkResult:
    done: list[str]
    failed: dict[str, str]


def bulk_decide(ctx: Ctx, item_ids: list[str], decision: review.Decision) -> BulkResult:
    """Claim and decide each item in turn; one failure does not stop the others."""
    decision.validate()
    result = BulkResult([], {})
    for item_id in dict.fromkeys(item_ids):
        try:
            claim(ctx, item_id)
            decide(ctx, item_id, decision)
            result.done.append(item_id)
        except (errors.Conflict, errors.NotVisible) as exc:
            result.failed[item_id] = str(exc) or "not found"
    return result


def save_settings(ctx: Ctx, prefs: dict[str, Any], locale: str, timezone: str) -> None:
    """Save a user's preferences and record what changed (shared with the API)."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Asia" is a folder
        raise errors.ReviewError(f"unknown time zone {timezone!r}") from exc
    user = ctx.principal.user
    before = {"prefs": user.prefs, "locale": user.locale, "timezone": user.timezone}
    after = {"prefs": {**user.prefs, **prefs}, "locale": locale, "timezone": timezone}
    try:
        accounts.update_user(ctx.client, ctx.settings, user.username, **after)
    except accounts.AccountError as exc:
        raise errors.ReviewError(str(exc)) from exc
    ctx.record("settings_change", user.username, before=before, after=after)
