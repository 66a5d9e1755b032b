"""Thresholds: curves from decisions, preview counts equal to the queue after saving."""

from __future__ import annotations

import pytest

from harmwatch.documents import get_thresholds
from harmwatch.search import es_client
from review_ui import audit, review
from review_ui.indices import audit_alias
from tests.admin_support import admin_env, app, as_role, index, item, logins  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration
OWN_INDICES = True  # counts items: no other module may write to its index


@pytest.fixture(scope="module")
def seeded(admin_env):  # noqa: F811
    """Grooming-scored items: decided ones at known scores, new ones of several ages."""
    docs = []
    n = 0
    for score, decision in ((0.95, "confirmed"), (0.85, "confirmed"), (0.75, "dismissed"),
                            (0.65, "confirmed"), (0.55, "dismissed"), (0.45, "dismissed")):
        n += 1
        docs.append(item(n, scores={"grooming": score}, decision=decision, category="grooming"))
    for score, age in ((0.92, 1), (0.72, 3), (0.62, 10), (0.52, 20), (0.42, 40), (0.35, 2)):
        n += 1
        docs.append(item(n, scores={"grooming": score}, age_days=age))
    index(admin_env, docs)
    return docs


def _queue_total(settings) -> int:
    filters = review.QueueFilters()
    return review.search_queue(es_client(settings), settings, filters, "admin", "x").total


def test_curve_counts_decisions(app, logins, seeded):  # noqa: F811
    as_role(app, logins["admin"])
    data = app.get("/api/admin/thresholds").json()["curves"]["grooming"]
    assert data["decided"] == 6
    at = data["thresholds"].index(0.6)
    assert data["precision"][at] == pytest.approx(3 / 4)  # 0.95 0.85 0.65 right, 0.75 wrong
    assert data["recall"][at] == pytest.approx(1.0)
    at = data["thresholds"].index(0.8)
    assert data["precision"][at] == pytest.approx(1.0)
    assert data["recall"][at] == pytest.approx(2 / 3)
    assert sum(data["confirmed"]) == 3 and sum(data["dismissed"]) == 3


def test_preview_equals_queue_after_saving(app, logins, admin_env, seeded):  # noqa: F811
    csrf = as_role(app, logins["admin"])
    before = _queue_total(admin_env)
    preview = app.get("/api/admin/thresholds/preview",
                      params={"category": "grooming", "threshold": 0.4}).json()
    assert preview["queue_now"] == before
    assert preview["precision_candidate"] == pytest.approx(3 / 6)
    assert preview["windows"]["7"]["candidate"] == 2  # 0.92 (1 day old), 0.72 (3 days)
    assert preview["windows"]["30"]["candidate"] == 4  # and 0.62 (10), 0.52 (20); not 0.35
    assert preview["queue_candidate"] == 5  # and 0.42 (40 days)
    response = app.put("/api/admin/thresholds", json={"category": "grooming", "threshold": 0.4},
                       headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    assert get_thresholds(es_client(admin_env), admin_env)["grooming"] == 0.4
    assert _queue_total(admin_env) == preview["queue_candidate"] != before
    # The queue page the analysts use shows the new count at once.
    as_role(app, logins["analyst"])
    assert app.get("/api/queue").json()["total"] == preview["queue_candidate"]


def test_save_through_the_form_is_audited(app, logins, admin_env, seeded):  # noqa: F811
    csrf = as_role(app, logins["admin"])
    page = app.get("/admin/thresholds", params={"category": "grooming", "candidate": 0.7})
    assert page.status_code == 200 and 'id="preview-table"' in page.text
    assert "6 decisions" in page.text.split('id="cat-grooming"')[1].split("</h2>")[0]
    preview = app.get("/api/admin/thresholds/preview",
                      params={"category": "grooming", "threshold": 0.7}).json()
    response = app.post("/admin/thresholds", data={"category": "grooming", "threshold": "0.7",
                                                   "csrf_token": csrf})
    assert response.status_code == 303
    assert _queue_total(admin_env) == preview["queue_candidate"]
    client = es_client(admin_env)
    client.indices.refresh(index=audit_alias(admin_env))
    records = audit.search_records(es_client(admin_env), admin_env, action="thresholds_change")
    assert records[0]["target"] == "grooming" and records[0]["details"]["new"] == 0.7


def test_charts_are_png(app, logins, seeded):  # noqa: F811
    as_role(app, logins["admin"])
    for kind in ("pr", "histogram"):
        response = app.get(f"/admin/thresholds/grooming/{kind}.png", params={"candidate": 0.3})
        assert response.status_code == 200
        assert response.content.startswith(b"\x89PNG")
        download = app.get(f"/admin/thresholds/grooming/{kind}.png", params={"download": 1})
        assert download.headers["content-disposition"].startswith("attachment")


def test_bad_input_is_refused(app, logins):  # noqa: F811
    csrf = as_role(app, logins["admin"])
    assert app.get("/api/admin/thresholds/preview",
                   params={"category": "nope", "threshold": 0.5}).status_code == 400
    assert app.get("/api/admin/thresholds/preview",
                   params={"category": "grooming", "threshold": 1.5}).status_code == 422
    assert app.put("/api/admin/thresholds", json={"category": "grooming", "threshold": 0.5}
                   ).status_code == 403  # no CSRF token
    assert app.put("/api/admin/thresholds", json={"category": "grooming", "threshold": 0.5},
                   headers={"X-CSRF-Token": csrf}).status_code == 200
