"""The one place the review UI writes to hash banks: confirmed items feed the ``confirmed`` bank.

When an analyst confirms an item, the hashes of each of its images (exact and perceptual)
go into the ``confirmed`` bank as one entry per image, so the same picture re-posted
elsewhere is matched by the analyzer without another human having to look at it. The
bank belongs to ``classifiers/banks``; this module only translates an item into entries
and calls that package's public :func:`classifiers.banks.add_entries`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harmwatch.blobstore import BlobError, get_blob_store
from harmwatch.settings import Settings

SOURCE_LIST = "harmwatch-confirmed"
HASH_FIELDS = ("md5", "sha1", "sha256", "pdq", "phash")
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
PDQ_MIN_QUALITY = 50  # below this a PDQ hash matches noise; keep only the exact hashes


def confirmed_entries(item: dict[str, Any],
                      crop_resistant: Callable[[dict[str, Any]], str | None] = lambda _m: None
                      ) -> list[dict[str, Any]]:
    """One bank entry (as a mapping of NewEntry fields) per hashed image of a confirmed item.

    ``crop_resistant(media)`` gives the image's crop-resistant hash when its bytes are at
    hand: stored with the entry, it lets the analyzer find cropped re-posts of the image.
    """
    decision = item.get("decision") or {}
    entries = []
    for media in item.get("media") or []:
        hashes = {a: media.get(a) for a in HASH_FIELDS if media.get(a)}
        if hashes.get("pdq") and (media.get("pdq_quality") or 0) < PDQ_MIN_QUALITY:
            hashes.pop("pdq")
        if not hashes:
            continue
        region_hashes = crop_resistant(media) if hashes.get("phash") else None
        entries.append({
            **hashes, "crop_resistant": region_hashes, "category": decision.get("category"),
            "severity": SEVERITY_RANK.get(decision.get("severity") or ""),
            "source_list": SOURCE_LIST,
            "external_id": f"{item['item_id']}:{media.get('sha256') or media.get('url')}",
            "note": f"confirmed by {decision.get('user')} at {decision.get('at')}",
        })
    return entries


def _crop_resistant(settings: Settings, media: dict[str, Any]) -> str | None:
    """The image's crop-resistant hash from its blob; None when the bytes are gone or bad."""
    from classifiers.media.hashing import ImageRefused, crop_resistant_hash

    if not media.get("blob_ref"):
        return None
    try:
        return crop_resistant_hash(get_blob_store(settings).get(media["blob_ref"]))
    except (BlobError, ImageRefused):
        return None


def add_confirmed_hashes(settings: Settings, item: dict[str, Any]) -> int:
    """Add a confirmed item's image hashes to the confirmed bank; returns entries added."""
    entries = confirmed_entries(item, lambda media: _crop_resistant(settings, media))
    if not entries:
        return 0
    from classifiers.banks import CONFIRMED_BANK, BankStore, add_entries

    store = BankStore(settings.resolved_banks_dir)
    try:
        result = add_entries(CONFIRMED_BANK, entries, added_by=item["decision"]["user"],
                             store=store)
    finally:
        store.close()
    return result.added
