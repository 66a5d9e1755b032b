"""Thresholds: curves from decisions, preview counts equal to the queue after saving."""

from __future__ import annotations

import pytest

from harmwatch.documents import get_thresholds, put_thresholds
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
    # From a known threshold, not the shipped model's default (which moves with retraining).
    put_thresholds(es_client(admin_env), admin_env, {"grooming": 0.5}, user="test")
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


@pytest.fixture(scope="module")
def with_model(admin_env, tmp_path_factory):  # noqa: F811
    """The admin settings with a text model manifest that gives two categories defaults."""
    import json

    model_dir = tmp_path_factory.mktemp("text-model")
    (model_dir / "model.json").write_text(json.dumps({"version": "hw-text-test", "thresholds": {
        "violence": {"threshold": 0.37, "precision": 0.84, "recall": 0.91, "target": 0.9},
        "bullying": {"threshold": 0.62, "precision": 0.7, "recall": 0.93, "target": 0.9}}}))
    return admin_env.model_copy(update={"text_model_dir": model_dir})


def test_the_page_shows_each_model_default_beside_the_current_value(with_model, logins):  # noqa: F811
    from harmwatch.documents import put_thresholds
    from review_ui.accounts import update_user
    from tests.ui_support import ui_client

    put_thresholds(es_client(with_model), with_model, {"bullying": 0.8}, user="test")
    with ui_client(with_model) as client:
        as_role(client, logins["admin"])
        page = client.get("/admin/thresholds").text
        violence = page.split('id="cat-violence"')[1].split("</section>")[0]
        assert 'id="current-violence">threshold 0.37<' in violence
        assert 'id="default-violence">model default 0.37<' in violence
        assert "Current value: the model default" in violence
        assert "precision 84%, recall 91% (recall target 90%)" in violence
        bullying = page.split('id="cat-bullying"')[1].split("</section>")[0]
        assert 'id="current-bullying">threshold 0.80<' in bullying
        assert 'id="default-bullying">model default 0.62<' in bullying
        assert "Current value set by an admin." in bullying
        trafficking = page.split('id="cat-trafficking"')[1].split("</section>")[0]
        assert "The model gives no default for this category; 0.50 is used." in trafficking
        api = client.get("/api/admin/thresholds").json()
        assert api["model_defaults"]["violence"] == {
            "threshold": 0.37, "precision": 0.84, "recall": 0.91, "target": 0.9,
            "from_model": True}
        assert api["thresholds"]["violence"] == 0.37 and api["thresholds"]["bullying"] == 0.8
        assert "bullying" in api["admin_set"] and "violence" not in api["admin_set"]
        preview = client.get("/api/admin/thresholds/preview",
                             params={"category": "violence", "threshold": 0.5}).json()
        assert preview["model_default"] == 0.37 and preview["current"] == 0.37
        assert client.get("/admin/thresholds/violence/pr.png").content.startswith(b"\x89PNG")
        update_user(es_client(with_model), with_model, logins["admin"], locale="vi")
        try:
            vi = client.get("/admin/thresholds").text.split('id="cat-violence"')[1]
        finally:
            update_user(es_client(with_model), with_model, logins["admin"], locale="en")
        assert "mặc định của mô hình 0,37" in vi.split("</h2>")[0]
        assert "độ chính xác 84" in vi.split("</section>")[0]


def test_the_precision_recall_plot_marks_the_model_default():
    from review_ui import i18n
    from review_ui.admin import plots
    from review_ui.admin.tuning import Curve

    i18n.set_language("en")
    data = Curve("violence", [0] * 101, [0] * 101, thresholds=[i / 100 for i in range(101)],
                 precision=[None] * 101, recall=[None] * 101)
    for draw in (plots.pr_curve, plots.histogram):
        figure = draw(data, 0.5, 0.7, 0.37)
        lines = {line.get_label(): line.get_xdata()[0] for line in figure.axes[0].get_lines()}
        plots.png(figure)
        assert lines["model default threshold"] == 0.37
        assert lines["current threshold"] == 0.5 and lines["candidate threshold"] == 0.7
