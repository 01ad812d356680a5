import asyncio
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.core import clock
from app.core.config import get_settings
from tests.factories import make_operator, signed, unique
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


def outcome(r, i=0):
    assert r.status_code == 200, r.text
    return r.json()["results"][i]


class TestCrediting:
    async def test_reduction_and_points_round_down(self, client):
        btype = await make_methodology(factor="46.7")
        op = await make_operator(client)
        u = await enrol(client, op)
        r = await submit(client, op, [record(u["external_user_id"], btype, quantity=12.4)])
        res = outcome(r)
        assert res == {
            "record_id": res["record_id"],
            "status": "accepted",
            "code": None,
            "reduction_g": 579,
            "points": 57,
            "methodology_version": f"{btype}@1",
            "rule_version": res["rule_version"],
        }
        assert r.json()["summary"] == {"accepted": 1, "duplicate": 0, "rejected": 0}

    async def test_mixed_batch_keeps_the_good_and_rejects_the_bad_one_by_one(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op)
        ext = u["external_user_id"]
        now = clock.now()
        records = [
            record(ext, btype, quantity=1.0, start=now - timedelta(hours=10)),
            record(ext, "no-such-type", quantity=1.0),
            record("stranger", btype, quantity=1.0),
            record(ext, btype, quantity=-3, start=now - timedelta(hours=9)),
            record(ext, btype, quantity=1e12, start=now - timedelta(hours=8)),
            record(ext, btype, quantity=61, start=now - timedelta(hours=7)),
            record(ext, btype, quantity=1.0, unit="mile", start=now - timedelta(hours=6)),
            record(ext, btype, quantity=1.0, start=now + timedelta(hours=1)),
            record(ext, btype, quantity=1.0, start=now - timedelta(days=200)),
            {
                **record(ext, btype, quantity=1.0, start=now - timedelta(hours=5)),
                "started_at": "2026-11-20T08:00:00",
            },
            {**record(ext, btype, quantity=1.0, start=now - timedelta(hours=4)), "evidence": None},
            "not a record",
            record(ext, btype, quantity=2.0, start=now - timedelta(hours=3)),
        ]
        r = await submit(client, op, records)
        codes = [(x["status"], x["code"]) for x in r.json()["results"]]
        assert codes == [
            ("accepted", None),
            ("rejected", "unknown_type"),
            ("rejected", "not_entrusted"),
            ("rejected", "implausible_quantity"),
            ("rejected", "implausible_quantity"),
            ("rejected", "implausible_quantity"),
            ("rejected", "unit_mismatch"),
            ("rejected", "future_time"),
            ("rejected", "too_old"),
            ("rejected", "invalid_time"),
            ("rejected", "invalid_record"),
            ("rejected", "invalid_record"),
            ("accepted", None),
        ]
        assert r.json()["summary"] == {"accepted": 2, "duplicate": 0, "rejected": 11}
        assert uuid.UUID(r.json()["batch_id"]).version == 7  # time-ordered (app.core.ids)

    async def test_methodology_version_in_force_at_started_at(self, client):
        boundary = clock.now() - timedelta(days=1)
        btype = await make_methodology(factor="10", effective_to=boundary)
        await make_methodology(
            behaviour_type=btype, code=btype, version=2, factor="20", effective_from=boundary
        )
        op = await make_operator(client)
        u = await enrol(client, op)
        ext = u["external_user_id"]
        r = await submit(
            client,
            op,
            [
                record(ext, btype, quantity=10, start=boundary - timedelta(hours=1)),
                record(ext, btype, quantity=10, start=boundary),
            ],
        )
        before, after = outcome(r, 0), outcome(r, 1)
        assert (before["methodology_version"], before["reduction_g"]) == (f"{btype}@1", 100)
        assert (after["methodology_version"], after["reduction_g"]) == (f"{btype}@2", 200)

    async def test_before_any_version_is_out_of_effective_period(self, client):
        btype = await make_methodology(effective_from=clock.now() - timedelta(days=1))
        op = await make_operator(client)
        u = await enrol(client, op)
        r = await submit(
            client, op, [record(u["external_user_id"], btype, start=clock.now() - timedelta(days=2))]
        )
        assert outcome(r)["code"] == "out_of_effective_period"

    async def test_entrustment_must_cover_the_records_time(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op, accepted_at=clock.now() - timedelta(days=1))
        ext = u["external_user_id"]
        early = record(ext, btype, start=clock.now() - timedelta(days=2))
        r = await submit(client, op, [early])
        assert outcome(r)["code"] == "not_entrusted"
        inside = record(ext, btype, start=clock.now() - timedelta(hours=3))
        await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)
        after = record(ext, btype, start=clock.now() + timedelta(seconds=1), minutes=1)
        clock.set_offset(timedelta(minutes=5))
        try:
            r = await submit(client, op, [inside, after])
        finally:
            clock.set_offset(timedelta(0))
        # withdrawn: no more submissions, even for a behaviour the entrustment covered
        assert [(x["status"], x["code"]) for x in r.json()["results"]] == [("rejected", "not_entrusted")] * 2


