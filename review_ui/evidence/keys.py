"""The service's evidence keys: the Ed25519 signing key and the AES-256 key for media at rest.

Both come from settings (``HARMWATCH_EVIDENCE_SIGNING_KEY`` names a PEM file,
``HARMWATCH_EVIDENCE_KEY`` holds a base64 key) or are generated once into
``var/evidence/`` with mode 0600, so a fresh install can sign and seal without a
setup step while production can inject keys from its secret store.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harmwatch.settings import Settings

AES_KEY_BYTES = 32


class EvidenceKeyError(RuntimeError):
    """A configured key is unreadable or of the wrong kind; the message names the setting."""


def evidence_dir(settings: Settings) -> Path:
    return settings.var_dir / "evidence"


def _write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600, refusing to overwrite one written concurrently."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def signing_key_path(settings: Settings) -> Path:
    return settings.evidence_signing_key or evidence_dir(settings) / "signing-key.pem"


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The service's Ed25519 key; generated on first use when none is configured."""
    path = signing_key_path(settings)
    if settings.evidence_signing_key is None and not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        _write_secret(path, pem)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise EvidenceKeyError(f"HARMWATCH_EVIDENCE_SIGNING_KEY={path}: cannot load it ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceKeyError(f"HARMWATCH_EVIDENCE_SIGNING_KEY={path}: not an Ed25519 private key")
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(public: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what officers compare by phone."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def evidence_key(settings: Settings) -> bytes:
    """The AES-256-GCM key for media at rest (settings, else generated into var/)."""
    if settings.evidence_key:
        encoded = settings.evidence_key.encode()
    else:
        path = evidence_dir(settings) / "evidence-key"
        if not path.exists():
            _write_secret(path, base64.b64encode(secrets.token_bytes(AES_KEY_BYTES)))
        encoded = path.read_bytes().strip()
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise EvidenceKeyError("HARMWATCH_EVIDENCE_KEY: not valid base64") from exc
    if len(key) != AES_KEY_BYTES:
        raise EvidenceKeyError(f"HARMWATCH_EVIDENCE_KEY: expected {AES_KEY_BYTES} bytes, got {len(key)}")
    return key


def key_id(key: bytes) -> str:
    """A short non-secret name for an AES key, stored with each sealed blob (rotation)."""
    return hashlib.sha256(b"harmwatch-evidence-key-id:" + key).hexdigest()[:16]
