"""The queue, claims, decisions, reveals and wellness against the real Elasticsearch."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from harmwatch.contract import CATEGORIES, utcnow
from harmwatch.documents import items_alias, put_thresholds
from review_ui import errors, review, samples
from review_ui.errors import Conflict
from review_ui.review import Decision, QueueFilters
from tests.ui_support import login, new_user, seed, seed_one, ui_client, unique_source

pytestmark = pytest.mark.integration

LOW = {c: 0.0 for c in CATEGORIES}


@pytest.fixture(scope="module")
def app_client(services):
    with ui_client(services) as client:
        yield client


def _queue(client, settings, role="analyst", username="x", **filters):
    return review.search_queue(client, settings, QueueFilters(**filters), role, username)


def test_queue_applies_thresholds_and_bank_matches(services, app_client):
    es = app_client.app.state.es
    source = unique_source()
    above = seed_one(services, source=source, scores=LOW | {"violence": 0.95})
    below = seed_one(services, source=source, scores=LOW | {"violence": 0.2})
    matched = seed_one(services, source=source, scores=LOW | {"violence": 0.1}, match=True,
                       media=[samples.png_bytes(1)])
    put_thresholds(es, services, {"violence": 0.6}, user="test")  # not the model's default
    ids = [i["item_id"] for i in _queue(es, services, source=source).items]
    assert matched["item_id"] == ids[0], "a bank match comes first"
    assert set(ids) == {above["item_id"], matched["item_id"]}
    assert below["item_id"] not in ids
    put_thresholds(es, services, {"violence": 0.15}, user="test")
    try:
        ids = [i["item_id"] for i in _queue(es, services, source=source).items]
        assert below["item_id"] in ids, "a threshold change applies at once"
    finally:
        put_thresholds(es, services, {"violence": 0.6}, user="test")


def test_search_ignores_diacritics(services, app_client):
    es = app_client.app.state.es
    source = unique_source()
    hit = seed_one(services, source=source, text="Cô giáo ở Đà Nẵng bắt nạt trẻ em")
    seed_one(services, source=source, text="nothing relevant here")
    for query in ("da nang", "Đà Nẵng", "TRE EM", "bat nat"):
        ids = [i["item_id"] for i in _queue(es, services, source=source, q=query).items]
        assert ids == [hit["item_id"]], query


def test_filters(services, app_client):
    es = app_client.app.state.es
    source = unique_source()
    vi = seed_one(services, source=source, language="vi",
                  scores=LOW | {"trafficking": 0.9})
    en = seed_one(services, source=source, language="en", scores=LOW | {"grooming": 0.9},
                  age_minutes=3 * 24 * 60)
    def ids(**f):
        return [i["item_id"] for i in _queue(es, services, source=source, **f).items]
    assert ids(language="en") == [en["item_id"]]
    assert ids(category="trafficking") == [vi["item_id"]]
    today = utcnow().date()
    assert ids(date_from=today) == [vi["item_id"]]
    assert ids(date_to=today - timedelta(days=2)) == [en["item_id"]]
    user = new_user(services, "analyst")
    review.claim(es, services, vi["item_id"], user, "analyst")
    es.indices.refresh(index=items_alias(services))
    assert [i["item_id"] for i in review.search_queue(
        es, services, QueueFilters(source=source, assignee="me"), "analyst", user).items] == [
        vi["item_id"]]
    with pytest.raises(errors.ReviewError):
        ids(category="nonsense")


def test_pagination_uses_search_after(services, app_client):
    es = app_client.app.state.es
    source = unique_source()
    docs = seed(services, 7, source=source)
    seen, cursor = [], None
    while True:
        page = _queue(es, services, source=source, cursor=cursor, size=3)
        seen += [i["item_id"] for i in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(d["item_id"] for d in docs)
    assert len(seen) == len(set(seen)) == 7
    with pytest.raises(errors.ReviewError):
        _queue(es, services, cursor="bm90LWEtY3Vyc29y")


def test_claims_are_exclusive_under_concurrency(services, app_client):
    es = app_client.app.state.es
    item = seed_one(services)
    users = [new_user(services, "analyst") for _ in range(6)]
    winners, barrier = [], threading.Barrier(len(users))

    def grab(user):
        barrier.wait()
        try:
            review.claim(es, services, item["item_id"], user, "analyst")
            winners.append(user)
        except Conflict:
            pass

    threads = [threading.Thread(target=grab, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    loser = next(u for u in users if u not in winners)
    with pytest.raises(Conflict):
        review.decide(es, services, item["item_id"], loser, "analyst", Decision("dismiss"))


def test_claims_expire(services, app_client):
    es = app_client.app.state.es
    item = seed_one(services)
    first, second = new_user(services, "analyst"), new_user(services, "analyst")
    review.claim(es, services, item["item_id"], first, "analyst", minutes=-1)
    review.claim(es, services, item["item_id"], second, "analyst")  # the old claim lapsed
    with pytest.raises(Conflict):
        review.claim(es, services, item["item_id"], first, "analyst")


def test_decide_requires_a_claim_and_confirm_feeds_the_bank(services, app_client):
    from classifiers.banks import CONFIRMED_BANK, BankStore

    item = seed_one(services, media=[samples.png_bytes(77)])
    user = new_user(services, "analyst")
    csrf = login(app_client, user)
    headers = {"X-CSRF-Token": csrf}
    url = f"/api/items/{item['item_id']}"
    body = {"action": "confirm", "category": "grooming", "severity": "high", "note": "clear"}
    assert app_client.post(f"{url}/decision", json=body, headers=headers).status_code == 409
    assert app_client.post(f"{url}/claim", headers=headers).json()["user"] == user
    incomplete = {"action": "confirm", "category": "grooming"}
    assert app_client.post(f"{url}/decision", json=incomplete, headers=headers
                           ).status_code == 400
    decided = app_client.post(f"{url}/decision", json=body, headers=headers).json()
    assert decided["status"] == "confirmed" and decided["user"] == user
    stored = app_client.get(url).json()
    assert stored["status"] == "confirmed" and stored["claim"] is None
    assert stored["notes"][0]["text"] == "clear"
    store = BankStore(services.resolved_banks_dir)
    try:
        entries = [e for e in store.entries(CONFIRMED_BANK)
                   if e.sha256 == item["media"][0]["sha256"]]
    finally:
        store.close()
    assert len(entries) == 1 and entries[0].crop_resistant  # to find cropped re-posts
    # Now evidence: sealed at rest, and still shown to the people who work on it.
    from harmwatch.blobstore import get_blob_store

    assert get_blob_store(services).is_sealed(item["media"][0]["blob_ref"])
    assert not get_blob_store(services).plain.exists(item["media"][0]["blob_ref"])
    preview = app_client.get(f"/media/{item['item_id']}/0/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    assert app_client.post(f"{url}/claim", headers=headers).status_code == 409
    app_client.cookies.clear()


def test_bulk_actions(services, app_client):
    source = unique_source()
    docs = seed(services, 3, source=source)
    other = new_user(services, "analyst")
    es = app_client.app.state.es
    review.claim(es, services, docs[0]["item_id"], other, "analyst")
    csrf = login(app_client, new_user(services, "analyst"))
    response = app_client.post("/queue/bulk", data={
        "csrf_token": csrf, "action": "dismiss", "item_ids": [d["item_id"] for d in docs]})
    assert response.headers["location"] == "/queue?done=2&failed=1"
    response = app_client.post("/api/bulk", headers={"X-CSRF-Token": csrf}, json={
        "action": "escalate", "item_ids": [docs[0]["item_id"]]})
    assert docs[0]["item_id"] in response.json()["failed"]
    app_client.cookies.clear()


def test_liaison_sees_only_escalated_and_confirmed(services, app_client):
    es = app_client.app.state.es
    fresh, escalated = seed_one(services), seed_one(services)
    analyst = new_user(services, "analyst")
    review.claim(es, services, escalated["item_id"], analyst, "analyst")
    review.decide(es, services, escalated["item_id"], analyst, "analyst", Decision("escalate"))
    login(app_client, new_user(services, "liaison"))
    assert app_client.get(f"/items/{fresh['item_id']}").status_code == 404
    assert app_client.get(f"/items/{escalated['item_id']}").status_code == 200
    assert app_client.get("/api/queue?status=new").status_code == 400
    app_client.cookies.clear()


def test_reveal_is_recorded_counted_and_gates_the_original(services, app_client):
    item = seed_one(services, media=[samples.png_bytes(5), samples.png_bytes(6)])
    user = new_user(services, "analyst")
    es = app_client.app.state.es
    from review_ui.accounts import update_user

    update_user(es, services, user, prefs={"break_every": 2})
    csrf = login(app_client, user)
    base = f"/media/{item['item_id']}"
    preview = app_client.get(f"{base}/0/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    assert app_client.get(f"{base}/0").status_code == 403, "no original before a reveal"
    first = app_client.post(f"/api/items/{item['item_id']}/media/0/reveal",
                            headers={"X-CSRF-Token": csrf}).json()
    assert first["reveals_this_session"] == 1 and not first["break_due"]
    second = app_client.post(f"/api/items/{item['item_id']}/media/1/reveal",
                             headers={"X-CSRF-Token": csrf}).json()
    assert second["break_due"], "the break reminder comes at the configured count"
    original = app_client.get(f"{base}/0")
    assert original.status_code == 200
    assert original.headers["content-type"] == "image/png"
    assert original.headers["x-content-type-options"] == "nosniff"
    reveals = es.get(index=items_alias(services), id=item["item_id"])["_source"]["reveals"]
    assert [(r["user"], r["media_index"]) for r in reveals] == [(user, 0), (user, 1)]
    page = app_client.get(f"/items/{item['item_id']}")
    assert 'id="break-reminder" class="break"' in page.text
    assert ' hidden>' not in page.text.split('id="break-reminder"')[1][:60]
    app_client.cookies.clear()


def test_text_only_review_when_a_hash_match_decides(services, app_client):
    item = seed_one(services, match=True, media=[samples.png_bytes(9)])
    login(app_client, new_user(services, "analyst"))
    page = app_client.get(f"/items/{item['item_id']}")
    assert 'id="text-only"' in page.text and "/preview" not in page.text
    shown = app_client.get(f"/items/{item['item_id']}?media=show")
    assert "/preview" in shown.text
    assert "ncmec" in page.text and "2026-11" in page.text  # bank, list version
    assert "image matches hash bank ncmec (pdq distance 4, category A1)" in page.text
    app_client.cookies.clear()
    login(app_client, new_user(services, "analyst", locale="vi"))
    page = app_client.get(f"/items/{item['item_id']}")
    assert "ảnh trùng khớp kho mã băm ncmec (khoảng cách pdq 4, loại A1)" in page.text
    app_client.cookies.clear()


def test_related_posts_by_the_same_author(services, app_client):
    source = unique_source()
    first, second = seed(services, 2, source=source, author="same-author")
    seed_one(services, source=source, author="someone-else")
    login(app_client, new_user(services, "analyst"))
    page = app_client.get(f"/items/{first['item_id']}").text
    related = page.split("Other flagged posts")[1]
    assert f"/items/{second['item_id']}" in related
    assert related.count("<li>") == 1
    app_client.cookies.clear()


def test_settings_change_language_and_wellness(services, app_client):
    user = new_user(services, "analyst", locale="en")
    csrf = login(app_client, user)
    assert "Review queue" in app_client.get("/queue").text
    response = app_client.post("/settings", data={
        "csrf_token": csrf, "locale": "vi", "timezone": "Asia/Ho_Chi_Minh",
        "break_every": "5", "blur": "true"})
    assert response.status_code == 303
    me = app_client.get("/api/me").json()
    assert me["locale"] == "vi" and me["prefs"]["grayscale"] is False
    assert me["prefs"]["break_every"] == 5
    assert "Hàng đợi xem xét" in app_client.get("/queue").text
    app_client.post("/locale", data={"csrf_token": csrf, "locale": "en"})
    assert "Review queue" in app_client.get("/queue").text
    app_client.cookies.clear()


@pytest.mark.parametrize("zone", ["Asia", "../etc/passwd", "Nope/Nowhere", ""])
def test_bad_time_zones_are_refused(services, app_client, zone):
    csrf = login(app_client, new_user(services, "analyst"))
    response = app_client.put("/api/me/settings", headers={"X-CSRF-Token": csrf}, json={
        "locale": "en", "timezone": zone, "prefs": {}})
    assert response.status_code == 400
    app_client.cookies.clear()


def test_incomplete_confirm_returns_to_the_item_with_the_claim_kept(services, app_client):
    item = seed_one(services)
    user = new_user(services, "analyst")
    csrf = login(app_client, user)
    app_client.post(f"/items/{item['item_id']}/claim", data={"csrf_token": csrf})
    response = app_client.post(f"/items/{item['item_id']}/decision", data={
        "csrf_token": csrf, "action": "confirm", "category": "grooming"})
    assert response.headers["location"] == f"/items/{item['item_id']}?error=incomplete#decide"
    page = app_client.get(response.headers["location"].split("#")[0])
    assert 'id="decision-error"' in page.text and 'id="decision-form"' in page.text
    app_client.cookies.clear()


@pytest.fixture(scope="module")
def fixed_defaults(services, tmp_path_factory):
    """The session's settings with a text model manifest whose defaults are all 0.3."""
    import json

    model_dir = tmp_path_factory.mktemp("text-model")
    (model_dir / "model.json").write_text(json.dumps({"version": "hw-text-test", "thresholds": {
        c: {"threshold": 0.3, "precision": 0.8, "recall": 0.9, "target": 0.9}
        for c in CATEGORIES}}))
    return services.model_copy(update={"text_model_dir": model_dir})


