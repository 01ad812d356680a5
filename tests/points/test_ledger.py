import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.core import clock, db
from app.points import repository, service
from app.points.exceptions import InsufficientPoints
from app.points.ingestion import lot_expiry
from app.points.tasks import expire_all
from app.points.verify import verify
from tests.factories import authority_token, bearer, make_operator, person_session
from tests.factories_points import enrol, ensure_rule, make_methodology, phone, record, submit, user_headers


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()
    yield
    clock.freeze(None)
    clock.set_offset(timedelta(0))


async def earn(client, op, ext, btype, km: float, when=None):
    r = await submit(
        client, op, [record(ext, btype, quantity=km, start=when or clock.now() - timedelta(hours=2))]
    )
    assert r.json()["summary"]["accepted"] == 1, r.text
    return r.json()["results"][0]["points"]


async def person(client, number: str | None = None):
    btype = await make_methodology(factor="100")  # 1 km = 100 g = 10 points
    op = await make_operator(client)
    u = await enrol(client, op, number=number, accepted_at=clock.now() - timedelta(days=60))
    return op, u, btype


async def spend(user_id, points):
    async with db.session_scope() as session:
        return await service.spend(session, uuid.UUID(user_id), points, ref_type="test", ref_id="t")


async def account(client, op, ext):
    r = await client.get(f"/v1/operator/users/{ext}/account", headers=op.headers)
    assert r.status_code == 200
    return r.json()


class TestLots:
    async def test_lots_expire_at_midnight_within_the_lifetime(self):
        credited = clock.now()
        expires = lot_expiry(credited, 730)
        assert expires - credited <= timedelta(days=730)
        assert expires.astimezone(clock.zone()).hour == 0

    async def test_spending_takes_the_soonest_expiring_lot_first(self, client):
        op, u, btype = await person(client)
        ext = u["external_user_id"]
        await earn(client, op, ext, btype, 3)  # 30 points, lot A
        clock.set_offset(timedelta(days=1))
        await earn(client, op, ext, btype, 5)  # 50 points, lot B expires a day later
        acc = await account(client, op, ext)
        assert [e["points"] for e in acc["expiring"]] == [30, 50]
        await spend(u["user_id"], 40)
        acc = await account(client, op, ext)
        assert acc["balance"] == 40
        assert [e["points"] for e in acc["expiring"]] == [40]
        assert _parse(acc["expiring"][0]["expires_at"]) == _parse((await _lot_times(u["user_id"]))[1])

    async def test_an_expired_lot_is_never_spent_even_before_the_job(self, client):
        op, u, btype = await person(client)
        ext = u["external_user_id"]
        await earn(client, op, ext, btype, 3)
        expires = (await _lot_times(u["user_id"]))[0]
        clock.freeze(_parse(expires) - timedelta(microseconds=1))
        assert (await account(client, op, ext))["balance"] == 30
        clock.freeze(_parse(expires))
        assert (await account(client, op, ext))["balance"] == 0
        with pytest.raises(InsufficientPoints):
            await spend(u["user_id"], 1)

    async def test_the_expiry_job_writes_expire_entries_at_the_boundary(self, client):
        op, u, btype = await person(client)
        ext = u["external_user_id"]
        await earn(client, op, ext, btype, 3)
        expires = _parse((await _lot_times(u["user_id"]))[0])
        async with db.session_scope() as session:
            before = await service.expire_due(session, now=expires - timedelta(microseconds=1))
        assert await _entries(u["user_id"]) == [("earn", 30, 30)]
        async with db.session_scope() as session:
            done = await service.expire_due(session, now=expires)
        assert done.points >= 30 and before.points >= 0
        assert await _entries(u["user_id"]) == [("earn", 30, 30), ("expire", -30, 0)]


class TestRefund:
    async def test_refund_returns_points_to_their_lots_and_expires_the_expired_share(self, client):
        op, u, btype = await person(client)
        ext = u["external_user_id"]
        await earn(client, op, ext, btype, 3)  # lot A: 30
        clock.set_offset(timedelta(days=1))
        await earn(client, op, ext, btype, 5)  # lot B: 50
        spent = await spend(u["user_id"], 40)  # 30 from A, 10 from B
        first = _parse((await _lot_times(u["user_id"]))[0])
        clock.freeze(first)  # lot A has expired since
        async with db.session_scope() as session:
            result = await service.refund(session, spent.entry_id, ref_type="test", ref_id="r")
        assert result == service.Refund(refunded=40, expired=30, balance=50)
        assert (await _entries(u["user_id"]))[-3:] == [
            ("redeem", -40, 40),
            ("refund", 40, 80),
            ("expire", -30, 50),
        ]
        assert (await account(client, op, ext))["balance"] == 50