def yesterday_morning() -> datetime:
    """08:00 of yesterday in the platform's time zone: three hourly records fall on one local day (daily
    limits count per local day), whatever the hour the test runs at."""
    local = clock.now().astimezone(ZoneInfo(get_settings().timezone)) - timedelta(days=1)
    return local.replace(hour=8, minute=0, second=0, microsecond=0)


class TestDailyLimits:
    async def test_points_cap_cuts_points_but_keeps_the_reduction(self, client):
        btype = await make_methodology(factor="1000", max_record="60", max_day="1000")
        op = await make_operator(client)
        u = await enrol(client, op)
        ext = u["external_user_id"]
        day = yesterday_morning()
        r = await submit(
            client,
            op,
            [
                record(ext, btype, quantity=1.5, start=day),  # 1500 g → 150 points
                record(
                    ext, btype, quantity=1.0, start=day + timedelta(hours=1)
                ),  # 1000 g → 100, only 50 left
                record(ext, btype, quantity=1.0, start=day + timedelta(hours=2)),  # cap reached: 0 points
            ],
        )
        got = [(x["status"], x["code"], x["reduction_g"], x["points"]) for x in r.json()["results"]]
        assert got == [
            ("accepted", None, 1500, 150),
            ("accepted", "capped", 1000, 50),
            ("accepted", "capped", 1000, 0),
        ]

    async def test_per_type_cap(self, client):
        btype = await make_methodology(behaviour_type=f"walking-{unique('x')}", factor="1000")
        # the rule's per-type cap applies to the exact type 'walking'; other types fall under the overall cap only
        op = await make_operator(client)
        u = await enrol(client, op)
        r = await submit(client, op, [record(u["external_user_id"], btype, quantity=1.0)])
        assert outcome(r)["points"] == 100

    async def test_quantity_bound_per_day(self, client):
        btype = await make_methodology(factor="1", max_record="60", max_day="100")
        op = await make_operator(client)
        u = await enrol(client, op)
        ext = u["external_user_id"]
        day = yesterday_morning()
        r = await submit(
            client,
            op,
            [
                record(ext, btype, quantity=60, start=day),
                record(ext, btype, quantity=60, start=day + timedelta(hours=1)),
                record(ext, btype, quantity=1, start=day + timedelta(hours=2)),
            ],
        )
        got = [(x["status"], x["code"], x["reduction_g"]) for x in r.json()["results"]]
        assert got == [
            ("accepted", None, 60),
            ("accepted", "quantity_capped", 40),
            ("rejected", "daily_limit_reached", 0),
        ]

    async def test_each_local_day_counts_what_each_person_earned_on_it_before(self, client):
        btype = await make_methodology(factor="1", max_record="60", max_day="100")
        op = await make_operator(client)
        a, b = [(await enrol(client, op))["external_user_id"] for _ in range(2)]
        day = yesterday_morning()
        before = day - timedelta(days=1)
        r = await submit(
            client,
            op,
            [
                record(a, btype, quantity=50, start=before),
                record(a, btype, quantity=30, start=day),
                record(b, btype, quantity=60, start=day),
            ],
        )
        assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 3
        r = await submit(
            client,
            op,
            [
                record(a, btype, quantity=60, start=before + timedelta(hours=1)),  # 50 used that day: 50 left
                record(a, btype, quantity=60, start=day + timedelta(hours=1)),  # 30 used: all 60 fit
                record(b, btype, quantity=60, start=day + timedelta(hours=1)),  # 60 used: 40 left
                record(b, btype, quantity=60, start=before + timedelta(hours=2)),  # nothing that day yet
                record(b, btype, quantity=1, start=day + timedelta(hours=2)),  # the day's 100 reached
            ],
        )
        got = [(x["status"], x["code"], x["reduction_g"]) for x in r.json()["results"]]
        assert got == [
            ("accepted", "quantity_capped", 50),
            ("accepted", None, 60),
            ("accepted", "quantity_capped", 40),
            ("accepted", None, 60),
            ("rejected", "daily_limit_reached", 0),
        ]


