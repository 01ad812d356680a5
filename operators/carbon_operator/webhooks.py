"""Verify and parse the platform's webhook deliveries.

The platform signs each POST with HMAC-SHA256 over ``"{t}.{exact body bytes}"`` under the subscription's
secret and sends ``Carbon-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`` (two ``v1`` during the day after
a secret rotation). :func:`verify` checks the header against your secrets in constant time, refuses a
timestamp outside the replay window (5 minutes by default) and returns the typed :class:`Event`::

    from carbon_operator import webhooks

    event = webhooks.verify(body, request.headers["Carbon-Signature"], [SECRET])
    if already_seen(event.id):      # delivery is at least once: de-duplicate on the id
        return 200
    handle(event.type, event.data)

Verify the raw bytes as received, before any JSON parsing or re-encoding.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SIGNATURE_HEADER = "Carbon-Signature"
EVENT_ID_HEADER = "Carbon-Event-Id"
EVENT_TYPE_HEADER = "Carbon-Event-Type"
DEFAULT_TOLERANCE = 300

EVENT_TYPES = frozenset(
    {
        "entrustment.withdrawn",
        "points.expiring",
        "points.expired",
        "order.created",
        "order.redeemed",
        "order.cancelled",
        "order.expired",
        "operator_redemption.reversed",
        "scene.decided",
        "cer_project.stage_changed",
        "cer.units_received",
        "organization.suspended",
    }
)
"""The event types the platform sends today; :attr:`Event.known` is False for a newer one."""


class WebhookVerificationError(Exception):
    """The delivery cannot be trusted. ``code`` says why: ``malformed_header``, ``bad_signature``,
    ``timestamp_out_of_tolerance`` or ``malformed_body``. Answer 400 and do not act on it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Subject:
    """What the event is about (``order``, ``cer_project``…); events of one subject arrive in order."""

    type: str
    id: str


@dataclass(frozen=True)
class Event:
    """One event: ``id`` is unique (de-duplicate on it), ``data`` the type's own facts."""

    id: str
    type: str
    created_at: datetime
    subject: Subject
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """Whether this SDK knows the type (a newer platform may send types added since)."""
        return self.type in EVENT_TYPES


def parse_header(header: str) -> tuple[int, list[str]]:
    """``(timestamp, [v1 signatures])`` of a ``Carbon-Signature`` value; other schemes are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise WebhookVerificationError("malformed_header", f"expected key=value, got {part.strip()!r}")
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                raise WebhookVerificationError("malformed_header", "t must be one Unix time in seconds")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise WebhookVerificationError("malformed_header", "no t= timestamp")
    if not signatures:
        raise WebhookVerificationError("malformed_header", "no v1= signature")
    return timestamp, signatures


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``v1`` signature of ``body`` at ``timestamp`` (what the platform computes; handy in tests)."""
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    header: str,
    secrets: Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> Event:
    """Check ``header`` (the ``Carbon-Signature`` value) over ``body`` with any of ``secrets`` and
    return the event; raise :class:`WebhookVerificationError` otherwise.

    Give every secret you currently accept (after rotating, the new one and the old one until the
    platform stops signing with the old). ``tolerance``: seconds the timestamp may differ from ``now``.
    """
    if not secrets:
        raise ValueError("give at least one secret")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            "timestamp_out_of_tolerance", f"signed at {timestamp}, more than {tolerance} s from now"
        )
    expected = [sign(body, secret, timestamp) for secret in secrets]
    matched = False
    for candidate in expected:
        for given in signatures:
            matched |= hmac.compare_digest(candidate.encode(), given.encode())
    if not matched:
        raise WebhookVerificationError("bad_signature", "no v1 signature matches the body with these secrets")
    return parse_event(body)


def parse_event(body: bytes) -> Event:
    """The typed envelope of a delivery's body (call :func:`verify` instead on anything received)."""
    try:
        raw = json.loads(body)
        subject = raw["subject"]
        return Event(
            id=str(raw["id"]),
            type=str(raw["type"]),
            created_at=datetime.fromisoformat(str(raw["created_at"]).replace("Z", "+00:00")),
            subject=Subject(str(subject["type"]), str(subject["id"])),
            data=dict(raw.get("data") or {}),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookVerificationError("malformed_body", f"not an event envelope: {exc}") from None
