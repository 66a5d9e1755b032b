"""Markup shapes each spider must read, checked offline on responses built here.

The pages below are PROJECT-WRITTEN (no permissively licensed capture of a XenForo 2
or ``t.me/s/`` page was found; see tests/fixtures/real/SOURCES.md): they reproduce the
shapes reported on real sites (voz.vn's ``/t/`` routes, Telegram albums, polls,
stickers, round videos, voice notes and link previews) in as little markup as shows them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import HtmlResponse, Request, TextResponse
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawlers.extensions import CrawlSummary
from crawlers.items import MEDIA_REF_NOT_FETCHED, PostItem
from crawlers.spiders.base import html_to_text
from crawlers.spiders.feed import FeedSpider
from crawlers.spiders.mastodon import MastodonSpider
from crawlers.spiders.telegram import TelegramSpider
from crawlers.spiders.xenforo import XenForoSpider, thread_root
from harmwatch.sources import load_sources
from tests.crawlers_support import write_sources

BASE = "http://127.0.0.1:9"
SOURCES = [
    {"id": "s-xf", "kind": "xenforo", "start_urls": [f"{BASE}/f/chuyen-tro.17/"]},
    {"id": "s-rss", "kind": "rss", "start_urls": [f"{BASE}/feed.xml"]},
    {"id": "s-masto", "kind": "mastodon", "instance": BASE, "timeline": "public"},
    {"id": "s-tg", "kind": "telegram", "channel": "kenh_mau", "base_url": BASE},
]
SPIDERS = {"s-xf": XenForoSpider, "s-rss": FeedSpider, "s-masto": MastodonSpider,
           "s-tg": TelegramSpider}


@pytest.fixture
def spider(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    sources = {s.id: s for s in load_sources(write_sources(tmp_path, SOURCES))}
    cls = SPIDERS[request.param]
    crawler = get_crawler(cls)
    crawler._stats = MemoryStatsCollector(crawler)  # set by Scrapy only once a crawl starts
    instance = cls(source=sources[request.param])
    instance._set_crawler(crawler)
    return instance


def _html(url: str, body: str) -> HtmlResponse:
    return HtmlResponse(url, body=body.encode(), encoding="utf-8", request=Request(url))


def _stats(spider: Any) -> dict[str, Any]:
    return spider.crawler.stats.get_stats()


# -- XenForo ---------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "root"), [
    ("https://voz.vn/t/hoi-ve-xe.123456/", "https://voz.vn/t/hoi-ve-xe.123456/"),
    ("https://voz.vn/t/hoi-ve-xe.123456/unread", "https://voz.vn/t/hoi-ve-xe.123456/"),
    ("https://x.example/threads/slug.10/page-3", "https://x.example/threads/slug.10/"),
    ("https://x.example/threads/10/", "https://x.example/threads/10/"),
    ("https://x.example/community/threads/a-b.5/post-99",
     "https://x.example/community/threads/a-b.5/"),
    ("https://x.example/index.php?threads/a.7/", "https://x.example/index.php?threads/a.7/"),
    ("https://x.example/threads/a.7/latest", "https://x.example/threads/a.7/"),
    ("https://x.example/t/a.7/page-2#post-5", "https://x.example/t/a.7/"),
    ("https://x.example/forums/hoi-dap.2/", None),
    ("https://x.example/f/chuyen-tro.17/?prefix_id=3", None),
])
def test_xenforo_thread_routes(url: str, root: str | None) -> None:
    assert thread_root(url) == root


FORUM = """<html><body><div class="structItemContainer">
<div class="structItem structItem--thread"><div class="structItem-title">
  <a href="/f/chuyen-tro.17/?prefix_id=3" class="labelLink">Hỏi</a>
  <a href="/t/hoi-ve-xe.101/unread" data-tp-primary="on">Hỏi về xe</a></div></div>
<div class="structItem structItem--thread"><div class="structItem-title">
  <a href="/t/101/">Hỏi về xe (again)</a><a href="/t/hoi-ve-xe.101/page-4">4</a></div></div>
<div class="structItem structItem--thread"><div class="structItem-title">
  <a href="/threads/thong-bao.102/post-9">Thông báo</a></div></div>
<div class="structItem structItem--thread"><div class="structItem-title">
  <a href="/members/someone.5/">moved thread stub</a></div></div>
