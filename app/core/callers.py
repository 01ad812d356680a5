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
"""

import asyncio
import contextlib
import logging

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "caller_standing"
KEEP_SECONDS = 30.0
"""How long a positive standing is kept at most, even if no change is heard of (a lost notification)."""
RECONNECT_SECONDS = 1.0

_epoch = 0
_listening = False


def epoch() -> int | None:
    """The current epoch; None while changes made elsewhere cannot be heard of (keep nothing)."""
    return _epoch if _listening else None


def standing_changed() -> None:
    """A standing changed here: every answer kept in this process is read again."""
    global _epoch
    _epoch += 1


def _heard(*_: object) -> None:
    standing_changed()


async def listen(database_url: str) -> None:
    """Listen for committed changes, for ever (a server's background task); reconnect when cut off."""
    global _listening
    while True:
        lost = asyncio.Event()

        def cut_off(_: object, lost: asyncio.Event = lost) -> None:
            lost.set()

        try:
            conn = await asyncpg.connect(
                database_url, server_settings={"application_name": "carbon-standing"}
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning(
                "standing listener cannot connect; every request reads its caller", extra={"error": str(exc)}
            )
            await asyncio.sleep(RECONNECT_SECONDS)
            continue
        try:
            conn.add_termination_listener(cut_off)
            await conn.add_listener(CHANNEL, _heard)
            standing_changed()  # anything committed while nobody listened
            _listening = True
            await lost.wait()
            log.warning("standing listener lost its connection; every request reads its caller")
        except (OSError, asyncpg.PostgresError):
            pass
        finally:
            _listening = False
            standing_changed()
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
        await asyncio.sleep(RECONNECT_SECONDS)
