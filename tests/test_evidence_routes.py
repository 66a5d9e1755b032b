"""Liaison pages: only liaison and admin users reach cases and exports; every export audited."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from harmwatch.blobstore import get_blob_store
from harmwatch.search import es_client
from review_ui import audit
from review_ui.evidence.cases import ensure_case_indices
from review_ui.evidence.routes import EVIDENCE_ROUTES
from review_ui.evidence.verify import load_public_key, verify_pack
from tests.evidence_support import make_item, rewrite_pack
from tests.ui_support import login, new_user, ui_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ev_settings(services, tmp_path_factory):
    return services.model_copy(update={"var_dir": tmp_path_factory.mktemp("routes-var")})


def _case_id(response) -> str:
    assert response.status_code == 303, response.text
    return re.fullmatch(r"/cases/([0-9a-f]+)", response.headers["location"]).group(1)


def test_liaison_builds_exports_and_verifies_a_case(ev_settings, tmp_path):
    settings = ev_settings
    client = es_client(settings)
    store = get_blob_store(settings)
    officer = new_user(ev_settings, "liaison")
    items = [make_item(client, settings, store) for _ in range(2)]
    with ui_client(ev_settings) as ui:
        csrf = login(ui, officer)
        assert ui.get("/cases").status_code == 200
        case_id = _case_id(ui.post("/cases", data={
            "csrf_token": csrf, "title": "<script>alert(1)</script>", "reference": "R-77"}))
        added = ui.post(f"/cases/{case_id}/items", data={
            "csrf_token": csrf, "item_ids": " ".join(i["item_id"] for i in items)})
        assert added.status_code == 303
        page = ui.get(f"/cases/{case_id}")
        assert page.status_code == 200 and items[0]["item_id"] in page.text
        assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
        removed = ui.post(f"/cases/{case_id}/items/remove", data={
            "csrf_token": csrf, "item_id": items[1]["item_id"]})
        assert removed.status_code == 303
        pack = ui.post(f"/cases/{case_id}/export", data={"csrf_token": csrf, "kind": "full",
                                                          "lang": "en"})
        assert pack.status_code == 200 and pack.headers["content-type"] == "application/zip"
        key_pem = ui.get("/evidence/public-key").content
        (tmp_path / "pack.zip").write_bytes(pack.content)
        assert verify_pack(tmp_path / "pack.zip", load_public_key(key_pem)).ok
        with zipfile.ZipFile(io.BytesIO(pack.content)) as archive:
            assert sum(n.endswith("metadata.json") for n in archive.namelist()) == 1
        checked = ui.post("/evidence/verify", data={"csrf_token": csrf},
                          files={"pack": ("pack.zip", pack.content, "application/zip")})
        assert 'id="verify-ok"' in checked.text
        tampered = rewrite_pack(tmp_path / "pack.zip", tmp_path / "bad.zip",
                                remove={"hashes.csv"})
        failed = ui.post("/evidence/verify", data={"csrf_token": csrf},
                         files={"pack": ("bad.zip", tampered.read_bytes(), "application/zip")})
        assert 'id="verify-failed"' in failed.text and "hashes.csv" in failed.text
        closed = ui.post(f"/cases/{case_id}/status", data={"csrf_token": csrf,
                                                           "status": "closed"})
        assert closed.status_code == 303
    client.indices.refresh(index=settings.index_name("audit"))
    exports = audit.search_records(client, settings, action="evidence_export", target=case_id)
    assert len(exports) == 1 and exports[0]["actor"] == officer
    assert exports[0]["ip"] == "testclient"


def _route_requests(case_id: str) -> list[tuple[str, str]]:
    return [("GET", "/cases"), ("POST", "/cases"), ("GET", f"/cases/{case_id}"),
            ("POST", f"/cases/{case_id}/items"), ("POST", f"/cases/{case_id}/items/remove"),
            ("POST", f"/cases/{case_id}/status"), ("POST", f"/cases/{case_id}/export"),
            ("GET", "/evidence/verify"), ("POST", "/evidence/verify"),
            ("GET", "/evidence/public-key"), ("GET", "/admin/evidence-key")]


def test_every_evidence_route_is_in_the_request_list():
    assert len(_route_requests("x")) == len(EVIDENCE_ROUTES)


@pytest.mark.parametrize("role", ["analyst", "liaison"])
def test_roles_are_refused_what_they_may_not_reach(ev_settings, role):
    """Analysts reach nothing here; liaison officers reach all but the admin key page."""
    user = new_user(ev_settings, role)
    with ui_client(ev_settings) as ui:
        csrf = login(ui, user)
        for method, path in _route_requests("0123456789abcdef"):
            response = ui.request(method, path, data={"csrf_token": csrf})
            refused = role == "analyst" or path == "/admin/evidence-key"
            assert (response.status_code == 403) == refused, (method, path, response.status_code)


def test_admin_sees_the_signing_key_page_in_vietnamese(ev_settings):
    admin = new_user(ev_settings, "admin", locale="vi")
    with ui_client(ev_settings) as ui:
        login(ui, admin)
        page = ui.get("/admin/evidence-key")
        assert page.status_code == 200 and "Khoá ký chứng cứ" in page.text
        assert re.search(r'id="key-fingerprint">[0-9a-f]{64}<', page.text)
        assert "Vụ việc" in ui.get("/cases").text


def test_posts_without_the_csrf_token_are_refused(ev_settings):
    officer = new_user(ev_settings, "liaison")
    with ui_client(ev_settings) as ui:
        login(ui, officer)
        assert ui.post("/cases", data={"title": "no token"}).status_code == 403


def test_sealed_evidence_is_still_shown_to_reviewers(ev_settings):
    """Confirmed items' media and snapshots are encrypted at rest, not hidden from people."""
    import numpy as np
    from PIL import Image

    from harmwatch.sealing import CHUNK
    from review_ui.evidence import atrest
    from tests.evidence_support import account

    client = es_client(ev_settings)
    store = get_blob_store(ev_settings)
    noise = np.random.default_rng(303).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, "PNG")
    image = out.getvalue()
    assert len(image) > CHUNK  # sealed in more than one chunk
    item = make_item(client, ev_settings, store, media=[image], reveal_first=False)
    assert atrest.seal_confirmed(client, ev_settings, store,
                                 account(client, ev_settings, "sealer", "admin")) >= 2
    assert not store.plain.exists(item["media"][0]["blob_ref"])
    assert not store.plain.exists(item["snapshot_ref"])
    with ui_client(ev_settings) as ui:
        csrf = login(ui, new_user(ev_settings, "admin"))
        preview = ui.get(f"/media/{item['item_id']}/0/preview")
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
        assert ui.get(f"/media/{item['item_id']}/0").status_code == 403  # not revealed yet
        assert ui.post(f"/items/{item['item_id']}/media/0/reveal",
                       data={"csrf_token": csrf}).status_code == 303
        original = ui.get(f"/media/{item['item_id']}/0")
        assert original.status_code == 200 and original.content == image
        snapshot = ui.get(f"/items/{item['item_id']}/snapshot")
        assert snapshot.status_code == 200 and b"<script>alert(1)</script>" in snapshot.content


