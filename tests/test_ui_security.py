"""Hostile crawled content stays inert; headers, media types and catalogues are right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from review_ui import i18n, media, samples
from review_ui.app import CSP
from review_ui.review import highlight_segments
from tests.ui_support import login, new_user, seed_one, ui_client, unique_source

pytestmark = pytest.mark.integration

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "{{7*7}}{% raw %}",
    "</textarea><script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    "<style>body{display:none}</style>",
    "<body onload=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]
DANGEROUS = re.compile(r"<script>alert|<img src=x|<svg/onload|<iframe src|<body onload|"
                       r"<style>body|href=\"javascript:|onerror=alert\(1\)>")


@pytest.fixture(scope="module")
def hostile(services):
    source = unique_source()
    items = [seed_one(services, source=source, text=f"trẻ em {payload} end",
                      title=payload, author=payload, author_url=f"javascript:alert({i})",
                      url=f"javascript:alert('{i}')", media=[samples.png_bytes(i)],
                      snapshot=f"<html>{payload}</html>".encode())
             for i, payload in enumerate(XSS_PAYLOADS)]
    return source, items


@pytest.fixture(scope="module")
def client(services):
    with ui_client(services) as app_client:
        login(app_client, new_user(services, "analyst"))
        yield app_client


def _no_live_markup(html: str) -> None:
    body = html.split("<main>", 1)[1]
    assert not DANGEROUS.search(body), DANGEROUS.search(body).group(0)
    assert "javascript:" not in " ".join(re.findall(r'href="([^"]*)"', body))


def test_queue_escapes_hostile_text_author_and_title(client, hostile):
    source, _ = hostile
    page = client.get(f"/queue?source={source}")
    assert page.text.count('class="row"') == len(XSS_PAYLOADS)
    _no_live_markup(page.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_item_page_escapes_everything(client, hostile):
    _, items = hostile
    for item in items:
        page = client.get(f"/items/{item['item_id']}")
        assert page.status_code == 200
        _no_live_markup(page.text)


def test_api_returns_json_not_html(client, hostile):
    _, items = hostile
    response = client.get(f"/api/items/{items[0]['item_id']}")
    assert response.headers["content-type"] == "application/json"
    assert response.json()["text"].startswith("trẻ em <script>")


def test_snapshot_is_plain_text_and_sandboxed(client, hostile):
    _, items = hostile
    response = client.get(f"/items/{items[0]['item_id']}/snapshot")
    assert response.headers["content-type"].startswith("text/plain")
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>alert(1)</script>" in response.text  # as text, verbatim


def test_pages_carry_csp_and_security_headers(client):
    response = client.get("/queue")
    assert response.headers["content-security-policy"] == CSP
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                      "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in CSP
    assert "unsafe-inline" not in CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_templates_have_no_inline_script_or_handlers():
    templates = Path(media.__file__).parent / "templates"
    for path in templates.glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"\son[a-z]+=", text), path
        assert "http://" not in text and "https://" not in text, f"remote asset in {path}"


@pytest.mark.parametrize("data", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"<html><script>alert(1)</script></html>",
    b"GIF89a<script>",  # a GIF header on garbage is refused at decode time
])
def test_hostile_media_is_never_served_as_markup(services, data):
    item = seed_one(services, media=[data])
    with ui_client(services) as app_client:
        csrf = login(app_client, new_user(services, "analyst"))
        preview = app_client.get(f"/media/{item['item_id']}/0/preview")
        assert preview.status_code == 415
        app_client.post(f"/api/items/{item['item_id']}/media/0/reveal",
                        headers={"X-CSRF-Token": csrf})
        original = app_client.get(f"/media/{item['item_id']}/0")
        if original.status_code == 200:
            assert original.headers["content-type"] == "image/gif"
            assert original.headers["x-content-type-options"] == "nosniff"
        else:
            assert original.status_code == 415


def test_sniffing_allow_list():
    assert media.sniff(samples.png_bytes(1)) == ("image/png", "png")
    assert media.sniff(b"\xff\xd8\xff\xe0rest")[0] == "image/jpeg"
    assert media.sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ")[0] == "image/webp"
    with pytest.raises(media.UnsupportedMedia):
        media.sniff(b"<svg></svg>")


def test_preview_is_blurred_and_gray_on_the_server():
    from io import BytesIO

    from PIL import Image, ImageChops, ImageStat

    data = samples.png_bytes(3, size=128)
    protected = Image.open(BytesIO(media.preview(data, blur=True, grayscale=True))).convert("RGB")
    red, green, _ = protected.split()
    assert ImageChops.difference(red, green).getextrema()[1] < 8, "grey: channels equal"
    plain = Image.open(BytesIO(media.preview(data, blur=False, grayscale=True))).convert("L")
    assert ImageStat.Stat(protected.convert("L")).stddev[0] < ImageStat.Stat(plain).stddev[0]


def test_highlight_segments_ignore_bad_offsets():
    hits = [{"rule_id": "a", "category": "grooming", "start": 0, "end": 3},
            {"rule_id": "b", "category": "grooming", "start": 2, "end": 5},
            {"rule_id": "c", "category": "grooming", "start": 50, "end": 60}]
    segments = highlight_segments("abcdefg", hits)
    assert [(s["text"], len(s["hits"])) for s in segments] == [("abcde", 2), ("fg", 0)]


def test_catalogues_compile_from_po_alone(tmp_path):
    """A fresh clone has only .po files; they are compiled in memory at start."""
    for language in i18n.LANGUAGES:
        folder = tmp_path / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "messages.po").write_bytes(
            (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").read_bytes())
    catalogue = i18n.load_catalogue("vi", tmp_path)
    assert catalogue.gettext("Sign in") == "Đăng nhập"
    assert not list(tmp_path.rglob("*.mo"))


def test_every_template_message_is_translated_to_vietnamese():
    from babel.messages.pofile import read_po

    with (Path(media.__file__).parent / "locale/vi/LC_MESSAGES/messages.po").open("rb") as po:
        catalog = read_po(po)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []


def test_dates_and_numbers_follow_the_language():
    i18n.set_language("vi")
    assert i18n.format_number(1234.5) == "1.234,50"
    assert "thg" in i18n.format_time("2026-11-29T10:00:00+00:00", "Asia/Ho_Chi_Minh")
    i18n.set_language("en")
    assert i18n.format_number(1234.5) == "1,234.50"
    assert "Nov" in i18n.format_time("2026-11-29T10:00:00+00:00", "Asia/Ho_Chi_Minh")


def test_reasons_are_rebuilt_in_the_readers_language():
    from review_ui.reasons import item_reasons

    item = {
        "matches": [{"bank": "confirmed", "algorithm": "crop_resistant", "distance": 14,
                     "category": "A1"}, {"bank": "vic", "algorithm": "md5", "distance": 0}],
        "scores": {"grooming": 0.8, "bullying": 0.05},
        "rule_hits": [{"rule_id": "gr.secrecy.vi", "category": "grooming",
                       "matched": "đừng nói"}] * 2,
        "media": [{"error": None}, {"error": "truncated: image file is truncated"}],
        "reasons": ["the analyzer's English"],
    }
    i18n.set_language("vi")
    vi = item_reasons(item, floor=0.15)
    assert vi[0] == ("ảnh trùng khớp kho mã băm confirmed (bản bị cắt xén: mã băm chống cắt "
                     "xén, khoảng cách pHash 14, loại A1)")
    assert vi[1] == "ảnh trùng khớp kho mã băm vic (tệp giống hệt)"
    assert vi[2].startswith("điểm ") and vi[2].endswith(" 0,80")
    assert vi[3].startswith("quy tắc gr.secrecy.vi") and len(vi) == 5
    assert vi[4] == "ảnh 2 không tính được mã băm: truncated: image file is truncated"
    i18n.set_language("en")
    assert item_reasons(item, floor=0.15)[2] == "Grooming score 0.80"
    assert item_reasons({"reasons": ["kept"]}, floor=0.15) == ["kept"]


def test_setup_compiles_the_catalogues_for_a_fresh_clone(tmp_path, monkeypatch):
    """`harmwatch setup` (make install, the Docker image) writes up-to-date .mo files."""
    import importlib
    import os
    import shutil

    from harmwatch.commands import SETUP_STEPS

    steps = [getattr(importlib.import_module(module), function)
             for module, function in (step.split(":") for step in SETUP_STEPS)]
    assert i18n.write_compiled in steps, "no setup step compiles the translations"
    for language in i18n.LANGUAGES:
        folder = tmp_path / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        shutil.copy(i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po", folder)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.write_compiled()
    for language in i18n.LANGUAGES:
        assert (tmp_path / language / "LC_MESSAGES" / "messages.mo").stat().st_size > 1000
    # The .mo is what is read now: break the .po (older than the .mo) and it still works.
    po = tmp_path / "vi" / "LC_MESSAGES" / "messages.po"
    po.write_text("not a catalogue")
    os.utime(po, ns=(1, 1))
    assert i18n.load_catalogue("vi", tmp_path).gettext("Counselling line:") == "Đường dây tư vấn:"


def test_every_message_in_the_code_is_in_both_catalogues():
    """Strings wrapped in _() / gettext in review_ui are all in the vi and en catalogues
    (the evidence pages keep theirs in review_ui/evidence/locale)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    root = Path(media.__file__).parent
    with (root / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    used = {message if isinstance(message, str) else message[0]
            for _, _, message, _, _ in extract_from_dir(str(root), method_map, options_map)}
    with (root / "evidence/locale/vi/LC_MESSAGES/messages.po").open("rb") as po:
        evidence = {m.id for m in read_po(po) if m.id}
    for language in i18n.LANGUAGES:
        with (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
            known = {m.id for m in read_po(po) if m.id}
        assert sorted(used - known - evidence) == [], language


def test_the_urgent_reason_comes_first_in_the_readers_language():
    from review_ui.reasons import MAX_REASONS, item_reasons

    item = {"urgent": True, "scores": {"self_harm": 0.05},
            "matches": [{"bank": f"b{i}", "algorithm": "pdq", "distance": i}
                        for i in range(MAX_REASONS + 2)]}
    i18n.set_language("vi")
    reasons = item_reasons(item, floor=0.15)
    assert reasons[0] == ("khẩn cấp: có thể tự gây hại, một người trẻ có thể đang gặp nguy hiểm "
                          "ngay lúc này") and len(reasons) == MAX_REASONS
    i18n.set_language("en")
    assert item_reasons(item, floor=0.15)[0] == (
        "urgent: possible self-harm, a young person may be at risk now")
    assert not any("urgent" in r for r in item_reasons({**item, "urgent": False}, floor=0.15))


def test_unrevealed_previews_ignore_the_users_blur_preferences(services):
    """Issue 18.2: turning blur and grey off must not turn an unrevealed preview into the
    original; preferences apply only after a (recorded) reveal."""
    data = samples.png_bytes(41, size=128)
    item = seed_one(services, media=[data])
    protected = media.preview(data, blur=True, grayscale=True)
    with ui_client(services) as app_client:
        csrf = login(app_client, new_user(services, "analyst"))
        response = app_client.put("/api/me/settings", headers={"X-CSRF-Token": csrf}, json={
            "locale": "en", "prefs": {"blur": False, "grayscale": False}})
        assert response.status_code == 200
        url = f"/media/{item['item_id']}/0/preview"
        assert app_client.get(url).content == protected, "unrevealed: always blurred and grey"
        app_client.post(f"/api/items/{item['item_id']}/media/0/reveal",
                        headers={"X-CSRF-Token": csrf})
        assert app_client.get(url).content == media.preview(data, blur=False, grayscale=False)


BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _text_nodes(html: str) -> list[tuple[str, bool]]:
    """(text, inside a <bdi>) for every text node of the page's <main>."""
    from html.parser import HTMLParser

    void = {"input", "br", "img", "meta", "link", "hr", "source", "wbr"}

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []
            self.nodes: list[tuple[str, bool]] = []

        def handle_starttag(self, tag, attrs):
            if tag not in void:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if tag in self.stack:
                del self.stack[len(self.stack) - 1 - self.stack[::-1].index(tag):]

        def handle_data(self, data):
            if data.strip():
                self.nodes.append((data, "bdi" in self.stack))

    parser = Collect()
    parser.feed("<main>" + html.split("<main>", 1)[1])
    return parser.nodes


def test_bidi_controls_in_crawled_values_cannot_reorder_the_page(services):
    """Issue 18.6: an author name ending in U+202E made the author link '…/u/gpj.exe'
    display as 'exe.jpg…', and a title '\\u202eTXT.exe' showed as 'exe.TXT'. Every crawled
    value is isolated (<bdi>) and bidi controls are shown as visible marks, never applied."""
    source = unique_source()
    item = seed_one(services, source=source, author="evil\u202e", title="\u202eTXT.exe",
                    author_url="https://forum.example.test/u/gpj.exe",
                    url="https://forum.example.test/t/\u202egpj.exe",
                    text="xem \u2067tệp\u2069 gpj.exe\u202e ngay")
    with ui_client(services) as app_client:
        login(app_client, new_user(services, "analyst"))
        pages = {"item": app_client.get(f"/items/{item['item_id']}").text,
                 "queue": app_client.get(f"/queue?source={source}").text}
    for name, html in pages.items():
        nodes = _text_nodes(html)
        crawled = [text for text, _ in nodes if re.search(r"TXT\.exe|gpj\.exe|evil|tệp", text)]
        assert crawled, name
        assert all(inside for text, inside in nodes if text in crawled), (name, nodes)
        shown = "".join(text for text, _ in nodes)
        assert not any(c in shown for c in BIDI_CONTROLS), f"a live bidi control on {name}"
    assert 'class="bidi-control"' in pages["item"] and "U+202E" in pages["item"]
    assert "U+2067" in pages["item"] and "U+2069" in pages["item"]
