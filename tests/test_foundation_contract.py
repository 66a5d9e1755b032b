"""The message contract: schemas on disk match the models; messages round-trip."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from harmwatch.commands import SCHEMA_DIR, render_schemas
from harmwatch.contract import (
    AnalysedPost,
    CrawledPost,
    CrawlProvenance,
    TextAnalysis,
    content_hash,
    item_id,
    utcnow,
)


def test_schema_files_match_the_models():
    rendered = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert set(on_disk) == set(rendered), "run `harmwatch schemas` and commit docs/schemas/"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} drifted from the model: run `harmwatch schemas`"


def _post(**overrides) -> CrawledPost:
    values = {
        "source": "demo-forum",
        "source_kind": "demo",
        "post_id": "42",
        "content_hash": content_hash("xin chào", []),
        "url": "http://127.0.0.1:8090/t/1#p42",
        "text": "xin chào",
        "provenance": CrawlProvenance(crawler="generic", crawl_job_id="job-1",
                                      fetched_at=utcnow(), page_url="http://127.0.0.1:8090/t/1"),
    }
    values.update(overrides)
    return CrawledPost(**values)


def test_crawled_post_round_trips_through_json():
    post = _post()
    again = CrawledPost.model_validate_json(post.model_dump_json())
    assert again == post
    assert post.key == "demo-forum:42"


def test_unknown_fields_and_bad_hashes_are_refused():
    raw = json.loads(_post().model_dump_json())
    raw["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        CrawledPost.model_validate(raw)
    with pytest.raises(ValidationError, match="content_hash"):
        _post(content_hash="not-a-hash")


def test_analysed_post_carries_the_post():
    analysed = AnalysedPost(
        post=_post(), analyzed_at=utcnow(), analyzer_version="t",
        text=TextAnalysis(language="vi", scores={"grooming": 0.9}, model_version="m"), risk=0.9,
    )
    assert AnalysedPost.model_validate_json(analysed.model_dump_json()).key == "demo-forum:42"


def test_item_id_depends_on_identity_and_version_only():
    assert item_id("s", "1", 1) == item_id("s", "1", 1)
    assert item_id("s", "1", 1) != item_id("s", "1", 2)
    assert item_id("s:1", "2", 1) != item_id("s", "1:2", 1)
    assert len(item_id("x" * 1000, "y" * 1000, 1)) == 40


def _wire(**changes) -> bytes:
    """A valid post as JSON with ``changes`` applied (dotted keys reach into provenance)."""
    raw = json.loads(_post().model_dump_json())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        target = raw
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return json.dumps(raw).encode()


@pytest.mark.parametrize(("field", "value"), [
    ("schema_version", True),          # was coerced to 1
    ("provenance.fetched_at", 12),     # was indexed as 1970-01-01T00:00:12Z
    ("version", "2"),                  # was coerced to 2
    ("version", 1.0),
    ("text", 5),
])
def test_wrong_json_types_are_refused_not_coerced(field, value):
    leaf = field.split(".")[-1]
    with pytest.raises(ValidationError, match=leaf):
        CrawledPost.model_validate_json(_wire(**{field: value}))


@pytest.mark.parametrize(("field", "limit"), [("source", 64), ("post_id", 512)])
def test_oversized_identity_is_refused_naming_the_field(field, limit):
    CrawledPost.model_validate_json(_wire(**{field: "x" * limit}))
    with pytest.raises(ValidationError) as refused:
        CrawledPost.model_validate_json(_wire(**{field: "x" * 600_000}))
    reason = str(refused.value)
    assert field in reason and f"at most {limit} characters" in reason
    assert len(reason) < 2000, "the reason must not carry the oversized value"
