"""RFC 3161: the request in every pack, and the token from a real (local) time-stamp authority.

The authority is a tiny one implemented here: an HTTP server on 127.0.0.1 that answers
TimeStampReq with a TimeStampResp signed (CMS, ECDSA P-256) by a test certificate — the
same protocol a public TSA speaks, so the export's network step is exercised for real.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import zipfile
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harmwatch.blobstore import get_blob_store
from harmwatch.search import es_client
from review_ui.evidence import cases, timestamp
from review_ui.evidence.keys import load_signing_key
from review_ui.evidence.pack import export_case
from review_ui.evidence.verify import verify_pack
from tests.evidence_support import account, make_item, rewrite_pack

pytestmark = pytest.mark.integration


def _certificate(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                           critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


class TinyTSA:
    """Answers RFC 3161 requests over HTTP, signing tokens with a test key."""

    def __init__(self) -> None:
        self.key, self.cert = _certificate("harmwatch test TSA")
        self.serial = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/tsa"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                reply = tsa.respond(body)
                self.send_response(200)
                self.send_header("Content-Type", timestamp.CONTENT_TYPE_REPLY)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def respond(self, request_der: bytes) -> bytes:
        request = tsp.TimeStampReq.load(request_der)
        self.serial += 1
        info = tsp.TSTInfo({
            "version": "v1", "policy": "1.3.6.1.4.1.99999.1",
            "message_imprint": request["message_imprint"], "serial_number": self.serial,
            "gen_time": datetime.now(UTC).replace(microsecond=0),
            "nonce": request["nonce"].native,
        })
        cert = asn1_x509.Certificate.load(self.cert.public_bytes(serialization.Encoding.DER))
        attrs = cms.CMSAttributes([
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "message_digest", "values": [hashlib.sha256(info.dump()).digest()]},
            {"type": "signing_certificate_v2", "values": [{"certs": [
                {"cert_hash": hashlib.sha256(cert.dump()).digest()}]}]},
        ])
        signature = self.key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
        signed = cms.SignedData({
            "version": "v3", "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "tst_info", "content": info},
            "certificates": [cert],
            "signer_infos": [{
                "version": "v1",
                "sid": {"issuer_and_serial_number": {"issuer": cert.issuer,
                                                     "serial_number": cert.serial_number}},
                "digest_algorithm": {"algorithm": "sha256"}, "signed_attrs": attrs,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"}, "signature": signature,
            }],
        })
        return tsp.TimeStampResp({
            "status": {"status": "granted"},
            "time_stamp_token": {"content_type": "signed_data", "content": signed},
        }).dump()


@pytest.fixture(scope="module")
def tsa():
    authority = TinyTSA()
    yield authority
    authority.server.shutdown()


@pytest.fixture(scope="module")
def stamped(services, tsa, tmp_path_factory):
    settings = services.model_copy(update={
        "var_dir": tmp_path_factory.mktemp("tsa-var"), "evidence_tsa_url": tsa.url})
    client = es_client(settings)
    cases.ensure_case_indices(client, settings)
    officer = account(client, settings, "liaison4", "liaison")
    item = make_item(client, settings, get_blob_store(settings))
    case = cases.create_case(client, settings, officer, cases.CaseFields("stamped"))
    cases.add_items(client, settings, officer, case["case_id"], [item["item_id"]])
    path = tmp_path_factory.mktemp("tsa-pack") / "pack.zip"
    with path.open("wb") as target:
        result = export_case(client, settings, case["case_id"], target, officer)
    return {"path": path, "result": result, "settings": settings, "client": client,
            "officer": officer, "case": case,
            "key": load_signing_key(settings).public_key()}


def test_token_is_fetched_stored_and_verified(stamped, tsa):
    assert stamped["result"].timestamp.startswith("token from")
    with zipfile.ZipFile(stamped["path"]) as archive:
        assert "manifest.tsr" in archive.namelist()
    report = verify_pack(stamped["path"], stamped["key"], tsa.cert)
    assert report.ok, report.problems
    assert any("time-stamp valid" in n and "certificate pinned" in n for n in report.notes)


def test_unpinned_token_is_valid_but_says_so(stamped):
    report = verify_pack(stamped["path"], stamped["key"])
    assert report.ok
    assert any("not checked against a trusted one" in n for n in report.notes)


def test_a_token_for_another_manifest_is_detected(stamped, tsa, tmp_path):
    other = tsa.respond(timestamp.build_request(b"a different manifest"))
    tampered = rewrite_pack(stamped["path"], tmp_path / "t.zip", replace={"manifest.tsr": other})
    report = verify_pack(tampered, stamped["key"], tsa.cert)
    assert any(p.startswith("manifest.tsr") for p in report.problems), report.problems


def test_a_token_from_another_authority_fails_the_pin(stamped):
    _, stranger = _certificate("someone else")
    report = verify_pack(stamped["path"], stamped["key"], stranger)
    assert any(p.startswith("manifest.tsr") and "pinned" in p for p in report.problems)


def test_a_forged_token_signature_is_detected(stamped, tsa, tmp_path):
    with zipfile.ZipFile(stamped["path"]) as archive:
        token = bytearray(archive.read("manifest.tsr"))
    token[-5] ^= 0x01  # inside the ECDSA signature, the last field of the token
    tampered = rewrite_pack(stamped["path"], tmp_path / "f.zip",
                            replace={"manifest.tsr": bytes(token)})
    assert not verify_pack(tampered, stamped["key"], tsa.cert).ok


def test_an_unreachable_authority_leaves_the_request_and_a_warning(stamped, tmp_path):
    settings = stamped["settings"].model_copy(update={"evidence_tsa_url": "http://127.0.0.1:9/"})
    path = tmp_path / "p.zip"
    with path.open("wb") as target:
        result = export_case(stamped["client"], settings, stamped["case"]["case_id"], target,
                             stamped["officer"], metadata_only=True)
    assert result.warnings and result.timestamp.startswith("request only")
    with zipfile.ZipFile(path) as archive:
        assert "manifest.tsq" in archive.namelist() and "manifest.tsr" not in archive.namelist()
    assert verify_pack(path, stamped["key"]).ok


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_reads_the_request_and_verifies_the_token(stamped, tsa, tmp_path):
    with zipfile.ZipFile(stamped["path"]) as archive:
        for name in ("manifest.json", "manifest.tsq", "manifest.tsr"):
            (tmp_path / name).write_bytes(archive.read(name))
    (tmp_path / "tsa.pem").write_bytes(tsa.cert.public_bytes(serialization.Encoding.PEM))
    query = subprocess.run(["openssl", "ts", "-query", "-in", str(tmp_path / "manifest.tsq"),
                            "-text"], capture_output=True, text=True, check=True)
    assert "SHA256" in query.stdout.upper()
    subprocess.run(["openssl", "ts", "-verify", "-in", str(tmp_path / "manifest.tsr"),
                    "-queryfile", str(tmp_path / "manifest.tsq"),
                    "-CAfile", str(tmp_path / "tsa.pem")], capture_output=True, text=True,
                   check=True)
