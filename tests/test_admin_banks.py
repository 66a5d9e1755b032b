"""Banks page: import with progress, export, enable/disable(-until), thresholds, look-ups."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from review_ui.samples import png_bytes
from tests.admin_support import admin_env, app, as_role, logins  # noqa: F401

pytestmark = pytest.mark.integration

IMAGE = png_bytes(4242)
IMAGE_SHA256 = hashlib.sha256(IMAGE).hexdigest()
OTHER = [f"entry-{i}".encode() for i in range(30)]


def _csv() -> bytes:
    rows = ["md5,sha256,category,note",
            f"{hashlib.md5(IMAGE).hexdigest()},{IMAGE_SHA256},A1,the test image"]
    rows += [f"{hashlib.md5(o).hexdigest()},{hashlib.sha256(o).hexdigest()},B2,{o.decode()}"
             for o in OTHER]
    return ("\n".join(rows) + "\n").encode()


def _wait(app, job: str) -> dict:  # noqa: F811
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = app.get(f"/api/admin/banks/imports/{job}").json()
        if state["status"] != "running":
            return state
        time.sleep(0.2)
    raise AssertionError("import did not finish")


def _import(app, csrf, bank: str, data: bytes, fmt: str = "csv") -> dict:  # noqa: F811
    response = app.post("/admin/banks/import", data={"csrf_token": csrf, "bank": bank, "fmt": fmt,
                                                     "kind": "match"},
                        files={"upload": ("list.csv", data, "text/csv")})
    assert response.status_code == 303, response.text
    job = response.headers["location"].split("job=")[1]
    assert f'data-job="{job}"' in app.get(response.headers["location"]).text
    return _wait(app, job)


def _lookup(app, csrf, value: str) -> list[dict]:  # noqa: F811
    response = app.post("/api/admin/banks/lookup", json={"value": value},
                        headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    return [m for m in response.json() if m["state"] == "match"]


@pytest.fixture(scope="module")
def csrf(app, logins):  # noqa: F811
    return as_role(app, logins["admin"])


@pytest.fixture(scope="module")
def bank(app, csrf):  # noqa: F811
    state = _import(app, csrf, "test-list", _csv())
    assert state["status"] == "done", state
    assert (state["added"], state["duplicates"]) == (31, 0)
    return "test-list"


def test_import_export_and_reimport(app, csrf, bank):  # noqa: F811
    rows = {b["name"]: b for b in app.get("/api/admin/banks").json()}
    assert rows[bank]["entries"] == 31
    exported = app.get(f"/admin/banks/{bank}/export", params={"format": "csv"})
    assert exported.status_code == 200 and IMAGE_SHA256 in exported.text
    vics = json.loads(app.get(f"/admin/banks/{bank}/export", params={"format": "vics"}).text)
    assert len(vics["value"]) == 31
    again = _import(app, csrf, bank, _csv())
    assert (again["added"], again["duplicates"]) == (0, 31)
    broken = _import(app, csrf, bank, b"nothing,here\n1,2\n")
    assert broken["status"] == "failed" and "hash column" in broken["error"]


def test_an_upload_with_a_bad_last_line_adds_nothing(app, csrf):  # noqa: F811
    data = _csv() + b"not-hex,,A1,the typo\n"
    state = _import(app, csrf, "half-list", data)
    assert state["status"] == "failed" and "line 33" in state["error"], state
    assert state["added"] == 0 and state["checked"] == 0
    assert "half-list" not in {b["name"] for b in app.get("/api/admin/banks").json()}


def test_lookup_by_hash_and_image(app, csrf, bank):  # noqa: F811
    assert [m["bank"] for m in _lookup(app, csrf, IMAGE_SHA256)] == [bank]
    assert _lookup(app, csrf, hashlib.sha256(b"unknown").hexdigest()) == []
    page = app.post("/admin/banks/lookup", data={"csrf_token": csrf},
                    files={"image": ("x.png", IMAGE, "image/png")})
    assert page.status_code == 200 and 'id="lookup-results"' in page.text
    assert f">{bank}<" in page.text.split('id="lookup-results"')[1]
    assert app.post("/api/admin/banks/lookup", json={"value": "abc"},
                    headers={"X-CSRF-Token": csrf}).status_code == 400


def test_disable_until_and_entries(app, csrf, bank):  # noqa: F811
    headers = {"X-CSRF-Token": csrf}
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert app.post(f"/admin/banks/{bank}/state", data={"csrf_token": csrf, "disabled": "true",
                                                        "until": later}).status_code == 303
    row = {b["name"]: b for b in app.get("/api/admin/banks").json()}[bank]
    assert not row["active"] and row["disabled_until"].startswith(later)
    assert _lookup(app, csrf, IMAGE_SHA256) == []
    app.put(f"/api/admin/banks/{bank}/state", json={"disabled": False}, headers=headers)
    entry = _lookup(app, csrf, IMAGE_SHA256)[0]["entry_id"]
    assert app.post(f"/admin/banks/{bank}/entries",
                    data={"csrf_token": csrf, "disabled": "true",
                          "entry_ids": [entry]}).status_code == 303
    assert _lookup(app, csrf, IMAGE_SHA256) == []
    assert IMAGE_SHA256 in app.get(f"/admin/banks/{bank}/entries").text
    app.put(f"/api/admin/banks/{bank}/state", json={"disabled": False, "entry_ids": [int(entry)]},
            headers=headers)
    assert len(_lookup(app, csrf, IMAGE_SHA256)) == 1


def test_thresholds(app, csrf, bank):  # noqa: F811
    response = app.post(f"/admin/banks/{bank}/thresholds",
                        data={"csrf_token": csrf, "pdq": 20, "phash": 6, "pdq_min_quality": 70})
    assert response.status_code == 303
    row = {b["name"]: b for b in app.get("/api/admin/banks").json()}[bank]
    assert (row["pdq_threshold"], row["phash_threshold"], row["pdq_min_quality"]) == (20, 6, 70)


def test_a_large_export_streams_every_entry(app, csrf, admin_env):  # noqa: F811
    from classifiers.banks import BankStore, NewEntry
    from review_ui.admin.banks import EXPORT_IN_MEMORY

    store = BankStore(admin_env.resolved_banks_dir)
    store.create_bank("large-list")
    count = 60_000
    store.add_entries("large-list", (NewEntry(sha256=f"{i:064x}", category="B2",
                                              note="a synthetic entry " * 4)
                                     for i in range(count)), added_by="test")
    store.close()
    with app.stream("GET", "/admin/banks/large-list/export", params={"format": "csv"}) as response:
        assert response.status_code == 200
        assert "large-list-csv.csv" in response.headers["content-disposition"]
        body = b"".join(response.iter_bytes())
    assert len(body) > EXPORT_IN_MEMORY  # past the in-memory part: spooled to disk
    lines = body.decode().splitlines()
    assert len(lines) == count + 1 and lines[-1].startswith(",,") and f"{count - 1:064x}" in body.decode()
