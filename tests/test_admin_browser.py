"""Every admin page in headless Chromium (Debian's /usr/bin/chromium through Playwright).

A real uvicorn server on 127.0.0.1 serves the app; the tests click through each page as
an admin would — forms, downloads, the import progress script — and fail on any console
error, which is where a Content-Security-Policy violation (an inline script or style)
would show.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from review_ui.app import create_app
from tests.admin_support import admin_env, index, item, logins  # noqa: F401
from tests.ui_support import PASSWORD

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(admin_env) -> Iterator[str]:  # noqa: F811
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(create_app(admin_env), host="127.0.0.1", port=port,
                                             log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert instance.started, "the UI server did not start"
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def seeded(admin_env):  # noqa: F811
    index(admin_env, [item(900_000 + n, scores={"violence": s}, decision=d, category="violence")
                      for n, (s, d) in enumerate([(0.9, "confirmed"), (0.7, "dismissed"),
                                                  (0.8, "confirmed"), (0.65, None)])])


def _session(browser, server: str, username: str):  # noqa: ANN202
    """A signed-in page; console errors and failed requests are collected on ``page.errors``."""
    context = browser.new_context(base_url=server, accept_downloads=True, locale="en-GB")
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource") and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
            and page.errors.append(f"{r.status} {r.url}"))
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url("**/queue**")
    return page


@pytest.fixture(scope="module")
def admin_page(browser, server, logins, seeded):  # noqa: F811
    page = _session(browser, server, logins["admin"])
    yield page
    page.context.close()


def _images_loaded(page) -> None:
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all("main img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths), widths


def test_dashboard(admin_page):
    page = admin_page
    page.click("header nav a[href='/admin']")
    page.wait_for_selector("#totals")
    _images_loaded(page)
    page.select_option("#period", "month")
    page.click("#period-form button")
    page.wait_for_url("**period=month**")
    with page.expect_download() as pdf:
        page.click("#pdf-vi")
    assert pdf.value.suggested_filename.endswith(".pdf")
    with page.expect_download() as csv:
        page.click("#csv-en")
    assert Path(csv.value.path()).read_bytes().startswith(b"\xef\xbb\xbfsection,key")
    assert page.errors == []


def test_thresholds_preview_and_save(admin_page):
    page = admin_page
    page.goto("/admin/thresholds")
    _images_loaded(page)
    page.fill("#candidate-violence", "0.75")
    page.click("#preview-violence")
    page.wait_for_selector("#preview-table")
    candidate = page.inner_text("#queue-candidate")
    page.click("#save-violence")
    page.wait_for_selector("#saved")
    assert "0.75" in page.inner_text("#cat-violence h2") or "0,75" in page.inner_text(
        "#cat-violence h2")
    page.goto("/queue")
    assert page.inner_text("p.count") == f"{candidate} items"  # the preview was right
    assert page.errors == []


def test_banks_import_progress_and_lookup(admin_page, tmp_path):
    page = admin_page
    page.goto("/admin/banks")
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(f"{n:064x}" for n in range(1, 2001)) + "\n")
    page.fill("#import-bank", "browser-list")
    page.select_option("#import-format", "text")
    page.select_option("#import-form select[name=algorithm]", "sha256")
    page.set_input_files("#import-file", str(listing))
    page.click("#import-submit")
    page.wait_for_selector("#import-progress[data-status=done]", timeout=60_000)
    assert page.inner_text("#import-added") == "2000"
    page.goto("/admin/banks")
    assert "browser-list" in page.inner_text("#banks-table")
    page.fill("#lookup-value", f"{7:064x}")
    page.select_option("#lookup-form select[name=algorithm]", "sha256")
    page.click("#lookup-submit")
    page.wait_for_selector("#lookup-results")
    assert "browser-list" in page.inner_text("#lookup-results")
    page.click("#bank-browser-list a")
    page.wait_for_selector("#entries-table")
    page.check("#entries-table input[type=checkbox] >> nth=0")
    page.click("#entries-submit")
    page.wait_for_selector("#done")
    assert page.errors == []


def test_sources_add(admin_page):
    page = admin_page
    page.goto("/admin/sources")
    page.fill("#new-source", "id: browser-feed\nkind: rss\nstart_urls: ['https://example.org/f.xml']\n")
    page.click("#add-source-submit")
    page.wait_for_selector("#source-browser-feed")
    page.click("#source-browser-feed button.toggle")
    page.wait_for_selector("#done")
    assert "Enable" in page.inner_text("#source-browser-feed")
    assert page.errors == []


def test_users_create_and_disable(admin_page):
    page = admin_page
    page.goto("/admin/users")
    page.fill("#new-username", "browser-user")
    page.fill("#new-password", PASSWORD)
    page.select_option("#new-role", "liaison")
    page.click("#create-user-submit")
    page.wait_for_selector("#user-browser-user")
    page.click("#user-browser-user button.disable")
    page.wait_for_selector("#user-browser-user button.enable")
    assert page.errors == []


def test_analyst_sees_no_admin_pages(browser, server, logins):  # noqa: F811
    page = _session(browser, server, logins["analyst"])
    assert page.locator("header nav a[href='/admin']").count() == 0
    for path in ("/admin", "/admin/thresholds", "/admin/banks", "/admin/sources", "/admin/users"):
        assert page.goto(path).status == 403
    page.context.close()
