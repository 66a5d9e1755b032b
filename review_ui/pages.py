"""The server-rendered pages. Every route here is named; its roles are in permissions.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from harmwatch.blobstore import BlobNotFound, get_blob_store
from harmwatch.documents import get_thresholds
from review_ui import accounts, actions, audit, errors, i18n, media, review
from review_ui.context import Ctx
from review_ui.reasons import item_reasons
from review_ui.rendering import render
from review_ui.security import (
    LANGUAGE_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_HOURS,
    anonymous_actor,
    client_ip,
    current,
)

router = APIRouter(include_in_schema=False)


def _cookie(response: Response, request: Request, name: str, value: str,
            max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=request.app.state.settings.ui_secure_cookies, path="/")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/queue"


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/healthz", name="healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/", name="home")
def home() -> RedirectResponse:
    return _redirect("/queue")


@router.get("/login", name="login_page", response_class=HTMLResponse)
def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None,
               lang: str | None = None) -> Response:
    if lang in i18n.LANGUAGES:
        i18n.set_language(lang)
    response = _login_form(request, next, None, 200)
    if lang in i18n.LANGUAGES:
        _cookie(response, request, LANGUAGE_COOKIE, lang, max_age=365 * 86400)
    return response


def _login_form(request: Request, next_url: str | None, error: str | None,
                status: int) -> Response:
    cookie, token = request.app.state.sessions.login_token()
    response = render(request, "login.html", {"login_token": token, "next": _safe_next(next_url),
                                               "error": error}, status_code=status)
    _cookie(response, request, LOGIN_COOKIE, cookie)
    return response


@router.post("/login", name="login")
def login(
    request: Request, username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/queue",
) -> Response:
    state = request.app.state
    username = username.strip().lower()
    actor = anonymous_actor(request, username)
    if not state.sessions.check_login_token(request.cookies.get(LOGIN_COOKIE), csrf_token):
        return _login_form(request, next, i18n.gettext("The form expired; please try again."),
                           403)
    if not state.throttle.attempt(username, client_ip(request)):  # counted before the check
        audit.record(state.es, state.settings, actor, "login_throttled", username)
        return _login_form(request, next, i18n.gettext(
            "Too many failed attempts. Wait 15 minutes and try again."), 429)
    user = accounts.authenticate(state.es, state.settings, username, password)
    if user is None:
        audit.record(state.es, state.settings, actor, "login_failed", username)
        return _login_form(request, next, i18n.gettext("Wrong username or password."), 401)
    state.throttle.succeeded(username, client_ip(request))
    old = state.sessions.unsign(request.cookies.get(SESSION_COOKIE))
    if old:
        state.sessions.delete(old)  # a new id at every login: no session fixation
    cookie, _ = state.sessions.create(user.username, client_ip(request))
    state.sessions.purge_expired()
    state.throttle.purge_stale()
    audit.record(state.es, state.settings, audit.Actor(user.username, user.role, actor.ip,
                                                       actor.user_agent), "login", user.username)
    response = _redirect(_safe_next(next))
    _cookie(response, request, SESSION_COOKIE, cookie, max_age=SESSION_HOURS * 3600)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout", name="logout")
def logout(request: Request) -> Response:
    ctx = Ctx.of(request)
    ctx.record("logout", ctx.username)
    ctx.sessions.delete(ctx.principal.session_id)
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _filters(request: Request, cursor: str | None) -> review.QueueFilters:
    params = request.query_params
    return review.QueueFilters(
        category=params.get("category") or None, source=params.get("source") or None,
        language=params.get("language") or None, status=params.get("status") or None,
        date_from=review.parse_date(params.get("from")),
        date_to=review.parse_date(params.get("to")),
        assignee=params.get("assignee") or None, q=params.get("q") or None, cursor=cursor)


@router.get("/queue", name="queue_page", response_class=HTMLResponse)
def queue_page(request: Request, cursor: Annotated[str | None, Query(max_length=500)] = None
               ) -> Response:
    ctx = Ctx.of(request)
    filters = _filters(request, cursor)
    page = review.search_queue(ctx.client, ctx.settings, filters, ctx.role, ctx.username)
    query = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    return render(request, "queue.html", {
        "page": page, "filters": filters, "query": query,
        "status": filters.status or review.default_status(ctx.role),
        "statuses": review.VISIBLE_STATUSES[ctx.role], "severities": review.SEVERITIES,
        "done": request.query_params.get("done"), "failed": request.query_params.get("failed"),
    })


@router.post("/queue/bulk", name="queue_bulk")
def queue_bulk(
    request: Request, action: Annotated[str, Form()],
    item_ids: Annotated[list[str], Form()] = (),  # type: ignore[assignment]
    category: Annotated[str | None, Form()] = None,
    severity: Annotated[str | None, Form()] = None,
    note: Annotated[str | None, Form(max_length=5000)] = None,
) -> Response:
    result = actions.bulk_decide(Ctx.of(request), list(item_ids)[:200], review.Decision(
        action, category or None, severity or None, note or None))
    return _redirect(f"/queue?done={len(result.done)}&failed={len(result.failed)}")


@router.get("/items/{item_id}", name="item_page", response_class=HTMLResponse)
def item_page(request: Request, item_id: str) -> Response:
    ctx = Ctx.of(request)
    source = actions.view_item(ctx, item_id)
    prefs = ctx.principal.user.prefs
    text_only = bool(source.get("has_match")) and bool(prefs.get("text_only_on_match")) and (
        request.query_params.get("media") != "show")
    return render(request, "item.html", {
        "item": source, "item_id": item_id,
        "segments": review.highlight_segments(source.get("text") or "",
                                              source.get("rule_hits") or []),
        "claim": review.active_claim(source),
        "can_decide": source.get("status", "new") in review.DECIDABLE_STATUSES[ctx.role],
        "related": review.related_items(ctx.client, ctx.settings, source, ctx.role),
        "revealed": {i for i, _ in enumerate(source.get("media") or [])
                     if review.has_revealed(source, ctx.username, i)},
        "prefs": prefs, "text_only": text_only, "severities": review.SEVERITIES,
        "error": request.query_params.get("error"),
        "reasons": item_reasons(source, ctx.settings.recall_floor,
                                get_thresholds(ctx.client, ctx.settings)),
        # Shown as text (autoescaped) in the urgent banner; blank counts as not configured.
        "counselling_line": (ctx.settings.counselling_line or "").strip() or None,
    })


@router.post("/items/{item_id}/claim", name="item_claim")
def item_claim(request: Request, item_id: str) -> Response:
    actions.claim(Ctx.of(request), item_id)
    return _redirect(f"/items/{item_id}")


@router.post("/items/{item_id}/release", name="item_release")
def item_release(request: Request, item_id: str) -> Response:
    actions.release(Ctx.of(request), item_id)
    return _redirect("/queue")


@router.post("/items/{item_id}/decision", name="item_decision")
def item_decision(
    request: Request, item_id: str, action: Annotated[str, Form()],
    category: Annotated[str | None, Form()] = None,
    severity: Annotated[str | None, Form()] = None,
    note: Annotated[str | None, Form(max_length=5000)] = None,
) -> Response:
    try:
        actions.decide(Ctx.of(request), item_id, review.Decision(
            action, category or None, severity or None, note or None))
    except errors.ReviewError:
        return _redirect(f"/items/{item_id}?error=incomplete#decide")  # keep the claim
    return _redirect("/queue")


@router.post("/items/{item_id}/notes", name="item_note")
def item_note(request: Request, item_id: str,
              text: Annotated[str, Form(max_length=5000)]) -> Response:
    actions.add_note(Ctx.of(request), item_id, text)
    return _redirect(f"/items/{item_id}#notes")


@router.post("/items/{item_id}/media/{index}/reveal", name="item_reveal")
def item_reveal(request: Request, item_id: str, index: int) -> Response:
    """The no-script fallback of the reveal button (the script uses the API)."""
    actions.reveal(Ctx.of(request), item_id, index)
    return _redirect(f"/items/{item_id}?media=show#media-{index}")


def _media_bytes(request: Request, item_id: str, index: int) -> tuple[dict[str, Any], bytes]:
    ctx = Ctx.of(request)
    source = review.get_item(ctx.client, ctx.settings, item_id, ctx.role)
    entry = review.media_entry(source, index)
    return source, _blob(ctx, entry["blob_ref"], "media bytes")


def _blob(ctx: Ctx, ref: str, what: str) -> bytes:
    """A blob's bytes, decrypting its sealed copy when the item's evidence was sealed at rest.

    Confirmed items' media and snapshots are encrypted at rest and their plaintext deleted
    (harmwatch.sealing), yet analysts and liaison officers still need to see them.
    """
    try:
        with get_blob_store(ctx.settings, ctx.client).open(ref) as handle:
            return handle.read()
    except BlobNotFound as exc:
        raise errors.NotVisible(f"the {what} are not in the blob store") from exc


@router.get("/media/{item_id}/{index}/preview", name="media_preview")
async def media_preview(request: Request, item_id: str, index: int) -> Response:
    """Always blurred and greyed until this user's reveal of this file is recorded.

    The blur/grey preferences only soften previews of files already revealed: otherwise
    turning them off would show the original without the audited reveal.
    """
    user = current(request).user
    source, data = await run_in_threadpool(_media_bytes, request, item_id, index)
    blur, grayscale = preview_protection(user.prefs, review.has_revealed(source, user.username,
                                                                         index))
    body = await run_in_threadpool(media.preview, data, blur, grayscale)
    return Response(body, media_type="image/jpeg", headers=media.INERT_HEADERS)


def preview_protection(prefs: dict[str, Any], revealed: bool) -> tuple[bool, bool]:
    """(blur, grayscale) of a preview: both forced on before a reveal, the user's after."""
    if not revealed:
        return True, True
    return bool(prefs.get("blur")), bool(prefs.get("grayscale"))