class TestClawback:
    async def test_authority_claws_back_with_a_reason(self, client):
        op, u, btype = await person(client)
        await earn(client, op, u["external_user_id"], btype, 3)
        token = await authority_token(client)
        r = await client.post(
            f"/v1/points/accounts/{u['user_id']}/clawback",
            json={"points": 20, "reason": "fraudulent records"},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        assert r.json()["points"] == 20 and r.json()["balance_after"] == 10
        r = await client.post(
            f"/v1/points/accounts/{u['user_id']}/clawback",
            json={"points": 11, "reason": "more"},
            headers=bearer(token),
        )
        assert (r.status_code, r.json()["code"]) == (409, "insufficient_points")

    async def test_an_operator_cannot_claw_back(self, client):
        op, u, btype = await person(client)
        r = await client.post(
            f"/v1/points/accounts/{u['user_id']}/clawback",
            json={"points": 1, "reason": "mine"},
            headers=op.headers,
        )
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")


class TestViews:
    async def test_account_ledger_and_behaviours_for_the_person(self, client):
        number = phone()
        op, u, btype = await person(client, number)
        ext = u["external_user_id"]
        for i in range(3):
            await earn(client, op, ext, btype, 1 + i, when=clock.now() - timedelta(hours=10 - i))
        h = await user_headers(client, op, ext)
        acc = (await client.get("/v1/me/account", headers=h)).json()
        assert (acc["balance"], acc["lifetime_points"], acc["lifetime_reduction_g"]) == (60, 60, 600)
        assert sum(e["points"] for e in acc["expiring"]) == acc["balance"]
        page1 = (await client.get("/v1/me/ledger?limit=2", headers=h)).json()
        assert [e["amount"] for e in page1["items"]] == [30, 20]
        page2 = (await client.get(f"/v1/me/ledger?limit=2&cursor={page1['next_cursor']}", headers=h)).json()
        assert [e["amount"] for e in page2["items"]] == [10] and page2["next_cursor"] is None
        b1 = (await client.get("/v1/me/behaviours?limit=2", headers=h)).json()
        b2 = (await client.get(f"/v1/me/behaviours?limit=2&cursor={b1['next_cursor']}", headers=h)).json()
        assert [b["points"] for b in b1["items"] + b2["items"]] == [30, 20, 10]
        export = (await client.get("/v1/me/export", headers=h)).json()
        assert export["code"] == "platform_session_required"  # never through an operator's token
        await person_session(client, number)
        export = (await client.get("/v1/me/export")).json()
        assert len(export["ledger"]) == 3 and len(export["behaviours"]) == 3
        assert export["entrustments"][0]["external_user_id"] == ext

    async def test_bad_cursor(self, client):
        op, u, _ = await person(client)
        h = await user_headers(client, op, u["external_user_id"])
        r = await client.get("/v1/me/ledger?cursor=nonsense", headers=h)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


class TestVerify:
    async def test_verify_holds_and_catches_a_corrupted_row(self, client):
        op, u, btype = await person(client)
        await earn(client, op, u["external_user_id"], btype, 3)
        async with db.sessionmaker()() as session:
            assert await verify(session) == []
            await session.execute(
                sa.text("UPDATE point_lots SET remaining = remaining - 1 WHERE user_id = :u"),
                {"u": uuid.UUID(u["user_id"])},
            )
            broken = [v.check for v in await verify(session)]
            await session.rollback()
        assert broken == [
            "account balance equals the sum of its lots' remainders",
            "each lot's remainder equals what was put in minus what was taken",
        ]

    async def test_verify_catches_a_balance_that_was_set(self, client):
        op, u, btype = await person(client)
        await earn(client, op, u["external_user_id"], btype, 3)
        async with db.sessionmaker()() as session:
            await session.execute(
                sa.text("UPDATE ledger_entries SET balance_after = 99 WHERE user_id = :u"),
                {"u": uuid.UUID(u["user_id"])},
            )
            broken = [v.check for v in await verify(session)]
            await session.rollback()
        assert broken == ["each entry's balance_after follows the one before it"]


# ---- the expiry job's read of who has due lots, and lots emptied in place --------------------------------
# A run that leaves nobody due marks how far every lot is empty (a day before its time); where the platform's
# clock only goes forward (production) the next runs read only lots due after the mark, and a run's later pass
# only lots due after its first. A lot's expiry writes no index entry (a heap-only update).


async def _two_people_due_a_day_apart(client):
    """A's lot falls due a day before B's; the moment B's falls due."""
    op, a, btype = await person(client)
    await earn(client, op, a["external_user_id"], btype, 3)
    clock.set_offset(timedelta(days=1))
    op_b, b, btype_b = await person(client)
    await earn(client, op_b, b["external_user_id"], btype_b, 3)
    clock.set_offset(timedelta(0))
    due_a = _parse((await _lot_times(a["user_id"]))[0])
    due_b = _parse((await _lot_times(b["user_id"]))[0])
    assert due_b - due_a == timedelta(days=1)
    return uuid.UUID(a["user_id"]), uuid.UUID(b["user_id"]), due_a, due_b


async def _due(now, **kw) -> list[uuid.UUID]:
    async with db.session_scope() as session:
        return await service.people_with_due_lots(session, now, **kw)


class TestTheMark:
    async def test_a_run_that_leaves_nobody_due_marks_a_day_before_its_time(self, client):
        op, u, btype = await person(client)
        await earn(client, op, u["external_user_id"], btype, 3)
        now = _parse((await _lot_times(u["user_id"]))[0]) + timedelta(hours=1)
        clock.freeze(now)
        done = await expire_all()
        assert done["points"] >= 30
        assert await _entries(u["user_id"]) == [("earn", 30, 30), ("expire", -30, 0)]
        async with db.session_scope() as session:
            conn = await db.raw_connection(session)
            assert await repository.expired_through(conn) == now - timedelta(days=1)
            marked_at = await conn.fetchval("SELECT marked_at FROM point_expiry_mark")
        assert marked_at == now

    async def test_where_the_clock_only_goes_forward_lots_due_by_the_mark_are_not_read(
        self, client, monkeypatch
    ):
        a, b, due_a, due_b = await _two_people_due_a_day_apart(client)
        async with db.session_scope() as session:
            # a mark that says A's day is over (a state production never reaches: it proves the bound is used)
            await repository.mark_expired_through(await db.raw_connection(session), due_a, clock.now())
        monkeypatch.setattr(clock, "sandbox_allowed", lambda: False)
        assert [p for p in await _due(due_b) if p in (a, b)] == [b]
        # a mark not behind the run's time is not trusted
        assert sorted(p for p in await _due(due_a) if p in (a, b)) == [a]

    async def test_where_the_clock_can_be_put_back_every_due_lot_is_read(self, client):
        a, b, due_a, due_b = await _two_people_due_a_day_apart(client)
        async with db.session_scope() as session:
            await repository.mark_expired_through(await db.raw_connection(session), due_a, clock.now())
        assert clock.sandbox_allowed()
        assert [p for p in await _due(due_b) if p in (a, b)] == sorted([a, b])

    async def test_a_later_pass_reads_only_lots_due_after_the_first(self, client):
        a, b, due_a, due_b = await _two_people_due_a_day_apart(client)
        assert [p for p in await _due(due_b, after=due_a) if p in (a, b)] == [b]
        assert [
            p for p in await _due(due_b, after=due_a - timedelta(microseconds=1)) if p in (a, b)
        ] == sorted([a, b])

    async def test_expire_due_marks_when_nobody_is_due(self, client):
        now = clock.now() - timedelta(days=20000)  # before any lot of any test
        async with db.session_scope() as session:
            assert await service.expire_due(session, now=now) == service.Expiry(0, 0)
            assert await repository.expired_through(await db.raw_connection(session)) == now - timedelta(
                days=1
            )


async def _storage(table: str) -> tuple[list[str], list[str] | None]:
    """The table's indexes (``CREATE … INDEX name``, sorted) and its storage options."""
    async with db.session_scope() as session:
        defs = (
            await session.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table}
            )
        ).scalars()
        options = (
            await session.execute(sa.text("SELECT reloptions FROM pg_class WHERE relname = :t"), {"t": table})
        ).scalar_one()
    return sorted(d.split(" ON ")[0] for d in defs), options


