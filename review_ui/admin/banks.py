"""Hash banks: import and export lists, enable/disable (until a time), thresholds, look-ups.

Only the public API of :mod:`classifiers.banks` is used (``BankStore``, ``Matcher`` and the
list formats its CLI uses). A store is opened per request — its SQLite connection belongs
to one thread — and the running analyzers pick up every change on their next batch via
the store's change counter.

Imports run in a background thread and write their progress to a small JSON file under
``<var_dir>/admin/bank-imports`` after every batch, so any UI process can answer the
progress endpoint that ``/static/admin/admin.js`` polls.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from classifiers.banks import ALGORITHMS, BankError, BankStore
from classifiers.banks.formats import FormatError, import_file, write_entries
from classifiers.banks.matcher import Matcher, MatchResult
from harmwatch.contract import MediaHashes, utcnow
from harmwatch.settings import Settings
from review_ui.admin.common import ctx, download_stream, page, redirect
from review_ui.context import Ctx
from review_ui.errors import NotVisible, ReviewError

router = APIRouter()

FORMATS = ("csv", "ncmec", "vics", "text")
Format = Literal["csv", "ncmec", "vics", "text"]
Algorithm = Literal["md5", "sha1", "sha256", "pdq", "phash"]
IMPORT_BATCH = 5_000
EXPORT_IN_MEMORY = 8 * 2**20  # an export larger than this is spooled to a temporary file
ENTRIES_SHOWN = 200
MAX_UPLOAD = 512 * 2**20
HASH_LENGTHS = {32: ("md5",), 40: ("sha1",), 64: ("sha256", "pdq"), 16: ("phash",)}


@contextmanager
def opened(settings: Settings) -> Iterator[BankStore]:
    store = BankStore(settings.resolved_banks_dir)
    try:
        yield store
    finally:
        store.close()


def _bank_error(exc: Exception) -> ReviewError:
    return ReviewError(str(exc))


def _until(value: str | None) -> datetime | None:
    """A ``datetime-local`` form value (UTC when it has no offset), or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ReviewError(f"not a date and time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def bank_rows(store: BankStore) -> list[dict[str, Any]]:
    counts = store.entry_counts()
    return [{"name": b.name, "kind": b.kind, "entries": counts.get(b.id, 0),
             "active": b.active(), "disabled": b.disabled,
             "disabled_until": b.disabled_until.isoformat() if b.disabled_until else None,
             "pdq_threshold": b.threshold("pdq"), "phash_threshold": b.threshold("phash"),
             "pdq_min_quality": b.pdq_min_quality, "list_version": b.list_version,
             "description": b.description} for b in store.banks()]


def set_bank_state(c: Ctx, name: str, disabled: bool, until: datetime | None) -> None:
    with opened(c.settings) as store:
        try:
            store.set_bank_disabled(name, disabled, until)
        except BankError as exc:
            raise _bank_error(exc) from exc
    c.record("bank_disable" if disabled else "bank_enable", name,
             until=until.isoformat() if until else None)


def set_entry_state(c: Ctx, name: str, ids: list[int], disabled: bool,
                    until: datetime | None) -> int:
    with opened(c.settings) as store:
        try:
            count = store.set_entries_disabled(name, ids, disabled, until)
        except BankError as exc:
            raise _bank_error(exc) from exc
    c.record("bank_entries_disable" if disabled else "bank_entries_enable", name, entries=ids,
             until=until.isoformat() if until else None, found=count)
    return count


def set_thresholds(c: Ctx, name: str, pdq: int, phash: int, pdq_min_quality: int) -> None:
    with opened(c.settings) as store:
        try:
            old = store.bank(name)
            store.set_thresholds(name, {"pdq": pdq, "phash": phash}, pdq_min_quality)
        except (BankError, ValueError) as exc:
            raise _bank_error(exc) from exc
    c.record("bank_thresholds", name, old={**old.thresholds, "pdq_min_quality": old.pdq_min_quality},
             new={"pdq": pdq, "phash": phash, "pdq_min_quality": pdq_min_quality})


# --- import with progress ------------------------------------------------------------

def jobs_dir(settings: Settings) -> Path:
    return settings.var_dir / "admin" / "bank-imports"


def _write_job(settings: Settings, job: dict[str, Any]) -> None:
    path = jobs_dir(settings) / f"{job['id']}.json"
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(job), encoding="utf-8")
    os.replace(tmp, path)


