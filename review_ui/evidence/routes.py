"""Liaison pages: cases, pack export, verification upload, and the service's public key.

Each route's roles are declared in the static table :data:`review_ui.permissions.ROUTE_ROLES`
(:func:`review_ui.security.authorize` — session, role and CSRF — gates every route here,
and the role × route matrix covers them); the ``evidence/`` templates, the navigation
entry and this package's Vietnamese messages are wired in :mod:`review_ui.rendering` and
:mod:`review_ui.i18n`. Analysts reach none of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from harmwatch.documents import items_alias
from review_ui.context import Ctx
from review_ui.evidence import cases
from review_ui.evidence.keys import fingerprint, load_signing_key, public_key_pem
from review_ui.evidence.pack import export_case
from review_ui.evidence.verify import load_public_key, verify_pack
from review_ui.rendering import render

MAX_UPLOAD = 4 * 1024 * 1024 * 1024

router = APIRouter(include_in_schema=False)


def _ctx(request: Request) -> Ctx:
    """The request's context, with the cases index ready (created once per process)."""
    ctx = Ctx.of(request)
    if not getattr(request.app.state, "cases_ready", False):
        cases.ensure_case_indices(ctx.client, ctx.settings)
        request.app.state.cases_ready = True
    return ctx


def _see_case(case_id: str, **params: str) -> RedirectResponse:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return RedirectResponse(f"/cases/{case_id}" + (f"?{query}" if query else ""), status_code=303)


def _case_error(request: Request, exc: cases.CaseError) -> Response:
    status = 404 if isinstance(exc, cases.CaseNotFound) else 400
    return render(request, "error.html", {"status": status, "message": str(exc)},
                  status_code=status)


@router.get("/cases", name="cases_page")
def cases_page(request: Request, status: Annotated[str | None, Query()] = None) -> Response:
    ctx = _ctx(request)
    status = status if status in cases.CASE_STATUSES else None
    return render(request, "evidence/cases.html", {
        "cases": cases.list_cases(ctx.client, ctx.settings, status), "status": status,
        "statuses": cases.CASE_STATUSES})


