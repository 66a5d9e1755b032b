"""The message contract between harmwatch's stages (schema version 1).

Stages never import each other; they agree only on these models. Every message on
``posts.raw`` is a :class:`CrawledPost`, every message on ``posts.flagged`` an
:class:`AnalysedPost`, every message on ``posts.dead`` a :class:`DeadLetter`.
The JSON Schema files in ``docs/schemas/`` are generated from these models
(``harmwatch schemas``) and a test fails when they drift apart.

Compatibility rule: within schema version 1, fields may be *added* with a default;
nothing is renamed or removed. A breaking change is a new version and new models.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

Category = Literal[
    "sexual_exploitation",
    "grooming",
    "violence",
    "bullying",
    "self_harm",
    "trafficking",
]
CATEGORIES: tuple[str, ...] = get_args(Category)

SourceKind = Literal["generic", "xenforo", "rss", "mastodon", "telegram", "demo"]
HashAlgorithm = Literal["md5", "sha1", "sha256", "pdq", "phash", "dhash", "crop_resistant"]

HexSha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
HexSha1 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]
HexMd5 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
BlobRef = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]

# Identity limits: a source id is at most 64 characters (crawlers/sources.py), a platform's
# post id far less than 512; past them a message is refused naming the field, not dead-lettered
# later as "too large" once its key and copies have multiplied it.
MAX_SOURCE_CHARS = 64
MAX_POST_ID_CHARS = 512


def _not_bool(value: object) -> object:
    """Refuse ``true``/``false`` where a number is meant: ``Literal[1]`` accepts ``True == 1``
    even in strict mode."""
    if isinstance(value, bool):
        raise ValueError("must be the number 1, not a boolean")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_not_bool)]


def utcnow() -> datetime:
    """Timezone-aware UTC now; naive datetimes are never put on the wire."""
    return datetime.now(UTC)


class _Message(BaseModel):
    # Unknown fields are refused so that a typo in a producer is a dead letter, not data loss;
    # strict, so a wrong type is refused rather than coerced ("2" for 2, 12 for a date in 1970).
    model_config = ConfigDict(extra="forbid", frozen=False, strict=True)


class Author(_Message):
    id: str | None = None
    name: str | None = None
    url: str | None = None


class MediaItem(_Message):
    """One image (or other media) attached to a post, as the crawler fetched it."""

    url: str
    blob_ref: BlobRef | None = Field(
        default=None, description="Where the bytes are in the blob store; None if not fetched."
    )
    sha256: HexSha256 | None = None
    md5: HexMd5 | None = None
    sha1: HexSha1 | None = None
    content_type: str | None = Field(default=None, description="Type sniffed from the bytes.")
    size: int | None = Field(default=None, ge=0)
    error: str | None = Field(
        default=None, description="Why the media was refused or not fetched (kept, not dropped)."
    )


class CrawlProvenance(_Message):
    """How and when the post was captured: evidence needs this as much as the post."""

    crawler: str = Field(description="Spider name, e.g. 'xenforo'.")
    crawl_job_id: str
    fetched_at: datetime
    page_url: str = Field(description="The page or API URL the post was read from.")
    http_status: int | None = None
    response_headers: dict[str, str] = Field(default_factory=dict)
    server_ip: str | None = None
    user_agent: str | None = None


class CrawledPost(_Message):
    """A public post as crawled: the value of a ``posts.raw`` message."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    source: str = Field(min_length=1, max_length=MAX_SOURCE_CHARS,
                        description="Source id from the sources file.")
    source_kind: SourceKind
    post_id: str = Field(min_length=1, max_length=MAX_POST_ID_CHARS,
                         description="The platform's id of the post, stable.")
    version: int = Field(default=1, ge=1, description="Raised each time an edit is seen.")
    content_hash: HexSha256 = Field(description="sha256 of text + media URLs; detects edits.")
    url: str
    thread_id: str | None = None
    thread_title: str | None = None
    author: Author | None = None
    published_at: datetime | None = None
    edited_at: datetime | None = None
    language_hint: str | None = Field(default=None, description="Language the source declares.")
    title: str | None = None
    text: str = ""
    media: list[MediaItem] = Field(default_factory=list)
    snapshot_ref: BlobRef | None = Field(
        default=None, description="Blob reference of the raw page the post was read from."
    )
    provenance: CrawlProvenance

    @property
    def key(self) -> str:
        """The Kafka message key: ``source:post_id`` (keeps a post's versions in order)."""
        return post_key(self.source, self.post_id)


