"""The operator's signing key: ES256 (ECDSA on P-256 with SHA-256).

The private key never leaves the operator: it lives in a PEM file (mode 0600) and signs the
client assertions and the batch bodies. The platform only ever sees the public JWK, whose
``kid`` is its RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
CURVE = "P-256"


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an EC public JWK: the required members, sorted, compact."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


class KeyFileError(Exception):
    """The key file is missing, unreadable or not an EC P-256 private key."""


@dataclass(frozen=True)
class OperatorKey:
    """An ES256 private key with its public JWK and ``kid``."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> OperatorKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes | str, password: bytes | None = None) -> OperatorKey:
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"not a PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise KeyFileError("the key must be an EC P-256 private key (ES256)")
        return cls(key)

    @classmethod
    def load(cls, path: str | os.PathLike[str], password: bytes | None = None) -> OperatorKey:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from exc
        return cls.from_pem(data, password)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the private PEM, readable by its owner only (0600), created that way."""
        target = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        fd = os.open(target, flags, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.private_pem)
        os.chmod(target, 0o600)
        return target

    def public_jwk(self) -> dict[str, str]:
        """The public JWK to register: ``kty, crv, x, y, kid, alg, use``."""
        return dict(self._public_jwk)

    @cached_property
    def _public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": CURVE,
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }
        return {**jwk, "kid": jwk_thumbprint(jwk), "alg": ALGORITHM, "use": "sig"}

    @property
    def kid(self) -> str:
        return self._public_jwk["kid"]