def test_an_item_dismissed_after_it_joined_a_case_is_withheld_from_page_and_pack(ev_settings,
                                                                                 tmp_path):
    """Issue 18.1: escalated, added to a case, then dismissed by an admin — the liaison
    officer gets 404 on the item, so the case page and a full export must not show it."""
    settings = ev_settings
    client = es_client(settings)
    store = get_blob_store(settings)
    ensure_case_indices(client, settings)
    kept, dismissed = (make_item(client, settings, store, status="escalated") for _ in range(2))
    officer, admin = new_user(settings, "liaison"), new_user(settings, "admin")
    with ui_client(settings) as ui:
        csrf = login(ui, officer)
        case_id = _case_id(ui.post("/cases", data={"csrf_token": csrf, "title": "withheld"}))
        assert ui.post(f"/cases/{case_id}/items", data={"csrf_token": csrf, "item_ids": " ".join(
            [kept["item_id"], dismissed["item_id"]])}).status_code == 303
        ui.cookies.clear()
        admin_csrf = login(ui, admin)
        headers = {"X-CSRF-Token": admin_csrf}
        assert ui.post(f"/api/items/{dismissed['item_id']}/claim", headers=headers).is_success
        assert ui.post(f"/api/items/{dismissed['item_id']}/decision", headers=headers,
                       json={"action": "dismiss"}).is_success
        ui.cookies.clear()
        csrf = login(ui, officer)
        assert ui.get(f"/items/{dismissed['item_id']}").status_code == 404
        page = ui.get(f"/cases/{case_id}")
        assert kept["url"] in page.text and dismissed["url"] not in page.text
        assert f'href="/items/{dismissed["item_id"]}"' not in page.text
        assert 'class="withheld"' in page.text
        pack = ui.post(f"/cases/{case_id}/export", data={"csrf_token": csrf, "kind": "full",
                                                          "lang": "en"})
        assert pack.status_code == 200
        key = load_public_key(ui.get("/evidence/public-key").content)
    (tmp_path / "pack.zip").write_bytes(pack.content)
    assert verify_pack(tmp_path / "pack.zip", key).ok
    with zipfile.ZipFile(io.BytesIO(pack.content)) as archive:
        names = archive.namelist()
        assert not any(dismissed["item_id"] in n for n in names), names
        assert any(kept["item_id"] in n for n in names)
        post_id = dismissed["post_id"]
        for name in names:
            assert post_id.encode() not in archive.read(name), f"{name} carries the item"
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["withheld_items"] == [dismissed["item_id"]]
    assert manifest["items"] == [kept["item_id"]]
    client.indices.refresh(index=settings.index_name("audit"))
    export = audit.search_records(client, settings, action="evidence_export", target=case_id)
    assert export[0]["details"]["withheld_items"] == [dismissed["item_id"]]