class TestInPlace:
    async def test_no_index_of_a_lot_covers_what_expiry_changes(self, client):
        assert await _storage("point_lots") == (
            [
                "CREATE INDEX ix_point_lots_expires_at",
                "CREATE UNIQUE INDEX pk_point_lots",
                "CREATE UNIQUE INDEX uq_point_lots_user_id_expires_at",
            ],
            ["fillfactor=50"],
        )

    async def test_an_account_is_rewritten_in_place(self, client):
        assert await _storage("point_accounts") == (
            ["CREATE UNIQUE INDEX pk_point_accounts"],
            ["fillfactor=50"],
        )

    async def test_expiring_a_lot_is_a_heap_only_update(self, client):
        op, u, btype = await person(client)
        await earn(client, op, u["external_user_id"], btype, 3)
        user = uuid.UUID(u["user_id"])
        due = _parse((await _lot_times(u["user_id"]))[0])
        counts = sa.text(
            "SELECT pg_stat_get_xact_tuples_updated('point_lots'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('point_lots'::regclass),"
            " pg_stat_get_xact_tuples_updated('point_accounts'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('point_accounts'::regclass)"
        )
        async with db.session_scope() as session:
            before = (await session.execute(counts)).one()
            done = await service.expire_people(session, [user], due)
            after = (await session.execute(counts)).one()
        assert done == service.Expiry(1, 30)
        assert tuple(a - b for a, b in zip(after, before, strict=True)) == (
            1,
            1,
            1,
            1,
        )  # the lot, the account


def _parse(value):
    from datetime import datetime

    return value if not isinstance(value, str) else datetime.fromisoformat(value)


async def _lot_times(user_id):
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT expires_at FROM point_lots WHERE user_id = :u ORDER BY expires_at"),
            {"u": uuid.UUID(user_id)},
        )
        return [r[0].isoformat() for r in rows]


async def _entries(user_id):
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT kind, amount, balance_after FROM ledger_entries WHERE user_id = :u ORDER BY id"),
            {"u": uuid.UUID(user_id)},
        )
        return [tuple(r) for r in rows]
