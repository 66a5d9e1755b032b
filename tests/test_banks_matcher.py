"""Matching through the store: thresholds, quality, allow lists, disables, freshness."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from classifiers.banks import BankError, BankStore, NewEntry, add_entries
from classifiers.banks.matcher import Matcher
from classifiers.media.hashing import hash_image
from harmwatch.contract import MediaHashes

RNG = np.random.default_rng(5)


def _pdq() -> str:
    return RNG.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()


def _phash() -> str:
    return RNG.integers(0, 256, 8, dtype=np.uint8).tobytes().hex()


def _flip(hex_hash: str, bits: int) -> str:
    value = int(hex_hash, 16)
    for b in range(bits):
        value ^= 1 << (b * 7 % (len(hex_hash) * 4))
    return f"{value:0{len(hex_hash)}x}"


def _media(**hashes: object) -> MediaHashes:
    return MediaHashes(pdq_quality=100, **hashes)


@pytest.fixture
def store(tmp_path: Path) -> BankStore:
    return BankStore(tmp_path / "banks")


def test_pdq_threshold_per_bank_and_quality(store: BankStore) -> None:
    pdq = _pdq()
    store.create_bank("strict", thresholds={"pdq": 10})
    store.create_bank("loose")
    store.add_entries("strict", [NewEntry(pdq=pdq, category="A1")], "t")
    store.add_entries("loose", [NewEntry(pdq=pdq, category="B2")], "t")
    matcher = Matcher(store)
    assert {m.bank for m in matcher.match(_media(pdq=_flip(pdq, 10)))} == {"strict", "loose"}
    near = matcher.match(_media(pdq=_flip(pdq, 31)))
    assert [(m.bank, m.distance, m.category, m.severity) for m in near] == [("loose", 31, "B2", 2)]
    assert matcher.match(_media(pdq=_flip(pdq, 32))) == []
    low_quality = MediaHashes(pdq=pdq, pdq_quality=49)
    assert matcher.match(low_quality) == []
    store.set_thresholds("loose", {}, pdq_min_quality=40)
    assert [m.bank for m in matcher.match(low_quality)] == ["loose"]


def test_phash_and_crypto_matches(store: BankStore) -> None:
    phash, sha256 = _phash(), "ab" * 32
    store.create_bank("known", list_version="2026-11")
    store.add_entries("known", [NewEntry(phash=phash, source_list="L"),
                                NewEntry(sha256=sha256, category="A2")], "t")
    matcher = Matcher(store)
    hit = matcher.match(_media(phash=_flip(phash, 8), sha256=sha256))
    assert {(m.algorithm, m.distance, m.list_version) for m in hit} == {
        ("phash", 8, "2026-11"), ("sha256", 0, "2026-11")}
    assert hit[0].algorithm == "sha256"  # higher severity first
    assert all(m.media_sha256 == sha256 for m in hit)
    assert matcher.match(_media(phash=_flip(phash, 9))) == []


def test_every_entry_within_threshold_is_returned(store: BankStore) -> None:
    pdq = _pdq()
    store.create_bank("known")
    store.add_entries("known", [NewEntry(pdq=_flip(pdq, d)) for d in range(0, 40, 3)], "t")
    matches = Matcher(store).match(_media(pdq=pdq))
    assert sorted(m.distance for m in matches) == list(range(0, 32, 3))


def test_allow_lists_suppress(store: BankStore) -> None:
    pdq, md5 = _pdq(), "cd" * 16
    store.create_bank("known")
    store.create_bank("benign", "allow")
    store.add_entries("known", [NewEntry(pdq=pdq, md5=md5)], "t")
    matcher = Matcher(store)
    assert len(matcher.match(_media(pdq=pdq, md5=md5))) == 2

    store.add_entries("benign", [NewEntry(pdq=_flip(pdq, 5))], "t")
    result = matcher.match_many([_media(pdq=pdq, md5=md5)])[0]
    assert [m.algorithm for m in result.matches] == ["md5"]  # an exact match still counts
    assert [m.algorithm for m in result.suppressed] == ["pdq"]
    assert [m.bank for m in result.allowed_by] == ["benign"]

    store.add_entries("benign", [NewEntry(md5=md5)], "t")
    result = matcher.match_many([_media(pdq=pdq, md5=md5)])[0]
    assert result.matches == [] and len(result.suppressed) == 2


def test_disable_entry_bank_and_until(store: BankStore) -> None:
    pdq = _pdq()
    store.create_bank("known")
    store.add_entries("known", [NewEntry(pdq=pdq)], "t")
    (entry,) = store.entries("known")
    matcher = Matcher(store)
    query = _media(pdq=pdq)
    assert matcher.match(query)

    future = datetime.now(UTC) + timedelta(days=1)
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert store.set_entries_disabled("known", [entry.id], True, until=future) == 1
    assert matcher.match(query) == []
    store.set_entries_disabled("known", [entry.id], True, until=past)
    assert matcher.match(query)
    store.set_entries_disabled("known", [entry.id], True)
    assert matcher.match(query) == []
    store.set_entries_disabled("known", [entry.id], False)
    assert matcher.match(query)

    store.set_bank_disabled("known", True, until=future)
    assert matcher.match(query) == []
    store.set_bank_disabled("known", False)
    assert matcher.match(query)
    store.remove_entries([entry.id])
    assert matcher.match(query) == []


def test_other_process_changes_are_seen_without_rebuild(tmp_path: Path) -> None:
    """The UI and the analyzer are separate processes: separate store connections here."""
    ui, analyzer = BankStore(tmp_path / "b"), BankStore(tmp_path / "b")
    ui.create_bank("known")
    old = [NewEntry(pdq=_pdq()) for _ in range(50)]
    ui.add_entries("known", old, "t")
    Matcher(ui).reindex()
    matcher = Matcher(analyzer, delta_limit=10)
    assert len(matcher.match(_media(pdq=old[3].pdq))) == 1
    assert len(matcher._indexes["pdq"].delta) == 0  # loaded from the saved index

    new = _pdq()
    add_entries("confirmed", [{"pdq": new, "category": "A1", "note": "analyst"}],
                added_by="alice", store=ui)
    (match,) = matcher.match(_media(pdq=new))
    assert (match.bank, match.category) == ("confirmed", "A1")
    assert len(matcher._indexes["pdq"].delta) == 1

    ui.add_entries("known", [NewEntry(pdq=_pdq()) for _ in range(20)], "t")
    assert len(matcher.match(_media(pdq=new))) == 1  # delta over the limit: compacted
    assert len(matcher._indexes["pdq"].delta) == 0
    assert len(Matcher(ui).match(_media(pdq=new))) == 1  # and saved for everyone


def test_image_hashes_match_rotated_and_animated_copies(store: BankStore) -> None:
    def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
        out = io.BytesIO()
        img.save(out, fmt, **kw)
        return out.getvalue()

    coffee = Image.fromarray(skdata.coffee())
    known = hash_image(encode(coffee, "PNG")).to_contract()
    store.create_bank("known")
    store.add_entries("known", [NewEntry(pdq=known.pdq, category="A1")], "t")
    matcher = Matcher(store)
    rotated = hash_image(encode(coffee.transpose(Image.Transpose.ROTATE_270), "JPEG"))
    assert [m.algorithm for m in matcher.match(rotated)] == ["pdq"]
    assert matcher.match(rotated.to_contract()) == []  # no variants in the contract form

    frames = [Image.new("RGB", coffee.size, (i * 40, 90, 90)) for i in range(6)]
    frames[4] = coffee
    gif = hash_image(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    assert [m.algorithm for m in matcher.match(gif)] == ["pdq"]


def test_bank_errors(store: BankStore) -> None:
    store.create_bank("known")
    with pytest.raises(BankError):
        store.create_bank("known")
    with pytest.raises(BankError):
        store.create_bank("x", thresholds={"md5": 3})
    with pytest.raises(BankError):
        store.bank("missing")
    with pytest.raises(BankError):
        store.add_entries("known", [NewEntry(note="no hash")], "t")


def _encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, fmt, quality=90)
    return out.getvalue()


def test_a_cropped_copy_of_a_confirmed_image_is_found_by_its_regions(store: BankStore,
                                                                       tmp_path: Path) -> None:
    """An 8 % crop: pHash 14 bits away (missed at 8), seven regions still shared."""
    from classifiers.media.hashing import crop_resistant_hash

    original = Image.fromarray(skdata.chelsea())
    width, height = original.size
    cropped = _encoded(original.crop((int(width * .08), int(height * .08), width, height)),
                       "JPEG")
    kept = _encoded(original)
    entry = hash_image(kept).first
    add_entries("confirmed", [NewEntry(pdq=entry.pdq, phash=entry.phash, category="A1",
                                       crop_resistant=crop_resistant_hash(kept))],
                "analyst", store=store)
    matcher = Matcher(store)
    query = hash_image(cropped)
    assert matcher.match(query) == []  # PDQ and pHash alone miss it
    (match,) = matcher.match(query, lambda: crop_resistant_hash(cropped))
    assert (match.algorithm, match.bank, match.category) == ("crop_resistant", "confirmed", "A1")
    assert 8 < match.distance <= 20

    def must_not_run() -> str:
        raise AssertionError("computed without a near pHash")

    other = hash_image(_encoded(Image.fromarray(skdata.astronaut())))
    assert matcher.match(other, must_not_run) == []
    store.create_bank("allowed", "allow")
    store.add_entries("allowed", [NewEntry(phash=query.first.phash)], "admin")
    result = Matcher(store).match_many([query], [lambda: crop_resistant_hash(cropped)])[0]
    assert result.matches == [] and [m.algorithm for m in result.suppressed] == ["crop_resistant"]


def test_crop_resistant_values_are_checked_and_old_stores_gain_the_column(tmp_path: Path) -> None:
    import sqlite3

    with pytest.raises(ValueError, match="crop_resistant"):
        NewEntry(phash=_phash(), crop_resistant="not,hex").normalised()
    assert NewEntry(phash=_phash(), crop_resistant=" AB" + "0" * 14 + ", 12" + "f" * 14
                    ).normalised().crop_resistant == "ab" + "0" * 14 + ",12" + "f" * 14
    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / "banks.sqlite3")
    db.executescript("CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, bank_id INTEGER"
                     " NOT NULL, md5 TEXT, sha1 TEXT, sha256 TEXT, pdq TEXT, phash TEXT, category"
                     " TEXT, severity INTEGER, source_list TEXT, external_id TEXT, added_at TEXT"
                     " NOT NULL, added_by TEXT NOT NULL, note TEXT, disabled INTEGER NOT NULL"
                     " DEFAULT 0, disabled_until TEXT, identity INTEGER NOT NULL);")
    db.close()
    store = BankStore(old)
    store.create_bank("b")
    store.add_entries("b", [NewEntry(phash=_phash(), crop_resistant="0" * 16)], "t")
    assert [e.crop_resistant for e in store.entries("b")] == ["0" * 16]
