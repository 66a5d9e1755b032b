"""The sources file: which public places to crawl, how often, within which limits.

A sources file is YAML with a top-level ``sources:`` list. Each entry is validated
here at load time; a bad entry is refused with the file, the entry (index and id) and
the field named, so a typo never turns into a silent crawl of nothing. The format is
documented in ``docs/formats/sources.md``. It lives in ``harmwatch/`` because two stages
read it: the crawler (what to crawl) and the review UI (admins edit and validate sources).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from harmwatch.settings import REPO_ROOT

DEFAULT_SOURCES_FILES = (REPO_ROOT / "crawlers" / "sources.yaml",
                         REPO_ROOT / "crawlers" / "sources.demo.yaml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_SIZE_BYTES = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9,
               "gib": 2**30}


class SourceError(ValueError):
    """A sources file or one of its entries is invalid; the message says where and why."""


def parse_duration(value: str | int | float) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 2h, 1d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_size(value: str | int) -> int:
    """Bytes from ``1048576``, ``"512KiB"``, ``"10MB"``."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 512KiB, 10MB)")
    return int(float(match.group(1)) * _SIZE_BYTES[(match.group(2) or "b").lower()])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Strict):
    """How much one crawl of a source may take; all have safe defaults."""

    max_pages: int = Field(default=200, ge=1, description="Pages (or API calls) per crawl.")
    max_posts: int | None = Field(default=None, ge=1)
    max_response_size: int = Field(default=10 * 2**20, ge=1024)
    max_media_size: int = Field(default=10 * 2**20, ge=1024)
    download_timeout: float = Field(default=30.0, gt=0)
    concurrency_per_domain: int = Field(default=2, ge=1, le=16)
    download_delay: float = Field(default=1.0, ge=0)

    @field_validator("max_response_size", "max_media_size", mode="before")
    @classmethod
    def _size(cls, value: str | int) -> int:
        return parse_size(value)

    @field_validator("download_timeout", "download_delay", mode="before")
    @classmethod
    def _duration(cls, value: str | int | float) -> float:
        return parse_duration(value)


class _SourceBase(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    enabled: bool = True
    interval: float = Field(default=3600.0, gt=0, description="Seconds between scheduled crawls.")
    language: str | None = Field(default=None, description="Language hint: 'vi', 'en'.")
    obey_robots: bool = True
    media: bool = True
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts/IPs/CIDRs this source may reach even if private (demo, tests).",
    )
    limits: Limits = Field(default_factory=Limits)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: str | int | float) -> float:
        return parse_duration(value)


def _http_urls(urls: list[str]) -> list[str]:
    for url in urls:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"not an http(s) URL: {url!r}")
    return urls


class Selectors(_Strict):
    """CSS selectors (or XPath, prefixed ``xpath:``) that find posts on a page.

    ``post`` selects each post's container; the others are evaluated inside it, except
    ``follow``, ``next_page``, ``thread_id`` and ``thread_title`` which apply to the
    whole page.
    """

    post: str
    post_id: str
    text: str
    author: str | None = None
    published: str | None = None
    title: str | None = None
    permalink: str | None = None
    images: str | None = None
    language: str | None = None
    thread_id: str | None = None
    thread_title: str | None = None
    follow: str | None = None
    next_page: str | None = None


class _StartUrlsSource(_SourceBase):
    start_urls: list[str] = Field(min_length=1)

    @field_validator("start_urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return _http_urls(value)


class GenericSource(_StartUrlsSource):
    kind: Literal["generic"]
    selectors: Selectors


class XenForoSource(_StartUrlsSource):
    """``start_urls`` are forum (node) pages; threads are found there."""

    kind: Literal["xenforo"]
    max_threads: int = Field(default=50, ge=1)


class FeedSource(_StartUrlsSource):
    """``start_urls`` are RSS 2.0 or Atom feeds."""

    kind: Literal["rss"]


class MastodonSource(_SourceBase):
    kind: Literal["mastodon"]
    instance: str = Field(description="Base URL of the instance, e.g. https://mastodon.social")
    timeline: Literal["hashtag", "public", "local"] = "hashtag"
    hashtag: str | None = Field(default=None, pattern=r"^[^\s#/?]+$")
    page_size: int = Field(default=40, ge=1, le=40)

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        return _http_urls([value])[0].rstrip("/")

    @model_validator(mode="after")
    def _needs_hashtag(self) -> MastodonSource:
        if self.timeline == "hashtag" and not self.hashtag:
            raise ValueError("'hashtag' is required when timeline is 'hashtag'")
        return self


class TelegramSource(_SourceBase):
    kind: Literal["telegram"]
    channel: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{4,31}$")
    base_url: str = Field(default="https://t.me", description="Overridden only in tests.")

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _http_urls([value])[0].rstrip("/")


Source = Annotated[
    GenericSource | XenForoSource | FeedSource | MastodonSource | TelegramSource,
    Field(discriminator="kind"),
]
_SOURCE = TypeAdapter(Source)


def _describe(path: Path, index: int, entry: object, exc: ValidationError) -> str:
    ident = entry.get("id") if isinstance(entry, dict) else None
    where = f"{path}: entry {index + 1}" + (f" (id {ident!r})" if ident else "")
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if str(p) not in _KIND_TAGS]
        field = ".".join(loc) or "entry"
        problems.append(f"field {field!r}: {err['msg']}")
    return f"{where}: " + "; ".join(problems)


_KIND_TAGS = {"generic", "xenforo", "rss", "mastodon", "telegram"}


def load_sources(path: Path) -> list[Source]:
    """Every entry of one sources file, validated; raises :class:`SourceError`."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the sources file ({exc})") from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"{path}: not valid YAML ({exc})") from exc
    entries = data.get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SourceError(f"{path}: expected a top-level 'sources:' list")
    sources: list[Source] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        try:
            source = _SOURCE.validate_python(entry)
        except ValidationError as exc:
            raise SourceError(_describe(Path(path), index, entry, exc)) from None
        if source.id in seen:
            raise SourceError(f"{path}: entry {index + 1} (id {source.id!r}): field 'id': "
                              "duplicate id")
        seen.add(source.id)
        sources.append(source)
    return sources


def load_all(paths: list[Path]) -> dict[str, Source]:
    """Sources of several files by id; an id defined twice across files is refused."""
    merged: dict[str, Source] = {}
    for path in paths:
        for source in load_sources(path):
            if source.id in merged:
                raise SourceError(f"{path}: source id {source.id!r} is already defined "
                                  "in an earlier sources file")
            merged[source.id] = source
    return merged


def default_paths(var_dir: Path | None = None) -> list[Path]:
    """The sources files used when none is given, those that exist: the shipped ones in
    ``crawlers/`` and, with ``var_dir``, the admin-managed ``<var_dir>/sources.yaml``
    that the review UI edits."""
    candidates = [*DEFAULT_SOURCES_FILES, *([var_dir / "sources.yaml"] if var_dir else [])]
    return [p for p in candidates if p.exists()]
