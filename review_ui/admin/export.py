"""The periodic report as CSV and PDF, in Vietnamese or English (docs/formats/reports.md).

The CSV is long-format — ``section, key, metric, value, label`` — so its columns never
change when categories or sources do; ``label`` is the metric in the report's language
for people, the other columns stay stable codes for programs. The PDF is drawn with
matplotlib's ``PdfPages`` in DejaVu Sans (bundled with matplotlib), which has the
Vietnamese letters, so no extra font or package is needed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harmwatch.csvcells import SafeWriter  # noqa: E402
from review_ui.admin.reports import METRICS, Report  # noqa: E402
from review_ui.i18n import format_number, format_share  # noqa: E402
from review_ui.i18n import gettext as _  # noqa: E402
from review_ui.rendering import label  # noqa: E402

A4 = (8.27, 11.69)


def metric_label(metric: str) -> str:
    labels = {"crawled": _("Posts crawled"), "flagged": _("Flagged"), "confirmed": _("Confirmed"),
              "dismissed": _("Dismissed"), "precision": _("Precision"),
              "queue_size": _("Queue size"), "oldest_queued_at": _("Oldest queued item"),
              "oldest_age_hours": _("Oldest item age (hours)"),
              "count": _("Decisions"), "median": _("Median hours to decision"),
              "mean": _("Mean hours to decision"), "p90": _("90th percentile hours to decision"),
              "period_start": _("Period start"), "period_end": _("Period end (exclusive)"),
              "generated_at": _("Generated at"),
              "crawl_counts_available": _("Crawl counts available")}
    return labels[metric]


def rows(report: Report) -> Iterator[tuple[str, str, str, object]]:
    """(section, key, metric, value) for every figure of the report, in a fixed order."""
    yield "report", "", "period_start", report.start.isoformat()
    yield "report", "", "period_end", report.end.isoformat()
    yield "report", "", "generated_at", report.generated_at.isoformat(timespec="seconds")
    yield "report", "", "crawl_counts_available", report.crawl_counts_available
    for metric, value in report.totals.items():
        yield "total", "", metric, value
    for section, table in (("day", report.daily), ("category", report.by_category),
                           ("source", report.by_source)):
        for key, row in table.items():
            for metric in METRICS:
                if metric in row:
                    yield section, key, metric, row[metric]
    for category, value in report.precision.items():
        yield "precision", category, "precision", "" if value is None else round(value, 4)
    yield "queue", "", "queue_size", report.queue_size
    yield "queue", "", "oldest_queued_at", report.oldest_queued_at or ""
    yield "queue", "", "oldest_age_hours", report.oldest_age_hours or ""
    for metric, value in report.decision_hours.items():
        yield "time_to_decision", "", metric, "" if value is None else value


def to_csv(report: Report) -> bytes:
    """UTF-8 with a BOM, so spreadsheet programs show Vietnamese labels correctly."""
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(["section", "key", "metric", "value", "label"])
    for section, key, metric, value in rows(report):
        writer.writerow([section, key, metric, value, metric_label(metric)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _title_page(report: Report) -> Figure:
    figure = plt.figure(figsize=A4)
    figure.text(0.08, 0.94, _("harmwatch programme report"), fontsize=18, weight="bold")
    figure.text(0.08, 0.91, _("Period: %(start)s to %(end)s (UTC, end exclusive)")
                % {"start": report.start.isoformat(), "end": report.end.isoformat()}, fontsize=10)
    figure.text(0.08, 0.89, _("Generated at %(time)s UTC")
                % {"time": report.generated_at.strftime("%Y-%m-%d %H:%M")}, fontsize=10)
    lines = [(metric_label(m), format_number(v, 0)) for m, v in report.totals.items()]
    if not report.crawl_counts_available:
        lines[0] = (metric_label("crawled"), _("not available"))
    lines += [(metric_label("queue_size"), format_number(report.queue_size, 0)),
              (metric_label("oldest_age_hours"), format_number(report.oldest_age_hours, 1)),
              (metric_label("count"), format_number(report.decision_hours.get("count"), 0)),
              (metric_label("median"), format_number(report.decision_hours.get("median"), 1)),
              (metric_label("p90"), format_number(report.decision_hours.get("p90"), 1))]
    _table(figure.add_axes((0.08, 0.45, 0.84, 0.4)), [_("Figure"), _("Value")], lines)
    precision = [(label(c), format_share(p) or "—") for c, p in report.precision.items()]
    _table(figure.add_axes((0.08, 0.08, 0.84, 0.32)), [_("Category"), metric_label("precision")],
           precision)
    return figure


def _table(axis: plt.Axes, header: list[str], body: list[tuple[str, ...]]) -> None:
    axis.axis("off")
    if body:
        table = axis.table(cellText=[list(r) for r in body], colLabels=header, loc="upper left",
                           cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(9)


def daily_chart(report: Report) -> Figure:
    """Flagged, confirmed and dismissed per day (crawled on its own axis: it is far larger)."""
    figure, axis = plt.subplots(figsize=(8, 3.6))
    days = list(report.daily)
    for metric, colour in (("flagged", "#1f5fbf"), ("confirmed", "#a33"), ("dismissed", "#8a94a6")):
        axis.plot(days, [report.daily[d][metric] for d in days], marker="o", color=colour,
                  label=metric_label(metric))
    if report.crawl_counts_available:
        other = axis.twinx()
        other.bar(days, [report.daily[d]["crawled"] for d in days], color="#1f7a3a", alpha=0.15,
                  label=metric_label("crawled"))
        other.set_ylabel(metric_label("crawled"))
    axis.set_title(_("Per day"))
    step = max(1, len(days) // 10)  # at most about ten date labels, whatever the period
    axis.set_xticks(range(0, len(days), step), [days[i][5:] for i in range(0, len(days), step)])
    axis.tick_params(axis="x", labelrotation=45, labelsize=8)
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure


def _breakdown_page(report: Report) -> Figure:
    figure = plt.figure(figsize=A4)
    header = [""] + [metric_label(m) for m in METRICS]
    cats = [(label(c), *(format_number(row.get(m), 0) if m in row else "—" for m in METRICS))
            for c, row in report.by_category.items()]
    figure.text(0.08, 0.95, _("By category"), fontsize=13, weight="bold")
    _table(figure.add_axes((0.08, 0.62, 0.84, 0.32)), header, cats)
    figure.text(0.08, 0.58, _("By source"), fontsize=13, weight="bold")
    srcs = [(s, *(format_number(row.get(m, 0), 0) for m in METRICS))
            for s, row in list(report.by_source.items())[:40]]
    _table(figure.add_axes((0.08, 0.05, 0.84, 0.52)), header, srcs)
    return figure


def to_pdf(report: Report) -> bytes:
    out = io.BytesIO()
    with PdfPages(out, metadata={"Title": _("harmwatch programme report"),
                                 "Creator": "harmwatch"}) as pdf:
        for figure in (_title_page(report), daily_chart(report), _breakdown_page(report)):
            pdf.savefig(figure)
            plt.close(figure)
    return out.getvalue()
