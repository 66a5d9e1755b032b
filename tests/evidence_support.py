"""Support for the evidence tests: synthetic confirmed items, accounts, and pack surgery.

Every "media" file here is a generated PNG or random bytes: never real material.
"""

from __future__ import annotations

import hashlib
import io
import random
import uuid
import zipfile
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from PIL import Image

from harmwatch.blobstore import BlobStore
from harmwatch.contract import (
    AnalysedPost,
    CrawledPost,
    CrawlProvenance,
    HashMatch,
    MediaHashes,
    MediaItem,
    TextAnalysis,
    content_hash,
    utcnow,
)
from harmwatch.documents import item_document, items_alias
from harmwatch.settings import Settings
from review_ui import audit
from review_ui.accounts import create_user, get_user

PASSWORD = "correct horse battery staple"


def synthetic_png(seed: int) -> bytes:
    rnd = random.Random(seed)
    image = Image.new("RGB", (48, 32), (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _media(store: BlobStore, data: bytes, url: str) -> tuple[MediaItem, MediaHashes]:
    ref = store.put(data)
    digests = {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
               "sha1": hashlib.sha1(data).hexdigest()}
    item = MediaItem(url=url, blob_ref=ref, content_type="image/png", size=len(data), **digests)
    return item, MediaHashes(pdq="f" * 64, pdq_quality=90, **digests)


def make_item(client: Elasticsearch, settings: Settings, store: BlobStore, *,
              status: str = "confirmed", media: list[bytes] | None = None,
              reveal_first: bool = True) -> dict[str, Any]:
    """Index one analysed, decided item with its media and page snapshot in the blob store."""
    post_id = uuid.uuid4().hex[:12]
    url = f"https://forum.example.test/t/{post_id}"
    pairs = [_media(store, data, f"{url}/img{i}.png")
             for i, data in enumerate(media if media is not None else [synthetic_png(1)])]
    snapshot = f"<html><body><p>post {post_id} <script>alert(1)</script></p></body></html>"
    post = CrawledPost(
        source="demo-forum", source_kind="demo", post_id=post_id,
        content_hash=content_hash("synthetic", [p[0].url for p in pairs]), url=url,
        text="synthetic test text <b>not real</b>", media=[p[0] for p in pairs],
        snapshot_ref=store.put(snapshot.encode()),
        provenance=CrawlProvenance(crawler="demo", crawl_job_id="job-42", fetched_at=utcnow(),
                                   page_url=url, http_status=200,
                                   response_headers={"Server": "nginx", "Date": "x"},
                                   server_ip="192.0.2.10", user_agent="harmwatch-test"),
    )
    matches = [HashMatch(media_sha256=pairs[0][0].sha256, bank="confirmed", list_version="7",
                         algorithm="pdq", distance=4, category="A1", severity=3)] if pairs else []
    analysed = AnalysedPost(
        post=post, analyzed_at=utcnow(), analyzer_version="analyzer-test",
        text=TextAnalysis(language="vi", scores={"sexual_exploitation": 0.91},
                          model_version="text-model-3", rules_version="rules-5"),
        media=[p[1] for p in pairs], matches=matches, risk=0.9, reasons=["synthetic"])
    doc = item_document(analysed)
    now = utcnow().isoformat()
    doc.update(status=status, decision={"status": status, "category": "sexual_exploitation",
                                        "severity": "high", "user": "ana", "at": now,
                                        "note": "synthetic"},
               notes=[{"user": "ana", "at": now, "text": "synthetic note"}],
               reveals=[{"user": "ana", "at": now, "media_index": 0,
                         "sha256": pairs[0][0].sha256}] if reveal_first and pairs else [])
    client.index(index=items_alias(settings), id=doc["item_id"], document=doc, refresh=True)
    audit.record(client, settings, audit.Actor("ana", "analyst", "127.0.0.1"), "item_view",
                 doc["item_id"], {"status": status})
    return doc


def account(client: Elasticsearch, settings: Settings, username: str, role: str) -> audit.Actor:
    """An enabled account of ``role`` (created once per test session) as an audit actor."""
    if get_user(client, settings, username) is None:
        create_user(client, settings, username, PASSWORD, role)
    return audit.Actor(username, role, "127.0.0.1", "pytest")


def rewrite_pack(source: Path, target: Path, *, replace: dict[str, bytes] | None = None,
                 add: dict[str, bytes] | None = None, remove: set[str] | None = None) -> Path:
    """Copy a pack entry by entry, changing, adding or dropping files (a tamperer's edit)."""
    replace, add, remove = replace or {}, add or {}, remove or set()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in remove:
                continue
            new.writestr(info.filename, replace.get(info.filename, old.read(info.filename)))
        for name, data in add.items():
            new.writestr(name, data)
    return target