def read_job(settings: Settings, job_id: str) -> dict[str, Any]:
    path = jobs_dir(settings) / f"{job_id}.json"
    if not job_id.isalnum() or not path.exists():
        raise NotVisible(f"no import {job_id!r}")
    return json.loads(path.read_text(encoding="utf-8"))


def start_import(c: Ctx, bank: str, kind: str, fmt: str, algorithm: str | None,
                 filename: str, data: bytes) -> dict[str, Any]:
    """Store the upload and import it in a background thread; returns the job record."""
    jobs_dir(c.settings).mkdir(parents=True, exist_ok=True)
    job = {"id": uuid.uuid4().hex[:16], "bank": bank, "kind": kind, "format": fmt,
           "algorithm": algorithm, "file": filename, "bytes": len(data), "status": "running",
           "checked": 0, "read": 0, "added": 0, "duplicates": 0, "error": None,
           "started_at": utcnow().isoformat(), "started_by": c.username}
    upload = jobs_dir(c.settings) / f"{job['id']}.upload"
    upload.write_bytes(data)
    _write_job(c.settings, job)
    c.record("bank_import_start", bank, job=job["id"], file=filename, format=fmt,
             bytes=len(data))
    threading.Thread(target=_run_import, args=(c, job, upload), daemon=True).start()
    return job


def _run_import(c: Ctx, job: dict[str, Any], upload: Path) -> None:
    """The import itself; its outcome is written to the job file and the audit trail."""
    def checked(count: int) -> None:
        job.update(checked=count)
        _write_job(c.settings, job)

    def progress(seen: int, added: int) -> None:
        job.update(read=seen, added=added)
        _write_job(c.settings, job)

    try:
        with opened(c.settings) as store:
            result = import_file(store, job["bank"], upload, job["format"], c.username,
                                 kind=job["kind"], algorithm=job["algorithm"],
                                 source_list=job["file"], on_checked=checked,
                                 progress=progress, batch_size=IMPORT_BATCH)
            Matcher(store).reindex()
        job.update(status="done", added=result.added, duplicates=result.duplicates,
                   read=result.added + result.duplicates)
    except (FormatError, BankError, ValueError, OSError) as exc:
        job.update(status="failed", error=str(exc))
    finally:
        upload.unlink(missing_ok=True)
    job["finished_at"] = utcnow().isoformat()
    _write_job(c.settings, job)
    c.record("bank_import", job["bank"], job=job["id"], status=job["status"],
             added=job["added"], duplicates=job["duplicates"], error=job["error"])


