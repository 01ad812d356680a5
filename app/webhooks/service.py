"""Webhooks: the event catalogue, organisations' subscriptions, and the events outbox.

Other domains call :func:`emit` (or :func:`emit_all`) in the transaction of the change an event
reports: the event row and one pending delivery per active subscription that wants its type are
written by one statement, so an event exists exactly when its change committed. The delivery
worker (:mod:`app.webhooks.delivery`) posts pending deliveries; :func:`list_events` lets a receiver
that was down catch up. Events of one subject are delivered to a subscription in ``created_at, id``
order; ids are time-ordered (UUIDv7) so events of one transaction keep the order they were emitted in.
"""

import functools
import ipaddress
import os
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, db
from app.core.config import get_settings
from app.core.ids import uuid7
from app.core.pagination import Page, page
from app.webhooks import repository
from app.webhooks.exceptions import (
    EventNotFound,
    EventTypeNotAllowed,
    InvalidSubscriptionState,
    InvalidWebhookUrl,
    SecretUnreadable,
    SubscriptionNotFound,
    TooManySubscriptions,
    UnknownEventType,
)
from app.webhooks.models import WebhookEvent, WebhookSubscription
from app.webhooks.schemas import (
    MAX_URL_LENGTH,
    EventRead,
    EventSubject,
    EventTypeRead,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionStatus,
    SubscriptionWithSecret,
)

# ---- the catalogue ---------------------------------------------------------------------------------------

OPERATOR = "operator"
MERCHANT = "merchant"
SCENE_OPERATOR = "scene_operator"
VERIFIER = "verifier"
BUYER = "buyer"
ORG_KINDS = frozenset({OPERATOR, MERCHANT, SCENE_OPERATOR, VERIFIER, BUYER})


@dataclass(frozen=True)
class EventType:
    description: str
    kinds: frozenset[str]
    """The kinds of organisation that receive it (and may subscribe to it)."""


EVENT_TYPES: dict[str, EventType] = {
    "entrustment.withdrawn": EventType(
        "A person withdrew their entrustment of the operator (through the operator's API or on their own "
        "`/me` page): submit nothing more for them.",
        frozenset({OPERATOR}),
    ),
    "points.expiring": EventType(
        "The daily digest: the operator's people whose points expire in the next days, by external id, "
        "with amounts and dates (one event per operator and day).",
        frozenset({OPERATOR}),
    ),
    "points.expired": EventType(
        "Points expired: which of the operator's people lost how many.", frozenset({OPERATOR})
    ),
    "order.created": EventType(
        "A person placed an order for a merchant's item (to the merchant, and to the operator whose token "
        "placed it).",
        frozenset({MERCHANT, OPERATOR}),
    ),
    "order.redeemed": EventType("The merchant redeemed an order's voucher.", frozenset({MERCHANT, OPERATOR})),
    "order.cancelled": EventType(
        "The person cancelled an unused order; the points went back.", frozenset({MERCHANT, OPERATOR})
    ),
    "order.expired": EventType(
        "An order's voucher expired unused (points refunded or forfeited per the item's policy).",
        frozenset({MERCHANT, OPERATOR}),
    ),
    "operator_redemption.reversed": EventType(
        "A redemption in the operator's own mall was reversed; the points went back.", frozenset({OPERATOR})
    ),
    "scene.decided": EventType(
        "The authority decided a scene application or a change to a scene.", frozenset({SCENE_OPERATOR})
    ),
    "cer_project.stage_changed": EventType(
        "A certified-reduction project moved to another stage (to its owner, and its verifier once "
        "assigned).",
        frozenset({OPERATOR, VERIFIER}),
    ),
    "cer.units_received": EventType(
        "Certified reduction units were transferred into the organisation's registry account.",
        frozenset({OPERATOR, BUYER}),
    ),
    "organization.suspended": EventType(
        "The authority suspended the organisation: its tokens stop working until it is reinstated.",
        ORG_KINDS,
    ),
}