@router.get("/media/{item_id}/{index}", name="media_original")
async def media_original(request: Request, item_id: str, index: int,
                         still: bool = False) -> Response:
    """The original bytes, only after this user's reveal of this file was recorded."""
    username = current(request).user.username
    source, data = await run_in_threadpool(_media_bytes, request, item_id, index)
    if not review.has_revealed(source, username, index):
        return Response("reveal the image first", status_code=403, media_type="text/plain")
    if still:
        body = await run_in_threadpool(media.still, data)
        content_type, extension = "image/png", "png"
    else:
        body = data
        content_type, extension = media.sniff(data)
    headers = {**media.INERT_HEADERS,
               "Content-Disposition": f'inline; filename="item-{index}.{extension}"'}
    return Response(body, media_type=content_type, headers=headers)


@router.get("/items/{item_id}/snapshot", name="item_snapshot")
def item_snapshot(request: Request, item_id: str) -> Response:
    """The crawled page as plain text, sandboxed: it is read, never rendered."""
    ctx = Ctx.of(request)
    source = review.get_item(ctx.client, ctx.settings, item_id, ctx.role)
    if not source.get("snapshot_ref"):
        raise errors.NotVisible("no snapshot for this item")
    ctx.record("snapshot_view", item_id, snapshot_ref=source["snapshot_ref"])
    data = _blob(ctx, source["snapshot_ref"], "snapshot bytes")
    headers = {**media.INERT_HEADERS,
               "Content-Disposition": f'inline; filename="snapshot-{item_id}.txt"'}
    return Response(media.snapshot_text(data), media_type="text/plain; charset=utf-8",
                    headers=headers)