def test_an_urgent_item_below_every_threshold_is_queued_first(fixed_defaults, app_client):
    settings, es = fixed_defaults, app_client.app.state.es
    source = unique_source()
    matched = seed_one(settings, source=source, scores=LOW | {"grooming": 0.95}, match=True,
                       media=[samples.png_bytes(11)])
    urgent = seed_one(settings, source=source, scores=LOW | {"self_harm": 0.02}, urgent=True)
    below = seed_one(settings, source=source, scores=LOW | {"self_harm": 0.1})
    ids = [i["item_id"] for i in _queue(es, settings, source=source).items]
    assert ids == [urgent["item_id"], matched["item_id"]], "urgent before a bank match"
    assert below["item_id"] not in ids, "the same score without the urgent mark is out"
    # The search_after cursor carries the urgent sort key: paging one by one keeps the order.
    seen, cursor = [], None
    while True:
        page = _queue(es, settings, source=source, cursor=cursor, size=1)
        seen += [i["item_id"] for i in page.items]
        if not (cursor := page.next_cursor):
            break
    assert seen == [urgent["item_id"], matched["item_id"]]
    # Urgent items are the self-harm path: the self_harm filter keeps them.
    assert [i["item_id"] for i in _queue(es, settings, source=source, category="self_harm"
                                         ).items] == [urgent["item_id"]]
    # The API and the queue page mark it.
    with ui_client(settings) as client:
        login(client, new_user(settings, "analyst"))
        api = client.get("/api/queue", params={"source": source}).json()
        assert [(i["item_id"], i["urgent"]) for i in api["items"]] == [
            (urgent["item_id"], True), (matched["item_id"], False)]
        page = client.get("/queue", params={"source": source}).text
        row = page.split(f'data-href="/items/{urgent["item_id"]}"')[1].split("</tr>")[0]
        assert 'class="badge urgent"' in row and "urgent: possible self-harm" in row
        other = page.split(f'data-href="/items/{matched["item_id"]}"')[1].split("</tr>")[0]
        assert "badge urgent" not in other


