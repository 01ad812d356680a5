"""The delivery worker: posts pending deliveries, records every attempt, retries, gives up, disables.

One runner — a job of the single scheduler (``app/webhooks/tasks.py``, every 2 seconds) — claims due
deliveries and posts each in a task of its own, so one slow endpoint never delays another's:

* **Claim** (``delivery_repository.claim_due``, ``FOR UPDATE SKIP LOCKED``): pending, due, subscription
  active; at most :attr:`Worker.per_endpoint` per subscription and none of a subscription that still has a
  post in flight; at most :attr:`Worker.concurrency` posts in flight in all. A claim moves the delivery's
  ``next_attempt_at`` to the end of a lease (5 minutes), so a worker that dies mid-post only delays it.
* **Order per subject**: a delivery is not claimed while an earlier event (event time, then delivery id)
  of the same subject is still pending for the same subscription — the next event of an order reaches an
  endpoint only after the previous one was delivered or given up.
* **Post** (:func:`post`): resolve the host, refuse unsafe addresses (:func:`check_address`), connect to
  the checked address itself (Host header and TLS SNI name the host), bounded timeouts, no redirects,
  at most 4 KiB of the answer read.
* **Outcome**: 2xx is ``delivered``. Anything else is retried after an exponential delay with full
  jitter (:func:`retry_delay`: up to 10 s, 30 s, 1.5 min, … capped at 1 h) until 24 hours after the
  delivery was made; an attempt failing later gives it up (``failed``). A subscription with no successful
  attempt for 24 hours of failing ones is disabled and its organisation told (:func:`_disable`).
"""

import asyncio
import ipaddress
import logging
import random
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit, clock, db, pagination
from app.core.config import get_settings
from app.core.errors import NotFound
from app.webhooks import delivery_repository as repo
from app.webhooks import service, signing
from app.webhooks.delivery_schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryRead,
    DeliveryStatus,
    DeliverySubject,
    RedeliveredFailed,
)
from app.webhooks.exceptions import SecretUnreadable, SubscriptionNotFound

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 10
RETRY_FACTOR = 3
RETRY_CAP_SECONDS = 3600
RETRY_WINDOW = timedelta(hours=24)
"""A delivery is retried until this long after it was made, then given up."""
DISABLE_AFTER = timedelta(hours=24)
"""A subscription whose attempts have all failed for this long is disabled."""
LEASE = timedelta(minutes=5)
MAX_RESPONSE_BYTES = 4096
EXCERPT_CHARS = 500
TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=5.0)
DEADLINE_SECONDS = 20.0
"""A post is abandoned after this long in all, however slowly the endpoint drips its answer."""
SYSTEM_ACTOR = "platform"


# ---- addresses ------------------------------------------------------------------------------------------------


