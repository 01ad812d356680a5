"""The evidence behind a project over HTTP: its records (pseudonymous, paged, CSV), a reproducible sample,
and the signed batches with their signatures verified now — for its verifier, its owner and the authority."""

import csv
import hashlib
import io
import uuid
from datetime import timedelta

import pytest

from app.cer import evidence
from app.core import clock, db
from tests.factories import assert_problem, bearer, make_org
from tests.factories_cer import verifier
from tests.factories_evidence import Case, identifiers, make_case, moment

RECORD_FIELDS = {
    "id",
    "record_id",
    "operator_id",
    "operator_name",
    "batch_id",
    "person",
    "behaviour_type",
    "started_at",
    "ended_at",
    "quantity",
    "counted_quantity",
    "unit",
    "reduction_g",
    "methodology_version_id",
    "methodology_code",
    "methodology_version",
    "status",
    "cap_code",
    "scene_id",
}


@pytest.fixture
async def case(client, authority) -> Case:
    return await make_case(client, authority)


class TestRecords:
    async def test_each_record_with_exact_fields_and_no_person_identifier(self, client, case):
        pid = case.project["id"]
        r = await client.get(f"/v1/cer/projects/{pid}/records", headers=case.verifier.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["next_cursor"] is None
        items = body["items"]
        assert [set(i) for i in items] == [RECORD_FIELDS] * 5
        assert [i["id"] for i in items] == sorted(i["id"] for i in items)
        assert {i["record_id"] for i in items} == set(case.records)
        for item in items:
            sent = case.records[item["record_id"]]
            assert item["operator_id"] == case.owner.org.id
            assert item["behaviour_type"] == sent["type"] == item["methodology_code"]
            assert item["methodology_version"] == 1
            assert moment(item["started_at"]) == moment(sent["started_at"])
            assert moment(item["ended_at"]) == moment(sent["ended_at"])
            assert (item["quantity"], item["counted_quantity"], item["unit"]) == (
                f"{sent['quantity']:.4f}",
                f"{sent['quantity']:.4f}",
                "km",
            )
            assert item["reduction_g"] == int(sent["quantity"] * 50000)
            assert (item["status"], item["cap_code"], item["scene_id"]) == (
                "accepted",
                case.outcomes[item["record_id"]],
                None,
            )
        for value in identifiers(case):
            assert value not in r.text
        # one person's records share a pseudonym; the other person's have another
        by_person: dict[str, list[str]] = {}
        for item in items:
            by_person.setdefault(item["person"], []).append(item["record_id"])
        assert sorted(len(v) for v in by_person.values()) == [2, 3]
        assert all(len(p) == 16 and int(p, 16) >= 0 for p in by_person)
        user_id = uuid.UUID(case.people[0]["user_ids"][0])
        assert evidence.pseudonym(uuid.UUID(pid), user_id) in by_person
        assert evidence.pseudonym(uuid.uuid4(), user_id) not in by_person  # another project: unrelated

    async def test_pages_by_record_number(self, client, case):
        pid = case.project["id"]
        seen, cursor = [], None
        for size in (2, 2, 1):
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            r = await client.get(f"/v1/cer/projects/{pid}/records", params=params, headers=case.owner.headers)
            assert r.status_code == 200, r.text
            assert len(r.json()["items"]) == size
            seen += [i["id"] for i in r.json()["items"]]
            cursor = r.json()["next_cursor"]
        assert cursor is None
        assert seen == sorted(seen) and len(set(seen)) == 5
        r = await client.get(
            f"/v1/cer/projects/{pid}/records?cursor=v1.forged.tag", headers=case.owner.headers
        )
        assert_problem(r, 400, "invalid_cursor")

    async def test_csv_has_every_record_with_the_exact_columns(self, client, case):
        pid = case.project["id"]
        r = await client.get(f"/v1/cer/projects/{pid}/records?format=csv", headers=case.verifier.headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == f'attachment; filename="cer-project-{pid}-records.csv"'
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == list(evidence.CSV_COLUMNS)
        items = (await client.get(f"/v1/cer/projects/{pid}/records", headers=case.verifier.headers)).json()[
            "items"
        ]
        assert [row[0] for row in rows[1:]] == [str(i["id"]) for i in items]
        for row, item in zip(rows[1:], items, strict=True):
            cells = dict(zip(evidence.CSV_COLUMNS, row, strict=True))
            assert cells["person"] == item["person"]
            assert cells["reduction_g"] == str(item["reduction_g"])
            assert cells["quantity"] == item["quantity"]
            assert cells["batch_id"] == item["batch_id"]
            assert (cells["status"], cells["cap_code"], cells["scene_id"]) == (
                "accepted",
                item["cap_code"] or "",
                "",
            )
        for value in identifiers(case):
            assert value not in r.text


class TestSample:
    async def test_the_same_seed_draws_the_same_records_by_their_hash(self, client, case):
        pid = case.project["id"]
        url = f"/v1/cer/projects/{pid}/records/sample"
        first = await client.get(
            url, params={"seed": "2026-12-01 spot check", "size": 3}, headers=case.verifier.headers
        )
        again = await client.get(
            url, params={"seed": "2026-12-01 spot check", "size": 3}, headers=case.owner.headers
        )
        assert first.status_code == again.status_code == 200, first.text
        body = first.json()
        assert body == again.json()
        assert (body["seed"], body["size"], body["population"]) == ("2026-12-01 spot check", 3, 5)
        assert body["method"] == evidence.SAMPLE_METHOD
        everything = (
            await client.get(f"/v1/cer/projects/{pid}/records", headers=case.verifier.headers)
        ).json()
        keys = sorted(
            (hashlib.sha256(f"2026-12-01 spot check:{i['id']}".encode()).hexdigest(), i["id"])
            for i in everything["items"]
        )
        assert [(i["draw_key"], i["id"]) for i in body["items"]] == keys[:3]
        assert [set(i) for i in body["items"]] == [RECORD_FIELDS | {"draw_key"}] * 3
        for value in identifiers(case):
            assert value not in first.text
        whole = await client.get(
            url, params={"seed": "另一个种子", "size": 1000}, headers=case.verifier.headers
        )
        assert whole.status_code == 200
        assert sorted(i["id"] for i in whole.json()["items"]) == sorted(i["id"] for i in everything["items"])

    @pytest.mark.parametrize(
        "params",
        [
            {"seed": "x", "size": 0},
            {"seed": "x", "size": 1001},
            {"seed": "", "size": 5},
            {"seed": "x" * 101},
            {},
        ],
    )
    async def test_bad_size_or_seed_is_422(self, client, case, params):
        r = await client.get(
            f"/v1/cer/projects/{case.project['id']}/records/sample",
            params=params,
            headers=case.verifier.headers,
        )
        assert_problem(r, 422, "validation_error")


class TestBatches:
    async def test_each_batch_with_its_signature_verified_now(self, client, case, authority):
        pid = case.project["id"]
        r = await client.get(f"/v1/cer/projects/{pid}/batches", headers=case.verifier.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["next_cursor"] is None
        records = (await client.get(f"/v1/cer/projects/{pid}/records", headers=case.verifier.headers)).json()
        batch_of = {i["record_id"]: i["batch_id"] for i in records["items"]}
        assert [b["batch_id"] for b in body["items"]] == list(dict.fromkeys(batch_of.values()))
        for batch, count in zip(body["items"], (3, 2), strict=True):
            assert batch["operator_id"] == case.owner.org.id
            assert (batch["kid"], batch["algorithm"], batch["key_revoked_at"]) == (
                case.owner.org.kid,
                "ES256",
                None,
            )
            assert (batch["verified"], batch["reason"], batch["body_hash_ok"]) == (True, "verified", True)
            assert (batch["records"], batch["accepted"], batch["duplicate"], batch["rejected"]) == (
                count,
                count,
                0,
                0,
            )
            assert batch["records_in_project"] == count
            assert len(batch["body_sha256"]) == 64
        page = await client.get(f"/v1/cer/projects/{pid}/batches?limit=1", headers=bearer(authority))
        assert [b["batch_id"] for b in page.json()["items"]] == [body["items"][0]["batch_id"]]
        more = await client.get(
            f"/v1/cer/projects/{pid}/batches",
            params={"limit": 1, "cursor": page.json()["next_cursor"]},
            headers=bearer(authority),
        )
        assert [b["batch_id"] for b in more.json()["items"]] == [body["items"][1]["batch_id"]]
        assert more.json()["next_cursor"] is None

    async def test_a_revoked_key_still_verifies_and_is_shown(self, client, case):
        r = await client.delete(
            f"/v1/organizations/{case.owner.org.id}/keys/{case.owner.org.kid}",
            headers=bearer(case.owner.org.extra["admin_token"]),
        )
        assert r.status_code == 200, r.text
        r = await client.get(f"/v1/cer/projects/{case.project['id']}/batches", headers=case.verifier.headers)
        assert [(b["verified"], b["reason"], b["key_revoked_at"] is not None) for b in r.json()["items"]] == [
            (True, "verified", True)
        ] * 2


class TestWhoMaySee:
    async def test_only_the_authority_the_owner_and_the_assigned_verifier(self, client, case, authority):
        pid = case.project["id"]
        paths = [
            f"/v1/cer/projects/{pid}/records",
            f"/v1/cer/projects/{pid}/records?format=csv",
            f"/v1/cer/projects/{pid}/records/sample?seed=s",
            f"/v1/cer/projects/{pid}/batches",
        ]
        other_verifier = await verifier(client, authority)
        other_operator = await make_org(client, "operator", authority=authority)
        merchant = await make_org(client, "merchant", authority=authority)
        for path in paths:
            for headers in (case.verifier.headers, case.owner.headers, bearer(authority)):
                assert (await client.get(path, headers=headers)).status_code == 200, path
            for org in (other_verifier, other_operator):
                assert_problem(await client.get(path, headers=org.headers), 404, "project_not_found")
            assert_problem(await client.get(path, headers=merchant.headers), 403, "forbidden_role")
            assert (await client.get(path)).status_code == 401
        missing = f"/v1/cer/projects/{uuid.uuid4()}/records"
        assert_problem(await client.get(missing, headers=bearer(authority)), 404, "project_not_found")


@pytest.mark.commits
class TestTampering:
    async def test_a_changed_signature_or_body_no_longer_verifies(self, client, authority):
        case = await make_case(client, authority)
        pid = case.project["id"]
        url = f"/v1/cer/projects/{pid}/batches"
        first, second = [
            b["batch_id"] for b in (await client.get(url, headers=case.verifier.headers)).json()["items"]
        ]
        async with db.session_scope() as session:
            conn = await db.raw_connection(session)
            signature = await conn.fetchval(
                "SELECT signature FROM behaviour_batches WHERE id = $1", uuid.UUID(first)
            )
            head, _, sig = signature.split(".")
            flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
            await conn.execute(
                "UPDATE behaviour_batches SET signature = $2 WHERE id = $1",
                uuid.UUID(first),
                f"{head}..{flipped}",
            )
            await conn.execute(
                "UPDATE behaviour_batches SET body = body || ' '::bytea WHERE id = $1", uuid.UUID(second)
            )
        r = await client.get(url, headers=case.verifier.headers)
        assert [
            (b["batch_id"], b["verified"], b["reason"], b["body_hash_ok"]) for b in r.json()["items"]
        ] == [
            (first, False, "invalid_signature", True),
            (second, False, "body_hash_mismatch", False),
        ]
        clock.set_offset(timedelta(0))
