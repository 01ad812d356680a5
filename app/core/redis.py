"""The shared Redis client. Redis holds nothing that cannot be rebuilt from PostgreSQL."""

import redis.asyncio as aioredis

_client: aioredis.Redis | None = None


def init(url: str) -> aioredis.Redis:
    global _client
    _client = aioredis.from_url(url, decode_responses=False, health_check_interval=30)
    return _client


def client() -> aioredis.Redis:
    if _client is None:
        raise RuntimeError("redis not initialised")
    return _client


async def close() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
    _client = None
