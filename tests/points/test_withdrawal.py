"""A withdrawn entrustment stops submissions: every record for that person from that operator is
``not_entrusted``, whatever its time. A re-enrolment is a new entrustment, from its own consent on.
"""

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.core import clock, db
from tests.factories import make_operator, unique
from tests.factories_points import enrol, ensure_rule, make_methodology, phone, record, submit


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


async def ledger(user_id: str) -> dict:
    """Everything the ledger holds for a person: account, lots, entries and behaviour records."""
    uid = uuid.UUID(user_id)
    async with db.session_scope() as session:

        async def rows(sql: str) -> list[tuple]:
            return [tuple(r) for r in await session.execute(sa.text(sql), {"u": uid})]

        return {
            "account": await rows(
                "SELECT balance, lifetime_points, lifetime_reduction_g FROM point_accounts WHERE user_id = :u"
            ),
            "lots": await rows(
                "SELECT id, credited, remaining FROM point_lots WHERE user_id = :u ORDER BY id"
            ),
            "entries": await rows(
                "SELECT id, kind, amount, balance_after FROM ledger_entries WHERE user_id = :u ORDER BY id"
            ),
            "records": await rows(
                "SELECT record_id FROM behaviour_records WHERE user_id = :u ORDER BY record_id"
            ),
        }


async def withdraw(client, op, ext: str) -> datetime:
    r = await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)
    assert r.status_code == 200, r.text
    return datetime.fromisoformat(r.json()["withdrawn_at"])


def results(r) -> list[tuple]:
    assert r.status_code == 200, r.text
    return [(x["status"], x["code"], x["reduction_g"], x["points"]) for x in r.json()["results"]]


NOT_ENTRUSTED = ("rejected", "not_entrusted", 0, 0)


@pytest.fixture
async def btype() -> str:
    return await make_methodology(factor="1000")  # 1 km = 1000 g = 100 points


class TestWithdrawalStopsSubmissions:
    async def test_a_record_timed_before_the_withdrawal_is_not_entrusted(self, client, btype):
        op = await make_operator(client)
        u = await enrol(client, op, accepted_at=clock.now() - timedelta(days=30))
        ext = u["external_user_id"]
        credited = await submit(
            client, op, [record(ext, btype, quantity=1.0, start=clock.now() - timedelta(days=3))]
        )
        assert results(credited) == [("accepted", None, 1000, 100)]
        before = await ledger(u["user_id"])
        await withdraw(client, op, ext)

        late = record(ext, btype, quantity=1.0, start=clock.now() - timedelta(days=2))
        r = await submit(client, op, [late])
        assert results(r) == [NOT_ENTRUSTED]
        assert r.json()["summary"] == {"accepted": 0, "duplicate": 0, "rejected": 1}
        assert await ledger(u["user_id"]) == before
        assert before["account"] == [(100, 100, 1000)]

    async def test_every_record_whatever_its_time_is_not_entrusted(self, client, btype):
        op = await make_operator(client)
        u = await enrol(client, op, accepted_at=clock.now() - timedelta(days=30))
        ext = u["external_user_id"]
        await withdraw(client, op, ext)
        clock.set_offset(timedelta(minutes=5))
        try:
            r = await submit(
                client,
                op,
                [
                    record(ext, btype, start=clock.now() - timedelta(days=20)),
                    record(
                        ext, btype, start=clock.now() - timedelta(hours=1)
                    ),  # an hour ago: before the withdrawal
                    record(ext, btype, start=clock.now() - timedelta(minutes=2), minutes=1),  # after it
                ],
            )
        finally:
            clock.set_offset(timedelta(0))
        assert results(r) == [NOT_ENTRUSTED] * 3
        assert await ledger(u["user_id"]) == {"account": [], "lots": [], "entries": [], "records": []}

    async def test_the_same_person_at_another_operator_is_still_credited(self, client, btype):
        a, b = await make_operator(client), await make_operator(client)
        number = phone()
        at_a = await enrol(client, a, number=number, accepted_at=clock.now() - timedelta(days=30))
        at_b = await enrol(client, b, number=number, accepted_at=clock.now() - timedelta(days=30))
        await withdraw(client, a, at_a["external_user_id"])
        start = clock.now() - timedelta(days=2)
        r = await submit(client, a, [record(at_a["external_user_id"], btype, quantity=1.0, start=start)])
        assert results(r) == [NOT_ENTRUSTED]
        r = await submit(client, b, [record(at_b["external_user_id"], btype, quantity=1.0, start=start)])
        assert results(r) == [("accepted", None, 1000, 100)]


class TestReEnrolment:
    async def enrol_again(self, client, op, ext: str, number: str, accepted_at: datetime):
        return await client.post(
            "/v1/operator/users",
            json={
                "external_user_id": ext,
                "identifier": {"type": "phone", "value": number},
                "consent": {"agreement_version": "v2", "accepted_at": accepted_at.isoformat()},
            },
            headers=op.headers,
        )

    async def test_a_new_entrustment_counts_from_its_own_consent(self, client, btype):
        op = await make_operator(client)
        number, ext = phone(), unique("u")
        u = await enrol(
            client, op, external_user_id=ext, number=number, accepted_at=clock.now() - timedelta(days=30)
        )
        withdrawn_at = await withdraw(client, op, ext)
        consent = withdrawn_at + timedelta(seconds=1)
        clock.set_offset(timedelta(minutes=10))
        try:
            r = await self.enrol_again(client, op, ext, number, consent)
            assert r.status_code == 201, r.text
            assert (r.json()["user_id"], r.json()["created"]) == (u["user_id"], True)
            r = await submit(
                client,
                op,
                [
                    record(
                        ext, btype, quantity=1.0, start=clock.now() - timedelta(days=2)
                    ),  # the first entrustment's
                    record(
                        ext, btype, quantity=1.0, start=consent - timedelta(minutes=2), minutes=1
                    ),  # between the two
                    record(
                        ext, btype, quantity=1.0, start=consent + timedelta(minutes=1), minutes=1
                    ),  # the new one's
                ],
            )
        finally:
            clock.set_offset(timedelta(0))
        assert results(r) == [NOT_ENTRUSTED, NOT_ENTRUSTED, ("accepted", None, 1000, 100)]
        assert (await ledger(u["user_id"]))["account"] == [(100, 100, 1000)]

    async def test_a_consent_older_than_the_withdrawal_is_refused(self, client):
        op = await make_operator(client)
        number, ext = phone(), unique("u")
        await enrol(
            client, op, external_user_id=ext, number=number, accepted_at=clock.now() - timedelta(days=30)
        )
        withdrawn_at = await withdraw(client, op, ext)
        for accepted_at in (clock.now() - timedelta(days=30), withdrawn_at):
            r = await self.enrol_again(client, op, ext, number, accepted_at)
            assert r.status_code == 422, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "invalid_consent"
            assert r.json()["detail"] == (
                f"consent.accepted_at must be after the withdrawal of the previous entrustment ({withdrawn_at.isoformat()})"
            )
        r = await client.post(f"/v1/operator/users/{ext}/tokens", headers=op.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")
