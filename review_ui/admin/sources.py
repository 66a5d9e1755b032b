"""Crawl sources: the admin-managed sources file, per-source crawl status, "run now".

Admins edit their own sources file, ``<var_dir>/sources.yaml`` (same format as
``crawlers/sources.yaml``, docs/formats/sources.md); the files shipped in ``crawlers/``
are shown read-only. Every write is validated by :mod:`harmwatch.sources` (the format,
shared with the crawler) together with the other files (so an id defined twice is
refused) before it atomically replaces the file; the crawl scheduler re-reads sources
files each round, so a saved change applies without a restart.

Status per source joins three records: the runs started here (``<var_dir>/admin/crawl-runs``,
with exit status, the summary ``harmwatch crawl --summary-json`` wrote and the output tail),
the crawl-stats documents, and the items indexed from the source. The UI meets the crawler
only through that command, the sources format (:mod:`harmwatch.sources`) and Elasticsearch.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from elasticsearch import Elasticsearch
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from harmwatch.contract import utcnow
from harmwatch.documents import crawl_stats_alias, items_alias
from harmwatch.settings import REPO_ROOT, Settings
from harmwatch.sources import SourceError, default_paths, load_all
from review_ui.admin.common import ctx, page, redirect
from review_ui.context import Ctx
from review_ui.errors import NotVisible, ReviewError

router = APIRouter()

TAIL_CHARS = 4000


def admin_file(settings: Settings) -> Path:
    """The sources file this page writes; ``harmwatch crawl`` reads it by default."""
    return settings.var_dir / "sources.yaml"


def read_only_files(settings: Settings) -> list[Path]:
    return [p for p in default_paths() if p.resolve() != admin_file(settings).resolve()]


def all_files(settings: Settings) -> list[Path]:
    """Every sources file ``harmwatch crawl`` reads by default, the admin's one last."""
    return default_paths(settings.var_dir)


def _entries(settings: Settings) -> list[dict[str, Any]]:
    path = admin_file(settings)
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("sources") or [])


@contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """One writer at a time, across UI processes (an advisory lock beside the file)."""
    lock = admin_file(settings).with_suffix(".yaml.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _save(settings: Settings, entries: list[dict[str, Any]]) -> None:
    """Validate the new file with all the others, then atomically put it in place."""
    path = admin_file(settings)
    tmp = path.with_name(f".sources-{uuid.uuid4().hex}.yaml")
    tmp.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True, sort_keys=False),
                   encoding="utf-8")
    try:
        load_all([*read_only_files(settings), tmp])
    except SourceError as exc:
        tmp.unlink()
        raise ReviewError(str(exc).replace(str(tmp), path.name)) from None
    os.replace(tmp, path)