class TestUniqueness:
    async def test_a_retried_record_is_a_duplicate_with_its_first_outcome(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op)
        rec = record(u["external_user_id"], btype, quantity=5)
        first = outcome(await submit(client, op, [rec]))
        again = outcome(await submit(client, op, [rec]))
        assert again == {**first, "status": "duplicate"}

    async def test_retried_records_of_several_versions_keep_each_ones_version(self, client):
        # the credit sends each record's versions as places in arrays: each record keeps its own
        a, b = await make_methodology(factor="10"), await make_methodology(factor="20", unit="kWh")
        op = await make_operator(client)
        ext = (await enrol(client, op))["external_user_id"]
        start = clock.now() - timedelta(hours=6)
        records = [
            record(ext, a, quantity=1, start=start, record_id="a-1"),
            record(ext, b, quantity=1, unit="kWh", start=start, record_id="b-1"),
            record(ext, a, quantity=2, start=start + timedelta(hours=1), record_id="a-2"),
        ]
        first = (await submit(client, op, records)).json()["results"]
        again = (await submit(client, op, records)).json()["results"]
        got = [(x["record_id"], x["status"], x["methodology_version"], x["reduction_g"]) for x in again]
        assert got == [
            ("a-1", "duplicate", f"{a}@1", 10),
            ("b-1", "duplicate", f"{b}@1", 20),
            ("a-2", "duplicate", f"{a}@1", 20),
        ]
        assert [x["methodology_version"] for x in first] == [f"{a}@1", f"{b}@1", f"{a}@1"]

    async def test_the_same_record_twice_in_one_batch(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op)
        rec = record(u["external_user_id"], btype, quantity=5)
        r = await submit(client, op, [rec, rec])
        assert [x["status"] for x in r.json()["results"]] == ["accepted", "duplicate"]
        assert r.json()["results"][1]["points"] == r.json()["results"][0]["points"]

    async def test_the_same_evidence_from_two_operators_is_credited_once(self, client):
        btype = await make_methodology()
        a, b = await make_operator(client), await make_operator(client)
        number = await _shared_phone()
        ua, ub = await enrol(client, a, number=number), await enrol(client, b, number=number)
        evidence = unique("card")
        start = clock.now() - timedelta(hours=3)
        ra = await submit(client, a, [record(ua["external_user_id"], btype, evidence=evidence, start=start)])
        rb = await submit(client, b, [record(ub["external_user_id"], btype, evidence=evidence, start=start)])
        assert outcome(ra)["status"] == "accepted"
        assert (outcome(rb)["status"], outcome(rb)["code"]) == ("rejected", "evidence_already_claimed")

    async def test_the_same_ride_from_two_operators_with_other_evidence_is_credited_once(self, client):
        btype = await make_methodology()
        a, b = await make_operator(client), await make_operator(client)
        number = await _shared_phone()
        ua, ub = await enrol(client, a, number=number), await enrol(client, b, number=number)
        start = clock.now() - timedelta(hours=3)
        ra = await submit(client, a, [record(ua["external_user_id"], btype, start=start, minutes=30)])
        rb = await submit(
            client, b, [record(ub["external_user_id"], btype, start=start + timedelta(minutes=5), minutes=30)]
        )
        assert outcome(ra)["status"] == "accepted"
        assert (outcome(rb)["status"], outcome(rb)["code"]) == ("rejected", "overlapping_behaviour")
        # back to back is not overlapping
        rc = await submit(
            client, b, [record(ub["external_user_id"], btype, start=start + timedelta(minutes=30))]
        )
        assert outcome(rc)["status"] == "accepted"

    async def test_a_rejected_record_can_be_sent_again_once_fixed(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op)
        rec = record(u["external_user_id"], btype, quantity=5, unit="mile")
        assert outcome(await submit(client, op, [rec]))["code"] == "unit_mismatch"
        assert outcome(await submit(client, op, [{**rec, "unit": "km"}]))["status"] == "accepted"


async def _shared_phone() -> str:
    from tests.factories_points import phone

    return phone()


