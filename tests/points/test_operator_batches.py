"""An operator's own batches over HTTP: the list (newest first, filters, keyset pages) and one batch
(outcome counts, reject codes with counts, its records with their outcome, the rejected ones as CSV)."""

import csv
import io
import uuid
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from app.core import clock, db
from tests.factories import assert_problem, make_operator, make_org, unique
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit

LIST = "/v1/operator/behaviour-batches"


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


@pytest.fixture
async def sent(client):
    """An operator with two batches: one clean, then one with each kind of outcome."""
    btype = await make_methodology()
    op = await make_operator(client)
    ext = (await enrol(client, op))["external_user_id"]
    now = clock.now()
    first = record(ext, btype, quantity=1.0, start=now - timedelta(hours=10), record_id="r-first")
    r = await submit(client, op, [first])
    assert r.status_code == 200, r.text
    clean = r.json()["batch_id"]
    records = [
        record(ext, btype, quantity=2.0, start=now - timedelta(hours=9), record_id="r-ok"),
        first,  # accepted before: duplicate
        record(ext, "no-such-type", quantity=1.0, record_id="r-type"),
        record("stranger", btype, quantity=1.0, record_id="r-stranger"),
        record(ext, btype, quantity=-3, start=now - timedelta(hours=8), record_id="r-negative"),
        record(ext, btype, quantity=1.0, unit="mile", start=now - timedelta(hours=7), record_id="r-mile"),
        record("stranger", btype, quantity=1.0, record_id="r-stranger-2"),
    ]
    r = await submit(client, op, records)
    assert r.json()["summary"] == {"accepted": 1, "duplicate": 1, "rejected": 5}
    return op, clean, r.json()["batch_id"], records, ext, btype


class TestList:
    async def test_newest_first_with_counts(self, client, sent):
        op, clean, mixed, *_ = sent
        r = await client.get(LIST, headers=op.headers)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [(b["id"], b["records"], b["accepted"], b["duplicate"], b["rejected"]) for b in items] == [
            (mixed, 7, 1, 1, 5),
            (clean, 1, 1, 0, 0),
        ]
        assert items[0]["kid"] == op.kid and len(items[0]["body_sha256"]) == 64
        assert r.json()["next_cursor"] is None

    async def test_filters(self, client, sent):
        op, clean, mixed, *_ = sent
        ids = lambda r: [b["id"] for b in r.json()["items"]]  # noqa: E731
        assert ids(await client.get(LIST, params={"has_rejections": "true"}, headers=op.headers)) == [mixed]
        assert ids(await client.get(LIST, params={"has_rejections": "false"}, headers=op.headers)) == [clean]
        now = clock.now()
        later = {"received_from": (now + timedelta(minutes=1)).isoformat()}
        assert ids(await client.get(LIST, params=later, headers=op.headers)) == []
        earlier = {"received_to": (now - timedelta(days=1)).isoformat()}
        assert ids(await client.get(LIST, params=earlier, headers=op.headers)) == []
        span = {
            "received_from": (now - timedelta(hours=1)).isoformat(),
            "received_to": (now + timedelta(hours=1)).isoformat(),
        }
        assert ids(await client.get(LIST, params=span, headers=op.headers)) == [mixed, clean]

    async def test_keyset_pages(self, client, sent):
        op, clean, mixed, *_ = sent
        r = await client.get(LIST, params={"limit": 1}, headers=op.headers)
        assert [b["id"] for b in r.json()["items"]] == [mixed]
        r = await client.get(LIST, params={"limit": 1, "cursor": r.json()["next_cursor"]}, headers=op.headers)
        assert ([b["id"] for b in r.json()["items"]], r.json()["next_cursor"]) == ([clean], None)

    async def test_only_the_operators_own(self, client, sent):
        other = await make_operator(client)
        r = await client.get(LIST, headers=other.headers)
        assert r.json() == {"items": [], "next_cursor": None}

    async def test_bad_cursor_and_bad_dates(self, client, sent):
        op = sent[0]
        assert_problem(
            await client.get(LIST, params={"cursor": "v1.abc.def"}, headers=op.headers), 400, "invalid_cursor"
        )
        assert_problem(
            await client.get(LIST, params={"received_from": "yesterday"}, headers=op.headers),
            422,
            "validation_error",
        )
        assert_problem(
            await client.get(LIST, params={"received_to": "2026-11-30T10:00:00"}, headers=op.headers),
            422,
            "validation_error",
        )
        now = clock.now()
        backwards = {"received_from": now.isoformat(), "received_to": (now - timedelta(hours=1)).isoformat()}
        assert_problem(await client.get(LIST, params=backwards, headers=op.headers), 422, "invalid_period")

    async def test_the_operators_staff_see_them_other_roles_do_not(self, client, sent):
        op, clean, mixed, *_ = sent
        r = await client.get(LIST, headers={"Authorization": f"Bearer {op.extra['admin_token']}"})
        assert [b["id"] for b in r.json()["items"]] == [mixed, clean]
        merchant = await make_org(client, "merchant")
        assert_problem(await client.get(LIST, headers=merchant.headers), 403, "forbidden_role")


