"""Hash banks (lists of known material, hashes only) and the matching index.

Public, stable API::

    from classifiers.banks import BankStore, NewEntry, add_entries
    from classifiers.banks.matcher import Matcher   # numpy and the index: import it where used

    matcher = Matcher()                       # banks under get_settings().resolved_banks_dir
    matcher.match(image_hashes)               # -> list[harmwatch.contract.HashMatch]
    matcher.match_many([h1, h2, ...])         # -> list[MatchResult] (matches, suppressed,
                                              #    allowed_by), one search per batch

    # What the review UI calls when an analyst confirms an item:
    add_entries("confirmed", [NewEntry(sha256=..., pdq=..., category="A1")], added_by="alice")

``match``/``match_many`` accept :class:`classifiers.media.hashing.ImageHashes` (every sampled frame
and all eight PDQ variants are matched) or a contract ``MediaHashes``. Each call first
checks the store's change counter, so additions, disables and threshold changes made by
another process apply from the next call on, without a rebuild.

Matching rules: MD5/SHA-1/SHA-256 exactly; PDQ within the bank's distance (default 31)
when the image's PDQ quality reaches the bank's minimum (default 50); pHash within the
bank's distance (default 8); a pHash within 20 of an entry that carries a crop-resistant
hash, when at least two regions of the two crop-resistant hashes agree (pass
``crop_resistant=`` callables to ``match``/``match_many``: computed only then). Every
entry within the threshold is returned (the index is exact). Disabled entries and banks,
and entries disabled until a time not yet reached, never match. Allow banks
(``kind="allow"``) suppress matches: see :class:`Matcher`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from classifiers.banks.signals import ALGORITHMS, SIGNALS
from classifiers.banks.store import (
    CONFIRMED_BANK,
    Bank,
    BankError,
    BankStore,
    Entry,
    ImportResult,
    NewEntry,
)


def add_entries(
    bank: str,
    entries: Iterable[NewEntry | Mapping[str, object]],
    added_by: str,
    *,
    store: BankStore | None = None,
) -> ImportResult:
    """Add entries to a bank (the ``confirmed`` bank is created on first use).

    Entries may be :class:`NewEntry` or plain mappings with the same field names, so the
    UI can pass a form's values through. Running analyzers see them on their next batch.
    """
    store = store or BankStore.default()
    if bank == CONFIRMED_BANK:
        store.ensure_bank(CONFIRMED_BANK, "match",
                          description="Items confirmed by harmwatch analysts")
    items = (e if isinstance(e, NewEntry) else NewEntry(**e) for e in entries)  # type: ignore[arg-type]
    return store.add_entries(bank, items, added_by)


__all__ = [
    "ALGORITHMS",
    "CONFIRMED_BANK",
    "SIGNALS",
    "Bank",
    "BankError",
    "BankStore",
    "Entry",
    "ImportResult",
    "NewEntry",
    "add_entries",
]