</div></body></html>"""


@pytest.mark.parametrize("spider", ["s-xf"], indirect=True)
def test_xenforo_forum_follows_every_route_shape_once(spider: Any) -> None:
    requests = list(spider.parse_forum(_html(f"{BASE}/f/chuyen-tro.17/", FORUM)))
    assert [r.url for r in requests] == [f"{BASE}/t/hoi-ve-xe.101/", f"{BASE}/t/101/",
                                         f"{BASE}/threads/thong-bao.102/"]
    assert _stats(spider)["harmwatch/skipped/no_thread_link"] == 1


THREAD = """<html><body><h1 class="p-title-value">Tải về</h1>
<article class="message message--post" data-content="post-6" data-author="An">
 <div class="message-body"><div class="bbWrapper"><table><tr><td>A</td><td>B</td></tr>
 </table></div></div></article>
<article class="message message--post" data-content="post-7" data-author="An">
 <div class="message-body"><div class="bbWrapper">Link:<table><tr><td>Tải nhanh</td>
 <td>Dự phòng</td></tr></table><div>Hết</div></div></div></article>
<article class="message message--post" data-author="ad">sponsored</article>
</body></html>"""


@pytest.mark.parametrize("spider", ["s-xf"], indirect=True)
def test_xenforo_table_cells_and_blocks_are_separated(spider: Any) -> None:
    [cells, post] = list(spider.parse_thread(_html(f"{BASE}/t/tai-ve.9/page-2", THREAD)))
    assert cells.post.text == "A B"
    assert post.post.text == "Link:\nTải nhanh\nDự phòng\nHết"  # not "Tải nhanhDự phòng"
    assert post.post.thread_id == "9" and post.post.thread_title == "Tải về"
    assert _stats(spider)["harmwatch/skipped/unsupported_type"] == 1


def test_block_elements_break_lines() -> None:
    assert html_to_text("<p>a</p><figure>b<figcaption>c</figcaption></figure>"
                        "<dl><dt>d</dt><dd>e</dd></dl>") == "a\nb\nc\nd\ne"


# -- Telegram --------------------------------------------------------------------------
def _message(post: str, inner: str) -> str:
    return (f'<div class="tgme_widget_message_wrap"><div class="tgme_widget_message" '
            f'data-post="kenh_mau/{post}"><div class="tgme_widget_message_bubble">{inner}'
            f'<a class="tgme_widget_message_date" href="https://t.me/kenh_mau/{post}">'
            '<time datetime="2026-11-05T10:00:00+00:00"></time></a></div></div></div>')


CHANNEL = "<html><body><section class='tgme_channel_history'>" + "".join([
    _message("10", '<div class="tgme_widget_message_grouped_wrap">'
             '<a class="tgme_widget_message_photo_wrap" style="background-image:url('
             "'https://cdn.example/a.jpg')\"></a><a class=\"tgme_widget_message_photo_wrap\" "
             "style=\"background-image:url('https://cdn.example/b.jpg')\"></a></div>"
             '<div class="tgme_widget_message_text js-message_text">'
             '<div class="tgme_widget_message_text js-message_text">Ảnh buổi học</div></div>'),
    _message("11", '<div class="tgme_widget_message_poll"><div class="'
             'tgme_widget_message_poll_question">Con mấy tuổi?</div>'
             '<div class="tgme_widget_message_poll_option"><div class="'
             'tgme_widget_message_poll_option_text">Dưới 10</div></div>'
             '<div class="tgme_widget_message_poll_option"><div class="'
             'tgme_widget_message_poll_option_text">10-15</div></div></div>'),
    _message("12", '<a class="tgme_widget_message_sticker_wrap" href="https://t.me/addstickers/x">'
             '<i class="tgme_widget_message_sticker" data-emoji="😀" '
             'data-webp="https://cdn.example/s.webp"></i></a>'),
    _message("13", '<a class="tgme_widget_message_roundvideo_player">'
             '<video class="tgme_widget_message_roundvideo" src="https://cdn.example/r.mp4">'
             '</video><i class="tgme_widget_message_roundvideo_thumb" style="background-image:'
             "url('https://cdn.example/r.jpg')\"></i></a>"),
    _message("14", '<a class="tgme_widget_message_voice_player">'
             '<audio class="tgme_widget_message_voice" src="https://cdn.example/v.ogg"></audio>'
             '</a>'),
    _message("15", '<a class="tgme_widget_message_reply"><div class="'
             'tgme_widget_message_text">quoted, someone else\'s</div></a>'
             '<div class="tgme_widget_message_text">Xem bài này</div>'
             '<a class="tgme_widget_message_link_preview" href="https://news.example/a">'
             '<div class="link_preview_site_name">Báo</div>'
             '<i class="link_preview_image" style="background-image:url('
             "'https://cdn.example/p.jpg')\"></i>"
             '<div class="link_preview_title">Tiêu đề</div>'
             '<div class="link_preview_description">Mô tả</div></a>'),
    '<div class="tgme_widget_message service_message" data-post="kenh_mau/x"></div>',
]) + "</section></body></html>"


@pytest.mark.parametrize("spider", ["s-tg"], indirect=True)
def test_telegram_message_kinds(spider: Any) -> None:
    out = list(spider.parse(_html(f"{BASE}/s/kenh_mau", CHANNEL)))
    posts = {p.post.post_id.rsplit("/", 1)[1]: p for p in out if isinstance(p, PostItem)}
    assert posts["10"].post.text == "Ảnh buổi học"  # once, not twice
    assert posts["10"].image_urls == ["https://cdn.example/a.jpg", "https://cdn.example/b.jpg"]
    assert posts["11"].post.text == "Con mấy tuổi?\n- Dưới 10\n- 10-15"
    assert posts["12"].post.text == "😀" and posts["12"].image_urls == ["https://cdn.example/s.webp"]
    assert posts["13"].media_refs == ["https://cdn.example/r.mp4"]
    assert posts["13"].image_urls == ["https://cdn.example/r.jpg"]
    assert posts["14"].media_refs == ["https://cdn.example/v.ogg"] and posts["14"].post.text == ""
    assert posts["15"].post.text == "Xem bài này\nBáo\nTiêu đề\nMô tả"
    assert posts["15"].image_urls == ["https://cdn.example/p.jpg"]
    assert _stats(spider)["harmwatch/skipped/unsupported_type"] == 1
    assert [(m.url, m.error) for m in posts["14"].validated().media] == [
        ("https://cdn.example/v.ogg", MEDIA_REF_NOT_FETCHED)]


# -- Mastodon --------------------------------------------------------------------------
@pytest.mark.parametrize("spider", ["s-masto"], indirect=True)
def test_mastodon_unknown_attachments(spider: Any) -> None:
    status = {"id": "1", "content": "<p>x</p>", "media_attachments": [
        {"type": "unknown", "url": f"{BASE}/media_proxy/1/original",
         "remote_url": "https://remote.example/files/a.PNG"},
        {"type": "unknown", "url": None, "remote_url": "https://remote.example/v.mp4?x=1"},
        {"type": "unknown", "url": "https://remote.example/blob.bin"},
        {"type": "image", "url": f"{BASE}/media/i.jpg"},
    ]}
    body = json.dumps([status, "not a status"]).encode()
    response = TextResponse(f"{BASE}/api/v1/timelines/public", body=body,
                            request=Request(f"{BASE}/api/v1/timelines/public"))
    [post, _next] = list(spider.parse(response))
    assert post.image_urls == ["https://remote.example/files/a.PNG", f"{BASE}/media/i.jpg"]
    assert post.media_refs == ["https://remote.example/v.mp4?x=1"]
    stats = _stats(spider)
    assert stats["harmwatch/skipped/unsupported_media"] == 1
    assert stats["harmwatch/skipped/unsupported_type"] == 1


# -- feeds -----------------------------------------------------------------------------
@pytest.mark.parametrize("spider", ["s-rss"], indirect=True)
def test_a_feed_with_no_entries_but_a_body_is_an_error(spider: Any) -> None:
    page = _html(f"{BASE}/feed.xml", "<html><body>Just a moment...</body></html>")
    assert list(spider.parse(page)) == []
    assert _stats(spider)["harmwatch/errors"] == 1
    assert list(spider.parse(_html(f"{BASE}/feed.xml", ""))) == []
    assert _stats(spider)["harmwatch/errors"] == 1  # an empty body is not


@pytest.mark.parametrize("spider", ["s-rss"], indirect=True)
def test_feedparser_never_opens_a_path_or_url_it_is_given(spider: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text("<rss><channel><item><title>local file</title></item></channel></rss>")
    for body in (str(secret), f"file://{secret}", "http://127.0.0.1:9/feed"):
        assert list(spider.parse(_html(f"{BASE}/feed.xml", body))) == []


@pytest.mark.parametrize("spider", ["s-rss"], indirect=True)
def test_feed_charset_from_http_and_raw_ampersand(spider: Any) -> None:
    body = ('<?xml version="1.0"?><rss version="2.0"><channel><language>ru</language><item>'
            '<guid>g1</guid><title>Привет</title><description>Мир</description>'
            '<enclosure url="http://127.0.0.1:9/i.jpg?a=1&b=2" type="image/jpeg"/></item>'
            '</channel></rss>').encode("koi8-r")
    response = TextResponse(f"{BASE}/feed.xml", body=body, request=Request(f"{BASE}/feed.xml"),
                            headers={"Content-Type": "application/rss+xml; charset=koi8-r"})
    [post] = [p for p in spider.parse(response) if isinstance(p, PostItem)]
    assert (post.post.title, post.post.text, post.post.language_hint) == ("Привет", "Мир", "ru")
    assert post.image_urls == ["http://127.0.0.1:9/i.jpg?a=1&b=2"]


@pytest.mark.parametrize("spider", ["s-rss"], indirect=True)
def test_atom03_and_dcterms_dates(spider: Any) -> None:
    atom03 = ('<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><id>a</id>'
              '<title>T</title><issued>2003-12-31T10:14:55Z</issued>'
              '<modified>2004-01-01T10:14:55Z</modified></entry></feed>')
    dcterms = ('<rss version="2.0" xmlns:dcterms="http://purl.org/dc/terms/"><channel><item>'
               '<guid>d</guid><title>T</title><dcterms:issued>2003-12-31T10:14:55Z'
               '</dcterms:issued></item></channel></rss>')
    [a] = [p for p in spider.parse(_html(f"{BASE}/a.xml", atom03)) if isinstance(p, PostItem)]
    assert a.post.published_at.isoformat() == "2003-12-31T10:14:55+00:00"
    assert a.post.edited_at.isoformat() == "2004-01-01T10:14:55+00:00"
    [d] = [p for p in spider.parse(_html(f"{BASE}/d.xml", dcterms)) if isinstance(p, PostItem)]
    assert d.post.published_at.isoformat() == "2003-12-31T10:14:55+00:00"


@pytest.mark.parametrize("spider", ["s-rss"], indirect=True)
def test_items_without_channel_and_descriptions_as_elements(spider: Any) -> None:
    bare = '<rss version="2.0"><item><guid>b</guid><description>d</description></item></rss>'
    markup = ('<rss version="2.0"><channel><item><guid>m</guid><description><p>Hello '
              '<b>child</b> element</p></description></item></channel></rss>')
    for body, text in ((bare, "d"), (markup, "Hello child element")):
        [post] = [p for p in spider.parse(_html(f"{BASE}/f.xml", body))
                  if isinstance(p, PostItem)]
        assert post.post.text == text


@pytest.mark.parametrize("spider", ["s-tg"], indirect=True)
def test_a_page_without_posts_is_counted(spider: Any) -> None:
    assert list(spider.parse(_html(f"{BASE}/s/kenh_mau", "<html><body>Log in</body></html>"))
                ) == []
    assert _stats(spider)["harmwatch/skipped/page_without_posts"] == 1


# -- the summary -----------------------------------------------------------------------
def test_summary_lists_every_skip_with_its_reason() -> None:
    summary = CrawlSummary.from_stats("s", {
        "harmwatch/skipped/duplicate": 2, "harmwatch/skipped/no_text": 1,
        "offsite/filtered": 1, "harmwatch/ssrf_blocked": 1})
    assert summary.skipped == {"duplicate": 2, "no_text": 1, "off_allow_list": 1, "offsite": 1}
    assert "skipped 5 (duplicate 2, no_text 1, off_allow_list 1, offsite 1)" in summary.line()


def test_sources_file_paths_are_resolved_from_the_callers_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crawlers.runner as runner
    from harmwatch.settings import load_settings

    seen: dict[str, Any] = {}

    def fake_run(argv: list[str], **kwargs: Any) -> Any:
        spec = json.loads(Path(argv[-1]).read_text(encoding="utf-8"))
        seen.update(spec)
        Path(spec["summary_path"]).write_text("[]", encoding="utf-8")
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    relative = load_settings().model_copy(update={"var_dir": Path("var-here")})
    runner.crawl(["x"], settings=relative, sources_files=[Path("mine.yaml")])
    assert seen["sources_files"] == [str(tmp_path / "mine.yaml")]
    assert seen["settings"]["var_dir"] == str(tmp_path / "var-here")