class RuleHit(_Message):
    """One explainable rule that fired, with the character span it matched in ``text``."""

    rule_id: str
    category: Category
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    matched: str
    weight: float = 1.0


class TextAnalysis(_Message):
    language: str = Field(description="'vi', 'en' or 'other'.")
    scores: dict[str, float] = Field(
        default_factory=dict, description="Calibrated probability per category, 0..1."
    )
    model_version: str
    rules_version: str | None = None
    rule_hits: list[RuleHit] = Field(default_factory=list)
    urgent: bool = Field(
        default=False,
        description="On the self-harm path: the self_harm score reached the model's urgent "
                    "threshold or an urgent rule (a question about dying, a goodbye) fired. "
                    "Urgent items are always queued, first.")


class MediaHashes(_Message):
    """Hashes computed by the analyzer for one media item (or the reason it could not)."""

    sha256: HexSha256 | None = None
    md5: HexMd5 | None = None
    sha1: HexSha1 | None = None
    pdq: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    pdq_quality: int | None = None
    phash: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    dhash: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    error: str | None = None


class HashMatch(_Message):
    """A media item matched an entry of a hash bank."""

    media_sha256: str | None = None
    bank: str
    list_version: str | None = None
    algorithm: HashAlgorithm
    distance: int = Field(ge=0, description="Hamming distance (0 for exact hashes); for "
                                            "crop_resistant, the pHash distance that put the "
                                            "entry on the shortlist.")
    entry_id: str | None = None
    category: str | None = Field(default=None, description="NCMEC A1/A2/B1/B2 or VICS category.")
    severity: int | None = Field(default=None, description="Higher is worse; used for priority.")
    source_list: str | None = None


class AnalysedPost(_Message):
    """A post with its analysis: the value of a ``posts.flagged`` message."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    post: CrawledPost
    analyzed_at: datetime
    analyzer_version: str
    text: TextAnalysis
    media: list[MediaHashes] = Field(default_factory=list)
    matches: list[HashMatch] = Field(default_factory=list)
    risk: float = Field(ge=0.0, le=1.0, description="Priority score for the review queue.")
    reasons: list[str] = Field(default_factory=list, description="Human-readable why.")

    @property
    def key(self) -> str:
        return self.post.key


class DeadLetter(_Message):
    """A message a stage could not process, kept whole with the reason (``posts.dead``)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    stage: str
    error: str
    source_topic: str
    partition: int
    offset: int
    key: str | None = None
    original_base64: str = Field(
        default="", description="The original message bytes, base64; empty when they are in "
                                "the blob store instead (original_blob_ref).")
    original_size: int | None = Field(default=None, ge=0,
                                      description="Length of the original message in bytes.")
    original_blob_ref: str | None = Field(
        default=None, pattern=r"^sha256:[0-9a-f]{64}$",
        description="Blob store ref of the original, set when base64 of it would not fit "
                    "in one Kafka message (HARMWATCH_KAFKA_MAX_MESSAGE_BYTES).")
    failed_at: datetime


def post_key(source: str, post_id: str) -> str:
    return f"{source}:{post_id}"


def item_id(source: str, post_id: str, version: int) -> str:
    """Elasticsearch document id of one version of a post.

    Derived only from identity and version, so processing a message twice writes one
    document. Hashed to stay under Elasticsearch's 512-byte id limit whatever the ids are.
    """
    raw = json.dumps([source, post_id, version], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def content_hash(text: str, media_urls: list[str]) -> str:
    """The hash the crawlers use to tell an edited post from one seen before."""
    raw = json.dumps({"text": text, "media": sorted(media_urls)}, ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "crawled-post.v1.json": CrawledPost,
    "analysed-post.v1.json": AnalysedPost,
    "dead-letter.v1.json": DeadLetter,
}


def json_schemas() -> dict[str, dict]:
    """The JSON Schema of each message, keyed by the file name in docs/schemas/."""
    return {name: model.model_json_schema() for name, model in SCHEMA_MODELS.items()}