class TestOneBatch:
    async def test_counts_codes_and_records(self, client, sent):
        op, clean, mixed, records, ext, btype = sent
        r = await client.get(f"{LIST}/{mixed}", headers=op.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["records"], body["accepted"], body["duplicate"], body["rejected"]) == (7, 1, 1, 5)
        assert body["reject_codes"] == [
            {"code": "not_entrusted", "count": 2},
            {"code": "implausible_quantity", "count": 1},
            {"code": "unit_mismatch", "count": 1},
            {"code": "unknown_type", "count": 1},
        ]
        got = [(x["index"], x["record_id"], x["status"], x["code"]) for x in body["results"]["items"]]
        assert got == [
            (0, "r-ok", "accepted", None),
            (1, "r-first", "duplicate", None),
            (2, "r-type", "rejected", "unknown_type"),
            (3, "r-stranger", "rejected", "not_entrusted"),
            (4, "r-negative", "rejected", "implausible_quantity"),
            (5, "r-mile", "rejected", "unit_mismatch"),
            (6, "r-stranger-2", "rejected", "not_entrusted"),
        ]
        ok = body["results"]["items"][0]
        assert (ok["external_user_id"], ok["behaviour_type"], ok["points"], ok["reduction_g"]) == (
            ext,
            btype,
            9,
            93,
        )
        assert ok["occurred_at"] == records[0]["started_at"].replace("+00:00", "Z") or ok["occurred_at"]
        assert [x["message"] for x in body["results"]["items"]] == [
            None,
            None,
            None,
            None,
            "quantity must be a positive finite number",
            None,
            None,
        ]
        assert body["rejections_recorded"] is True

    async def test_status_filter_and_pages(self, client, sent):
        op, _, mixed, *_ = sent
        r = await client.get(f"{LIST}/{mixed}", params={"status": "rejected", "limit": 3}, headers=op.headers)
        page1 = r.json()["results"]
        assert [x["record_id"] for x in page1["items"]] == ["r-type", "r-stranger", "r-negative"]
        r = await client.get(
            f"{LIST}/{mixed}",
            params={"status": "rejected", "limit": 3, "cursor": page1["next_cursor"]},
            headers=op.headers,
        )
        page2 = r.json()["results"]
        assert ([x["record_id"] for x in page2["items"]], page2["next_cursor"]) == (
            ["r-mile", "r-stranger-2"],
            None,
        )
        assert_problem(
            await client.get(f"{LIST}/{mixed}", params={"cursor": "nope"}, headers=op.headers),
            400,
            "invalid_cursor",
        )

    async def test_rejected_records_as_csv(self, client, sent):
        op, _, mixed, records, ext, btype = sent
        r = await client.get(f"{LIST}/{mixed}", params={"format": "csv"}, headers=op.headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == f'attachment; filename="batch-{mixed}-rejected.csv"'
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        started = {x["record_id"]: x["started_at"] for x in records}
        assert rows == [
            ["record_id", "external_user_id", "behaviour_type", "occurred_at", "code", "message"],
            ["r-type", ext, "no-such-type", started["r-type"], "unknown_type", ""],
            ["r-stranger", "stranger", btype, started["r-stranger"], "not_entrusted", ""],
            [
                "r-negative",
                ext,
                btype,
                started["r-negative"],
                "implausible_quantity",
                "quantity must be a positive finite number",
            ],
            ["r-mile", ext, btype, started["r-mile"], "unit_mismatch", ""],
            ["r-stranger-2", "stranger", btype, started["r-stranger-2"], "not_entrusted", ""],
        ]

    async def test_another_operators_batch_is_not_found(self, client, sent):
        mixed = sent[2]
        other = await make_operator(client)
        assert_problem(await client.get(f"{LIST}/{mixed}", headers=other.headers), 404, "batch_not_found")
        assert_problem(
            await client.get(f"{LIST}/{mixed}", params={"format": "csv"}, headers=other.headers),
            404,
            "batch_not_found",
        )
        assert_problem(
            await client.get(f"{LIST}/{uuid.uuid4()}", headers=other.headers), 404, "batch_not_found"
        )
        assert_problem(await client.get(f"{LIST}/not-a-uuid", headers=other.headers), 422, "validation_error")


def answered(response) -> list[tuple]:
    """The submission's answer for each rejected record: index, record_id, code, message."""
    return [
        (i, x["record_id"], x["code"], x.get("message"))
        for i, x in enumerate(response.json()["results"])
        if x["status"] == "rejected"
    ]


async def kept(client, op, batch_id: str) -> list[tuple]:
    """The batch's rejected records as the detail route reads them back."""
    r = await client.get(f"{LIST}/{batch_id}", params={"status": "rejected"}, headers=op.headers)
    assert r.status_code == 200, r.text
    return [(x["index"], x["record_id"], x["code"], x["message"]) for x in r.json()["results"]["items"]]


class TestStoredOutcomes:
    """Each rejected record's outcome is kept at receipt as answered, never found again on today's data."""

    async def test_every_reject_class_as_answered(self, client):
        btype = await make_methodology()
        limited = await make_methodology(factor="1", max_day="100")
        at_scenes = await make_methodology(category="scene", unit="item")
        later = await make_methodology(effective_from=clock.now() - timedelta(days=1))
        op = await make_operator(client)
        ext = (await enrol(client, op))["external_user_id"]
        now = clock.now()
        card = unique("card")
        earlier = record(ext, btype, start=now - timedelta(hours=20), minutes=30, evidence=card)
        assert (await submit(client, op, [earlier])).json()["summary"]["accepted"] == 1
        old = now - timedelta(days=91)
        day = datetime.combine(clock.today() - timedelta(days=1), time(0), clock.zone())  # one local day
        records = [
            "not an object",
            {**record(ext, btype), "record_id": ""},
            record(ext, btype, start=now + timedelta(hours=1), record_id="x-future"),
            {**record(ext, btype, record_id="x-time"), "started_at": "yesterday"},
            record(ext, btype, start=old, record_id="x-old"),
            record(ext, btype, quantity=0, record_id="x-zero"),
            record(ext, "no-such-type", record_id="x-type"),
            record("stranger", btype, record_id="x-stranger"),
            record(ext, later, start=now - timedelta(days=2), record_id="x-period"),
            record(ext, btype, unit="mile", record_id="x-unit"),
            record(ext, btype, quantity=61, record_id="x-bound"),
            record(ext, btype, scene_id=str(uuid.uuid4()), record_id="x-scene"),
            record(ext, at_scenes, quantity=1, unit="item", record_id="x-no-scene"),
            record(ext, btype, start=now - timedelta(hours=10), evidence=card, record_id="x-claimed"),
            record(ext, btype, start=now - timedelta(hours=20, minutes=-10), record_id="x-overlap"),
            record(ext, limited, quantity=60, start=day + timedelta(hours=8), record_id="x-day-1"),
            record(ext, limited, quantity=60, start=day + timedelta(hours=9), record_id="x-day-2"),
            record(ext, limited, quantity=1, start=day + timedelta(hours=10), record_id="x-day-3"),
        ]
        r = await submit(client, op, records)
        assert r.status_code == 200, r.text
        assert answered(r) == [
            (0, None, "invalid_record", "a record is a JSON object"),
            (1, "", "invalid_record", "record_id: 1–100 characters"),
            (2, "x-future", "future_time", "the behaviour ends in the future"),
            (3, "x-time", "invalid_time", "started_at and ended_at are RFC 3339 times with an offset"),
            (4, "x-old", "too_old", "the behaviour is older than the submission window"),
            (5, "x-zero", "implausible_quantity", "quantity must be a positive finite number"),
            (6, "x-type", "unknown_type", None),
            (7, "x-stranger", "not_entrusted", None),
            (8, "x-period", "out_of_effective_period", None),
            (9, "x-unit", "unit_mismatch", None),
            (10, "x-bound", "implausible_quantity", None),
            (11, "x-scene", "scene_not_approved", None),
            (12, "x-no-scene", "scene_required", None),
            (13, "x-claimed", "evidence_already_claimed", None),
            (14, "x-overlap", "overlapping_behaviour", None),
            (17, "x-day-3", "daily_limit_reached", None),
        ]
        batch_id = r.json()["batch_id"]
        assert await kept(client, op, batch_id) == answered(r)
        r = await client.get(f"{LIST}/{batch_id}", headers=op.headers)
        assert r.json()["reject_codes"] == [
            {"code": "implausible_quantity", "count": 2},
            {"code": "invalid_record", "count": 2},
            *[
                {"code": code, "count": 1}
                for code in sorted(
                    [
                        "daily_limit_reached",
                        "evidence_already_claimed",
                        "future_time",
                        "invalid_time",
                        "not_entrusted",
                        "out_of_effective_period",
                        "overlapping_behaviour",
                        "scene_not_approved",
                        "scene_required",
                        "too_old",
                        "unit_mismatch",
                        "unknown_type",
                    ]
                )
            ],
        ]
        got = [(x["record_id"], x["status"], x["code"]) for x in r.json()["results"]["items"][15:17]]
        assert got == [("x-day-1", "accepted", None), ("x-day-2", "accepted", "quantity_capped")]

    async def test_the_code_answered_stays_when_the_data_changes(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        ext = (await enrol(client, op, accepted_at=clock.now() - timedelta(days=3)))["external_user_id"]
        now = clock.now()
        first = record(ext, btype, start=now - timedelta(hours=6), minutes=30)
        assert (await submit(client, op, [first])).json()["summary"]["accepted"] == 1
        newcomer, new_type = unique("later"), unique("type-later")
        records = [
            record(ext, btype, start=now - timedelta(hours=6, minutes=-5), record_id="c-overlap"),
            record(newcomer, btype, start=now - timedelta(hours=3), record_id="c-newcomer"),
            record(ext, new_type, record_id="c-type"),
        ]
        r = await submit(client, op, records)
        batch_id = r.json()["batch_id"]
        as_answered = [
            (0, "c-overlap", "overlapping_behaviour", None),
            (1, "c-newcomer", "not_entrusted", None),
            (2, "c-type", "unknown_type", None),
        ]
        assert answered(r) == as_answered
        # since: the person withdrew, the newcomer entrusted the app before the behaviour's time (on the
        # app's word), the type got a methodology. Checked again today each would give another answer.
        assert (await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)).status_code in (
            200,
            204,
        )
        await enrol(client, op, external_user_id=newcomer, accepted_at=now - timedelta(days=1))
        await make_methodology(behaviour_type=new_type)
        assert await kept(client, op, batch_id) == as_answered
        r = await client.get(f"{LIST}/{batch_id}", params={"format": "csv"}, headers=op.headers)
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert [(row[0], row[4]) for row in rows[1:]] == [(x[1], x[2]) for x in as_answered]

    async def test_a_nul_in_a_refused_record_id_is_kept(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        ext = (await enrol(client, op))["external_user_id"]
        r = await submit(client, op, [record(ext, btype, record_id="r\x00")])
        assert r.status_code == 200, r.text
        assert await kept(client, op, r.json()["batch_id"]) == [
            (0, "r\x00", "invalid_record", "record_id: 1–100 characters")
        ]
        async with db.session_scope() as session:
            stored = await session.execute(
                sa.text("SELECT rejections FROM behaviour_batches WHERE id = :id"),
                {"id": r.json()["batch_id"]},
            )
            assert [x["record_id"] for x in stored.scalar_one()] == ["r\ufffd"]

    async def test_a_batch_received_before_outcomes_were_kept(self, client, sent):
        op, _, mixed, records, ext, btype = sent
        async with db.session_scope() as session:
            await session.execute(
                sa.text("UPDATE behaviour_batches SET rejections = '[]'::jsonb WHERE id = :id"), {"id": mixed}
            )
        r = await client.get(f"{LIST}/{mixed}", headers=op.headers)
        body = r.json()
        assert (body["rejections_recorded"], body["reject_codes"]) == (False, [{"code": None, "count": 5}])
        got = [(x["record_id"], x["status"], x["code"], x["message"]) for x in body["results"]["items"]]
        assert got == [
            ("r-ok", "accepted", None, None),
            ("r-first", "duplicate", None, None),
            *[(rid, "rejected", None, None) for rid in ("r-type", "r-stranger", "r-negative", "r-mile")],
            ("r-stranger-2", "rejected", None, None),
        ]
        clean = (await client.get(f"{LIST}/{sent[1]}", headers=op.headers)).json()
        assert (clean["rejections_recorded"], clean["reject_codes"]) == (True, [])


class TestKeyLastUse:
    async def test_set_by_an_assertion_and_by_a_batch_at_most_once_a_minute(self, client):
        op = await make_operator(client)  # its client token came from an assertion
        admin = {"Authorization": f"Bearer {op.extra['admin_token']}"}
        keys = (await client.get(f"/v1/organizations/{op.id}/keys", headers=admin)).json()
        used = keys[0]["last_used_at"]
        assert used is not None
        clock.set_offset(timedelta(minutes=5))
        try:
            btype = await make_methodology()
            r = await submit(client, op, [record(unique("u"), btype)])
            assert r.status_code == 200, r.text
            keys = (await client.get(f"/v1/organizations/{op.id}/keys", headers=admin)).json()
            after_batch = keys[0]["last_used_at"]
            assert after_batch > used
            r = await submit(client, op, [record(unique("u"), btype)])  # within the minute: not written again
            keys = (await client.get(f"/v1/organizations/{op.id}/keys", headers=admin)).json()
            assert keys[0]["last_used_at"] == after_batch
        finally:
            clock.set_offset(timedelta(0))