def export_bank(c: Ctx, name: str, fmt: str, algorithm: str | None) -> tuple[IO[bytes], int]:
    """The export in a temporary file, rewound, and how many entries it holds.

    Written whole before the response starts, so that a failure is an error page rather
    than a truncated download, and the audit trail records the true count; spooled to disk
    past a few MiB, so a bank of millions of entries does not sit in the UI's memory.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_IN_MEMORY)  # noqa: SIM115 - the response closes it
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    with opened(c.settings) as store:
        try:
            count = write_entries(store.entries(name), text, fmt, algorithm=algorithm)  # type: ignore[arg-type]
        except (BankError, FormatError) as exc:
            spool.close()
            raise _bank_error(exc) from exc
    text.flush()
    text.detach()
    spool.seek(0)
    c.record("bank_export", name, format=fmt, algorithm=algorithm, entries=count)
    return spool, count


# --- look-ups ------------------------------------------------------------------------

def guesses(value: str, algorithm: str | None) -> list[MediaHashes]:
    """What a typed hash could be: its length names the algorithm, or the admin does."""
    value = value.strip().lower()
    names = (algorithm,) if algorithm else HASH_LENGTHS.get(len(value), ())
    if not names:
        raise ReviewError("a hash is 16 (pHash), 32 (MD5), 40 (SHA-1) or 64 (SHA-256, PDQ) "
                          "hex digits")
    try:
        return [MediaHashes(**{name: value, **({"pdq_quality": 100} if name == "pdq" else {})})
                for name in names]
    except ValueError as exc:
        raise ReviewError(f"not a valid {'/'.join(names)} hash") from exc


def lookup(c: Ctx, queries: list[Any], what: str) -> list[MatchResult]:
    """Match hashes (or an image's hashes) against every bank; the look-up is audited."""
    with opened(c.settings) as store:
        results = Matcher(store).match_many(queries)
    c.record("bank_lookup", None, query=what,
             matches=sum(len(r.matches) + len(r.suppressed) for r in results))
    return results


def image_queries(data: bytes) -> tuple[list[Any], str | None]:
    """The uploaded image's hashes; the bytes' exact hashes only if it cannot be decoded."""
    from classifiers.media.hashing import ImageRefused, crypto_hashes, hash_image

    try:
        return [hash_image(data)], None
    except ImageRefused as exc:
        crypto = crypto_hashes(data)
        return [MediaHashes(md5=crypto.md5, sha1=crypto.sha1, sha256=crypto.sha256)], str(exc)


def _flatten(results: list[MatchResult]) -> list[dict[str, Any]]:
    found = []
    for result in results:
        for state, matches in (("match", result.matches), ("suppressed", result.suppressed),
                               ("allowed_by", result.allowed_by)):
            found += [{**m.model_dump(), "state": state} for m in matches]
    return found


# --- pages ---------------------------------------------------------------------------

def _overview(request: Request, **extra: Any) -> Response:
    c = ctx(request)
    with opened(c.settings) as store:
        banks = bank_rows(store)
    return page(request, "banks.html", {
        "banks": banks, "formats": FORMATS, "algorithms": ALGORITHMS,
        "job": request.query_params.get("job"), "done": request.query_params.get("done"),
        "results": None, **extra,
    })


@router.get("/admin/banks", name="admin_banks", response_class=HTMLResponse)
def banks_page(request: Request) -> Response:
    return _overview(request)


@router.get("/admin/banks/{name}/entries", name="admin_bank_entries", response_class=HTMLResponse)
def bank_entries(request: Request, name: str) -> Response:
    c = ctx(request)
    with opened(c.settings) as store:
        try:
            bank = store.bank(name)
            entries = list(islice(store.entries(name), ENTRIES_SHOWN))
        except BankError as exc:
            raise NotVisible(str(exc)) from exc
        total = store.entry_counts().get(bank.id, 0)
    return page(request, "bank_entries.html", {"bank": bank, "entries": entries, "total": total,
                                               "shown": ENTRIES_SHOWN,
                                               "done": request.query_params.get("done")})


@router.post("/admin/banks/import", name="admin_bank_import")
async def bank_import(request: Request, bank: Annotated[str, Form(max_length=100)],
                      upload: Annotated[UploadFile, File()], fmt: Annotated[Format, Form()],
                      kind: Annotated[Literal["match", "allow"], Form()] = "match",
                      algorithm: Annotated[str, Form()] = "") -> Response:
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise ReviewError("the list is larger than 512 MiB; import it with `harmwatch banks import`")
    job = start_import(ctx(request), bank.strip(), kind, fmt, algorithm or None,
                       upload.filename or "upload", data)
    return redirect("/admin/banks", job=job["id"])


@router.get("/admin/banks/{name}/export", name="admin_bank_export")
def bank_export(request: Request, name: str, fmt: Annotated[Format, Query(alias="format")] = "csv",
                algorithm: Annotated[Algorithm | None, Query()] = None) -> Response:
    spool, _ = export_bank(ctx(request), name, fmt, algorithm)
    extension = {"csv": "csv", "ncmec": "csv", "vics": "json", "text": "txt"}[fmt]
    media = "application/json" if fmt == "vics" else "text/plain; charset=utf-8"
    return download_stream(spool, media, f"{name}-{fmt}.{extension}")


@router.post("/admin/banks/{name}/state", name="admin_bank_state")
def bank_state(request: Request, name: str, disabled: Annotated[bool, Form()],
               until: Annotated[str, Form()] = "") -> Response:
    set_bank_state(ctx(request), name, disabled, _until(until))
    return redirect("/admin/banks", done=name)


@router.post("/admin/banks/{name}/thresholds", name="admin_bank_thresholds")
def bank_thresholds(request: Request, name: str, pdq: Annotated[int, Form(ge=0, le=256)],
                    phash: Annotated[int, Form(ge=0, le=64)],
                    pdq_min_quality: Annotated[int, Form(ge=0, le=100)]) -> Response:
    set_thresholds(ctx(request), name, pdq, phash, pdq_min_quality)
    return redirect("/admin/banks", done=name)


@router.post("/admin/banks/{name}/entries", name="admin_bank_entries_state")
def entries_state(request: Request, name: str, disabled: Annotated[bool, Form()],
                  entry_ids: Annotated[list[int], Form()], until: Annotated[str, Form()] = ""
                  ) -> Response:
    count = set_entry_state(ctx(request), name, entry_ids[:10_000], disabled, _until(until))
    return redirect(f"/admin/banks/{name}/entries", done=count)


@router.post("/admin/banks/lookup", name="admin_bank_lookup", response_class=HTMLResponse)
async def bank_lookup(request: Request, value: Annotated[str, Form(max_length=200)] = "",
                      algorithm: Annotated[str, Form()] = "",
                      image: Annotated[UploadFile | None, File()] = None) -> Response:
    c = ctx(request)
    data = await image.read(50 * 2**20) if image is not None and image.filename else b""
    if data:
        queries, refused = image_queries(data)
        what = f"image sha256 {getattr(queries[0], 'sha256', None) or queries[0].crypto.sha256}"
    else:
        queries, refused, what = guesses(value, algorithm or None), None, value.strip().lower()
    results = lookup(c, queries, what)
    return _overview(request, results=_flatten(results), looked_up=what, refused=refused)


# --- API -----------------------------------------------------------------------------

class StateIn(BaseModel):
    disabled: bool
    until: datetime | None = None
    entry_ids: list[int] | None = Field(default=None, max_length=10_000,
                                        description="Entries to change; omit for the whole bank.")


class ThresholdsIn(BaseModel):
    pdq: int = Field(ge=0, le=256)
    phash: int = Field(ge=0, le=64)
    pdq_min_quality: int = Field(ge=0, le=100)


class LookupIn(BaseModel):
    value: str = Field(max_length=200)
    algorithm: Algorithm | None = None


@router.get("/api/admin/banks", name="api_admin_banks", tags=["admin"])
def api_banks(request: Request) -> list[dict[str, Any]]:
    with opened(ctx(request).settings) as store:
        return bank_rows(store)


@router.get("/api/admin/banks/imports/{job_id}", name="api_admin_bank_import", tags=["admin"])
def api_import_progress(request: Request, job_id: str) -> dict[str, Any]:
    """Progress of one import: status running/done/failed, entries read and added."""
    return read_job(ctx(request).settings, job_id)


@router.put("/api/admin/banks/{name}/state", name="api_admin_bank_state", tags=["admin"])
def api_state(request: Request, name: str, body: StateIn) -> dict[str, Any]:
    c = ctx(request)
    until = body.until if body.until is None or body.until.tzinfo else body.until.replace(tzinfo=UTC)
    if body.entry_ids is None:
        set_bank_state(c, name, body.disabled, until)
        return {"bank": name, "disabled": body.disabled}
    return {"bank": name, "changed": set_entry_state(c, name, body.entry_ids, body.disabled, until)}


@router.put("/api/admin/banks/{name}/thresholds", name="api_admin_bank_thresholds", tags=["admin"])
def api_thresholds(request: Request, name: str, body: ThresholdsIn) -> dict[str, Any]:
    set_thresholds(ctx(request), name, body.pdq, body.phash, body.pdq_min_quality)
    return body.model_dump()


@router.post("/api/admin/banks/lookup", name="api_admin_bank_lookup", tags=["admin"])
def api_lookup(request: Request, body: LookupIn) -> list[dict[str, Any]]:
    return _flatten(lookup(ctx(request), guesses(body.value, body.algorithm), body.value))