def test_an_urgent_item_page_says_call_111_and_the_counselling_line(services, app_client):
    urgent = seed_one(services, scores=LOW | {"self_harm": 0.05}, urgent=True)
    plain = seed_one(services)
    line = "0900 000 000 — <b>Tư vấn</b> & 24/7"
    with ui_client(services.model_copy(update={"counselling_line": line})) as client:
        login(client, new_user(services, "analyst"))
        page = client.get(f"/items/{urgent['item_id']}").text
        body = page.split('<article class="item"')[1]
        assert body.split(">", 1)[1].lstrip().startswith(
            '<section class="urgent-banner" id="urgent-banner" role="alert">'), "at the top"
        banner = body.split('id="urgent-banner"')[1].split("</section>")[0]
        assert "Possible self-harm" in banner and "at risk now" in banner
        assert '<a class="hotline" id="hotline-111" href="tel:111">111</a>' in banner
        assert "Tổng đài quốc gia bảo vệ trẻ em" in banner and "24/7" in banner
        assert ('id="counselling-line">0900 000 000 — &lt;b&gt;Tư vấn&lt;/b&gt; &amp; 24/7</b>'
                in banner), "the configured line, escaped"
        assert "not configured" not in banner
        assert "urgent: possible self-harm, a young person may be at risk now" in page
        assert 'id="urgent-banner"' not in client.get(f"/items/{plain['item_id']}").text
    login(app_client, new_user(services, "analyst", locale="vi"))  # no counselling line set
    banner = app_client.get(f"/items/{urgent['item_id']}").text.split(
        'id="urgent-banner"')[1].split("</section>")[0]
    assert "Có thể tự gây hại" in banner and "gặp nguy hiểm ngay lúc này" in banner
    assert "111" in banner and "Tổng đài quốc gia bảo vệ trẻ em, miễn phí, 24/7" in banner
    assert 'id="counselling-line-missing"' in banner and "chưa được cấu hình" in banner
    assert "HARMWATCH_COUNSELLING_LINE" in banner
    app_client.cookies.clear()
