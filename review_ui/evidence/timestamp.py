"""RFC 3161 time-stamps for a pack's manifest: the request, the token, and their check.

The request (``manifest.tsq``) is always stored, so a pack exported where no time-stamp
authority is reachable can be stamped later (``openssl ts -query`` reads the same DER).
With a TSA URL configured the token (``manifest.tsr``, a whole TimeStampResp) is stored
too. Verification needs no network and no settings: it checks the token's status, that
it stamps this manifest's SHA-256 with the request's nonce, and the CMS signature with
the certificate inside the token; pinning that certificate (``--tsa-cert``) is what ties
the time to a trusted authority.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.request
from dataclasses import dataclass

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

CONTENT_TYPE_QUERY = "application/timestamp-query"
CONTENT_TYPE_REPLY = "application/timestamp-reply"
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
           "sha1": hashes.SHA1}


class TimestampError(ValueError):
    """A token that is missing, malformed, or does not stamp this manifest; says which part."""


@dataclass
class Stamp:
    gen_time: str
    tsa: str
    serial: int
    certificate_pinned: bool


def build_request(manifest: bytes, nonce: int | None = None) -> bytes:
    """DER TimeStampReq for SHA-256(manifest), asking for the TSA certificate."""
    return tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                            "hashed_message": hashlib.sha256(manifest).digest()},
        "nonce": nonce if nonce is not None else secrets.randbits(63),
        "cert_req": True,
    }).dump()


def request_token(url: str, request: bytes, timeout: float = 20.0) -> bytes:
    """POST the request to a TSA and return its DER TimeStampResp (checked by the caller)."""
    post = urllib.request.Request(url, data=request, method="POST",
                                  headers={"Content-Type": CONTENT_TYPE_QUERY,
                                           "Accept": CONTENT_TYPE_REPLY})
    with urllib.request.urlopen(post, timeout=timeout) as reply:  # noqa: S310 - operator's URL
        if reply.status != 200:
            raise TimestampError(f"the time-stamp authority answered HTTP {reply.status}")
        return reply.read()


def verify(response: bytes, request: bytes, manifest: bytes,
           pinned: x509.Certificate | None = None) -> Stamp:
    """Check a TimeStampResp against its request and the manifest; raise naming the fault."""
    try:
        resp = tsp.TimeStampResp.load(response)
        status = resp["status"]["status"].native
        req = tsp.TimeStampReq.load(request)
        req_nonce = req["nonce"].native
    except ValueError as exc:
        raise TimestampError(f"not DER ({exc})") from exc
    if status not in ("granted", "granted_with_mods"):
        raise TimestampError(f"status is {status!r}, not granted")
    signed = resp["time_stamp_token"]["content"]
    info = signed["encap_content_info"]["content"].parsed
    imprint = info["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm not in _HASHES:
        raise TimestampError(f"message imprint uses unsupported {algorithm}")
    if imprint["hashed_message"].native != hashlib.new(algorithm, manifest).digest():
        raise TimestampError("message imprint is not the hash of manifest.json")
    if req_nonce is not None and info["nonce"].native != req_nonce:
        raise TimestampError("nonce differs from the request's")
    certificate = _check_signature(signed)
    pinned_ok = _check_pin(certificate, pinned) if pinned is not None else False
    return Stamp(gen_time=info["gen_time"].native.isoformat(),
                 tsa=certificate.subject.rfc4514_string(), serial=info["serial_number"].native,
                 certificate_pinned=pinned_ok)


def _signer_certificate(signed: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate:
    sid = signer["sid"]
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            match = (cert.issuer == sid.chosen["issuer"]
                     and cert.serial_number == sid.chosen["serial_number"].native)
        else:
            match = cert.key_identifier == sid.chosen.native
        if match:
            return x509.load_der_x509_certificate(cert.dump())
    raise TimestampError("the token does not carry its signer's certificate")


def _check_signature(signed: cms.SignedData) -> x509.Certificate:
    signer = signed["signer_infos"][0]
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise TimestampError(f"signer digest {digest_name} is unsupported")
    content = signed["encap_content_info"]["content"].contents
    attrs = signer["signed_attrs"]
    digests = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"]
    if not digests or digests[0] != hashlib.new(digest_name, content).digest():
        raise TimestampError("signed message-digest does not match the TSTInfo")
    certificate = _signer_certificate(signed, signer)
    signed_bytes = b"\x31" + attrs.dump()[1:]  # re-tag [0] IMPLICIT as SET OF (RFC 5652 5.4)
    _verify_with(certificate.public_key(), signer["signature"].native, signed_bytes,
                 _HASHES[digest_name]())
    return certificate


def _verify_with(public: object, signature: bytes, data: bytes,
                 digest: hashes.HashAlgorithm) -> None:
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), digest)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        else:
            raise TimestampError(f"unsupported TSA key type {type(public).__name__}")
    except InvalidSignature as exc:
        raise TimestampError("the TSA's signature over the token is invalid") from exc


def _check_pin(certificate: x509.Certificate, pinned: x509.Certificate) -> bool:
    """The signer is the pinned certificate, or was issued by it."""
    if certificate == pinned:
        return True
    try:
        certificate.verify_directly_issued_by(pinned)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise TimestampError("the TSA certificate is neither the pinned one nor issued by it") \
            from exc
    return True