def event_types(kind: str | None = None) -> list[EventTypeRead]:
    """The catalogue, or the part of it organisations of ``kind`` receive."""
    return [
        EventTypeRead(type=name, description=t.description, kinds=sorted(t.kinds))
        for name, t in EVENT_TYPES.items()
        if kind is None or kind in t.kinds
    ]


# ---- secrets ---------------------------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"
SEALED_VERSION = b"\x01"
ROTATION_OVERLAP = timedelta(hours=24)
_AAD = b"carbon-points webhook secret"


@functools.lru_cache(maxsize=4)
def _sealing_key(platform_secret: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"carbon-points webhook secrets v1"
    ).derive(platform_secret.encode())
    return AESGCM(key)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def seal_secret(secret: str) -> bytes:
    """The secret encrypted (AES-256-GCM) under a key derived from ``CARBON_WEBHOOK_SECRET_KEY``."""
    nonce = os.urandom(12)
    sealed = _sealing_key(get_settings().webhook_secret_key).encrypt(nonce, secret.encode(), _AAD)
    return SEALED_VERSION + nonce + sealed


def unseal_secret(sealed: bytes) -> str:
    """The secret :func:`seal_secret` sealed; :class:`SecretUnreadable` if the key changed or it was altered."""
    sealed = bytes(sealed)
    if not sealed.startswith(SEALED_VERSION) or len(sealed) < 1 + 12 + 16:
        raise SecretUnreadable("not a sealed webhook secret")
    try:
        plain = _sealing_key(get_settings().webhook_secret_key).decrypt(sealed[1:13], sealed[13:], _AAD)
    except InvalidTag as exc:
        raise SecretUnreadable("the sealed secret does not open under CARBON_WEBHOOK_SECRET_KEY") from exc
    return plain.decode()


# ---- subscriptions ---------------------------------------------------------------------------------------

