"""The analyzer: ``posts.raw`` → text, image hashes, bank matches → ``posts.flagged``.

Every post whose best category score reaches the low recall floor, or any category's
score the model's default threshold for it (thresholds chosen for 90 % recall can sit
below the floor), whose media matched a hash bank, or that the text engine marked urgent
(the self-harm path) is forwarded; thresholds are applied later, at query time, so an
admin can lower one without re-crawling. An urgent post is never dropped, whatever its scores. A post the analyzer
cannot read (invalid JSON, schema violation) is dead-lettered; an image it cannot decode
is recorded on the post, which is still analysed and forwarded on its text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from consumers import metrics
from consumers.engines import Engines, HashedImage
from consumers.stage import DeadLetterSink, StageRunner
from harmwatch.blobstore import BlobError, BlobStore, get_blob_store
from harmwatch.contract import (
    AnalysedPost,
    CrawledPost,
    HashMatch,
    MediaHashes,
    MediaItem,
    TextAnalysis,
    utcnow,
)
from harmwatch.kafka import fits
from harmwatch.settings import Settings

log = logging.getLogger(__name__)

NAME = "analyzer"
MAX_REASONS = 12
_CRYPTO = ("md5", "sha1", "sha256")
# The reason an urgent post carries, first (the review UI renders it in the reader's
# language from the document's ``urgent`` field: review_ui/reasons.py).
URGENT_REASON = "urgent: possible self-harm, a young person may be at risk now"


@dataclass
class MediaOutcome:
    hashes: list[MediaHashes] = field(default_factory=list)
    matches: list[HashMatch] = field(default_factory=list)


def parse_post(value: bytes | None) -> CrawledPost:
    """The record's post, or ``ValueError``/``ValidationError`` (a poison message)."""
    if not value:
        raise ValueError("empty message")
    return CrawledPost.model_validate_json(value)


