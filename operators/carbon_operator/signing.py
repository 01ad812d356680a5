"""What the operator signs: client assertions (RFC 7523) and batch bodies (detached JWS).

A detached JWS (RFC 7515 appendix F) is the compact serialisation with the payload left out,
``<b64url header>..<b64url signature>``; the receiver puts the base64url of the exact body back
in the middle to verify it. The header is ``{"alg":"ES256","kid":...}``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from jose import jwt as jose_jwt

from .keys import ALGORITHM, OperatorKey, b64url, b64url_decode

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60


def _es256_sign(key: OperatorKey, signing_input: bytes) -> bytes:
    """ECDSA P-256/SHA-256 as JWS wants it: ``r || s``, 32 bytes each (RFC 7518 §3.4)."""
    der = key.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign_detached(body: bytes, key: OperatorKey) -> str:
    """``X-Content-Signature`` for ``body``: a detached ES256 JWS with the key's ``kid``."""
    header = json.dumps({"alg": ALGORITHM, "kid": key.kid}, separators=(",", ":")).encode()
    encoded_header = b64url(header)
    signature = _es256_sign(key, f"{encoded_header}.{b64url(body)}".encode("ascii"))
    return f"{encoded_header}..{b64url(signature)}"


def verify_detached(signature: str, body: bytes, public_jwk: dict[str, Any]) -> bool:
    """True when ``signature`` is a detached ES256 JWS over exactly ``body`` by ``public_jwk``."""
    parts = signature.split(".")
    if len(parts) != 3 or parts[1] != "":
        return False
    try:
        header = json.loads(b64url_decode(parts[0]))
        raw = b64url_decode(parts[2])
        public = ec.EllipticCurvePublicNumbers(
            int.from_bytes(b64url_decode(public_jwk["x"]), "big"),
            int.from_bytes(b64url_decode(public_jwk["y"]), "big"),
            ec.SECP256R1(),
        ).public_key()
    except (ValueError, KeyError, TypeError):
        return False
    if header.get("alg") != ALGORITHM or len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{parts[0]}.{b64url(body)}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def client_assertion(
    key: OperatorKey,
    client_id: str,
    audience: str,
    *,
    now: float | None = None,
    lifetime: int = ASSERTION_LIFETIME,
) -> str:
    """The RFC 7523 JWT an operator trades for an access token; ``jti`` is fresh every time."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "exp": issued + lifetime,
    }
    token: str = jose_jwt.encode(
        claims, key.private_pem.decode(), algorithm=ALGORITHM, headers={"kid": key.kid}
    )
    return token
