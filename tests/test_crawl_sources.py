"""The sources file: valid files load, a bad entry is refused naming file, entry, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmwatch.settings import REPO_ROOT
from harmwatch.sources import (
    GenericSource,
    MastodonSource,
    SourceError,
    load_all,
    load_sources,
    parse_duration,
    parse_size,
)
from tests.crawlers_support import write_sources

GOOD = [
    {"id": "forum-a", "kind": "generic", "start_urls": ["https://forum.example/"],
     "interval": "30m", "limits": {"max_response_size": "2MiB", "download_timeout": "20s"},
     "selectors": {"post": "article", "post_id": "::attr(id)", "text": ".body"}},
    {"id": "xf", "kind": "xenforo", "start_urls": ["https://xf.example/forums/a.1/"]},
    {"id": "feed", "kind": "rss", "start_urls": ["https://news.example/rss"], "enabled": False},
    {"id": "masto", "kind": "mastodon", "instance": "https://social.example/",
     "hashtag": "treem"},
    {"id": "masto-local", "kind": "mastodon", "instance": "https://social.example",
     "timeline": "local"},
    {"id": "tg", "kind": "telegram", "channel": "kenh_phuhuynh"},
]


def test_a_valid_file_loads_every_kind(tmp_path: Path) -> None:
    sources = load_sources(write_sources(tmp_path, GOOD))
    assert [s.kind for s in sources] == ["generic", "xenforo", "rss", "mastodon", "mastodon",
                                         "telegram"]
    forum = sources[0]
    assert isinstance(forum, GenericSource)
    assert forum.interval == 1800 and forum.limits.max_response_size == 2 * 2**20
    assert forum.limits.download_timeout == 20 and forum.obey_robots is True
    assert isinstance(sources[3], MastodonSource) and sources[3].instance.endswith(".example")


def test_the_shipped_demo_sources_file_is_valid() -> None:
    sources = load_all([REPO_ROOT / "crawlers" / "sources.demo.yaml"])
    assert sources["demo-forum"].enabled


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"id": "x", "kind": "generic", "start_urls": ["https://a.example/"],
          "selectors": {"post": "a", "text": "b"}}, "selectors.post_id"),
        ({"id": "x", "kind": "generic", "start_urls": ["ftp://a.example/"],
          "selectors": {"post": "a", "post_id": "b", "text": "c"}}, "start_urls"),
        ({"id": "x", "kind": "rss", "start_urls": ["https://a.example/"], "interval": "soon"},
         "interval"),
        ({"id": "x", "kind": "mastodon", "instance": "https://m.example"}, "hashtag"),
        ({"id": "x", "kind": "telegram", "channel": "no spaces allowed"}, "channel"),
        ({"id": "x", "kind": "forum"}, "kind"),
        ({"id": "Bad Id", "kind": "rss", "start_urls": ["https://a.example/"]}, "id"),
        ({"id": "x", "kind": "rss", "start_urls": ["https://a.example/"], "limitz": {}},
         "limitz"),
    ],
)
def test_a_bad_entry_names_file_entry_and_field(tmp_path: Path, entry: dict, field: str
                                                ) -> None:
    path = write_sources(tmp_path, [GOOD[1], entry])
    with pytest.raises(SourceError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert str(path) in message and "entry 2" in message
    assert field in message


def test_duplicate_ids_and_non_lists_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="duplicate id"):
        load_sources(write_sources(tmp_path, [GOOD[1], GOOD[1]]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {a: 1}\n")
    with pytest.raises(SourceError, match="'sources:' list"):
        load_sources(bad)


def test_durations_and_sizes() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2h") == 7200
    assert parse_duration(15) == 15
    assert parse_size("512KiB") == 524288 and parse_size("10MB") == 10**7
    with pytest.raises(ValueError):
        parse_size("lots")
