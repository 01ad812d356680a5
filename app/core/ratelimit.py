"""Fixed-window rate limits on Redis: ``hit(bucket, limit)`` or 429 with ``Retry-After``.

Windows follow the platform clock (:mod:`app.core.clock`), so a test moves to the next window by
moving the clock. If Redis is unreachable the request is let through (and logged): rate limits protect the
platform, they must not take it down.
"""

import logging
import time
from dataclasses import dataclass

from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from app.core import clock, redis
from app.core.errors import RateLimited

log = logging.getLogger(__name__)


async def hit(bucket: str, limit: int, window_seconds: int = 60, *, cost: int = 1) -> None:
    if limit <= 0:
        return
    now = clock.now().timestamp()
    window = int(now // window_seconds)
    key = f"rl:{bucket}:{window}"
    try:  # the budget's exchange for one bucket: the hit and the window's lifetime in one round trip
        (count,) = await _exchange_script()(keys=[key], args=[cost, window_seconds + 1])
    except RedisError:
        log.warning("rate limiter unavailable; letting the request through", extra={"bucket": bucket})
        return
    if count > limit:
        raise _refused(limit, window_seconds, window, now)


def _refused(limit: int, window_seconds: int, window: int, now: float) -> RateLimited:
    """429 with ``Retry-After``: the seconds until the window ends, and one more."""
    retry_after = max(1, int((window + 1) * window_seconds - now) + 1)
    return RateLimited(
        f"more than {limit} requests in {window_seconds} s; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


# ---- the per-caller request budget: counted here, shared through Redis in batches ----------------------

SHARE_EVERY_SECONDS = 0.05
"""How often a process adds its counts to Redis and learns the others' (one Redis command for all buckets)."""


@dataclass(slots=True)
class _Count:
    window: int
    shared: int = 0  # the window's count in Redis at the last exchange: every process's hits
    sending: int = 0  # this process's hits on their way to Redis (an exchange not yet answered)
    unshared: int = 0  # this process's hits since


_EXCHANGE = """
local totals = {}
for i, key in ipairs(KEYS) do
  totals[i] = redis.call('INCRBY', key, ARGV[2 * i - 1])
  redis.call('EXPIRE', key, ARGV[2 * i])
end
return totals
"""
"""One exchange in one command: each bucket's hits added, its window's lifetime set, every total read back.
As a pipeline of two commands a bucket, redis-py spent ~14 µs of the process's CPU per bucket; as this
script, ~2 µs (150 buckets, the load of a busy process's 50 ms)."""
_exchange: AsyncScript | None = None

_counts: dict[tuple[str, int], _Count] = {}
_unshared: dict[tuple[str, int], _Count] = {}  # the buckets that moved since the last exchange
_shared_at = 0.0
_pruned_at = 0.0


async def throttle(bucket: str, limit: int, window_seconds: int = 60) -> None:
    """``hit`` for the per-caller budget every request spends: no Redis round trip of its own.

    The count is kept in this process and exchanged with Redis at most every ``SHARE_EVERY_SECONDS``
    by whichever request comes then (one Redis command for every bucket that moved). Within one process it
    is exact; across processes a caller may get up to what the others counted in the last 50 ms
    beyond ``limit`` before every process refuses. Login attempts, one-time codes and voucher guesses,
    where an attacker's every try counts, use :func:`hit` (one Redis round trip, exact everywhere).
    If Redis is unreachable, each process goes on counting its own.
    """
    global _shared_at
    if limit <= 0:
        return
    now = clock.now().timestamp()
    window = int(now // window_seconds)
    key = (bucket, window_seconds)
    count = _counts.get(key)
    if count is None or count.window != window:
        count = _counts[key] = _Count(window)
    if count.shared + count.sending + count.unshared >= limit:
        raise _refused(limit, window_seconds, window, now)
    count.unshared += 1
    _unshared[key] = count
    moment = time.monotonic()
    if moment - _shared_at >= SHARE_EVERY_SECONDS:
        _shared_at = moment
        await _share(now, moment)


async def _share(now: float, moment: float) -> None:
    """Add this process's unshared counts to Redis and read back each bucket's total."""
    global _pruned_at
    if moment - _pruned_at >= 60:  # forget the buckets whose window has ended
        _pruned_at = moment
        for key in [k for k, c in _counts.items() if c.window < int(now // k[1])]:
            del _counts[key]
    moved = [(key, c, c.unshared) for key, c in _unshared.items()]
    _unshared.clear()
    for _, count, n in moved:
        count.unshared -= n
        count.sending += n
    keys: list[str] = []
    args: list[int] = []
    for (bucket, seconds), count, n in moved:
        keys.append(f"rl:{bucket}:{count.window}")
        args += (n, seconds + 1)
    try:
        totals = await _exchange_script()(keys=keys, args=args)
    except RedisError:
        log.warning("rate limiter unavailable; counting in this process only")
        for key, count, n in moved:  # shared at the next exchange
            count.sending -= n
            count.unshared += n
            _unshared.setdefault(key, count)
        return
    for (_, count, n), total in zip(moved, totals, strict=True):
        count.sending -= n
        # every process's count, this batch included; exchanges answered out of order never lower it
        count.shared = max(count.shared, int(total))


def _exchange_script() -> AsyncScript:
    """The exchange's script on the current client (sent by its digest; redis-py loads it if Redis lost it)."""
    global _exchange
    client = redis.client()
    if _exchange is None or _exchange.registered_client is not client:
        _exchange = client.register_script(_EXCHANGE)
    return _exchange
