"""Dashboard and periodic report: figures cross-checked against Elasticsearch and the seed."""

from __future__ import annotations

import csv
import io
import warnings
from collections import Counter
from datetime import date, datetime, timedelta

import pytest

from crawlers.stats import record_published
from harmwatch.contract import utcnow
from harmwatch.documents import crawl_stats_alias, items_alias
from harmwatch.search import es_client
from review_ui import i18n
from review_ui.admin import export, reports
from tests.admin_support import admin_env, app, as_role, index, item, logins  # noqa: F401

pytestmark = pytest.mark.integration
OWN_INDICES = True  # counts items: no other module may write to its index

TODAY = utcnow().date()


@pytest.fixture(scope="module")
def seeded(admin_env):  # noqa: F811
    specs = [  # (scores, source, age days, decision, category)
        ({"grooming": 0.9}, "forum-a", 0.2, None, None),
        ({"grooming": 0.8}, "forum-a", 1.5, "confirmed", "grooming"),
        ({"bullying": 0.7}, "forum-b", 2.5, "dismissed", None),
        ({"bullying": 0.9}, "forum-b", 3.5, "confirmed", "bullying"),
        ({"self_harm": 0.6}, "forum-a", 4.5, "dismissed", None),
        ({"self_harm": 0.95}, "forum-b", 0.5, "escalated", "self_harm"),
        ({"grooming": 0.3}, "forum-b", 6.5, None, None),
        ({"violence": 0.8}, "forum-a", 40, "confirmed", "violence"),
    ]
    docs = [item(n, scores=s, source=src, age_days=age, decision=d, category=c,
                 decided_after_hours=3)
            for n, (s, src, age, d, c) in enumerate(specs, start=1)]
    index(admin_env, docs)
    today, long_ago = TODAY.isoformat(), (TODAY - timedelta(days=30)).isoformat()
    assert record_published(admin_env, "job-1", "forum-a", Counter({today: 4, long_ago: 9}))
    assert record_published(admin_env, "job-2", "forum-a", Counter({today: 1}))
    assert record_published(admin_env, "job-2", "forum-b", Counter({today: 2}))
    assert record_published(admin_env, "job-2", "forum-b", Counter({today: 2}))  # a retry
    es_client(admin_env).indices.refresh(index=crawl_stats_alias(admin_env))
    return docs


def _day(value: str) -> date:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date()


def _expected(docs, start: date, end: date) -> dict:
    """The report's figures computed from the seeded documents themselves."""
    inside = lambda value: start <= _day(value) < end  # noqa: E731
    flagged = [d for d in docs if inside(d["crawled_at"])]
    decided = [d for d in docs if d.get("decision") and inside(d["decision"]["at"])]
    return {
        "flagged": Counter(_day(d["crawled_at"]).isoformat() for d in flagged),
        "flagged_by_source": Counter(d["source"] for d in flagged),
        "confirmed": sum(d["status"] == "confirmed" for d in decided),
        "dismissed": sum(d["status"] == "dismissed" for d in decided),
        "confirmed_by_category": Counter(d["decision"]["category"] for d in decided
                                         if d["status"] == "confirmed"),
        "queue": sum(d["status"] == "new" and max(d["scores"].values()) >= 0.5 for d in docs),
    }


