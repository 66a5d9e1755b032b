"""The service's evidence signing key (Ed25519); the AES-256 key for media at rest is
:func:`harmwatch.sealing.evidence_key`, beside the sealing it serves.

Both come from settings (``HARMWATCH_EVIDENCE_SIGNING_KEY`` names a PEM file,
``HARMWATCH_EVIDENCE_KEY`` holds a base64 key) or are generated once into
``var/evidence/`` with mode 0600, so a fresh install can sign and seal without a
setup step while production can inject keys from its secret store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harmwatch.sealing import EvidenceKeyError, evidence_dir, write_secret
from harmwatch.settings import Settings


def signing_key_path(settings: Settings) -> Path:
    return settings.evidence_signing_key or evidence_dir(settings) / "signing-key.pem"


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The service's Ed25519 key; generated on first use when none is configured."""
    path = signing_key_path(settings)
    if settings.evidence_signing_key is None and not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        write_secret(path, pem)
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
