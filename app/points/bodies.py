"""A signed batch's body as it is kept: compressed by zlib (RFC 1950) at level 1, read back byte for byte.

A batch's body (the signed JSON, ~300 KB for 1,000 records) is kept for ever, so every credited gram traces
to a signature. PostgreSQL had compressed it with pglz when the row was written (~3.6 ms of its CPU, ~72 KB
kept); zlib at level 1 takes the API ~1 ms and keeps ~36 KB, and PostgreSQL stores those bytes as they come
(``STORAGE EXTERNAL``, migration 0020). Batches received before that are ``identity``: the body as received.

The SHA-256 recorded at receipt (``body_sha256``) is of the body as received; whether the stored body still
hashes to it is checked on the decompressed bytes (:func:`checked`). Stored bytes that are not one whole
zlib stream (cut, altered, or with bytes after its end) give no body: they no longer hold what was received.
"""

import hashlib
import zlib

from app.core.config import get_settings

IDENTITY = "identity"
ZLIB = "zlib"
LEVEL = 1
"""zlib's fastest level: ~36 KB for a batch of 1,000 records, level 6 ~32 KB at three to four times the CPU."""


def stored(body: bytes) -> tuple[bytes, str]:
    """What is kept for ``body``, and its encoding."""
    return zlib.compress(body, LEVEL), ZLIB


def original(kept: bytes, encoding: str, max_bytes: int | None = None) -> bytes | None:
    """The body as received, or None when ``kept`` no longer holds one: not one whole zlib stream, or a
    body longer than ``max_bytes`` (by default ``CARBON_MAX_BODY_BYTES``, the bound of every request's body)."""
    if encoding == IDENTITY:
        return bytes(kept)
    if max_bytes is None:
        max_bytes = get_settings().max_body_bytes
    stream = zlib.decompressobj()
    try:
        body = stream.decompress(kept, max_bytes + 1)
    except zlib.error:
        return None
    if not stream.eof or stream.unused_data or stream.unconsumed_tail or len(body) > max_bytes:
        return None
    return body


def checked(kept: bytes, encoding: str, body_sha256: str, max_bytes: int | None = None) -> bytes | None:
    """The body as received if the kept one is whole and hashes to the SHA-256 recorded at receipt, else None."""
    body = original(kept, encoding, max_bytes)
    return body if body is not None and hashlib.sha256(body).hexdigest() == body_sha256 else None
