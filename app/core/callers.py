"""Callers' standing: whether one, once checked, may be trusted again — one epoch per process.

Every authenticated request must stop at once when its caller's standing changes: an organisation
suspended, a staff account disabled, a person's account deleted, an entrustment withdrawn, a refresh
family revoked. The check is a read of PostgreSQL; a process may keep a positive answer (never a
refusal) for at most :data:`KEEP_SECONDS`, tagged with the :func:`epoch` it was read in, and must read
again once the epoch moves. The epoch moves

* in this process, when a repository writes one of those changes (:func:`standing_changed`, before its commit);
* in every process, when any connection commits one: triggers on the tables (migration 0013) send
  ``NOTIFY caller_standing`` with the commit, and :func:`listen` keeps a connection listening.

While that connection is down, :func:`epoch` is None and nothing is kept: every request reads.
A change made by hand in SQL reaches every process with its commit's notification.

What one process found good, the others may trust (:func:`shared_proof`). A notification names the transaction
that sent it (its ``pg_current_xact_id``, never used twice by a cluster; migration 0023), and every listener hears
them in commit order: two processes whose last one heard is the same one know of the same changes. So a positive
answer read after hearing notification *N* is kept in the workers' shared table (:mod:`app.core.proofs`) under a
digest of *N*, the caller and the current ``KEEP_SECONDS`` window; a process whose last one heard is *N* too may
use it, and one that has heard any later change, or changed a standing itself since, or not yet heard one since
it (re)connected, never finds it. A listener announces itself with a notification of its own when it connects
(the other processes then read their callers again once), so it shares from its first moment. A payload that is
no transaction id, or one heard before (only a ``NOTIFY`` by hand could send either), shares nothing until the
next change.

A route whose one statement can check its caller's standing itself (an order: ``mall_order_request`` with
``user_caller_may_act``; a balance read: ``points.repository.checked_account_views``) is handed a standing not kept
as :class:`Deferred` (:func:`defer`, :func:`deferred`): the statement checks it and the route says what it found
(:meth:`Deferred.found_good`, or :meth:`Deferred.read`, which refuses as every route does). One left unchecked fails
the request before it answers (:func:`check_taken`).
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from typing import Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import proofs

log = logging.getLogger(__name__)

CHANNEL = "caller_standing"
KEEP_SECONDS = 30.0
"""How long a positive standing is kept at most, even if no change is heard of (a lost notification)."""
RECONNECT_SECONDS = 1.0

HEARD_REMEMBERED = 10_000
"""Notifications remembered to refuse one heard again (a transaction id never comes twice from PostgreSQL)."""

_epoch = 0
_listening = False
_last_heard: bytes | None = None  # the last notification's transaction, while nothing changed here since
_heard_before: OrderedDict[str, None] = OrderedDict()


def epoch() -> int | None:
    """The current epoch; None while changes made elsewhere cannot be heard of (keep nothing)."""
    return _epoch if _listening else None


def standing_changed() -> None:
    """A standing changed here: every answer kept in this process is read again, none shared is trusted."""
    global _epoch, _last_heard
    _epoch += 1
    _last_heard = None


def shared_proof(caller: bytes) -> tuple[bytes, float] | None:
    """What a positive standing of ``caller`` (bytes that name it) found now is known by in the workers' shared
    table, and the seconds it may still be kept (to the end of the current ``KEEP_SECONDS`` window); None when
    this process may neither trust nor share one (see the module's description). Taken before the read."""
    if not _listening or _last_heard is None:
        return None
    now = time.time()
    window = int(now // KEEP_SECONDS)
    digest = proofs.digest(b"caller standing", caller, _last_heard, str(window).encode())
    return digest, (window + 1) * KEEP_SECONDS - now


DEFERRED = "caller_standing_deferred"
"""``session.info`` key: the caller's standing, to be checked by the route's statement (:func:`defer`)."""


class Deferred(Protocol):
    """A caller's standing this process does not know, left to the route's statement to check."""

    @property
    def family(self) -> uuid.UUID | None:
        """The refresh family the token was issued from (the authorization code flow), which must not be revoked."""

    def found_good(self) -> None:
        """The statement found the caller in good standing: kept as a read would have kept it."""

    async def read(self, session: AsyncSession) -> None:
        """The statement refused the caller: read the standing as every request does, and refuse with the reason
        (returns only if it is good again by now)."""


def defer(session: AsyncSession, standing: Deferred) -> None:
    session.info[DEFERRED] = standing


def deferred(session: AsyncSession) -> Deferred | None:
    """The request's caller standing left to its statement (taken: the route must say what the statement found)."""
    taken: Deferred | None = session.info.pop(DEFERRED, None)
    return taken


def check_taken(session: AsyncSession) -> None:
    """Before a request's success is committed or answered: a standing left to a statement no statement checked is
    a route's mistake."""
    if DEFERRED in session.info:
        raise RuntimeError("the route's statements never checked its caller's standing")


def _heard(payload: str) -> None:
    global _last_heard
    standing_changed()
    if payload.isascii() and payload.isdigit() and payload not in _heard_before:
        _heard_before[payload] = None
        if len(_heard_before) > HEARD_REMEMBERED:
            _heard_before.popitem(last=False)
        _last_heard = payload.encode()


async def listen(database_url: str) -> None:
    """Listen for committed changes, for ever (a server's background task); reconnect when cut off."""
    while True:
        await _listen_once(database_url)
        await asyncio.sleep(RECONNECT_SECONDS)


async def _listen_once(database_url: str) -> None:
    """One connection's listening, from its announcement until it is lost."""
    global _listening
    lost, arrived = asyncio.Event(), asyncio.Event()

    def heard(_connection: object, _pid: int, _channel: str, payload: object) -> None:
        _heard(str(payload))
        arrived.set()

    try:
        conn = await asyncpg.connect(database_url, server_settings={"application_name": "carbon-standing"})
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning(
            "standing listener cannot connect; every request reads its caller", extra={"error": str(exc)}
        )
        return
    try:
        conn.add_termination_listener(lambda _: lost.set())
        await conn.add_listener(CHANNEL, heard)
        # announced: this process (and every other) stands where its own notification comes back; hearing it
        # moves the epoch past anything committed while nobody listened
        await conn.execute("SELECT pg_notify($1, pg_current_xact_id()::text)", CHANNEL)
        await asyncio.wait_for(arrived.wait(), timeout=10)
        _listening = True
        await lost.wait()
        log.warning("standing listener lost its connection; every request reads its caller")
    except (OSError, asyncpg.PostgresError, TimeoutError):
        pass
    finally:
        _listening = False
        standing_changed()
        with contextlib.suppress(Exception):
            await conn.close(timeout=1)
