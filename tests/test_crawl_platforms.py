"""XenForo, RSS, Atom, Mastodon and Telegram spiders against platform-shaped fixtures,
paging to the end, into the real Kafka. One crawl job runs all the sources at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crawlers.extensions import CrawlSummary
from crawlers.runner import crawl
from harmwatch.contract import CrawledPost
from harmwatch.settings import Settings
from tests.crawlers_support import (
    FAST,
    FixtureServer,
    crawl_settings,
    mastodon_routes,
    media_route,
    published,
    start_fixture_server,
    telegram_routes,
    write_sources,
)

pytestmark = pytest.mark.integration
FAST_LIMITS = {"download_delay": 0, "concurrency_per_domain": 4}
EXPECTED = {"t-xf": 7, "t-rss": 3, "t-atom": 2, "t-masto": 5, "t-masto-local": 3,
            "t-masto-public": 2, "t-tg": 7}


@pytest.fixture(scope="module")
def site() -> Iterator[FixtureServer]:
    def media(server: FixtureServer) -> None:
        server.routes["/media/*"] = media_route

    server = start_fixture_server(media, mastodon_routes, telegram_routes)
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def platform_crawl(services: Settings, site: FixtureServer,
                   tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[dict[str, CrawlSummary], dict[str, dict[str, CrawledPost]]]:
    tmp = tmp_path_factory.mktemp("platforms")
    settings = crawl_settings(services, tmp, crawler_allow_hosts=["127.0.0.1"])
    base = {"obey_robots": False, "limits": FAST_LIMITS}
    sources = write_sources(tmp, [
        {**base, "id": "t-xf", "kind": "xenforo",
         "start_urls": [f"{site.url}/xenforo/forums/hoi-dap.2/"]},
        {**base, "id": "t-rss", "kind": "rss", "start_urls": [f"{site.url}/feeds/rss.xml"]},
        {**base, "id": "t-atom", "kind": "rss", "start_urls": [f"{site.url}/feeds/atom.xml"]},
        {**base, "id": "t-masto", "kind": "mastodon", "instance": site.url,
         "hashtag": "treem"},
        {**base, "id": "t-masto-local", "kind": "mastodon", "instance": site.url,
         "timeline": "local"},
        {**base, "id": "t-masto-public", "kind": "mastodon", "instance": site.url,
         "timeline": "public"},
        {**base, "id": "t-tg", "kind": "telegram", "channel": "kenh_phuhuynh",
         "base_url": site.url},
    ])
    summaries = crawl(list(EXPECTED), settings=settings, sources_files=[sources], scrapy=FAST)
    posts = {sid: {p.post_id: p for p in published(settings, sid, EXPECTED[sid])}
             for sid in EXPECTED}
    return {s.source: s for s in summaries}, posts


def test_every_family_pages_to_the_end_and_publishes(platform_crawl) -> None:
    summaries, posts = platform_crawl
    for source, count in EXPECTED.items():
        assert summaries[source].posts == count, summaries[source]
        assert len(posts[source]) == count
        assert summaries[source].errors == 0 and summaries[source].publish_failed == 0
    assert summaries["t-xf"].pages == 2 + 4  # two forum pages, four thread pages
    assert summaries["t-rss"].pages == 2  # followed the RFC 5005 rel="next" link
    assert summaries["t-masto"].pages == 3  # two pages, then the empty one ends it
    assert summaries["t-tg"].pages == 2  # ?before=4 reaches message 1


def test_xenforo_posts(platform_crawl) -> None:
    posts = platform_crawl[1]["t-xf"]
    post = posts["1003"]
    assert post.source_kind == "xenforo" and post.thread_id == "10"
    assert post.thread_title == "Hỏi về an toàn trên mạng cho con"
    assert post.text == "Mình dùng chế độ kiểm soát của phụ huynh.\nKhá hiệu quả."
    assert post.author.name == "LanAnh" and post.author.id == "33"
    assert post.url.endswith("/threads/hoi-ve-an-toan-mang.10/post-1003")
    assert post.media[0].blob_ref and post.media[0].content_type == "image/png"
    assert posts["1002"].edited_at is not None and posts["1002"].published_at is not None
    assert posts["1005"].thread_id == "10"  # from the thread's second page


def test_rss_and_atom_items(platform_crawl) -> None:
    rss, atom = platform_crawl[1]["t-rss"], platform_crawl[1]["t-atom"]
    first = rss["news-1"]
    assert first.text == "Lớp kỹ năng sống cho trẻ em khai giảng.\nĐăng ký tại trường."
    assert first.author.name == "Phóng viên A" and first.language_hint == "vi"
    assert first.media[0].content_type == "image/jpeg" and first.media[0].blob_ref
    assert rss["http://news.example/a/2"].media[0].content_type == "image/png"
    assert "http://news.example/a/0" in rss
    entry = atom["urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"]
    assert entry.text == "A real friend never asks you to keep secrets from your parents."
    assert entry.edited_at is not None and entry.language_hint == "en"
    assert entry.url == "http://blog.example/2026/11/strangers"
    assert atom["tag:blog.example,2026:helplines"].text == "In Vietnam, call 111 (free, 24/7)."


def test_mastodon_statuses_and_rate_limit(platform_crawl, site: FixtureServer) -> None:
    summaries, posts = platform_crawl
    statuses = posts["t-masto"]
    grooming = statuses["113500000000000004"]
    assert grooming.text.startswith("hey kids, how old are you?")
    assert grooming.edited_at is not None and grooming.language_hint == "en"
    assert grooming.author.name == "stranger@social.example"
    assert "113400000000000001" in statuses  # the boosted original, not the boost
    assert statuses["113500000000000001"].text == "CW: test\nvideo only"
    video = statuses["113500000000000001"].media  # videos are referenced, not fetched
    assert len(video) == 1 and video[0].blob_ref is None and video[0].url.endswith(".mp4")
    assert statuses["113500000000000005"].media[0].blob_ref
    assert summaries["t-masto"].pauses >= 1  # X-RateLimit-Remaining: 0 was honoured


def test_mastodon_local_and_federated_timelines(platform_crawl) -> None:
    summaries, posts = platform_crawl
    assert set(posts["t-masto-local"]) == {f"11350000000000000{i}" for i in (3, 4, 5)}
    assert set(posts["t-masto-public"]) == {"113400000000000001", "113500000000000001"}
    assert summaries["t-masto-local"].pages == 2  # then max_id paging reached an empty page


def test_telegram_messages(platform_crawl) -> None:
    messages = platform_crawl[1]["t-tg"]
    assert set(messages) == {f"kenh_phuhuynh/{i}" for i in range(1, 8)}
    five = messages["kenh_phuhuynh/5"]
    assert five.text.startswith("Ai có ảnh của bé lớp 6A")
    assert five.url == "https://t.me/kenh_phuhuynh/5" and five.author.name == "Kênh Phụ huynh"
    assert messages["kenh_phuhuynh/6"].media[0].content_type == "image/jpeg"
    assert messages["kenh_phuhuynh/1"].text.endswith("Liên hệ 111 nếu cần hỗ trợ.")


def test_each_crawl_records_what_it_published_in_elasticsearch(platform_crawl,
                                                               services: Settings) -> None:
    from harmwatch.documents import crawl_stats_alias
    from harmwatch.search import es_client

    client = es_client(services)
    client.indices.refresh(index=crawl_stats_alias(services))
    result = client.search(index=crawl_stats_alias(services), size=0,
                           query={"terms": {"source": list(EXPECTED)}},
                           aggs={"s": {"terms": {"field": "source", "size": 50},
                                       "aggs": {"n": {"sum": {"field": "published"}}}}})
    published = {b["key"]: int(b["n"]["value"]) for b in result["aggregations"]["s"]["buckets"]}
    assert published == EXPECTED


def test_crawl_counts_wait_while_elasticsearch_is_down(services: Settings, tmp_path) -> None:
    from collections import Counter

    from crawlers.stats import flush_pending, record_published
    from harmwatch.documents import crawl_stats_alias
    from harmwatch.search import es_client
    from tests.consumers_support import free_port

    local = services.model_copy(update={"var_dir": tmp_path})
    down = local.model_copy(update={"es_url": f"http://127.0.0.1:{free_port()}"})
    assert not record_published(down, "job-down", "t-down", Counter({"2026-11-29": 3}))
    assert list((tmp_path / "crawl-state" / "pending-stats").glob("*.json"))
    assert flush_pending(local)
    assert not list((tmp_path / "crawl-state" / "pending-stats").glob("*.json"))
    client = es_client(services)
    client.indices.refresh(index=crawl_stats_alias(services))
    doc = client.get(index=crawl_stats_alias(services), id="job-down:t-down:2026-11-29")
    assert doc["_source"]["published"] == 3
