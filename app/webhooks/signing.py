"""How the platform signs a webhook delivery (``docs/webhooks.md``, "Signatures").

HMAC-SHA256 with the subscription's secret over ``"{timestamp}.{body}"`` — the Unix time in seconds as
ASCII digits, a full stop, then the exact bytes of the body as sent. The header reads::

    Carbon-Signature: t=1767225600,v1=5f2b…[,v1=<the same under the previous secret>]

During the 24 hours after a rotation the previous secret signs too (a second ``v1=``), so a receiver that
still holds the old secret keeps verifying while it is updated. A receiver recomputes the HMAC with each of
its secrets, compares in constant time with every ``v1`` and refuses a timestamp more than
:data:`TOLERANCE_SECONDS` away from its own clock (the replay window). ``carbon_operator.webhooks.verify``
does all of it.
"""

import hashlib
import hmac
import uuid
from collections.abc import Sequence

SIGNATURE_HEADER = "Carbon-Signature"
EVENT_ID_HEADER = "Carbon-Event-Id"
EVENT_TYPE_HEADER = "Carbon-Event-Type"
TOLERANCE_SECONDS = 300
"""The replay window: a receiver refuses a signature whose ``t`` is further than this from its clock."""
SCHEME = "v1"


def digest(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``secret``."""
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def signature(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The ``Carbon-Signature`` value: ``t=…`` then one ``v1=…`` per secret (the current one first)."""
    if not secrets:
        raise ValueError("at least one secret signs a delivery")
    return ",".join([f"t={timestamp}", *(f"{SCHEME}={digest(s, timestamp, body)}" for s in secrets)])


def headers(
    *, event_id: uuid.UUID, event_type: str, body: bytes, secrets: Sequence[str], timestamp: int
) -> dict[str, str]:
    """Every header of a delivery's POST."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "carbon-points-webhooks/1",
        SIGNATURE_HEADER: signature(body, secrets, timestamp),
        EVENT_ID_HEADER: str(event_id),
        EVENT_TYPE_HEADER: event_type,
    }
