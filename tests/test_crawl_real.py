"""The spiders on real captured feeds and API responses (``tests/fixtures/real``, origins
and licences in its SOURCES.md), served on 127.0.0.1 only, crawled in one job into
the real Kafka.

``expected.yaml`` gives, per file, the entries it holds (counted from the raw bytes, not
by the parser under test), the posts that must be published, what is skipped and why,
and how many posts may lack each field. Media downloads are off and every source gets
one page (two for Mastodon: the capture, then an empty page), so links in the captures
to their real hosts are counted as skipped, never requested.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import yaml

from crawlers.extensions import CrawlSummary
from crawlers.runner import crawl
from harmwatch.contract import CrawledPost
from harmwatch.settings import Settings
from tests.crawlers_support import (
    FAST,
    REAL,
    FixtureServer,
    crawl_settings,
    published,
    real_routes,
    start_fixture_server,
    write_sources,
)

pytestmark = pytest.mark.integration
MANIFEST: list[dict[str, Any]] = yaml.safe_load(
    (REAL / "expected.yaml").read_text(encoding="utf-8"))["files"]
FIELDS = ("text", "url", "published_at", "author", "language_hint")


def source_id(entry: dict[str, Any]) -> str:
    return "r-" + re.sub(r"[^a-z0-9]+", "-", entry["file"].lower())[:60].strip("-")


def missing(post: CrawledPost, field: str) -> bool:
    if field == "url":  # no link of its own: the post points at the feed it came from
        return post.url == post.provenance.page_url
    return not getattr(post, field)


@pytest.fixture(scope="module")
def real_crawl(services: Settings, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[dict[str, CrawlSummary], dict[str, list[CrawledPost]], FixtureServer]:
    server = start_fixture_server(real_routes)
    tmp = tmp_path_factory.mktemp("real")
    settings = crawl_settings(services, tmp, crawler_allow_hosts=["127.0.0.1"])
    base = {"obey_robots": False, "media": False,
            "limits": {"download_delay": 0, "concurrency_per_domain": 4, "max_pages": 1}}
    entries = []
    for entry in MANIFEST:
        if entry["kind"] == "mastodon":
            entries.append({**base, "limits": {**base["limits"], "max_pages": 2},
                            "id": source_id(entry), "kind": "mastodon",
                            "instance": server.url, "timeline": "public"})
        else:
            entries.append({**base, "id": source_id(entry), "kind": "rss",
                            "start_urls": [f"{server.url}/real/{entry['file']}"]})
    ids = [e["id"] for e in entries]
    summaries = crawl(ids, settings=settings, sources_files=[write_sources(tmp, entries)],
                      scrapy=FAST)
    posts = {source_id(e): published(settings, source_id(e), e["posts"]) for e in MANIFEST}
    yield {s.source: s for s in summaries}, posts, server
    server.shutdown()


def closing_figures(summaries: dict[str, CrawlSummary],
                    posts: dict[str, list[CrawledPost]]) -> dict[str, Counter[str]]:
    """Per family: files, posts expected, published, and each field missing."""
    families: dict[str, Counter[str]] = {}
    for entry in MANIFEST:
        family = families.setdefault(entry["file"].split("/")[0], Counter())
        sid = source_id(entry)
        family.update(files=1, expected=entry["posts"], published=summaries[sid].posts)
        for field in FIELDS:
            family[f"missing_{field}"] += sum(missing(p, field) for p in posts[sid])
    return families


def test_every_real_file_publishes_what_it_holds(real_crawl) -> None:
    summaries, posts, _ = real_crawl
    wrong = []
    for entry in MANIFEST:
        sid = source_id(entry)
        summary = summaries[sid]
        got = {"posts": summary.posts, "errors": summary.errors,
               "skipped": summary.skipped, "published": len({p.post_id for p in posts[sid]}),
               "missing": {f: sum(missing(p, f) for p in posts[sid]) for f in FIELDS}}
        want = {"posts": entry["posts"], "errors": 0, "skipped": entry.get("skipped", {}),
                "published": entry["posts"],
                "missing": {f: entry.get("missing", {}).get(f, 0) for f in FIELDS}}
        if got != want:
            wrong.append(f"{entry['file']}: got {got}, want {want}")
    assert not wrong, "\n".join(wrong)
    # Every entry is accounted for: published, or skipped with a reason.
    for entry in MANIFEST:
        skipped = entry.get("skipped", {})
        read = sum(v for k, v in skipped.items() if k != "page_budget")
        assert entry["posts"] + read == entry["entries"], entry["file"]
    print("\nclosing figures:", {k: dict(v) for k, v in
                                 closing_figures(summaries, posts).items()})


def test_nothing_but_the_fixture_server_was_asked(real_crawl) -> None:
    summaries, _, server = real_crawl
    assert all(s.ssrf_blocked == 0 and s.media == 0 for s in summaries.values())
    feeds = [e for e in MANIFEST if e["kind"] == "rss"]
    assert sum(n for path, n in server.hits.items() if path.startswith("/real/")) == len(feeds)


def _posts(real_crawl, file: str) -> dict[str, CrawledPost]:
    entry = next(e for e in MANIFEST if e["file"] == file)
    return {p.post_id: p for p in real_crawl[1][source_id(entry)]}


def test_xhtml_content_media_descriptions_and_thumbnails(real_crawl) -> None:
    feedburner = _posts(real_crawl, "feeds/feedjira/FeedBurnerXHTML.xml")
    assert all(len(p.text) > 200 for p in feedburner.values())  # Atom type="xhtml"
    youtube = _posts(real_crawl, "feeds/feedjira/youtube_atom.xml").values()
    assert all(p.text and len(p.media) == 1 for p in youtube)  # media:description, thumbnail
    assert all(p.media[0].url.startswith("https://i") and p.media[0].blob_ref is None
               for p in youtube)
    typepad = _posts(real_crawl, "feeds/feedjira/TypePadNews.xml").values()
    assert all(p.text and p.author for p in typepad)


def test_encodings_languages_and_old_formats(real_crawl) -> None:
    [euc_kr] = _posts(real_crawl, "feeds/feedparser/encoding_euc-kr-item.xml").values()
    assert euc_kr.text == "\ub144"
    [smart] = _posts(real_crawl, "feeds/feedparser/encoding_demoronize-1.xml").values()
    assert smart.text == "don\u2019t"  # windows-1252 bytes in a UTF-8 feed
    [atom03] = _posts(real_crawl,
                      "feeds/feedparser/wellformed_lang_entry_content_xml_lang.xml").values()
    assert atom03.text == "Example Atom" and atom03.language_hint == "en"
    [rdf] = _posts(real_crawl, "feeds/feedparser/wellformed_rdf_rdf_item_description.xml"
                   ).values()
    assert rdf.text == "Example description" and rdf.post_id == "http://example.com/1"
    [rss090] = _posts(real_crawl, "feeds/feedparser/wellformed_rdf_rss090_item_title.xml"
                      ).values()
    assert rss090.title == "Item title"
    [enclosures] = _posts(real_crawl,
                          "feeds/feedparser/wellformed_rss_item_enclosure_multiple.xml"
                          ).values()
    assert [m.url for m in enclosures.media] == ["http://example.com/1", "http://example.com/2"]


def test_json_feed(real_crawl) -> None:
    items = _posts(real_crawl, "feeds/feedjira/json_feed.json").values()
    assert all(p.text and p.published_at and p.url.startswith("http") for p in items)


def test_real_mastodon_timeline(real_crawl) -> None:
    statuses = _posts(real_crawl, "mastodon/public-timeline.json")
    assert all(p.author and p.published_at and p.url and p.text for p in statuses.values())
    assert statuses["104009345707066649"].language_hint == "ja"
    images = statuses["104009345653131175"].media
    assert images[0].url.endswith("37511ce578c30a1d.png") and images[0].blob_ref is None


def test_skips_reach_the_crawl_stats_document(real_crawl, services: Settings) -> None:
    from harmwatch.documents import crawl_stats_alias
    from harmwatch.search import es_client

    sid = source_id(next(e for e in MANIFEST if e["file"].endswith("item_dc_language.xml")))
    client = es_client(services)
    client.indices.refresh(index=crawl_stats_alias(services))
    hits = client.search(index=crawl_stats_alias(services),
                         query={"term": {"source": sid}})["hits"]["hits"]
    docs = [h["_source"] for h in hits if h["_source"].get("skipped")]
    assert docs and docs[-1]["skipped"] == {"no_text": 1} and docs[-1]["published"] == 0
