"""Rate limits on Redis: per organisation, per client IP for anonymous calls, per IP+username for logins."""

import asyncio
import time
from datetime import timedelta

import pytest

from app.core import clock, ratelimit, redis
from app.core.errors import RateLimited
from tests.factories import PASSWORD, application, make_org, random_ip, unique


@pytest.fixture(autouse=True)
def mid_minute():
    """Counts are per fixed window of the platform clock: hold it 30 s into a minute (no window ends)."""
    moment = clock.now().replace(second=30, microsecond=0)
    clock.freeze(moment)
    yield moment
    clock.freeze(None)


def assert_limited(r) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "rate_limited"
    assert r.headers["retry-after"] == "31"


class TestPerOrganisation:
    async def test_the_n_plus_first_request_is_refused(self, client, settings, monkeypatch):
        org = await make_org(client, "merchant")
        monkeypatch.setattr(settings, "rate_limit_per_minute", 3)
        for _ in range(3):
            r = await client.get(f"/v1/organizations/{org.id}", headers=org.headers)
            assert r.status_code == 200, r.text
        r = await client.get(f"/v1/organizations/{org.id}", headers=org.headers)
        assert_limited(r)
        assert r.json()["detail"].startswith("more than 3 requests in 60 s")

    async def test_organisations_have_their_own_budgets(self, client, settings, monkeypatch):
        first, second = await make_org(client, "merchant"), await make_org(client, "buyer")
        monkeypatch.setattr(settings, "rate_limit_per_minute", 2)
        for _ in range(2):
            assert (
                await client.get(f"/v1/organizations/{first.id}", headers=first.headers)
            ).status_code == 200
        assert_limited(await client.get(f"/v1/organizations/{first.id}", headers=first.headers))
        assert (await client.get(f"/v1/organizations/{second.id}", headers=second.headers)).status_code == 200


class TestAnonymousPerIp:
    async def test_per_client_ip(self, client_at, settings, monkeypatch):
        monkeypatch.setattr(settings, "rate_limit_per_minute", 2)
        async with client_at(random_ip()) as one, client_at(random_ip()) as other:
            for _ in range(2):
                assert (await one.post("/v1/organizations", json=application())).status_code == 201
            assert_limited(await one.post("/v1/organizations", json=application()))
            assert (await other.post("/v1/organizations", json=application())).status_code == 201


class TestLogin:
    async def test_per_ip_and_username(self, client_at, client, settings, monkeypatch):
        org = await make_org(client, "verifier")
        monkeypatch.setattr(settings, "login_rate_limit_per_minute", 2)
        form = {"grant_type": "password", "username": org.admin_username, "password": "wrong-password"}
        async with client_at(random_ip()) as attacker, client_at(random_ip()) as elsewhere:
            for _ in range(2):
                assert (await attacker.post("/v1/auth/token", data=form)).status_code == 400
            r = await attacker.post("/v1/auth/token", data={**form, "password": PASSWORD})
            assert_limited(r)  # even the right password: the budget is spent
            other_user = {**form, "username": unique("someone")}
            assert (await attacker.post("/v1/auth/token", data=other_user)).status_code == 400
            r = await elsewhere.post("/v1/auth/token", data={**form, "password": PASSWORD})
            assert r.status_code == 200, r.text


class TestLimiter:
    async def test_window_and_retry_after(self):
        bucket = unique("bucket")
        for _ in range(2):
            await ratelimit.hit(bucket, 2, window_seconds=10)
        with pytest.raises(RateLimited) as refused:
            await ratelimit.hit(bucket, 2, window_seconds=10)
        assert refused.value.headers["Retry-After"] == "11"  # the window ends in 10 s; one more for safety

    async def test_the_window_moves_with_the_platform_clock(self, mid_minute):
        bucket = unique("bucket")
        for _ in range(2):
            await ratelimit.hit(bucket, 2)
        clock.freeze(mid_minute + timedelta(seconds=29))
        with pytest.raises(RateLimited) as refused:
            await ratelimit.hit(bucket, 2)
        assert refused.value.headers["Retry-After"] == "2"
        clock.freeze(mid_minute + timedelta(seconds=30))  # the next minute: a fresh budget
        for _ in range(2):
            await ratelimit.hit(bucket, 2)
        with pytest.raises(RateLimited):
            await ratelimit.hit(bucket, 2)

    async def test_zero_means_unlimited(self):
        bucket = unique("bucket")
        for _ in range(5):
            await ratelimit.hit(bucket, 0)

    async def test_redis_down_lets_requests_through(self, monkeypatch):
        from redis.exceptions import ConnectionError as RedisConnectionError

        class Down:
            def register_script(self, _):
                raise RedisConnectionError("down")

        monkeypatch.setattr(ratelimit.redis, "client", lambda: Down())
        await ratelimit.hit(unique("bucket"), 1)
        await ratelimit.hit(unique("bucket"), 1)


