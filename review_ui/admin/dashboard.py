"""The admin dashboard and the periodic report downloads (CSV, PDF, PNG chart, JSON)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from harmwatch.contract import utcnow
from review_ui import i18n
from review_ui.admin import export, plots, reports
from review_ui.admin.common import ctx, download, page

router = APIRouter()

Period = Annotated[Literal["week", "month"], Query()]
Lang = Annotated[Literal["vi", "en"] | None, Query()]


def _report(request: Request, period: str, anchor: date | None) -> reports.Report:
    c = ctx(request)
    start, end = reports.period_bounds(period, anchor or utcnow().date())
    return reports.build(c.client, c.settings, start, end)


@contextmanager
def _language(lang: str | None) -> Iterator[None]:
    """Write a report in ``lang`` whatever the admin's own UI language is."""
    before = i18n.language()
    i18n.set_language(lang or before)
    try:
        yield
    finally:
        i18n.set_language(before)


@router.get("/admin", name="admin_dashboard", response_class=HTMLResponse)
def dashboard(request: Request, period: Period = "week",
              anchor: Annotated[date | None, Query(alias="date")] = None) -> Response:
    report = _report(request, period, anchor)
    return page(request, "dashboard.html", {
        "report": report, "period": period, "anchor": (anchor or utcnow().date()).isoformat(),
        "metrics": reports.METRICS, "metric_label": export.metric_label,
    })


def _export(request: Request, period: str, anchor: date | None, lang: str | None,
            fmt: str, build: Callable[[reports.Report], bytes], media_type: str) -> Response:
    report = _report(request, period, anchor)
    with _language(lang):
        body = build(report)
    ctx(request).record("report_export", f"{report.start}..{report.end}", format=fmt,
                        language=lang or i18n.language())
    return download(body, media_type, f"harmwatch-report-{report.start}-{period}.{fmt}")


@router.get("/admin/reports/report.csv", name="admin_report_csv")
def report_csv(request: Request, period: Period = "week",
               anchor: Annotated[date | None, Query(alias="date")] = None,
               lang: Lang = None) -> Response:
    return _export(request, period, anchor, lang, "csv", export.to_csv, "text/csv; charset=utf-8")


@router.get("/admin/reports/report.pdf", name="admin_report_pdf")
def report_pdf(request: Request, period: Period = "week",
               anchor: Annotated[date | None, Query(alias="date")] = None,
               lang: Lang = None) -> Response:
    return _export(request, period, anchor, lang, "pdf", export.to_pdf, "application/pdf")


@router.get("/admin/reports/daily.png", name="admin_report_chart")
def report_chart(request: Request, period: Period = "week",
                 anchor: Annotated[date | None, Query(alias="date")] = None,
                 attachment: Annotated[bool, Query(alias="download")] = False) -> Response:
    report = _report(request, period, anchor)
    return download(plots.png(export.daily_chart(report)), "image/png",
                    f"harmwatch-daily-{report.start}.png", inline=not attachment)


@router.get("/api/admin/report", name="api_admin_report", tags=["admin"])
def api_report(request: Request, period: Period = "week",
               anchor: Annotated[date | None, Query(alias="date")] = None) -> dict[str, Any]:
    """Every figure of the period as JSON (the same rows as the CSV, nested)."""
    report = _report(request, period, anchor)
    return {"start": report.start, "end": report.end, "generated_at": report.generated_at,
            "totals": report.totals, "daily": report.daily, "by_category": report.by_category,
            "by_source": report.by_source, "precision": report.precision,
            "queue_size": report.queue_size, "oldest_queued_at": report.oldest_queued_at,
            "oldest_age_hours": report.oldest_age_hours,
            "decision_hours": report.decision_hours,
            "crawl_counts_available": report.crawl_counts_available}
