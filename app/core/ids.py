"""Identifiers for rows written at a high rate: time-ordered UUIDs (RFC 9562 version 7).

A random (version 4) UUID as a primary key puts each new row's index entry on a random leaf page of the
index: on a large table each insert touches a page no recent insert touched, which PostgreSQL writes whole
to its WAL once after every checkpoint, and which must be read from disk once the index outgrows memory. A
version 7 UUID begins with the time in milliseconds, so new entries go to the index's newest pages. Then come a
12-bit counter (ids made within one millisecond stay in order) and 62 random bits: an id cannot be guessed (no id
is a secret here: every read checks who may see the row), and says only when it was made, which the rows carry
anyway.
"""

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7), strictly increasing within this process."""
    global _last
    with _lock:
        stamp = max(time.time_ns() // 1_000_000 << 12, _last + 1)  # milliseconds, then a counter
        _last = stamp
    rand = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    return uuid.UUID(int=(stamp >> 12) << 80 | 0x7 << 76 | (stamp & 0xFFF) << 64 | 0b10 << 62 | rand)
