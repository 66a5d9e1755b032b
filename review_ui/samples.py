"""Synthetic flagged items, built through the real contract, for tests, the benchmark and demos.

Items are made as :class:`harmwatch.contract.AnalysedPost` messages and turned into
documents by :func:`harmwatch.documents.item_document` — the indexer's own function — so
what the UI is tested against has exactly the shape the pipeline writes. Images are small
generated PNGs stored in the blob store; no real material is ever involved.
"""

from __future__ import annotations

import io
import random
from datetime import timedelta
from typing import Any

from elasticsearch import Elasticsearch, helpers
from PIL import Image

from harmwatch.blobstore import BlobStore, ref_for
from harmwatch.contract import (
    CATEGORIES,
    AnalysedPost,
    Author,
    CrawledPost,
    CrawlProvenance,
    HashMatch,
    MediaHashes,
    MediaItem,
    RuleHit,
    TextAnalysis,
    content_hash,
    utcnow,
)
from harmwatch.documents import ensure_indices, item_document, items_alias
from harmwatch.settings import Settings

VI_PHRASES = ("trẻ em bị bắt nạt ở trường", "gặp riêng em nhé, đừng nói với bố mẹ",
              "bán hàng online Đà Nẵng", "em muốn tự làm đau mình", "tuyển người làm việc nhẹ lương cao")
EN_PHRASES = ("meet me alone and don't tell your parents", "the kids are being bullied",
              "selling cheap phones", "I want to hurt myself", "easy job abroad, high pay")


def png_bytes(seed: int, size: int = 64) -> bytes:
    """A small, unique, harmless PNG (a colour gradient derived from ``seed``)."""
    rng = random.Random(seed)
    base = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    image = Image.new("RGB", (size, size), base)
    for x in range(size):
        image.putpixel((x, x), (255 - base[0], 255 - base[1], 255 - base[2]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def analysed_post(
    n: int, *, text: str | None = None, language: str = "vi", source: str = "demo-forum",
    author: str | None = None, author_url: str | None = None, url: str | None = None,
    scores: dict[str, float] | None = None, match: bool = False,
    media: list[bytes] | None = None, blobs: BlobStore | None = None,
    snapshot: bytes | None = None, age_minutes: int = 0, title: str | None = None,
    urgent: bool = False,
) -> AnalysedPost:
    """One analysed post; ``media`` bytes and ``snapshot`` are stored in ``blobs``."""
    phrases = VI_PHRASES if language == "vi" else EN_PHRASES
    body = text if text is not None else f"{phrases[n % len(phrases)]} #{n}"
    fetched = utcnow() - timedelta(minutes=age_minutes)
    media_items, hashes = [], []
    for index, data in enumerate(media or []):
        ref = blobs.put(data) if blobs else ref_for(data)
        sha = ref.split(":", 1)[1]
        media_items.append(MediaItem(url=f"https://example.org/m/{n}/{index}.png", blob_ref=ref,
                                     sha256=sha, content_type="image/png", size=len(data)))
        hashes.append(MediaHashes(sha256=sha, pdq="f" * 64, pdq_quality=90, phash="a" * 16))
    post = CrawledPost(
        source=source, source_kind="demo", post_id=str(n), content_hash=content_hash(body, []),
        url=url or f"https://forum.example.org/t/{n}", title=title,
        author=Author(id=f"u{author or n % 7}", name=author or f"user{n % 7}", url=author_url),
        published_at=fetched - timedelta(minutes=5), text=body, media=media_items,
        snapshot_ref=blobs.put(snapshot) if (blobs and snapshot) else None,
        provenance=CrawlProvenance(crawler="demo", crawl_job_id="job-1", fetched_at=fetched,
                                   page_url=f"https://forum.example.org/t/{n}"),
    )
    scores = scores or {c: 0.0 for c in CATEGORIES} | {"grooming": 0.9}
    top = max(scores, key=scores.get)
    hit_end = min(len(body), 10)
    rule_hits = [RuleHit(rule_id="r-demo", category=top, start=0, end=hit_end,
                         matched=body[:hit_end])] if hit_end else []
    matches = [HashMatch(media_sha256=hashes[0].sha256 if hashes else None, bank="ncmec",
                         list_version="2026-11", algorithm="pdq", distance=4, category="A1",
                         severity=3)] if match else []
    return AnalysedPost(
        post=post, analyzed_at=fetched, analyzer_version="test",
        text=TextAnalysis(language=language, scores=scores, model_version="demo-model-1",
                          rules_version="rules-1", rule_hits=rule_hits, urgent=urgent),
        media=hashes, matches=matches, risk=max(scores.values()), reasons=["sample"],
    )


def sample_document(n: int, **options: Any) -> dict[str, Any]:
    """The ``items`` document of :func:`analysed_post` (JSON-ready)."""
    return _jsonable(item_document(analysed_post(n, **options)))


def index_documents(client: Elasticsearch, settings: Settings,
                    docs: list[dict[str, Any]]) -> None:
    """Write item documents as the indexer does (id = ``item_id``) and make them searchable.

    The indices are ensured first: a bulk write to a missing alias would create a plain
    index of that name, which then blocks the real versioned index and alias.
    """
    ensure_indices(client, settings)
    helpers.bulk(client, ({"_index": items_alias(settings), "_id": d["item_id"], "_source": d}
                          for d in docs), refresh=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