def test_report_matches_the_seed_and_elasticsearch(admin_env, seeded):  # noqa: F811
    client = es_client(admin_env)
    start, end = TODAY - timedelta(days=10), TODAY + timedelta(days=1)
    report = reports.build(client, admin_env, start, end)
    want = _expected(seeded, start, end)
    assert {d: row["flagged"] for d, row in report.daily.items() if row["flagged"]} == \
        dict(want["flagged"])
    assert report.totals["confirmed"] == want["confirmed"]
    assert report.totals["dismissed"] == want["dismissed"]
    assert report.totals["crawled"] == 7 and report.crawl_counts_available
    assert report.by_source["forum-a"]["crawled"] == 5
    assert report.daily[TODAY.isoformat()]["crawled"] == 7
    assert {s: r["flagged"] for s, r in report.by_source.items()} == \
        dict(want["flagged_by_source"])
    assert {c: r["confirmed"] for c, r in report.by_category.items() if r["confirmed"]} == \
        dict(want["confirmed_by_category"])
    assert report.queue_size == want["queue"]
    assert report.decision_hours["count"] == want["confirmed"] + want["dismissed"] + 1
    assert report.decision_hours["median"] == pytest.approx(3.0, abs=0.01)
    # Cross-check with plain Elasticsearch counts, query by query.
    flagged = client.count(index=items_alias(admin_env), query={"range": {"crawled_at": {
        "gte": start.isoformat(), "lt": end.isoformat()}}})["count"]
    assert report.totals["flagged"] == flagged
    dismissed = client.count(index=items_alias(admin_env), query={"bool": {"filter": [
        {"term": {"decision.status": "dismissed"}},
        {"range": {"decision.at": {"gte": start.isoformat(), "lt": end.isoformat()}}}]}})["count"]
    assert report.totals["dismissed"] == dismissed
    assert report.precision["bullying"] == pytest.approx(0.5)
    assert report.precision["self_harm"] == pytest.approx(0.5)  # escalated right, dismissed wrong


def test_period_bounds():
    assert reports.period_bounds("week", date(2026, 11, 29)) == (date(2026, 11, 23),
                                                                 date(2026, 11, 30))
    assert reports.period_bounds("month", date(2026, 12, 31)) == (date(2026, 12, 1),
                                                                  date(2027, 1, 1))


def test_dashboard_and_downloads(app, logins, seeded):  # noqa: F811
    as_role(app, logins["admin"])
    params = {"period": "month", "date": TODAY.isoformat()}
    page = app.get("/admin", params=params)
    assert page.status_code == 200 and 'id="daily-table"' in page.text
    api = app.get("/api/admin/report", params=params).json()
    rows = list(csv.DictReader(io.StringIO(
        app.get("/admin/reports/report.csv", params={**params, "lang": "vi"}).content
        .decode("utf-8-sig"))))
    totals = {r["metric"]: int(r["value"]) for r in rows if r["section"] == "total"}
    assert totals == api["totals"]
    per_day = {r["key"]: int(r["value"]) for r in rows
               if r["section"] == "day" and r["metric"] == "flagged"}
    assert per_day == {d: v["flagged"] for d, v in api["daily"].items()}
    assert any(r["label"] == "Đã gắn cờ" for r in rows), "labels are in Vietnamese"
    pdf = app.get("/admin/reports/report.pdf", params={**params, "lang": "en"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    chart = app.get("/admin/reports/daily.png", params=params)
    assert chart.content.startswith(b"\x89PNG")


def test_vietnamese_pdf_has_every_glyph(admin_env, seeded):  # noqa: F811
    report = reports.build(es_client(admin_env), admin_env, TODAY - timedelta(days=7),
                           TODAY + timedelta(days=1))
    i18n.set_language("vi")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib warns on a glyph missing from the font
            body = export.to_pdf(report)
        assert export.metric_label("flagged") == "Đã gắn cờ"
    finally:
        i18n.set_language(i18n.DEFAULT_LANGUAGE)
    assert body.startswith(b"%PDF") and len(body) > 5000


def test_report_csv_neutralises_formulas_in_source_names():
    """Issue 18.4: a source name arrives with each crawled message; in the report CSV it
    must stay text, never a formula."""
    formula = "=cmd|' /C calc'!A0"
    report = reports.Report(start=date(2026, 11, 1), end=date(2026, 12, 1),
                            generated_at=datetime(2026, 12, 1, 8, 0),
                            by_source={formula: {"flagged": 3}, "@sum(1)": {"flagged": 1}})
    rows = list(csv.reader(io.StringIO(export.to_csv(report).decode("utf-8-sig"))))
    keys = [row[1] for row in rows if row[0] == "source"]
    assert keys == ["'" + formula, "'@sum(1)"]