def parse_entry(text: str) -> dict[str, Any]:
    """One source entry from YAML text (a mapping, or a one-item ``sources:`` list)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReviewError(f"not valid YAML: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("sources"), list) and len(data["sources"]) == 1:
        data = data["sources"][0]
    if not isinstance(data, dict):
        raise ReviewError("expected one source: a mapping with id, kind, ...")
    return data


def add(c: Ctx, entry: dict[str, Any]) -> None:
    with _locked(c.settings):
        _save(c.settings, [*_entries(c.settings), entry])
    c.record("source_add", str(entry.get("id")), entry=entry)


def edit(c: Ctx, source_id: str, entry: dict[str, Any]) -> None:
    if entry.get("id") != source_id:
        raise ReviewError("the id of a source cannot change; add a new source instead")
    with _locked(c.settings):
        entries = _entries(c.settings)
        index = _index(entries, source_id)
        old, entries[index] = entries[index], entry
        _save(c.settings, entries)
    c.record("source_edit", source_id, old=old, new=entry)


def set_enabled(c: Ctx, source_id: str, enabled: bool) -> None:
    with _locked(c.settings):
        entries = _entries(c.settings)
        entries[_index(entries, source_id)]["enabled"] = enabled
        _save(c.settings, entries)
    c.record("source_enable" if enabled else "source_disable", source_id)


def _index(entries: list[dict[str, Any]], source_id: str) -> int:
    for index, entry in enumerate(entries):
        if entry.get("id") == source_id:
            return index
    raise NotVisible(f"no source {source_id!r} in the admin sources file")


@dataclass
class SourceRow:
    id: str
    kind: str
    enabled: bool
    interval: float
    targets: list[str]
    file: str
    editable: bool
    yaml_text: str
    published: int = 0
    last_published_at: str | None = None
    items: int = 0
    last_item_at: str | None = None
    run: dict[str, Any] | None = None


def rows(client: Elasticsearch, settings: Settings) -> tuple[list[SourceRow], str | None]:
    """Every source with its status; and the error if the files do not load together."""
    found: list[SourceRow] = []
    problem = None
    raw = {e.get("id"): e for e in _entries(settings)}
    for path in all_files(settings):
        try:
            sources = load_all([path])
        except SourceError as exc:
            problem = str(exc)
            continue
        editable = path == admin_file(settings)
        for source in sources.values():
            text = yaml.safe_dump(raw.get(source.id) if editable else
                                  source.model_dump(mode="json"), allow_unicode=True,
                                  sort_keys=False)
            found.append(SourceRow(source.id, source.kind, source.enabled, source.interval,
                                   _targets(source), _shown(path), editable, text))
    published = _published(client, settings)
    indexed = _indexed(client, settings)
    for row in found:
        row.published, row.last_published_at = published.get(row.id, (0, None))
        row.items, row.last_item_at = indexed.get(row.id, (0, None))
        row.run = last_run(settings, row.id)
    return found, problem


def _targets(source: Any) -> list[str]:
    for name in ("start_urls", "instance", "channel"):
        value = getattr(source, name, None)
        if value:
            return value if isinstance(value, list) else [str(value)]
    return []


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _published(client: Elasticsearch, settings: Settings) -> dict[str, tuple[int, str | None]]:
    """Posts the crawlers have published per source, and when a crawl last recorded some.

    From the counts each crawl writes to Elasticsearch when it ends (crawlers.stats).
    """
    alias = crawl_stats_alias(settings)
    if not client.indices.exists_alias(name=alias):
        return {}
    aggs = {"src": {"terms": {"field": "source", "size": 10_000},
                    "aggs": {"n": {"sum": {"field": "published"}},
                             "last": {"max": {"field": "recorded_at"}}}}}
    result = client.search(index=alias, size=0, aggs=aggs)["aggregations"]
    return {b["key"]: (int(b["n"]["value"]), b["last"].get("value_as_string"))
            for b in result["src"]["buckets"]}


def _indexed(client: Elasticsearch, settings: Settings) -> dict[str, tuple[int, str | None]]:
    aggs = {"src": {"terms": {"field": "source", "size": 1000},
                    "aggs": {"last": {"max": {"field": "crawled_at"}}}}}
    result = client.search(index=items_alias(settings), size=0, aggs=aggs)["aggregations"]
    return {b["key"]: (b["doc_count"], b["last"].get("value_as_string"))
            for b in result["src"]["buckets"]}


# --- run now -------------------------------------------------------------------------

def runs_dir(settings: Settings) -> Path:
    return settings.var_dir / "admin" / "crawl-runs"


def last_run(settings: Settings, source_id: str) -> dict[str, Any] | None:
    path = runs_dir(settings) / f"{source_id}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _write_run(settings: Settings, run: dict[str, Any]) -> None:
    path = runs_dir(settings) / f"{run['source']}.json"
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _settings_file(settings: Settings, run_id: str) -> Path:
    """The UI's settings for the child (same Kafka, index prefix, var dir), mode 0600."""
    path = runs_dir(settings) / f"{run_id}.settings.yaml"
    values = settings.model_dump(mode="json", exclude_defaults=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(values, handle)
    return path


def run_now(c: Ctx, source_id: str) -> dict[str, Any]:
    """Start ``harmwatch crawl SOURCE`` in the background; its result lands in the run record."""
    settings = c.settings
    files = all_files(settings)
    if source_id not in load_all(files):
        raise NotVisible(f"no source {source_id!r}")
    current = last_run(settings, source_id)
    if current and current["status"] == "running" and _alive(current["pid"]):
        raise ReviewError(f"{source_id} is already being crawled (since {current['started_at']})")
    runs_dir(settings).mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    command = [sys.executable, "-m", "harmwatch.cli", "crawl", source_id,
               "--summary-json", str(_summary_file(settings, run_id))]
    for path in files:
        command += ["--sources-file", str(path)]
    env = {**os.environ, "HARMWATCH_CONFIG": str(_settings_file(settings, run_id))}
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    run = {"run_id": run_id, "source": source_id, "status": "running", "pid": process.pid,
           "started_at": utcnow().isoformat(), "started_by": c.username}
    _write_run(settings, run)
    threading.Thread(target=_finish, args=(settings, run, process), daemon=True).start()
    c.record("source_run", source_id, run_id=run_id)
    return run


def _alive(pid: int) -> bool:
    """Whether a recorded crawl is still running (a UI restart must not block the source)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _summary_file(settings: Settings, run_id: str) -> Path:
    """Where ``harmwatch crawl --summary-json`` leaves the run's summaries for the UI."""
    return runs_dir(settings) / f"{run_id}.summary.json"


def _read_summary(settings: Settings, run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's summary for its source, or None when the crawl ended before writing one."""
    path = _summary_file(settings, run["run_id"])
    try:
        summaries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        path.unlink(missing_ok=True)
    return next((s for s in summaries if s.get("source") == run["source"]), None)


def _finish(settings: Settings, run: dict[str, Any], process: subprocess.Popen[str]) -> None:
    """Wait for the crawl and record how it ended, with its summary and output tail."""
    output, _ = process.communicate()
    summary = _read_summary(settings, run)
    (runs_dir(settings) / f"{run['run_id']}.settings.yaml").unlink(missing_ok=True)
    _write_run(settings, {**run, "status": "ok" if process.returncode == 0 else "failed",
                          "exit_code": process.returncode, "finished_at": utcnow().isoformat(),
                          "summary": summary, "output_tail": output[-TAIL_CHARS:]})


# --- routes --------------------------------------------------------------------------

@router.get("/admin/sources", name="admin_sources", response_class=HTMLResponse)
def sources_page(request: Request) -> Response:
    c = ctx(request)
    found, problem = rows(c.client, c.settings)
    return page(request, "sources.html", {
        "sources": found, "problem": problem, "admin_file": _shown(admin_file(c.settings)),
        "done": request.query_params.get("done"),
    })


@router.post("/admin/sources", name="admin_source_add")
def source_add(request: Request, entry: Annotated[str, Form(max_length=20_000)]) -> Response:
    parsed = parse_entry(entry)
    add(ctx(request), parsed)
    return redirect("/admin/sources", done="added", name=str(parsed.get("id")))


@router.post("/admin/sources/{source_id}", name="admin_source_edit")
def source_edit(request: Request, source_id: str,
                entry: Annotated[str, Form(max_length=20_000)]) -> Response:
    edit(ctx(request), source_id, parse_entry(entry))
    return redirect("/admin/sources", done="saved", name=source_id)


@router.post("/admin/sources/{source_id}/enabled", name="admin_source_enable")
def source_enable(request: Request, source_id: str,
                  enabled: Annotated[bool, Form()]) -> Response:
    set_enabled(ctx(request), source_id, enabled)
    return redirect("/admin/sources", done="enabled" if enabled else "disabled",
                    name=source_id)


@router.post("/admin/sources/{source_id}/run", name="admin_source_run")
def source_run(request: Request, source_id: str) -> Response:
    run_now(ctx(request), source_id)
    return redirect("/admin/sources", done="started", name=source_id)


class SourceIn(BaseModel):
    entry: dict[str, Any] = Field(description="One source, as in docs/formats/sources.md")


class EnabledIn(BaseModel):
    enabled: bool


@router.get("/api/admin/sources", name="api_admin_sources", tags=["admin"])
def api_sources(request: Request) -> dict[str, Any]:
    c = ctx(request)
    found, problem = rows(c.client, c.settings)
    return {"sources": [r.__dict__ for r in found], "problem": problem}


@router.post("/api/admin/sources", name="api_admin_source_add", status_code=201, tags=["admin"])
def api_add(request: Request, body: SourceIn) -> dict[str, Any]:
    add(ctx(request), body.entry)
    return body.entry


@router.put("/api/admin/sources/{source_id}", name="api_admin_source_edit", tags=["admin"])
def api_edit(request: Request, source_id: str, body: SourceIn) -> dict[str, Any]:
    edit(ctx(request), source_id, body.entry)
    return body.entry


@router.put("/api/admin/sources/{source_id}/enabled", name="api_admin_source_enable",
            tags=["admin"])
def api_enable(request: Request, source_id: str, body: EnabledIn) -> dict[str, Any]:
    set_enabled(ctx(request), source_id, body.enabled)
    return {"id": source_id, "enabled": body.enabled}


@router.post("/api/admin/sources/{source_id}/run", name="api_admin_source_run", status_code=202,
             tags=["admin"])
def api_run(request: Request, source_id: str) -> dict[str, Any]:
    return run_now(ctx(request), source_id)


@router.get("/api/admin/sources/{source_id}/run", name="api_admin_source_run_status",
            tags=["admin"])
def api_run_status(request: Request, source_id: str) -> dict[str, Any]:
    run = last_run(ctx(request).settings, source_id)
    if run is None:
        raise NotVisible(f"{source_id} has not been run from here")
    return run