@router.post("/cases", name="case_create")
def case_create(request: Request, title: Annotated[str, Form(max_length=500)],
                reference: Annotated[str, Form(max_length=500)] = "",
                agency: Annotated[str, Form(max_length=500)] = "",
                officer: Annotated[str, Form(max_length=500)] = "",
                notes: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    ctx = _ctx(request)
    try:
        case = cases.create_case(ctx.client, ctx.settings, ctx.principal.actor,
                                 cases.CaseFields(title, reference, agency, officer, notes))
    except cases.CaseError as exc:
        return _case_error(request, exc)
    return _see_case(case["case_id"])


def _case_items(ctx: Ctx, item_ids: list[str]) -> list[dict[str, Any]]:
    if not item_ids:
        return []
    docs = ctx.client.mget(index=items_alias(ctx.settings), ids=item_ids, source_includes=[
        "item_id", "url", "status", "decision.category", "top_category", "media_count",
        "crawled_at", "has_match"])["docs"]
    return [_shown(doc) for doc in docs]


def _shown(doc: dict[str, Any]) -> dict[str, Any]:
    """What the case page may show of one item: nothing but its id if missing or withheld."""
    if not doc.get("found"):
        return {"item_id": doc["_id"], "missing": True}
    if cases.withheld(doc["_source"]):
        return {"item_id": doc["_id"], "withheld": True}
    return doc["_source"]


@router.get("/cases/{case_id}", name="case_page")
def case_page(request: Request, case_id: str, done: str | None = None) -> Response:
    ctx = _ctx(request)
    try:
        case = cases.get_case(ctx.client, ctx.settings, case_id)
    except cases.CaseError as exc:
        return _case_error(request, exc)
    return render(request, "evidence/case.html", {
        "case": case, "items": _case_items(ctx, case["item_ids"]), "done": done,
        "next_statuses": cases.TRANSITIONS[case["status"]]})


def _ids(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


@router.post("/cases/{case_id}/items", name="case_add_items")
def case_add_items(request: Request, case_id: str,
                   item_ids: Annotated[str, Form(max_length=200_000)]) -> Response:
    return _change(request, case_id, cases.add_items, _ids(item_ids), "added")


def _change(request: Request, case_id: str, func: Any, value: Any, done: str) -> Response:
    ctx = _ctx(request)
    try:
        func(ctx.client, ctx.settings, ctx.principal.actor, case_id, value)
    except cases.CaseError as exc:
        return _case_error(request, exc)
    return _see_case(case_id, done=done)


@router.post("/cases/{case_id}/items/remove", name="case_remove_items")
def case_remove_items(request: Request, case_id: str,
                      item_id: Annotated[list[str], Form()]) -> Response:
    return _change(request, case_id, cases.remove_items, item_id, "removed")


@router.post("/cases/{case_id}/status", name="case_status")
def case_status(request: Request, case_id: str,
                status: Annotated[str, Form(pattern="^(open|exported|closed)$")]) -> Response:
    return _change(request, case_id, cases.set_status, status, status)


@router.post("/cases/{case_id}/export", name="case_export")
def case_export(request: Request, case_id: str,
                kind: Annotated[str, Form(pattern="^(full|metadata-only)$")] = "full",
                lang: Annotated[str, Form(pattern="^(vi|en)$")] = "vi") -> Response:
    """Write the pack to a temporary file (bounded memory), send it, then delete it."""
    ctx = _ctx(request)
    spool = ctx.settings.var_dir / "evidence" / "exports"
    spool.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool, suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as target:
            result = export_case(ctx.client, ctx.settings, case_id, target, ctx.principal.actor,
                                 metadata_only=kind == "metadata-only", language=lang)
    except cases.CaseError as exc:
        os.unlink(name)
        return _case_error(request, exc)
    except BaseException:
        os.unlink(name)
        raise
    filename = f"evidence-{case_id}-{result.pack_id[:8]}{'-metadata' if result.kind != 'full' else ''}.zip"
    return FileResponse(name, media_type="application/zip", filename=filename,
                        background=BackgroundTask(os.unlink, name))


@router.get("/evidence/verify", name="evidence_verify_page")
def evidence_verify_page(request: Request) -> Response:
    return render(request, "evidence/verify.html", {"report": None})


def _save_upload(upload: UploadFile, folder: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=folder, suffix=".zip")
    with os.fdopen(fd, "wb") as target:
        shutil.copyfileobj(upload.file, target, length=1024 * 1024)
    if Path(name).stat().st_size > MAX_UPLOAD:
        os.unlink(name)
        raise cases.CaseError("the uploaded pack is larger than 4 GiB")
    return Path(name)


@router.post("/evidence/verify", name="evidence_verify")
def evidence_verify(request: Request, pack: Annotated[UploadFile, File()],
                    public_key: Annotated[UploadFile | None, File()] = None) -> Response:
    """Verify an uploaded pack against this service's key (or an uploaded one)."""
    ctx = _ctx(request)
    folder = ctx.settings.var_dir / "evidence" / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    pem = public_key.file.read(64 * 1024) if public_key and public_key.filename else None
    try:
        key = load_public_key(pem) if pem else load_signing_key(ctx.settings).public_key()
    except ValueError:
        return render(request, "evidence/verify.html", {"report": None, "bad_key": True},
                      status_code=400)
    path = _save_upload(pack, folder)
    try:
        report = verify_pack(path, key)
    finally:
        path.unlink()
    ctx.record("evidence_verify", None, pack=pack.filename, ok=report.ok,
               problems=report.problems[:50], additions=report.additions[:50],
               key_sha256=fingerprint(key))
    return render(request, "evidence/verify.html", {"report": report, "name": pack.filename})


@router.get("/evidence/public-key", name="evidence_public_key")
def evidence_public_key(request: Request) -> Response:
    pem = public_key_pem(load_signing_key(request.app.state.settings))
    return Response(pem, media_type="application/x-pem-file", headers={
        "Content-Disposition": 'attachment; filename="harmwatch-evidence-public-key.pem"'})


@router.get("/admin/evidence-key", name="evidence_key_page")
def evidence_key_page(request: Request) -> Response:
    key = load_signing_key(request.app.state.settings)
    return render(request, "evidence/key.html", {
        "fingerprint": fingerprint(key.public_key()), "pem": public_key_pem(key).decode()})


EVIDENCE_ROUTES: frozenset[str] = frozenset(route.name for route in router.routes)
