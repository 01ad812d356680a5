import asyncio
import re
from datetime import timedelta

from app.core import caching, clock
from app.public import service as public_service
from tests.factories import make_operator, make_org
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit


class TestRegisteredOrganisations:
    async def test_only_approved_organisations_are_listed(self, client):
        approved = await make_org(client, "verifier")
        pending = await make_org(client, "verifier", approve=False)
        names, cursor = {}, None
        while True:
            r = await client.get(
                "/v1/public/verifiers", params={"limit": 200, **({"cursor": cursor} if cursor else {})}
            )
            assert r.status_code == 200
            assert r.headers["cache-control"] == "public, max-age=60"
            names.update({o["id"]: o for o in r.json()["items"]})
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert approved.id in names and pending.id not in names
        assert set(names[approved.id]) == {"id", "kind", "name", "credit_code", "approved_at"}

    async def test_pages_by_name(self, client):
        for _ in range(5):
            await make_org(client, "scene_operator")
        first = (await client.get("/v1/public/scene-operators?limit=2")).json()
        second = (
            await client.get(f"/v1/public/scene-operators?limit=2&cursor={first['next_cursor']}")
        ).json()
        names = [o["name"] for o in first["items"] + second["items"]]
        assert names == sorted(names) and len(set(names)) == 4

    async def test_a_forged_cursor(self, client):
        r = await client.get("/v1/public/operators?cursor=WyJ4Iiwibm90LWEtdXVpZCJd")
        assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


class TestTotals:
    async def test_totals_move_with_a_credited_behaviour(self, client):
        await ensure_rule()
        btype = await make_methodology(factor="100")
        op = await make_operator(client)
        u = await enrol(client, op)
        before = (await client.get("/v1/public/totals")).json()
        r = await submit(
            client,
            op,
            [record(u["external_user_id"], btype, quantity=2.0, start=clock.now() - timedelta(hours=3))],
        )
        assert r.json()["summary"]["accepted"] == 1
        after = (await client.get("/v1/public/totals")).json()
        assert after["behaviours"] - before["behaviours"] == 1
        assert after["reduction_g"] - before["reduction_g"] == 200
        assert after["points_credited"] - before["points_credited"] == 20
        assert after["points_used"] == before["points_used"]
        assert after["organisations"]["operator"] >= 1


def _behaviours(page: str) -> int:
    return int(re.search(r'data-total="behaviours">([0-9,]+)<', page).group(1).replace(",", ""))


def _as_of(page: str) -> str:
    return re.search(r'id="figures-heading">[^<]*</h2>\s*<p class="muted">([^<]+)</p>', page).group(1)


class TestFiguresKept:
    """The platform-wide sums are read at most once a max-age by a process, and one read serves those waiting."""

    async def test_the_totals_and_the_home_page_stay_a_max_age_then_move(self, client, settings, monkeypatch):
        await ensure_rule()
        btype = await make_methodology(factor="100")
        op = await make_operator(client)
        u = await enrol(client, op)
        monkeypatch.setattr(settings, "public_figures_max_age_seconds", 60)
        now = [1000.0]
        monkeypatch.setattr(caching.time, "monotonic", lambda: now[0])
        platform_now = clock.now
        monkeypatch.setattr(clock, "now", lambda: platform_now() + timedelta(seconds=now[0] - 1000))
        public_service._TOTALS.forget()
        public_service._HOME.forget()
        try:
            before = (await client.get("/v1/public/totals")).json()
            home = (await client.get("/", headers={"accept": "text/html"})).text
            r = await submit(
                client,
                op,
                [record(u["external_user_id"], btype, quantity=2.0, start=clock.now() - timedelta(hours=3))],
            )
            assert r.json()["summary"]["accepted"] == 1
            now[0] += 59  # within the minute: the figures read before
            assert (await client.get("/v1/public/totals")).json() == before
            assert (
                await client.get("/", headers={"accept": "text/html"})
            ).text == home  # as of the same moment
            now[0] += 1  # a minute on: read again
            after = (await client.get("/v1/public/totals")).json()
            assert (
                after["behaviours"] - before["behaviours"],
                after["reduction_g"] - before["reduction_g"],
            ) == (
                1,
                200,
            )
            moved = (await client.get("/", headers={"accept": "text/html"})).text
            assert _behaviours(moved) == _behaviours(home) + 1
            assert _as_of(moved) != _as_of(
                home
            )  # the moment they were read (a minute later), which the page says
        finally:
            public_service._TOTALS.forget()
            public_service._HOME.forget()

    async def test_readers_of_a_stale_figure_wait_for_one_read(self):
        reads = []

        async def read() -> int:
            reads.append(1)
            await asyncio.sleep(0.05)
            return len(reads)

        kept = caching.Recent(lambda: 60)
        assert await asyncio.gather(*[kept.get(read) for _ in range(8)]) == [1] * 8
        assert len(reads) == 1
        fresh = caching.Recent(lambda: 0)  # 0: every time
        assert [await fresh.get(read) for _ in range(2)] == [2, 3]