MAX_SUBSCRIPTIONS = 10
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str) -> str:
    """``url`` if the platform may post to it, else ``invalid_webhook_url`` saying why.

    ``https``; outside production also ``http`` to a loopback host; no user name or password, no
    fragment, at most 2,000 characters. In production a host written as an IP address must be public
    (the delivery worker checks every address a name resolves to again before it connects)."""
    production = get_settings().environment == "production"
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"at most {MAX_URL_LENGTH} characters")
    if url != url.strip() or any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
        raise InvalidWebhookUrl("no spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises on a port that is not a number
    except ValueError as exc:
        raise InvalidWebhookUrl(f"not a URL: {exc}") from exc
    if "@" in parts.netloc:
        raise InvalidWebhookUrl(
            "no user name or password in the URL: the signature authenticates the platform"
        )
    if parts.fragment or "#" in url:
        raise InvalidWebhookUrl("no fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidWebhookUrl("the URL names its host")
    address = _literal_address(host)
    loopback = host in LOOPBACK_NAMES or (address is not None and address.is_loopback)
    if parts.scheme == "https":
        if production and (loopback or (address is not None and not address.is_global)):
            raise InvalidWebhookUrl("the platform posts only to public addresses")
        return url
    if parts.scheme == "http" and loopback and not production:
        return url
    raise InvalidWebhookUrl("the URL uses https" + ("" if production else " (or http to a loopback host)"))


def _check_types(principal: Principal, types: Sequence[str]) -> list[str]:
    unknown = sorted({t for t in types if t not in EVENT_TYPES})
    if unknown:
        raise UnknownEventType(f"not in the catalogue: {', '.join(unknown)}", types=unknown)
    refused = sorted({t for t in types if principal.role not in EVENT_TYPES[t].kinds})
    if refused:
        raise EventTypeNotAllowed(f"a {principal.role} never receives {', '.join(refused)}", types=refused)
    return sorted(set(types))


def _org(principal: Principal) -> uuid.UUID:
    assert principal.org_id is not None  # the routes admit organisations' callers only
    return principal.org_id


def _view(s: WebhookSubscription) -> SubscriptionRead:
    return SubscriptionRead(
        id=s.id,
        url=s.url,
        event_types=list(s.event_types),
        description=s.description,
        status=SubscriptionStatus(s.status),
        failing_since=s.failing_since,
        disabled_reason=s.disabled_reason,
        previous_secret_expires_at=s.previous_secret_expires_at,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _with_secret(s: WebhookSubscription, secret: str) -> SubscriptionWithSecret:
    return SubscriptionWithSecret(**_view(s).model_dump(), secret=secret)


def _audit(
    principal: Principal, action: str, s: WebhookSubscription, session: AsyncSession, **data: Any
) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action=f"webhook.{action}",
        subject_type="webhook_subscription",
        subject_id=s.id,
        data={"org_id": str(s.org_id), "url": s.url, **data},
    )


async def create_subscription(
    session: AsyncSession, principal: Principal, data: SubscriptionCreate
) -> SubscriptionWithSecret:
    """A new active subscription with its secret, shown this once."""
    url = check_url(data.url)
    types = _check_types(principal, data.event_types)
    org_id = _org(principal)
    await repository.lock_org(session, org_id)
    if await repository.count(session, org_id) >= MAX_SUBSCRIPTIONS:
        raise TooManySubscriptions(f"at most {MAX_SUBSCRIPTIONS} subscriptions; delete one first")
    secret = new_secret()
    now = clock.now()
    subscription = WebhookSubscription(
        org_id=org_id,
        url=url,
        event_types=types,
        description=data.description.strip(),
        secret_sealed=seal_secret(secret),
        created_at=now,
        updated_at=now,
    )
    await repository.add(session, subscription)
    _audit(principal, "subscription_created", subscription, session, event_types=types)
    return _with_secret(subscription, secret)


async def _own(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, *, lock: bool = False
) -> WebhookSubscription:
    subscription = await repository.get(session, _org(principal), subscription_id, lock=lock)
    if subscription is None:
        raise SubscriptionNotFound()
    return subscription


async def list_subscriptions(session: AsyncSession, principal: Principal) -> list[SubscriptionRead]:
    return [_view(s) for s in await repository.list_(session, _org(principal))]


async def get_subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> SubscriptionRead:
    return _view(await _own(session, principal, subscription_id))


async def pause(session: AsyncSession, principal: Principal, subscription_id: uuid.UUID) -> SubscriptionRead:
    """Stop deliveries: events of the pause get none (``GET /v1/events`` lists them). Pausing twice is once."""
    s = await _own(session, principal, subscription_id, lock=True)
    if s.status == SubscriptionStatus.disabled:
        raise InvalidSubscriptionState("the platform disabled this subscription: resume it instead")
    if s.status == SubscriptionStatus.active:
        s.status, s.updated_at = SubscriptionStatus.paused, clock.now()
        await repository.flush(session)
        _audit(principal, "subscription_paused", s, session)
    return _view(s)


async def resume(session: AsyncSession, principal: Principal, subscription_id: uuid.UUID) -> SubscriptionRead:
    """Paused or disabled → active: new events are delivered again (and the failure count starts over)."""
    s = await _own(session, principal, subscription_id, lock=True)
    if s.status != SubscriptionStatus.active:
        previous = s.status
        s.status, s.failing_since, s.disabled_reason = SubscriptionStatus.active, None, None
        s.updated_at = clock.now()
        await repository.flush(session)
        _audit(principal, "subscription_resumed", s, session, was=str(previous))
    return _view(s)


async def rotate_secret(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> SubscriptionWithSecret:
    """A new secret, shown this once; the current one keeps signing too for 24 hours."""
    s = await _own(session, principal, subscription_id, lock=True)
    secret = new_secret()
    now = clock.now()
    s.previous_secret_sealed = s.secret_sealed
    s.previous_secret_expires_at = now + ROTATION_OVERLAP
    s.secret_sealed = seal_secret(secret)
    s.updated_at = now
    await repository.flush(session)
    _audit(
        principal, "secret_rotated", s, session, previous_expires_at=s.previous_secret_expires_at.isoformat()
    )
    return _with_secret(s, secret)


async def delete(session: AsyncSession, principal: Principal, subscription_id: uuid.UUID) -> SubscriptionRead:
    """Delete it with its pending deliveries and their record (the events stay in ``GET /v1/events``)."""
    s = await _own(session, principal, subscription_id, lock=True)
    view = _view(s)
    _audit(principal, "subscription_deleted", s, session)
    await repository.delete(session, s)
    return view


# ---- emitting events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emission:
    """One event for one recipient organisation. ``id``: given for an event that must be written once
    whatever happens (a job's digest, derived from its day); otherwise a new UUIDv7."""

    org_id: uuid.UUID
    type: str
    subject_type: str
    subject_id: str
    payload: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid7)


def _json_default(value: Any) -> str:
    """Ids read by asyncpg are its own UUID type (not ``uuid.UUID``); payloads carry them as text."""
    if isinstance(value, asyncpg.pgproto.pgproto.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a payload value")


def stable_id(*parts: Any) -> uuid.UUID:
    """An event id derived from ``parts``: the same parts, the same id (an event written at most once)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "carbon-points:webhook-event:" + ":".join(str(p) for p in parts))


async def emit_all(session: AsyncSession, emissions: Sequence[Emission]) -> list[uuid.UUID]:
    """Write these events with their deliveries in the caller's transaction: one round trip. The ids
    written (an emission whose id exists already is skipped)."""
    if not emissions:
        return []
    written = await repository.insert_events(
        await db.raw_connection(session), *columns(emissions), clock.now()
    )
    return [e.id for e in emissions if e.id in written]


Columns = tuple[list[uuid.UUID], list[uuid.UUID], list[str], list[str], list[str], list[str]]
"""Ids, recipients, types, subject types, subject ids and payloads (JSON text)."""


def columns(emissions: Sequence[Emission]) -> Columns:
    """The emissions as the outbox's statement takes them: ids, recipients, types, subject types, subject ids
    and payloads (JSON text); for a statement of another domain that writes its events itself (an order)."""
    for e in emissions:
        assert e.type in EVENT_TYPES, e.type  # a caller's slip, never a request's input
    return (
        [e.id for e in emissions],
        [e.org_id for e in emissions],
        [e.type for e in emissions],
        [e.subject_type for e in emissions],
        [e.subject_id for e in emissions],
        [orjson.dumps(e.payload, default=_json_default).decode() for e in emissions],
    )


async def emit(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    type: str,  # noqa: A002  # the event's field
    subject_type: str,
    subject_id: Any,
    payload: dict[str, Any],
) -> uuid.UUID:
    """Write one event for ``org_id`` and one pending delivery per active subscription of it that wants
    ``type`` (``next_attempt_at`` now), in the caller's transaction, in one round trip. Its id."""
    emission = Emission(org_id, type, subject_type, str(subject_id), payload)
    await emit_all(session, [emission])
    return emission.id


# ---- the events, for a receiver that was down ------------------------------------------------------------


def envelope(event: WebhookEvent) -> EventRead:
    """An event as it is delivered and listed."""
    return EventRead(
        id=event.id,
        type=event.type,
        created_at=event.created_at,
        subject=EventSubject(type=event.subject_type, id=event.subject_id),
        data=event.payload,
    )


async def list_events(
    session: AsyncSession,
    principal: Principal,
    *,
    types: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    after: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> Page[EventRead]:
    """The organisation's events, newest first; ``after`` one of them: those after it, oldest first."""
    unknown = sorted({t for t in types if t not in EVENT_TYPES})
    if unknown:
        raise UnknownEventType(f"not in the catalogue: {', '.join(unknown)}", types=unknown)
    org_id = _org(principal)
    start: tuple[datetime, uuid.UUID] | None = None
    if after is not None:
        first = await repository.event(session, org_id, after)
        if first is None:
            raise EventNotFound(f"no event {after} of your organisation")
        start = (first.created_at, first.id)
    rows = await repository.events(
        session, org_id, types=types, since=since, until=until, after=start, cursor=cursor, limit=limit
    )
    return Page[EventRead](**page([envelope(r) for r in rows], limit, lambda e: [e.created_at, e.id]))
