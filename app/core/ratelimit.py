"""Fixed-window rate limits on Redis: ``hit(bucket, limit)`` or 429 with ``Retry-After``.

Windows follow the platform clock (:mod:`app.core.clock`), so a test moves to the next window by
moving the clock. If Redis is unreachable the request is let through (and logged): rate limits protect the
platform, they must not take it down.
"""

import logging

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
    try:
        client = redis.client()
        count = await client.incrby(key, cost)
        if count == cost:  # the window's first hit sets its lifetime
            await client.expire(key, window_seconds + 1)
    except RedisError:
        log.warning("rate limiter unavailable; letting the request through", extra={"bucket": bucket})
        return
    if count > limit:
        retry_after = max(1, int((window + 1) * window_seconds - now) + 1)
        raise RateLimited(
            f"more than {limit} requests in {window_seconds} s; retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
