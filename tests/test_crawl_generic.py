"""The generic spider end to end: the demo forum into the real Kafka and blob store,
then incremental behaviour (unchanged posts skipped, an edited post re-versioned)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlers.runner import crawl
from crawlers.state import state_dir
from harmwatch.blobstore import get_blob_store
from harmwatch.contract import content_hash
from harmwatch.settings import Settings
from services.demo_site import start_demo_site
from services.demo_site.content import THREADS
from tests.crawlers_support import (
    FAST,
    crawl_settings,
    editable_routes,
    oversized_routes,
    published,
    start_fixture_server,
    write_sources,
)

pytestmark = pytest.mark.integration

DEMO_SELECTORS = {
    "follow": "a.thread-link::attr(href)", "post": "article.post",
    "post_id": "::attr(data-post-id)", "text": ".body", "author": ".author",
    "published": "time::attr(datetime)", "permalink": "a.permalink::attr(href)",
    "images": "img.attachment::attr(src)", "language": ".body::attr(lang)",
    "thread_id": "h1.thread-title::attr(data-thread-id)", "thread_title": "h1.thread-title",
    "next_page": "a[rel=next]::attr(href)",
}


@pytest.fixture(scope="module")
def demo_site() -> Iterator[str]:
    server = start_demo_site(0)
    yield server.url
    server.shutdown()


def test_demo_forum_round_trip_through_kafka(services: Settings, demo_site: str,
                                             tmp_path: Path) -> None:
    settings = crawl_settings(services, tmp_path, crawler_allow_hosts=["127.0.0.1"])
    sources = write_sources(tmp_path, [{
        "id": "t-demo", "kind": "generic", "start_urls": [f"{demo_site}/"],
        "limits": {"download_delay": 0, "concurrency_per_domain": 4},
        "selectors": DEMO_SELECTORS}])
    expected = {str(p.post_id): p for t in THREADS for p in t.posts}

    [summary] = crawl(["t-demo"], settings=settings, sources_files=[sources], scrapy=FAST)
    assert summary.posts == len(expected) and summary.errors == 0
    assert summary.pages == 1 + sum(-(-len(t.posts) // 5) for t in THREADS)  # every page
    assert summary.media == sum(len(p.images) for p in expected.values())

    posts = {p.post_id: p for p in published(settings, "t-demo", len(expected))}
    assert posts.keys() == expected.keys()
    blobs = get_blob_store(settings)
    for post_id, post in posts.items():
        source_post = expected[post_id]
        assert post.text == source_post.text and post.version == 1
        assert post.language_hint == source_post.lang
        assert post.author.name == source_post.author
        assert post.content_hash == content_hash(post.text, [m.url for m in post.media])
        assert blobs.exists(post.snapshot_ref)
        assert f"post-{post_id}".encode() in blobs.get(post.snapshot_ref)
        assert post.provenance.user_agent.startswith("harmwatch-crawler/")
        assert "+https://" in post.provenance.user_agent
        assert len(post.media) == len(source_post.images)
        for media in post.media:
            assert media.error is None and media.content_type in ("image/png", "image/jpeg")
            data = blobs.get(media.blob_ref)
            assert media.size == len(data) and media.blob_ref == f"sha256:{media.sha256}"
            assert len(media.md5) == 32 and len(media.sha1) == 40

    [again] = crawl(["t-demo"], settings=settings, sources_files=[sources], scrapy=FAST)
    assert again.posts == 0 and again.unchanged == len(expected) and again.media == 0


def test_an_edited_post_is_published_as_a_new_version(services: Settings, tmp_path: Path
                                                      ) -> None:
    server = start_fixture_server(editable_routes)
    settings = crawl_settings(services, tmp_path, crawler_allow_hosts=["127.0.0.1"])
    sources = write_sources(tmp_path, [{
        "id": "t-edit", "kind": "generic", "start_urls": [f"{server.url}/edit/page"],
        "obey_robots": False, "limits": {"download_delay": 0},
        "selectors": {"post": "div.post", "post_id": "::attr(data-id)", "text": ".text"}}])
    try:
        run = lambda: crawl(["t-edit"], settings=settings,  # noqa: E731
                            sources_files=[sources], scrapy=FAST)[0]
        assert run().posts == 1
        server.mutable["/edit/page"] = "second, edited version"
        edited = run()
        assert (edited.posts, edited.edited) == (1, 1)
        unchanged = run()
        assert (unchanged.posts, unchanged.unchanged) == (0, 1)
    finally:
        server.shutdown()
    versions = sorted(published(settings, "t-edit", 2), key=lambda p: p.version)
    assert [(p.version, p.text) for p in versions] == [
        (1, "first version of the post"), (2, "second, edited version")]
    assert versions[0].content_hash != versions[1].content_hash


def test_a_post_the_broker_refuses_is_reported_spooled_and_retried_next_time(
        services: Settings, tmp_path: Path) -> None:
    server = start_fixture_server(oversized_routes)
    settings = crawl_settings(services, tmp_path, crawler_allow_hosts=["127.0.0.1"])
    sources = write_sources(tmp_path, [{
        "id": "t-big", "kind": "generic", "start_urls": [f"{server.url}/oversized"],
        "obey_robots": False, "limits": {"download_delay": 0, "max_response_size": "5MiB"},
        "selectors": {"post": "div.post", "post_id": "::attr(data-id)", "text": ".text"}}])
    scrapy = {**FAST, "HARMWATCH_PUBLISH_ATTEMPTS": 2, "HARMWATCH_PUBLISH_BACKOFF": 0.1}
    try:
        first = crawl(["t-big"], settings=settings, sources_files=[sources], scrapy=scrapy)[0]
        second = crawl(["t-big"], settings=settings, sources_files=[sources], scrapy=scrapy)[0]
    finally:
        server.shutdown()
    assert (first.posts, first.publish_failed) == (1, 1)
    assert "not published 1" in first.line()
    # Not recorded as published, so the next crawl tries it again (and reports it again).
    assert (second.posts, second.unchanged, second.publish_failed) == (0, 1, 1)
    spool = (state_dir(settings) / "undelivered.jsonl").read_text().splitlines()
    assert len(spool) == 2 and all('"key": "t-big:o-huge"' in line for line in spool)
    assert "MessageSizeTooLarge" in spool[0]
    assert [p.post_id for p in published(settings, "t-big", 1)] == ["o-small"]
