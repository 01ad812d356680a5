"""Voucher codes: 80 random bits from :mod:`secrets`, written ``XXXX-XXXX-XXXX-XXXX`` in Crockford base32.

Crockford's alphabet has no I, L, O or U, so a clerk typing a code cannot confuse 1/I/L or 0/O;
:func:`normalise` maps those look-alikes back and ignores case, hyphens and spaces. Guessing one
valid code among 2^80 is hopeless, and redemption is rate-limited per merchant on failures besides.

The code is stored as its SHA-256 (the unique look-up key) and sealed: XOR-ed with a pad derived
(HMAC-SHA256) from the platform secret and the order id, so the buyer can read it again while a copy
of the database alone cannot redeem anything.
"""

import hashlib
import hmac
import io
import secrets
import uuid

import segno

from app.core.config import get_settings

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BITS = 80
LENGTH = BITS // 5  # 16 symbols
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_VALUE.update({"O": 0, "I": 1, "L": 1})
_SEAL_LABEL = b"carbon-points/mall-voucher-seal\x00"


def new_code() -> str:
    return _format(secrets.randbits(BITS))


def _format(value: int) -> str:
    symbols = "".join(ALPHABET[(value >> (5 * (LENGTH - 1 - i))) & 31] for i in range(LENGTH))
    return "-".join(symbols[i : i + 4] for i in range(0, LENGTH, 4))


def normalise(code: str) -> str | None:
    """The canonical 16 symbols of ``code``, or None if it cannot be a voucher code."""
    cleaned = code.upper().replace("-", "").replace(" ", "")
    if len(cleaned) != LENGTH or any(c not in _VALUE for c in cleaned):
        return None
    return "".join(ALPHABET[_VALUE[c]] for c in cleaned)


def digest(code: str) -> bytes | None:
    """SHA-256 of the canonical form: what the database looks codes up by."""
    canonical = normalise(code)
    return hashlib.sha256(canonical.encode()).digest() if canonical else None


def _pad(order_id: uuid.UUID) -> bytes:
    key = get_settings().identity_hash_key.encode()
    return hmac.new(key, _SEAL_LABEL + order_id.bytes, hashlib.sha256).digest()[: BITS // 8]


def _value(code: str) -> int:
    canonical = normalise(code)
    assert canonical is not None
    value = 0
    for c in canonical:
        value = value << 5 | _VALUE[c]
    return value


def seal(code: str, order_id: uuid.UUID) -> bytes:
    raw = _value(code).to_bytes(BITS // 8, "big")
    return bytes(a ^ b for a, b in zip(raw, _pad(order_id), strict=True))


def unseal(sealed: bytes, order_id: uuid.UUID) -> str:
    raw = bytes(a ^ b for a, b in zip(sealed, _pad(order_id), strict=True))
    return _format(int.from_bytes(raw, "big"))


def qr_image(code: str, kind: str) -> bytes:
    """``code`` as a QR code (alphanumeric mode, error correction M, 4-module quiet zone): ``svg`` or ``png``."""
    qr = segno.make(code, error="m", boost_error=False)
    buffer = io.BytesIO()
    if kind == "svg":
        qr.save(buffer, kind="svg", scale=8, border=4, xmldecl=False, title="voucher")
    else:
        qr.save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()
