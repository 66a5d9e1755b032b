"""The JSON API (``/api/...``): the same session and roles as the pages.

Authentication is the session cookie set by ``POST /login``; every POST/PUT also needs the
session's CSRF token in the ``X-CSRF-Token`` header (``GET /api/me`` returns it). The
OpenAPI description is served at ``/api/openapi.json``, to signed-in admins only.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from harmwatch.contract import Category
from review_ui import actions, audit, review
from review_ui.actions import save_settings
from review_ui.context import Ctx

router = APIRouter(prefix="/api", tags=["review"])

ItemId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class Prefs(BaseModel):
    blur: bool = True
    grayscale: bool = True
    autoplay: bool = False
    break_every: int = Field(20, ge=0, le=1000)
    text_only_on_match: bool = True


class Me(BaseModel):
    username: str
    role: str
    locale: str
    timezone: str
    prefs: dict[str, Any]
    csrf_token: str = Field(description="Send as X-CSRF-Token on every POST/PUT.")
    reveals_this_session: int


class SettingsIn(BaseModel):
    locale: Literal["vi", "en"]
    timezone: str = Field("Asia/Ho_Chi_Minh", max_length=64)
    prefs: Prefs


class QueueItem(BaseModel):
    item_id: str
    source: str | None = None
    language: str | None = None
    author: dict[str, Any] | None = None
    title: str | None = None
    excerpt: str = ""
    url: str | None = None
    top_category: str | None = None
    max_score: float | None = None
    has_match: bool | None = None
    match_severity: int | None = None
    urgent: bool = Field(False, description="On the self-harm path: act first (call 111).")
    risk: float | None = None
    crawled_at: str | None = None
    status: str | None = None
    media_count: int | None = None
    claim: dict[str, Any] | None = None


class QueueOut(BaseModel):
    items: list[QueueItem]
    total: int
    total_is_exact: bool
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class ClaimOut(BaseModel):
    user: str
    expires_at: str


class DecisionIn(BaseModel):
    action: Literal["confirm", "dismiss", "escalate"]
    category: Category | None = None
    severity: Literal["low", "medium", "high", "critical"] | None = None
    note: str | None = Field(None, max_length=5000)


class DecisionOut(BaseModel):
    status: str
    user: str
    at: str
    category: str | None = None
    severity: str | None = None
    note: str | None = None


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=5000)


class NoteOut(BaseModel):
    user: str
    at: str
    text: str


class RevealOut(BaseModel):
    reveals_this_session: int
    break_due: bool
    original_url: str


class BulkIn(DecisionIn):
    item_ids: list[ItemId] = Field(min_length=1, max_length=200)


class BulkOut(BaseModel):
    done: list[str]
    failed: dict[str, str]


class AuditRecord(BaseModel):
    seq: int
    at: str
    actor: str
    role: str | None = None
    action: str
    target: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = {}
    prev_hash: str
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None


def _decision(body: DecisionIn) -> review.Decision:
    return review.Decision(body.action, body.category, body.severity, body.note)


@router.get("/me", name="api_me", response_model=Me)
def me(request: Request) -> Me:
    principal = Ctx.of(request).principal
    user = principal.user
    return Me(username=user.username, role=user.role, locale=user.locale,
              timezone=user.timezone, prefs=user.prefs, csrf_token=principal.csrf,
              reveals_this_session=principal.reveals)


@router.put("/me/settings", name="api_settings", response_model=Me)
def put_settings(request: Request, body: SettingsIn) -> Me:
    ctx = Ctx.of(request)
    save_settings(ctx, body.prefs.model_dump(), body.locale, body.timezone)
    ctx.principal.user.prefs.update(body.prefs.model_dump())
    ctx.principal.user.locale, ctx.principal.user.timezone = body.locale, body.timezone
    return me(request)


@router.get("/queue", name="api_queue", response_model=QueueOut)
def queue(
    request: Request,
    category: Category | None = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    language: Annotated[str | None, Query(max_length=20)] = None,
    status: Literal["new", "confirmed", "dismissed", "escalated"] | None = None,
    date_from: date | None = None, date_to: date | None = None,
    assignee: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    size: Annotated[int, Query(ge=1, le=200)] = review.PAGE_SIZE,
) -> QueueOut:
    ctx = Ctx.of(request)
    page = review.search_queue(ctx.client, ctx.settings, review.QueueFilters(
        category, source, language, status, date_from, date_to, assignee, q, cursor, size),
        ctx.role, ctx.username)
    return QueueOut(items=[QueueItem(**_queue_fields(i)) for i in page.items],
                    total=page.total, total_is_exact=page.total_is_exact,
                    next_cursor=page.next_cursor)


def _queue_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in QueueItem.model_fields}


@router.get("/items/{item_id}", name="api_item")
def item(request: Request, item_id: ItemId) -> dict[str, Any]:
    """The item document (without the stored analysed copy); the view is audited."""
    return actions.view_item(Ctx.of(request), item_id)


@router.post("/items/{item_id}/claim", name="api_claim", response_model=ClaimOut)
def claim(request: Request, item_id: ItemId) -> ClaimOut:
    return ClaimOut(**actions.claim(Ctx.of(request), item_id))


@router.post("/items/{item_id}/release", name="api_release", status_code=204)
def release(request: Request, item_id: ItemId) -> None:
    actions.release(Ctx.of(request), item_id)


@router.post("/items/{item_id}/decision", name="api_decision", response_model=DecisionOut)
def decision(request: Request, item_id: ItemId, body: DecisionIn) -> DecisionOut:
    return DecisionOut(**actions.decide(Ctx.of(request), item_id, _decision(body)))


@router.post("/items/{item_id}/notes", name="api_note", response_model=NoteOut)
def note(request: Request, item_id: ItemId, body: NoteIn) -> NoteOut:
    return NoteOut(**actions.add_note(Ctx.of(request), item_id, body.text))


@router.post("/items/{item_id}/media/{index}/reveal", name="api_reveal",
             response_model=RevealOut)
def reveal(request: Request, item_id: ItemId, index: Annotated[int, Path(ge=0, le=10_000)]
           ) -> RevealOut:
    ctx = Ctx.of(request)
    result = actions.reveal(ctx, item_id, index)
    still = "" if ctx.principal.user.prefs.get("autoplay") else "?still=1"
    return RevealOut(reveals_this_session=result.reveals_this_session,
                     break_due=result.break_due,
                     original_url=f"/media/{item_id}/{index}{still}")


@router.post("/bulk", name="api_bulk", response_model=BulkOut)
def bulk(request: Request, body: BulkIn) -> BulkOut:
    result = actions.bulk_decide(Ctx.of(request), body.item_ids, _decision(body))
    return BulkOut(done=result.done, failed=result.failed)


@router.get("/audit", name="api_audit", response_model=list[AuditRecord])
def audit_records(
    request: Request, actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    before_seq: Annotated[int | None, Query(ge=1)] = None,
    size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    ctx = Ctx.of(request)
    return audit.search_records(ctx.client, ctx.settings, actor=actor, action=action,
                                target=target, before_seq=before_seq, size=size)


@router.get("/audit/verify", name="api_audit_verify", response_model=VerifyOut)
def audit_verify(request: Request) -> VerifyOut:
    ctx = Ctx.of(request)
    result = audit.verify(ctx.client, ctx.settings)
    ctx.record("audit_verify", None, ok=result.ok, checked=result.checked,
               broken_seq=result.broken_seq)
    return VerifyOut(**result.__dict__)