def risk_and_reasons(text: TextAnalysis, media: list[MediaHashes],
                     matches: list[HashMatch], floor: float,
                     defaults: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """A review-priority score and the human-readable reasons behind it.

    A bank match outranks any text score (0.95; an exact file match 1.0), because it is
    known material rather than a guess; otherwise the risk is the best category score.
    An urgent post (the self-harm path) is never ranked below its best category score and
    its first reason is :data:`URGENT_REASON`, which the reasons cap never cuts. A category
    score is a reason when it reaches the floor or the model's default threshold for it.
    """
    defaults = defaults or {}
    risk = max(text.scores.values(), default=0.0)  # only ever raised below
    reasons: list[str] = [URGENT_REASON] if text.urgent else []
    for match in matches:
        exact = match.algorithm in _CRYPTO
        risk = max(risk, 1.0 if exact else 0.95)
        what = ("identical file" if exact else
                f"cropped copy: crop-resistant hash, phash distance {match.distance}"
                if match.algorithm == "crop_resistant" else
                f"{match.algorithm} distance {match.distance}")
        category = f", category {match.category}" if match.category else ""
        reasons.append(f"image matches hash bank {match.bank} ({what}{category})")
    for category, score in sorted(text.scores.items(), key=lambda kv: -kv[1]):
        if score >= min(floor, defaults.get(category, floor)):
            reasons.append(f"{category.replace('_', ' ')} score {score:.2f}")
    seen: set[str] = set()
    for hit in text.rule_hits:
        if hit.rule_id not in seen:
            seen.add(hit.rule_id)
            reasons.append(f"rule {hit.rule_id} ({hit.category}) matched \u201c{hit.matched}\u201d")
    for index, hashes in enumerate(media, start=1):
        if hashes.error:
            reasons.append(f"image {index} not hashed: {hashes.error}")
    return min(max(risk, 0.0), 1.0), reasons[:MAX_REASONS]


class Analyzer:
    """The analyzer stage (consumer group ``analyzer`` on ``settings.topic_raw``)."""

    name = NAME
    # Small batches: a post waits for its whole batch to be classified before it moves on.
    default_batch = 32

    def __init__(self, settings: Settings, group: str = NAME) -> None:
        self.settings = settings
        self.group = group
        self.topic = settings.topic_raw
        self.engines: Engines | None = None
        self.blobs: BlobStore = get_blob_store(settings)

    def start(self, runner: StageRunner) -> None:
        self.engines = Engines.load(self.settings)
        log.info("engines loaded", extra={"engines": self.engines.version})

    def handle(self, records: list[Any], dead: DeadLetterSink, runner: StageRunner) -> None:
        posts: list[tuple[Any, CrawledPost]] = []
        for record in records:
            try:
                posts.append((record, parse_post(record.value)))
            except (ValueError, ValidationError) as exc:
                dead.add(record, f"invalid post: {exc}")
        analyses = self._classify(posts, dead)
        out: list[tuple[str | None, bytes]] = []
        for (record, post), text in zip(posts, analyses, strict=True):
            if text is None:
                continue
            analysed = self._analyse(record, post, text, dead)
            if analysed is None:
                continue
            value = analysed.model_dump_json().encode("utf-8")
            if fits(self.settings, post.key.encode("utf-8"), value):
                out.append((post.key, value))
            else:
                metrics.ERRORS.labels(NAME, "too_large").inc()
                dead.add(record, f"the analysed post is {len(value):,} bytes, over the "
                                 f"{self.settings.kafka_max_message_bytes:,}-byte message limit "
                                 f"(HARMWATCH_KAFKA_MAX_MESSAGE_BYTES); raise the limit and the "
                                 f"topics' max.message.bytes, then replay it "
                                 f"(harmwatch dead-letters replay)")
        if out:
            runner.produce(self.settings.topic_flagged, out, "flagged")

    def _classify(self, posts: list[tuple[Any, CrawledPost]],
                  dead: DeadLetterSink) -> list[TextAnalysis | None]:
        """Classify the batch in one call; if that fails, post by post to find the poison."""
        assert self.engines is not None
        texts = [post.text or post.title or "" for _, post in posts]
        if not texts:
            return []
        started = time.perf_counter()
        try:
            analyses: list[TextAnalysis | None] = list(self.engines.classify(texts))
        except Exception:  # noqa: BLE001 - isolate the post that breaks the engine
            analyses = []
            for (record, post), text in zip(posts, texts, strict=True):
                try:
                    analyses.append(self.engines.classify([text])[0])
                except Exception as exc:  # noqa: BLE001 - this post is the poison
                    log.exception("text engine failed", extra={"key": post.key})
                    dead.add(record, f"text classification failed: {exc!r}")
                    analyses.append(None)
        per_post = (time.perf_counter() - started) / len(texts)
        step = metrics.STEP_SECONDS.labels(NAME, "classification")
        for _ in texts:
            step.observe(per_post)
        return analyses

    def _analyse(self, record: Any, post: CrawledPost, text: TextAnalysis,
                 dead: DeadLetterSink) -> AnalysedPost | None:
        try:
            media = self._media(post)
        except Exception as exc:  # noqa: BLE001 - an engine bug on this post: poison
            log.exception("media analysis failed", extra={"key": post.key})
            dead.add(record, f"media analysis failed: {exc!r}")
            return None
        best = max(text.scores.values(), default=0.0)
        assert self.engines is not None
        defaults = self.engines.default_thresholds
        reaches_default = any(text.scores.get(c, 0.0) >= t for c, t in defaults.items())
        if best < self.settings.recall_floor and not reaches_default and not media.matches \
                and not text.urgent:
            metrics.MESSAGES.labels(NAME, "below_floor").inc()
            log.debug("below recall floor", extra={"key": post.key, "best": best})
            return None
        risk, reasons = risk_and_reasons(text, media.hashes, media.matches,
                                         self.settings.recall_floor, defaults)
        metrics.MESSAGES.labels(NAME, "forwarded").inc()
        log.info("post flagged", extra={"key": post.key, "risk": round(risk, 3),
                                        "matches": len(media.matches), "urgent": text.urgent})
        return AnalysedPost(post=post, analyzed_at=utcnow(), analyzer_version=self.engines.version,
                            text=text, media=media.hashes, matches=media.matches, risk=risk,
                            reasons=reasons)

    def _media(self, post: CrawledPost) -> MediaOutcome:
        outcome = MediaOutcome()
        for item in post.media:
            image = self._hash(item)
            outcome.hashes.append(image.hashes)
            if image.full is not None or any(getattr(image.hashes, a) for a in _CRYPTO):
                assert self.engines is not None
                with metrics.STEP_SECONDS.labels(NAME, "matching").time():
                    outcome.matches.extend(self.engines.match(image))
        return outcome

    def _hash(self, item: MediaItem) -> HashedImage:
        """Hash one media item; a missing or undecodable one yields a recorded error."""
        assert self.engines is not None
        if item.blob_ref is None:
            return HashedImage(MediaHashes(sha256=item.sha256, md5=item.md5, sha1=item.sha1,
                                           error=item.error or "media not fetched"), None)
        try:
            data = self.blobs.get(item.blob_ref)
        except BlobError as exc:
            metrics.ERRORS.labels(NAME, "blob_missing").inc()
            return HashedImage(MediaHashes(sha256=item.sha256, md5=item.md5, sha1=item.sha1,
                                           error=f"blob unavailable: {exc}"), None)
        with metrics.STEP_SECONDS.labels(NAME, "hashing").time():
            image = self.engines.hash_image(data)
        if image.hashes.error:
            metrics.ERRORS.labels(NAME, "media_refused").inc()
        return image
