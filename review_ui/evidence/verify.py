"""Check an evidence pack with nothing but the pack and the service's public key.

Imports neither Elasticsearch nor the settings, so ``harmwatch evidence verify`` runs on
a police workstation. Every problem is reported with the file or manifest field it
concerns, and every check runs even after one fails, so a report lists all damage:

* the manifest is present, parses, and is of a known format;
* the detached Ed25519 signature is valid for the manifest's exact bytes — under the
  public key given on the command line, else (flagged as untrusted) the one in the pack;
* every listed file is present once, with the listed size and SHA-256;
* no name is unsafe, and none appears twice;
* any other entry the manifest does not list (besides the signature and the time-stamp
  files) is reported apart, as an *addition*: a re-zipped pack's ``__MACOSX/`` or
  ``.DS_Store`` is handling noise, not damaged evidence. Empty folder entries, which
  Info-ZIP's ``zip -r`` stores for every directory, carry nothing and are ignored;
* the RFC 3161 request stamps the manifest's hash, and the token, when present, is valid.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from asn1crypto import tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from review_ui.evidence import timestamp
from review_ui.evidence.hashing import sha256_stream

FORMAT = "harmwatch-evidence-pack"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
TSQ = "manifest.tsq"
TSR = "manifest.tsr"
PUBLIC_KEY_FILE = "signing-key.pub.pem"
UNLISTED = frozenset({MANIFEST, SIGNATURE, TSQ, TSR})


@dataclass
class Report:
    """The outcome: ``problems`` name what failed; ``additions`` the entries in the ZIP that
    are not part of the signed evidence; ``notes`` say what was established."""

    problems: list[str] = field(default_factory=list)
    additions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_checked: int = 0

    @property
    def intact(self) -> bool:
        """Every listed file present and unchanged, the signature valid (additions aside)."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """The pack exactly as exported: intact, and nothing added."""
        return self.intact and not self.additions

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def verify_pack(path: Path, public_key: Ed25519PublicKey | None = None,
                tsa_certificate: x509.Certificate | None = None) -> Report:
    report = Report()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.fail(str(path), f"not a readable ZIP ({exc})")
        return report
    with archive:
        names = [info.filename for info in archive.infolist() if not _empty_folder(info)]
        _check_names(names, report)
        manifest_bytes = _read(archive, MANIFEST, report)
        manifest = _parse_manifest(manifest_bytes, report) if manifest_bytes is not None else None
        if manifest_bytes is not None:
            _check_signature(archive, manifest_bytes, manifest, public_key, report)
            _check_timestamp(archive, manifest_bytes, tsa_certificate, report)
        if manifest is not None:
            _check_files(archive, manifest, set(names), report)
    return report


def _empty_folder(info: zipfile.ZipInfo) -> bool:
    """A folder entry without content: ``zip -r`` adds one per directory; it proves nothing."""
    return info.is_dir() and info.file_size == 0


def _read(archive: zipfile.ZipFile, name: str, report: Report | None) -> bytes | None:
    try:
        return archive.read(name)
    except KeyError:
        if report is not None:
            report.fail(name, "missing from the pack")
    except (zipfile.BadZipFile, OSError) as exc:
        if report is not None:
            report.fail(name, f"unreadable ({exc})")
    return None


def _check_names(names: list[str], report: Report) -> None:
    for name, count in Counter(names).items():
        if count > 1:
            report.fail(name, f"appears {count} times in the ZIP (a second copy was added)")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or "\\" in name:
            report.fail(name, "unsafe file name in the ZIP")


def _parse_manifest(data: bytes, report: Report) -> dict[str, Any] | None:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        report.fail(MANIFEST, f"not valid JSON ({exc})")
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        report.fail(f"{MANIFEST} field 'format'", f"expected {FORMAT!r}")
        return None
    if manifest.get("format_version") != FORMAT_VERSION:
        report.fail(f"{MANIFEST} field 'format_version'",
                    f"{manifest.get('format_version')!r} is not {FORMAT_VERSION}")
    if not isinstance(manifest.get("files"), list):
        report.fail(f"{MANIFEST} field 'files'", "missing or not a list")
        return None
    return manifest


def _check_signature(archive: zipfile.ZipFile, manifest_bytes: bytes,
                     manifest: dict[str, Any] | None, public_key: Ed25519PublicKey | None,
                     report: Report) -> None:
    signature = _read(archive, SIGNATURE, report)
    if signature is None:
        return
    if public_key is None:
        embedded = _read(archive, PUBLIC_KEY_FILE, report)
        if embedded is None:
            return
        try:
            public_key = load_public_key(embedded)
        except ValueError as exc:
            report.fail(PUBLIC_KEY_FILE, f"not an Ed25519 public key ({exc})")
            return
        report.notes.append("signature checked against the key INSIDE the pack: this proves "
                            "integrity, not origin; compare its fingerprint "
                            f"{_fingerprint(public_key)} with the service's, or pass "
                            "--public-key")
    declared = (manifest or {}).get("signature", {}).get("public_key_sha256")
    actual = _fingerprint(public_key)
    if declared and declared != actual:
        report.fail(f"{MANIFEST} field 'signature.public_key_sha256'",
                    f"pack names key {declared}, verifying with key {actual}")
    try:
        public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        report.fail(SIGNATURE, "the signature does not match manifest.json under key "
                    f"{actual} (manifest edited, or wrong key)")
        return
    report.notes.append(f"signature valid (Ed25519, key {actual})")


def _check_timestamp(archive: zipfile.ZipFile, manifest_bytes: bytes,
                     tsa_certificate: x509.Certificate | None, report: Report) -> None:
    request = _read(archive, TSQ, None)
    if request is None:
        report.notes.append("no time-stamp request in the pack")
        return
    try:
        imprint = tsp.TimeStampReq.load(request)["message_imprint"]["hashed_message"].native
    except ValueError as exc:
        report.fail(TSQ, f"not a DER TimeStampReq ({exc})")
        return
    if imprint != hashlib.sha256(manifest_bytes).digest():
        report.fail(TSQ, "requests a time-stamp for a different manifest hash")
    token = _read(archive, TSR, None)
    if token is None:
        report.notes.append("time-stamp: request only, no token in the pack")
        return
    try:
        stamp = timestamp.verify(token, request, manifest_bytes, tsa_certificate)
    except timestamp.TimestampError as exc:
        report.fail(TSR, str(exc))
        return
    trust = "certificate pinned" if stamp.certificate_pinned else \
        "TSA certificate not checked against a trusted one (pass --tsa-cert)"
    report.notes.append(f"time-stamp valid: {stamp.gen_time} by {stamp.tsa} ({trust})")


def _check_files(archive: zipfile.ZipFile, manifest: dict[str, Any], names: set[str],
                 report: Report) -> None:
    listed: set[str] = set()
    for index, entry in enumerate(manifest["files"]):
        where = f"{MANIFEST} field 'files[{index}]'"
        if not isinstance(entry, dict) or not all(k in entry for k in ("path", "size", "sha256")):
            report.fail(where, "needs path, size and sha256")
            continue
        path = entry["path"]
        if path in listed:
            report.fail(where, f"{path} is listed twice")
        listed.add(path)
        if path not in names:
            report.fail(path, "listed in the manifest but missing from the pack (removed)")
            continue
        _check_file(archive, entry, report)
    report.additions = sorted(names - listed - UNLISTED)


def _check_file(archive: zipfile.ZipFile, entry: dict[str, Any], report: Report) -> None:
    path = entry["path"]
    try:
        with archive.open(path) as handle:
            digest, size = sha256_stream(handle)
    except (zipfile.BadZipFile, OSError) as exc:  # e.g. a CRC error from altered bytes
        report.fail(path, f"unreadable ({exc})")
        return
    report.files_checked += 1
    if size != entry["size"]:
        report.fail(path, f"size is {size}, manifest says {entry['size']}")
    if digest != entry["sha256"]:
        report.fail(path, f"SHA-256 is {digest}, manifest says {entry['sha256']}")