class UnsafeAddress(Exception):
    """The endpoint's host resolves to an address the platform never connects to."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> Iterable[ipaddress.IPv4Address]:
    if ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo
    if ip in _NAT64:
        yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def check_address(address: str, *, allow_loopback: bool) -> None:
    """Refuse an address that is not a public unicast one: private, loopback (unless allowed), link-local
    (the cloud metadata endpoint 169.254.169.254 among them), multicast, reserved, unspecified, shared
    CGNAT space (Alibaba Cloud's metadata 100.100.100.200 among them), documentation; IPv4 inside IPv6
    (mapped, 6to4, Teredo, NAT64) is checked as IPv4 too."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += list(_embedded_v4(ip))
    for candidate in candidates:
        if allow_loopback and candidate.is_loopback:
            continue
        if candidate.is_multicast or candidate.is_unspecified or not candidate.is_global:
            raise UnsafeAddress(f"{address} is not a public address")


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (tests replace this function)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def safe_address(host: str, port: int) -> str:
    """The address to connect to: ``host`` resolved once, every answer checked (one unsafe answer refuses
    them all, so a name cannot mix a public and a private address), the first one returned."""
    allow_loopback = get_settings().environment != "production"
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise UnsafeAddress(f"{host} does not resolve: {exc}") from None
    if not addresses:
        raise UnsafeAddress(f"{host} does not resolve")
    for address in addresses:
        check_address(address, allow_loopback=allow_loopback)
    return addresses[0]


# ---- one post ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    latency_ms: int
    error: str | None
    excerpt: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` to ``url`` on the address checked by :func:`safe_address`, pinned: the connection
    goes to that address (no second resolution), with the URL's host in ``Host`` and the TLS SNI (so the
    certificate is checked against the host name). Never raises: an error is part of the answer."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = httpx.URL(url)
        host = target.host
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await safe_address(host, port)
        request = client.build_request(
            "POST",
            target.copy_with(host=address),
            content=body,
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": host},
        )
        async with asyncio.timeout(DEADLINE_SECONDS):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                kept = bytearray()
                async for chunk in response.aiter_raw():
                    kept += chunk
                    if len(kept) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
    except (UnsafeAddress, httpx.HTTPError, TimeoutError, OSError, ValueError) as exc:
        return Answer(None, elapsed(), _error(exc), "")
    excerpt = bytes(kept[:MAX_RESPONSE_BYTES]).decode("utf-8", "replace")[:EXCERPT_CHARS]
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return Answer(response.status_code, elapsed(), error, excerpt.replace("\x00", ""))


def body_of(due: repo.Due) -> bytes:
    """The exact bytes posted (and signed): the event's envelope as JSON."""
    return orjson.dumps(
        {
            "id": str(due.event_id),
            "type": due.event_type,
            "created_at": due.event_created_at,
            "subject": {"type": due.subject_type, "id": due.subject_id},
            "data": due.payload,
        },
        option=orjson.OPT_UTC_Z,
    )


def secrets_of(due: repo.Due, now: datetime) -> list[str]:
    """The current secret, then the previous one while it still signs (24 h after a rotation)."""
    secrets = [service.unseal_secret(due.secret_sealed)]
    expires = due.previous_secret_expires_at
    if due.previous_secret_sealed is not None and expires is not None and expires > now:
        secrets.append(service.unseal_secret(due.previous_secret_sealed))
    return secrets


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Full jitter: uniform between 1 s and ``min(1 h, 10 s × 3^(attempts-1))`` (attempts made so far)."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * RETRY_FACTOR ** max(attempts - 1, 0))
    return timedelta(seconds=max(1.0, (rng or random).uniform(0, ceiling)))


def next_state(due: repo.Due, answer: Answer, now: datetime) -> tuple[str, datetime]:
    """``(status, next_attempt_at)`` after an attempt."""
    if answer.ok:
        return "delivered", now
    retry_at = now + retry_delay(due.attempts + 1)
    if retry_at > due.created_at + RETRY_WINDOW:
        return "failed", now
    return "pending", retry_at


# ---- the worker -------------------------------------------------------------------------------------------


@dataclass
class Report:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: list[uuid.UUID] = field(default_factory=list)


class Worker:
    """Claims due deliveries and posts them, each in its own task; ``run_once`` is one tick."""

    def __init__(self, *, per_endpoint: int = 4, concurrency: int = 32, batch: int = 200) -> None:
        self.per_endpoint = per_endpoint
        self.concurrency = concurrency
        self.batch = batch
        self.inflight: dict[uuid.UUID, int] = {}
        self.tasks: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=TIMEOUT,
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=8),
            )
        return self._client

    async def close(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def claim(self) -> list[repo.Due]:
        room = min(self.batch, self.concurrency - len(self.tasks))
        if room <= 0:
            return []
        now = clock.now()
        async with db.session_scope() as session:
            conn = await db.raw_connection(session)
            return await repo.claim_due(
                conn,
                now=now,
                lease_until=now + LEASE,
                per_endpoint=self.per_endpoint,
                batch=room,
                busy=[sid for sid, n in self.inflight.items() if n > 0],
            )

    async def run_once(self, *, wait: bool = True) -> Report:
        """Claim what is due and post it; with ``wait`` return when those posts are recorded, else at
        once (the scheduler's tick: the posts go on in their tasks)."""
        report = Report()
        claimed = await self.claim()
        report.claimed = len(claimed)
        started = []
        for due in claimed:
            self.inflight[due.subscription_id] = self.inflight.get(due.subscription_id, 0) + 1
            task = asyncio.create_task(self._deliver(due, report), name=f"webhook-delivery-{due.id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            started.append(task)
        if wait and started:
            await asyncio.gather(*started)
        return report

    async def _deliver(self, due: repo.Due, report: Report) -> None:
        try:
            await self._attempt(due, report)
        except Exception:
            log.exception("webhook delivery failed to run", extra={"delivery_id": due.id})
        finally:
            left = self.inflight.get(due.subscription_id, 1) - 1
            if left > 0:
                self.inflight[due.subscription_id] = left
            else:
                self.inflight.pop(due.subscription_id, None)

    async def _attempt(self, due: repo.Due, report: Report) -> None:
        body = body_of(due)
        try:
            secrets = secrets_of(due, clock.now())
        except SecretUnreadable as exc:  # CARBON_WEBHOOK_SECRET_KEY changed: recorded, retried, given up
            answer = Answer(None, 0, _error(exc), "")
        else:
            headers = signing.headers(
                event_id=due.event_id,
                event_type=due.event_type,
                body=body,
                secrets=secrets,
                timestamp=int(time.time()),  # receivers compare with their own clock, not the platform's
            )
            answer = await post(self.client(), due.url, body, headers)
        now = clock.now()
        status, next_attempt_at = next_state(due, answer, now)
        outcome = repo.Outcome(
            delivery_id=due.id,
            subscription_id=due.subscription_id,
            at=now,
            status_code=answer.status_code,
            latency_ms=answer.latency_ms,
            error=answer.error,
            excerpt=answer.excerpt,
            status=status,
            next_attempt_at=next_attempt_at,
        )
        async with db.session_scope() as session:
            conn = await db.raw_connection(session)
            failing_since = await repo.record_outcome(conn, outcome)
            if failing_since is not None and now - failing_since >= DISABLE_AFTER:
                if await _disable(session, conn, due, failing_since, now):
                    report.disabled.append(due.subscription_id)
        if status == "delivered":
            report.delivered += 1
        elif status == "failed":
            report.failed += 1
        else:
            report.retrying += 1


async def _disable(
    session: AsyncSession, conn: db.Conn, due: repo.Due, failing_since: datetime, now: datetime
) -> bool:
    """Disable the subscription and tell its organisation: an audit entry on the subscription; the admin
    sees a notice on the operators' console and the subscriptions page, and the status and reason in
    ``GET /v1/webhooks/subscriptions``."""
    reason = (
        f"no successful delivery since {failing_since.isoformat()}: every attempt failed for"
        f" {int(DISABLE_AFTER.total_seconds() // 3600)} hours"
    )
    org_id = await repo.disable(conn, due.subscription_id, reason, now)
    if org_id is None:
        return False
    audit.record(
        session,
        actor=SYSTEM_ACTOR,
        action="webhook_subscription.disabled",
        subject_type="webhook_subscription",
        subject_id=due.subscription_id,
        data={"org_id": str(org_id), "url": due.url, "reason": reason, "failing_since": failing_since},
    )
    log.warning("webhook subscription disabled", extra={"subscription_id": str(due.subscription_id)})
    return True


WORKER = Worker()
"""The process's worker (the scheduler's job drives it)."""


async def run_once(worker: Worker | None = None, *, wait: bool = True) -> Report:
    """One tick of ``worker`` (the process's by default): claim what is due and post it."""
    return await (worker or WORKER).run_once(wait=wait)


# ---- inspection and replay (the organisation's staff, delivery_router.py) ----------------------------------


class DeliveryNotFound(NotFound):
    code, title = "delivery_not_found", "No such delivery of this subscription"


async def _own_subscription(conn: db.Conn, org_id: uuid.UUID | None, subscription_id: uuid.UUID) -> None:
    if org_id is None or await repo.subscription_org(conn, subscription_id) != org_id:
        raise SubscriptionNotFound("no subscription of your organisation has this id")


def _read(row: dict[str, Any]) -> DeliveryRead:
    last = None
    if row["last_attempt_at"] is not None:
        last = AttemptRead(
            at=row["last_attempt_at"],
            status_code=row["last_status_code"],
            latency_ms=row["last_latency_ms"],
            error=row["last_error"],
            response_excerpt=row["last_response_excerpt"],
        )
    return DeliveryRead(
        id=row["id"],
        subscription_id=row["subscription_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        subject=DeliverySubject(type=row["subject_type"], id=row["subject_id"]),
        event_created_at=row["event_created_at"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"] if row["status"] == "pending" else None,
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        last_attempt=last,
    )


async def list_deliveries(
    session: AsyncSession,
    org_id: uuid.UUID | None,
    subscription_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A page of the subscription's deliveries, newest first."""
    after = pagination.decode_cursor(
        cursor, datetime, int
    )  # a forged cursor is the client's error whoever asks
    conn = await db.raw_connection(session)
    await _own_subscription(conn, org_id, subscription_id)
    rows = await repo.list_deliveries(
        conn,
        subscription_id,
        status=status.value if status else None,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1,
    )
    result = pagination.page(rows, limit, lambda row: [row["created_at"], row["id"]])
    result["items"] = [_read(row) for row in result["items"]]
    return result


async def get_delivery(
    session: AsyncSession, org_id: uuid.UUID | None, subscription_id: uuid.UUID, delivery_id: int
) -> DeliveryDetail:
    """One delivery with every attempt."""
    conn = await db.raw_connection(session)
    await _own_subscription(conn, org_id, subscription_id)
    row = await repo.get_delivery(conn, subscription_id, delivery_id)
    if row is None:
        raise DeliveryNotFound()
    history = [AttemptRead(**attempt) for attempt in await repo.attempts_of(conn, delivery_id)]
    return DeliveryDetail(**_read(row).model_dump(), attempt_history=history)


async def redeliver(
    session: AsyncSession,
    principal_actor: str,
    org_id: uuid.UUID | None,
    subscription_id: uuid.UUID,
    delivery_id: int,
) -> DeliveryDetail:
    """Make one delivery pending and due now: the worker posts the same event (same id) at its next tick.
    Within its 24 hours it is retried as before; after them a failed attempt gives it up again."""
    conn = await db.raw_connection(session)
    await _own_subscription(conn, org_id, subscription_id)
    if not await repo.redeliver(conn, subscription_id, delivery_id, clock.now()):
        raise DeliveryNotFound()
    audit.record(
        session,
        actor=principal_actor,
        action="webhook_delivery.redeliver",
        subject_type="webhook_subscription",
        subject_id=subscription_id,
        data={"delivery_ids": [delivery_id]},
    )
    return await get_delivery(session, org_id, subscription_id, delivery_id)


async def redeliver_failed(
    session: AsyncSession,
    principal_actor: str,
    org_id: uuid.UUID | None,
    subscription_id: uuid.UUID,
    since: datetime,
) -> RedeliveredFailed:
    """Make every failed delivery of the subscription made at or after ``since`` pending and due now."""
    conn = await db.raw_connection(session)
    await _own_subscription(conn, org_id, subscription_id)
    ids = await repo.redeliver_failed(conn, subscription_id, since, clock.now())
    if ids:
        audit.record(
            session,
            actor=principal_actor,
            action="webhook_delivery.redeliver",
            subject_type="webhook_subscription",
            subject_id=subscription_id,
            data={"delivery_ids": ids, "since": since},
        )
    return RedeliveredFailed(redelivered=len(ids), delivery_ids=ids)