@router.get("/settings", name="settings_page", response_class=HTMLResponse)
def settings_page(request: Request) -> Response:
    reason = request.query_params.get("reason")
    return render(request, "settings.html", {
        "saved": request.query_params.get("saved"), "error": request.query_params.get("error"),
        "password_refused": accounts.PasswordRejected(reason).explain(i18n.gettext)
        if reason in accounts.PASSWORD_REASONS else None})


@router.post("/settings", name="settings_save")
def settings_save(
    request: Request, locale: Annotated[str, Form()], timezone: Annotated[str, Form()],
    break_every: Annotated[int, Form(ge=0, le=1000)],
    blur: Annotated[bool, Form()] = False, grayscale: Annotated[bool, Form()] = False,
    autoplay: Annotated[bool, Form()] = False,
    text_only_on_match: Annotated[bool, Form()] = False,
) -> Response:
    prefs = {"blur": blur, "grayscale": grayscale, "autoplay": autoplay,
             "break_every": break_every, "text_only_on_match": text_only_on_match}
    actions.save_settings(Ctx.of(request), prefs, locale, timezone)
    return _redirect("/settings?saved=1")


@router.post("/settings/password", name="password_change")
def password_change(
    request: Request, current_password: Annotated[str, Form(max_length=1000)],
    new_password: Annotated[str, Form(max_length=1000)],
) -> Response:
    ctx = Ctx.of(request)
    try:
        accounts.change_password(ctx.client, ctx.settings, ctx.username, current_password,
                                 new_password)
    except accounts.PasswordRejected as exc:
        return _redirect(f"/settings?error=weak_password&reason={exc.reason}")
    except accounts.AccountError:
        return _redirect("/settings?error=wrong_password")
    ctx.record("password_change", ctx.username)
    ctx.sessions.delete_for_user(ctx.username, keep=ctx.principal.session_id)
    return _redirect("/settings?saved=password")