class TestConcurrency:
    async def test_fifty_concurrent_copies_of_one_batch_credit_once(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        users = [await enrol(client, op) for _ in range(5)]
        start = clock.now() - timedelta(hours=5)
        records = [
            record(u["external_user_id"], btype, quantity=3, start=start + timedelta(minutes=40 * i))
            for i, u in enumerate(users)
            for _ in range(1)
        ]
        responses = await asyncio.gather(*[submit(client, op, records) for _ in range(50)])
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 409}
        accepted = sum(r.json()["summary"]["accepted"] for r in responses if r.status_code == 200)
        assert accepted == 5
        for u in users:
            r = await client.get(f"/v1/operator/users/{u['external_user_id']}/account", headers=op.headers)
            assert r.json()["balance"] == 14  # 3 km × 46.7 g = 140 g → 14 points, once

    async def test_same_batch_same_key_from_two_connections(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op)
        records = [record(u["external_user_id"], btype, quantity=3)]
        body, headers = signed(op, {"records": records})
        headers["Idempotency-Key"] = unique("k")
        responses = await asyncio.gather(
            *[client.post("/v1/operator/behaviour-batches", content=body, headers=headers) for _ in range(2)]
        )
        ok = [r for r in responses if r.status_code == 200]
        assert all(r.status_code in (200, 409) for r in responses)
        r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
        assert r.status_code == 200 and r.headers.get("idempotent-replayed") == "true"
        assert r.json()["summary"]["accepted"] == 1
        assert len({x.json()["batch_id"] for x in ok} | {r.json()["batch_id"]}) == 1
        acc = await client.get(f"/v1/operator/users/{u['external_user_id']}/account", headers=op.headers)
        assert acc.json()["balance"] == 14


class TestBadBatches:
    async def test_signature_is_required_and_must_match_the_body(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op)
        body, headers = signed(op, {"records": [record(u["external_user_id"], btype)]})
        headers["Idempotency-Key"] = unique("k")
        tampered = body.replace(b'"quantity":10.0', b'"quantity":60.0')
        assert tampered != body
        r = await client.post("/v1/operator/behaviour-batches", content=tampered, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
        del headers["X-Content-Signature"]
        r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "signature_required")
        headers["X-Content-Signature"] = "garbage"
        r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (401, "malformed_signature")
        good = op.sign(body)
        head, _, sig = good.split(".")
        # the signature part not base64url, another signature, none: refused like a tampered body
        for bad in (f"{head}..{sig[:-3]}*!~", f"{head}..{sig[::-1]}", f"{head}.."):
            headers["X-Content-Signature"] = bad
            r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
            assert (r.status_code, r.json()["code"]) == (401, "invalid_signature"), bad
        headers["X-Content-Signature"] = good  # none of them stored the record: it is credited now
        r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
        assert (r.status_code, r.headers.get("idempotent-replayed")) == (200, None)
        assert r.json()["summary"] == {"accepted": 1, "duplicate": 0, "rejected": 0}

    async def test_a_revoked_key_no_longer_signs(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        u = await enrol(client, op)
        r = await client.delete(
            f"/v1/organizations/{op.id}/keys/{op.kid}",
            headers={"Authorization": f"Bearer {op.extra['admin_token']}"},
        )
        assert r.status_code == 200
        r = await submit(client, op, [record(u["external_user_id"], btype)])
        assert (r.status_code, r.json()["code"]) == (401, "unknown_kid")

    async def test_idempotency_key_is_required(self, client):
        op = await make_operator(client)
        body, headers = signed(op, {"records": [record("x", "metro")]})
        r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (400, "idempotency_key_required")

    async def test_more_than_1000_records(self, client):
        op = await make_operator(client)
        r = await submit(client, op, [record("x", "metro") for _ in range(1001)])
        assert (r.status_code, r.json()["code"]) == (413, "batch_too_large")

    async def test_not_a_batch(self, client):
        op = await make_operator(client)
        for payload, code in (
            ({"records": []}, "empty_batch"),
            ({"rows": []}, "invalid_batch"),
            ([1, 2], "invalid_batch"),
        ):
            body = json.dumps(payload).encode()
            headers = {
                **op.headers,
                "X-Content-Signature": op.sign(body),
                "Idempotency-Key": unique("k"),
                "Content-Type": "application/json",
            }
            r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
            assert (r.status_code, r.json()["code"]) == (422, code)
        body = b"{not json"
        headers = {**op.headers, "X-Content-Signature": op.sign(body), "Idempotency-Key": unique("k")}
        r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (422, "malformed_json")

    async def test_only_operators_submit(self, client):
        from tests.factories import make_org

        merchant = await make_org(client, "merchant")
        r = await client.post(
            "/v1/operator/behaviour-batches",
            content=b"{}",
            headers={**merchant.headers, "Idempotency-Key": "k"},
        )
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
