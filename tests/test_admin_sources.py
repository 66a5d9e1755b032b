"""Sources page: add, edit, enable/disable with validation; status; run a source now."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from harmwatch.settings import REPO_ROOT
from harmwatch.sources import load_sources
from review_ui.admin.sources import admin_file
from tests.admin_support import admin_env, app, as_role, logins  # noqa: F401

pytestmark = pytest.mark.integration

FEED = """id: local-feed
kind: rss
interval: 30m
language: vi
allow_hosts: ["127.0.0.1"]
start_urls: ["http://127.0.0.1:9/feed.xml"]
limits: {max_pages: 1, download_timeout: 2s}
"""


@pytest.fixture(scope="module")
def csrf(app, logins):  # noqa: F811
    return as_role(app, logins["admin"])


@pytest.fixture(scope="module")
def added(app, csrf, admin_env):  # noqa: F811
    response = app.post("/admin/sources", data={"csrf_token": csrf, "entry": FEED})
    assert response.status_code == 303, response.text
    return admin_file(admin_env)


def test_added_source_is_a_valid_sources_file(app, added):  # noqa: F811
    [source] = load_sources(added)
    assert (source.id, source.kind, source.interval) == ("local-feed", "rss", 1800)
    listed = subprocess.run([sys.executable, "-m", "harmwatch.cli", "crawl", "--list",
                             "--sources-file", str(added)], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60)
    assert "local-feed" in listed.stdout, listed.stderr
    page = app.get("/admin/sources").text
    assert 'id="source-local-feed"' in page and 'id="source-demo-forum"' in page


def test_invalid_entries_are_refused(app, csrf, added):  # noqa: F811
    before = added.read_text()
    bad_url = FEED.replace("local-feed", "other").replace("http://127.0.0.1:9/feed.xml", "ftp://x")
    response = app.post("/admin/sources", data={"csrf_token": csrf, "entry": bad_url})
    assert response.status_code == 400 and "start_urls" in response.text
    duplicate = FEED.replace("local-feed", "demo-forum")
    response = app.post("/admin/sources", data={"csrf_token": csrf, "entry": duplicate})
    assert response.status_code == 400 and "already defined" in response.text
    assert app.post("/admin/sources", data={"csrf_token": csrf, "entry": "- [x"}).status_code == 400
    assert added.read_text() == before


def test_edit_and_disable(app, csrf, added):  # noqa: F811
    edited = FEED.replace("interval: 30m", "interval: 2h")
    assert app.post("/admin/sources/local-feed", data={"csrf_token": csrf, "entry": edited}
                    ).status_code == 303
    assert load_sources(added)[0].interval == 7200
    assert app.post("/admin/sources/local-feed/enabled",
                    data={"csrf_token": csrf, "enabled": "false"}).status_code == 303
    assert yaml.safe_load(added.read_text())["sources"][0]["enabled"] is False
    api = app.put("/api/admin/sources/local-feed/enabled", json={"enabled": True},
                  headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200 and load_sources(added)[0].enabled
    renamed = app.post("/admin/sources/local-feed", data={"csrf_token": csrf,
                                                          "entry": FEED.replace("local-feed", "x")})
    assert renamed.status_code == 400
    assert app.post("/admin/sources/crawlers-owned/enabled",
                    data={"csrf_token": csrf, "enabled": "false"}).status_code == 404


def test_run_now_records_the_outcome(app, csrf, added):  # noqa: F811
    response = app.post("/api/admin/sources/local-feed/run", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 150
    run = response.json()
    while run["status"] == "running" and time.monotonic() < deadline:
        time.sleep(1)
        run = app.get("/api/admin/sources/local-feed/run").json()
    assert run["status"] in ("ok", "failed") and isinstance(run["exit_code"], int)
    assert run["summary"]["source"] == "local-feed", run["output_tail"]
    assert 'class="badge run-status"' in app.get("/admin/sources").text