@router.post("/locale", name="locale_switch")
def locale_switch(request: Request, locale: Annotated[str, Form()],
                  next: Annotated[str, Form(max_length=2000)] = "/queue") -> Response:
    ctx = Ctx.of(request)
    if locale not in i18n.LANGUAGES:
        raise errors.ReviewError("unknown language")
    accounts.update_user(ctx.client, ctx.settings, ctx.username, locale=locale)
    ctx.record("settings_change", ctx.username, before={"locale": ctx.principal.user.locale},
               after={"locale": locale})
    response = _redirect(_safe_next(next))
    _cookie(response, request, LANGUAGE_COOKIE, locale, max_age=365 * 86400)
    return response


@router.get("/audit", name="audit_page", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    ctx = Ctx.of(request)
    params = request.query_params
    before = params.get("before")
    records = audit.search_records(
        ctx.client, ctx.settings, actor=params.get("actor") or None,
        action=params.get("action") or None, target=params.get("target") or None,
        since=_date_param(params.get("from")), until=_date_param(params.get("to"), end=True),
        before_seq=int(before) if before and before.isdigit() else None)
    verified = None
    if params.get("verify"):
        verified = audit.verify(ctx.client, ctx.settings)
        ctx.record("audit_verify", None, ok=verified.ok, checked=verified.checked,
                   broken_seq=verified.broken_seq)
    query = {k: v for k, v in params.items() if k not in ("before", "verify") and v}
    return render(request, "audit.html", {"records": records, "verified": verified,
                                          "query": query, "params": params})


def _date_param(value: str | None, end: bool = False) -> str | None:
    day = review.parse_date(value)
    if day is None:
        return None
    return f"{day.isoformat()}T23:59:59.999999Z" if end else f"{day.isoformat()}T00:00:00Z"


@router.get("/audit/export", name="audit_export")
def audit_export(request: Request, fmt: Annotated[str, Query(pattern="^(jsonl|csv)$")] = "jsonl"
                 ) -> Response:
    ctx = Ctx.of(request)
    ctx.record("audit_export", None, format=fmt)
    media_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(
        audit.export_lines(ctx.client, ctx.settings, fmt), media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="harmwatch-audit.{fmt}"',
                 "X-Content-Type-Options": "nosniff"})
