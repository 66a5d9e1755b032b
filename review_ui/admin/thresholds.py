"""The thresholds page and API: see the trade-off, preview a candidate, then save it.

Saving goes through :func:`harmwatch.documents.put_thresholds`, which the queue reads on
every request, so the change applies at once; each save is an audit record with the old
and new value and the preview figures the admin saw. A category no admin has saved
follows the text model's default (``model.json``), shown beside the current value with the
validation precision and recall the model reported for it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from harmwatch.contract import CATEGORIES
from harmwatch.documents import (
    get_thresholds,
    model_defaults,
    put_thresholds,
    stored_thresholds,
)
from review_ui.admin import plots, tuning
from review_ui.admin.common import ctx, download, page, redirect
from review_ui.context import Ctx

router = APIRouter()

Score = Annotated[float, Query(ge=0.0, le=1.0)]


def save(c: Ctx, category: str, threshold: float) -> dict[str, float]:
    """Store one category's threshold and record who changed it from what."""
    tuning.check(category, threshold)
    before = tuning.preview(c.client, c.settings, category, threshold)
    stored = put_thresholds(c.client, c.settings, {category: threshold}, c.username)
    c.record("thresholds_change", category, old=before.current, new=threshold,
             queue_before=before.queue_now, queue_after=before.queue_candidate,
             precision_expected=before.precision_candidate,
             model_default=before.model_default)
    return stored


@router.get("/admin/thresholds", name="admin_thresholds", response_class=HTMLResponse)
def thresholds_page(request: Request, category: str | None = None,
                    candidate: Annotated[float | None, Query(ge=0.0, le=1.0)] = None) -> Response:
    c = ctx(request)
    defaults = model_defaults(c.settings)
    stored = stored_thresholds(c.client, c.settings)
    current = {cat: stored.get(cat, defaults[cat].threshold) for cat in CATEGORIES}
    chosen = category if category in CATEGORIES else None
    shown = None
    if chosen is not None and candidate is not None:
        shown = tuning.preview(c.client, c.settings, chosen, candidate)
    return page(request, "thresholds.html", {
        "current": current, "defaults": defaults, "admin_set": set(stored),
        "chosen": chosen, "candidate": candidate, "preview": shown,
        "decided": tuning.decided_counts(c.client, c.settings),
        "saved": request.query_params.get("saved"),
    })


@router.post("/admin/thresholds", name="admin_thresholds_save")
def thresholds_save(request: Request, category: Annotated[str, Form()],
                    threshold: Annotated[float, Form(ge=0.0, le=1.0)]) -> Response:
    save(ctx(request), category, threshold)
    return redirect("/admin/thresholds", saved=category)


def _chart(request: Request, category: str, kind: str, candidate: float | None,
           attachment: bool) -> Response:
    c = ctx(request)
    tuning.check(category)
    data = tuning.curve(c.client, c.settings, category)
    current = get_thresholds(c.client, c.settings)[category]
    default = model_defaults(c.settings)[category].threshold
    draw = plots.pr_curve if kind == "pr" else plots.histogram
    body = plots.png(draw(data, current, candidate, default))
    return download(body, "image/png", f"{category}-{kind}.png", inline=not attachment)


@router.get("/admin/thresholds/{category}/pr.png", name="admin_thresholds_pr")
def pr_png(request: Request, category: str, candidate: Annotated[float | None, Query(ge=0, le=1)] = None,
           attachment: Annotated[bool, Query(alias="download")] = False) -> Response:
    return _chart(request, category, "pr", candidate, attachment)


@router.get("/admin/thresholds/{category}/histogram.png", name="admin_thresholds_histogram")
def histogram_png(request: Request, category: str,
                  candidate: Annotated[float | None, Query(ge=0, le=1)] = None,
                  attachment: Annotated[bool, Query(alias="download")] = False) -> Response:
    return _chart(request, category, "histogram", candidate, attachment)


class ThresholdIn(BaseModel):
    category: str
    threshold: float = Field(ge=0.0, le=1.0)


@router.get("/api/admin/thresholds", name="api_admin_thresholds", tags=["admin"])
def api_thresholds(request: Request) -> dict[str, Any]:
    """Current thresholds, the model's defaults (with their validation precision and recall),
    which categories an admin set, and per category the precision/recall curve from
    decisions."""
    c = ctx(request)
    curves = {cat: tuning.curve(c.client, c.settings, cat) for cat in CATEGORIES}
    defaults = model_defaults(c.settings)
    stored = stored_thresholds(c.client, c.settings)
    return {"thresholds": {cat: stored.get(cat, defaults[cat].threshold) for cat in CATEGORIES},
            "model_defaults": {cat: d.as_dict() for cat, d in defaults.items()},
            "admin_set": sorted(stored),
            "curves": {cat: {"thresholds": d.thresholds, "precision": d.precision,
                             "recall": d.recall, "confirmed": d.positives,
                             "dismissed": d.negatives, "decided": d.decided}
                       for cat, d in curves.items()}}


@router.get("/api/admin/thresholds/preview", name="api_admin_thresholds_preview", tags=["admin"])
def api_preview(request: Request, category: str, threshold: Score) -> dict[str, Any]:
    """What the queue would hold, and the precision to expect, with this threshold."""
    c = ctx(request)
    return tuning.preview(c.client, c.settings, category, threshold).as_dict()


@router.put("/api/admin/thresholds", name="api_admin_thresholds_save", tags=["admin"])
def api_save(request: Request, body: ThresholdIn) -> dict[str, float]:
    """Save one category's threshold; the queue uses it from the next request."""
    return save(ctx(request), body.category, body.threshold)