class TestThrottle:
    """The per-caller budget: counted in the process, exchanged with Redis every 50 ms."""

    @pytest.fixture(autouse=True)
    def share_every_call(self, monkeypatch):
        monkeypatch.setattr(ratelimit, "SHARE_EVERY_SECONDS", 0.0)

    def key(self, bucket: str) -> str:
        return f"rl:{bucket}:{int(clock.now().timestamp() // 60)}"

    async def test_exact_within_a_process(self, monkeypatch):
        monkeypatch.setattr(ratelimit, "SHARE_EVERY_SECONDS", 3600.0)  # never exchanged: local counts alone
        bucket = unique("bucket")
        for _ in range(3):
            await ratelimit.throttle(bucket, 3)
        with pytest.raises(RateLimited) as refused:
            await ratelimit.throttle(bucket, 3)
        assert refused.value.headers["Retry-After"] == "31"
        assert refused.value.detail == "more than 3 requests in 60 s; retry after 31 s"

    async def test_counts_reach_redis_and_other_processes_counts_come_back(self):
        bucket = unique("bucket")
        for _ in range(3):
            await ratelimit.throttle(bucket, 20)
        assert int(await redis.client().get(self.key(bucket))) == 3
        await redis.client().incrby(self.key(bucket), 16)  # another process's hits: 19 in all
        await ratelimit.throttle(bucket, 20)  # the 20th: allowed, and the exchange learns the others'
        assert int(await redis.client().get(self.key(bucket))) == 20
        with pytest.raises(RateLimited):
            await ratelimit.throttle(bucket, 20)

    async def test_overlapping_exchanges_count_each_hit_once(self):
        bucket = unique("bucket")
        await asyncio.gather(*(ratelimit.throttle(bucket, 1_000) for _ in range(300)))  # exchanges overlap
        await ratelimit.throttle(bucket, 1_000)  # one more, after every exchange was answered
        assert int(await redis.client().get(self.key(bucket))) == 301
        count = ratelimit._counts[(bucket, 60)]
        assert (count.shared, count.sending, count.unshared) == (301, 0, 0)

    async def test_one_exchange_adds_every_bucket_and_sets_each_window_s_lifetime(self, monkeypatch):
        buckets = [unique("bucket") for _ in range(40)]
        monkeypatch.setattr(ratelimit, "SHARE_EVERY_SECONDS", 3600.0)
        monkeypatch.setattr(ratelimit, "_shared_at", time.monotonic())  # no exchange until the one below
        for i, bucket in enumerate(buckets):
            for _ in range(i % 3 + 1):
                await ratelimit.throttle(bucket, 100)
        await redis.client().incrby(self.key(buckets[0]), 7)  # another process's hits
        now = clock.now().timestamp()
        await ratelimit._share(now, time.monotonic())
        for i, bucket in enumerate(buckets):
            mine = i % 3 + 1
            assert int(await redis.client().get(self.key(bucket))) == mine + (7 if i == 0 else 0)
            assert 0 < await redis.client().ttl(self.key(bucket)) <= 61
            count = ratelimit._counts[(bucket, 60)]
            assert (count.shared, count.sending, count.unshared) == (mine + (7 if i == 0 else 0), 0, 0)
        assert not ratelimit._unshared

    async def test_an_exchange_after_redis_lost_its_scripts(self):
        bucket = unique("bucket")
        await ratelimit.throttle(bucket, 10)
        await redis.client().script_flush()
        await ratelimit.throttle(bucket, 10)
        assert int(await redis.client().get(self.key(bucket))) == 2

    async def test_redis_down_counts_in_the_process(self, monkeypatch):
        from redis.exceptions import ConnectionError as RedisConnectionError

        class Down:
            def register_script(self, _):
                raise RedisConnectionError("down")

        monkeypatch.setattr(ratelimit.redis, "client", lambda: Down())
        bucket = unique("bucket")
        for _ in range(2):
            await ratelimit.throttle(bucket, 2)
        with pytest.raises(RateLimited):
            await ratelimit.throttle(bucket, 2)

    async def test_zero_means_unlimited(self):
        bucket = unique("bucket")
        for _ in range(5):
            await ratelimit.throttle(bucket, 0)
