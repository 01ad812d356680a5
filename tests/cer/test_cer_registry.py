"""Issuance, carry-forward, transfers, retirement, clawback, trace and disclosure over HTTP."""

import asyncio
import json
from datetime import timedelta

from app.cer import blocks
from app.core import clock
from tests.factories import bearer, invoke_cli, make_org
from tests.factories_cer import account, add_records, create_project, issued_units, make_owner, to_issued

PREFIX = "CN-SZ-PHCER"


def serial_range(serial: str) -> blocks.Range:
    return blocks.parse(PREFIX, serial)[1]


def mount_cer_cli() -> None:
    """``carbon-points`` mounts the domains' commands in ``main()``; the tests call the typer app directly."""
    from app.cer.cli import register
    from app.cli import cli

    if not any(group.name == "cer" for group in cli.registered_groups):
        register(cli)


def held_serials(acc: dict) -> list[str]:
    return [b["serial"] for b in acc["blocks"] if b["status"] == "held"]


async def retire(client, org, body: dict):
    body = {
        "beneficiary": {"kind": "organization", "name": "Green Co"},
        "purpose": "2026 office neutrality",
        **body,
    }
    return await client.post("/v1/cer/retirements", json=body, headers=org.headers)


class TestIssuance:
    async def test_remainder_carries_forward_and_serials_continue(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(9, 33.0)])  # 1.65 t
        today = clock.today()
        first = await create_project(client, owner, today - timedelta(days=10), today - timedelta(days=8))
        issued1 = await to_issued(client, authority, owner, first)
        assert (issued1["tonnes"], issued1["carried_in_g"], issued1["carried_out_g"]) == (1, 0, 650_000)
        clock.set_offset(timedelta(0))
        await add_records(client, owner, [(3, 8.0)])  # 0.4 t + 0.65 t carried = 1.05 t
        second = await create_project(client, owner, today - timedelta(days=5), today - timedelta(days=1))
        issued2 = await to_issued(client, authority, owner, second)
        assert (
            issued2["verified_g"],
            issued2["carried_in_g"],
            issued2["tonnes"],
            issued2["carried_out_g"],
        ) == (400_000, 650_000, 1, 50_000)
        # the second issuance continues the registry's sequence (other tests may have issued in between)
        assert serial_range(issued2["serials"]).start > serial_range(issued1["serials"]).end
        acc = await account(client, owner.headers)
        assert (acc["held_tonnes"], acc["carry_forward_g"]) == (2, 50_000)

    async def test_less_than_a_tonne_issues_nothing_and_carries_all(self, client, authority):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0)])  # 0.5 t
        project = await create_project(
            client, owner, clock.today() - timedelta(days=5), clock.today() - timedelta(days=1)
        )
        issued = await to_issued(client, authority, owner, project, verified_g=499_999)
        assert (issued["tonnes"], issued["serials"], issued["carried_out_g"]) == (0, None, 499_999)
        acc = await account(client, owner.headers)
        assert (acc["held_tonnes"], acc["carry_forward_g"], acc["blocks"]) == (0, 499_999, [])


class TestTransfers:
    async def test_partial_transfers_split_blocks_and_keep_counts(self, client, authority):
        owner, issuance = await issued_units(client, authority, 10)
        r0 = serial_range(issuance["serials"])
        buyer = await make_org(client, "buyer", authority=authority)
        # from the middle of the block: units 4..6
        middle = blocks.format_block(PREFIX, issuance["vintage"], blocks.Range(r0.start + 3, r0.start + 5))
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": buyer.id, "serials": [middle]}, headers=owner.headers
        )
        assert r.status_code == 201, r.text
        assert (r.json()["tonnes"], r.json()["serials"]) == (3, [middle])
        acc = await account(client, owner.headers)
        assert [serial_range(s) for s in held_serials(acc)] == [
            blocks.Range(r0.start, r0.start + 2),
            blocks.Range(r0.start + 6, r0.end),
        ]
        # FIFO: the oldest units first, across the two pieces
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": buyer.id, "tonnes": 4}, headers=owner.headers
        )
        assert [serial_range(s) for s in r.json()["serials"]] == [
            blocks.Range(r0.start, r0.start + 2),
            blocks.Range(r0.start + 6, r0.start + 6),
        ]
        owner_acc, buyer_acc = await account(client, owner.headers), await account(client, buyer.headers)
        assert (owner_acc["held_tonnes"], buyer_acc["held_tonnes"]) == (3, 7)
        everything = sorted(
            u
            for acc in (owner_acc, buyer_acc)
            for s in held_serials(acc)
            for u in range(serial_range(s).start, serial_range(s).end + 1)
        )
        assert everything == list(range(r0.start, r0.end + 1))
        r = await client.get("/v1/cer/transfers", headers=buyer.headers)
        assert [t["tonnes"] for t in r.json()["items"]] == [4, 3]

    async def test_refusals_change_nothing(self, client, authority):
        owner, issuance = await issued_units(client, authority, 3)
        r0 = serial_range(issuance["serials"])
        vintage = issuance["vintage"]
        buyer = await make_org(client, "buyer", authority=authority)
        merchant = await make_org(client, "merchant", authority=authority)
        other_owner, other_issuance = await issued_units(client, authority, 1)
        unit = lambda n: blocks.format_unit(PREFIX, vintage, n)  # noqa: E731
        cases = [
            ({"to_org_id": buyer.id, "tonnes": 4}, 409, "insufficient_units"),
            ({"to_org_id": buyer.id, "serials": [other_issuance["serials"]]}, 409, "units_not_held"),
            ({"to_org_id": buyer.id, "serials": [unit(r0.start), unit(r0.start)]}, 422, "invalid_selection"),
            ({"to_org_id": buyer.id, "serials": [unit(r0.start)], "tonnes": 2}, 422, "invalid_selection"),
            ({"to_org_id": buyer.id, "serials": ["XX-2026-1"]}, 422, "invalid_serial"),
            (
                {"to_org_id": buyer.id, "serials": [blocks.format_unit(PREFIX, vintage + 1, r0.start)]},
                422,
                "invalid_serial",
            ),
            ({"to_org_id": buyer.id}, 422, "invalid_selection"),
            ({"to_org_id": owner.org.id, "tonnes": 1}, 422, "invalid_recipient"),
            ({"to_org_id": merchant.id, "tonnes": 1}, 422, "invalid_recipient"),
            ({"to_org_id": buyer.id, "tonnes": 0}, 422, "validation_error"),
        ]
        for body, status, code in cases:
            r = await client.post("/v1/cer/transfers", json=body, headers=owner.headers)
            assert (r.status_code, r.json()["code"]) == (status, code), body
        acc = await account(client, owner.headers)
        assert (acc["held_tonnes"], held_serials(acc)) == (3, [issuance["serials"]])
        r = await client.get("/v1/cer/transfers", headers=owner.headers)
        assert r.json()["items"] == []
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": buyer.id, "tonnes": 1}, headers=other_owner.headers
        )
        assert r.status_code == 201

    async def test_concurrent_transfers_never_move_a_unit_twice(self, client, authority):
        owner, issuance = await issued_units(client, authority, 5)
        buyers = [await make_org(client, "buyer", authority=authority) for _ in range(3)]
        responses = await asyncio.gather(
            *(
                client.post("/v1/cer/transfers", json={"to_org_id": b.id, "tonnes": 2}, headers=owner.headers)
                for b in buyers
            )
        )
        assert sorted((r.status_code, r.json().get("code")) for r in responses) == [
            (201, None),
            (201, None),
            (409, "insufficient_units"),
        ]
        accounts = [await account(client, b.headers) for b in buyers] + [await account(client, owner.headers)]
        units = sorted(
            u
            for acc in accounts
            for s in held_serials(acc)
            for u in range(serial_range(s).start, serial_range(s).end + 1)
        )
        r0 = serial_range(issuance["serials"])
        assert units == list(range(r0.start, r0.end + 1))


class TestRetirementAndClawback:
    async def test_retirement_needs_a_beneficiary_and_units(self, client, authority):
        owner, issuance = await issued_units(client, authority, 2)
        for body, code in (
            ({"tonnes": 1, "beneficiary": None}, "beneficiary_required"),
            ({"tonnes": 1, "beneficiary": {"kind": "person", "name": "   "}}, "beneficiary_required"),
            ({"tonnes": 3}, "insufficient_units"),
        ):
            r = await retire(client, owner.org, body)
            assert r.json()["code"] == code, r.text
        r = await retire(client, owner.org, {"tonnes": 1, "beneficiary": {"kind": "planet", "name": "x"}})
        assert r.json()["code"] == "validation_error"
        acc = await account(client, owner.headers)
        assert (acc["held_tonnes"], acc["retired_tonnes"]) == (2, 0)
        r = await retire(client, owner.org, {"tonnes": 2, "beneficiary": {"kind": "person", "name": "李雷"}})
        assert r.status_code == 201, r.text
        r = await retire(client, owner.org, {"serials": [issuance["serials"]]})
        assert (r.status_code, r.json()["code"]) == (409, "units_retired")

    async def test_clawback_revokes_held_units_and_flags_retired_ones(self, client, authority):
        owner, issuance = await issued_units(client, authority, 6)
        buyer = await make_org(client, "buyer", authority=authority)
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": buyer.id, "tonnes": 4}, headers=owner.headers
        )
        assert r.status_code == 201
        r = await retire(client, buyer, {"tonnes": 1})
        number = r.json()["certificate_number"]
        project_id = (await account(client, owner.headers))["blocks"][0]["project_id"]
        r = await client.post(
            f"/v1/cer/projects/{project_id}/clawback",
            json={"reason": "forged evidence"},
            headers=bearer(authority),
        )
        assert r.status_code == 200, r.text
        result = r.json()
        assert (result["status"], result["revoked_tonnes"], result["flagged_retired_tonnes"]) == (
            "frozen",
            5,
            1,
        )
        assert sorted(result["holders"]) == sorted([owner.org.id, buyer.id])
        buyer_acc = await account(client, buyer.headers)
        assert (buyer_acc["held_tonnes"], buyer_acc["retired_tonnes"], buyer_acc["revoked_tonnes"]) == (
            0,
            1,
            3,
        )
        assert all(b["fraud_flagged"] for b in buyer_acc["blocks"])
        r = await client.get(f"/v1/public/certificates/{number}")
        assert r.json()["fraud_flagged"] is True
        revoked = [b["serial"] for b in buyer_acc["blocks"] if b["status"] == "revoked"]
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": owner.org.id, "serials": revoked}, headers=buyer.headers
        )
        assert (r.status_code, r.json()["code"]) == (409, "units_revoked")
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": owner.org.id, "tonnes": 1}, headers=buyer.headers
        )
        assert (r.status_code, r.json()["code"]) == (409, "insufficient_units")
        r = await client.post(
            f"/v1/cer/projects/{project_id}/clawback", json={"reason": "again"}, headers=bearer(authority)
        )
        assert (r.status_code, r.json()["code"]) == (409, "invalid_project_state")
        r = await client.get(f"/v1/public/cer/projects/{project_id}")
        assert r.json()["status"] == "frozen"


class TestTrace:
    async def test_trace_reaches_the_signed_batches(self, client, authority, run_sync):
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 20.0)])
        await add_records(client, owner, [(2, 20.0), (2, 20.0)])  # a second signed batch
        project = await create_project(
            client, owner, clock.today() - timedelta(days=5), clock.today() - timedelta(days=1)
        )
        issuance = await to_issued(client, authority, owner, project)
        r0 = serial_range(issuance["serials"])
        unit = blocks.format_unit(PREFIX, issuance["vintage"], r0.start + 1)
        r = await client.get(f"/v1/cer/trace/{unit}", headers=bearer(authority))
        assert r.status_code == 200, r.text
        trace = r.json()
        assert (trace["serial"], trace["unit"], trace["block"]["serial"]) == (
            unit,
            r0.start + 1,
            issuance["serials"],
        )
        assert trace["project"]["id"] == project["id"] and trace["records_total"] == 3
        assert [(v["code"], v["records"], v["reduction_g"]) for v in trace["methodology_versions"]] == [
            (owner.code, 3, 3_000_000)
        ]
        assert trace["batches_total"] == 2
        assert sorted(b["records_in_project"] for b in trace["batches"]) == [1, 2]
        assert all(b["body_hash_ok"] and b["kid"] == owner.org.kid for b in trace["batches"])
        assert sorted(x["record_id"] for x in trace["records"]) == sorted(
            x["record_id"] for x in owner.records
        )
        r = await client.get(f"/v1/cer/trace/{unit}", headers=owner.headers)
        assert r.status_code == 403
        r = await client.get(
            f"/v1/cer/trace/{PREFIX}-{issuance['vintage']}-999999999", headers=bearer(authority)
        )
        assert (r.status_code, r.json()["code"]) == (404, "serial_not_found")
        r = await client.get("/v1/cer/trace/nonsense", headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, "invalid_serial")

        mount_cer_cli()
        result = await invoke_cli(run_sync, "cer", "trace", unit, "--json")
        assert result.exit_code == 0, result.output
        printed = json.loads(result.output)
        assert {b["batch_id"] for b in printed["batches"]} == {b["batch_id"] for b in trace["batches"]}
        result = await invoke_cli(run_sync, "cer", "trace", unit)
        assert result.exit_code == 0, result.output
        assert "2 signed batches" in result.output and owner.code in result.output
        result = await invoke_cli(run_sync, "cer", "trace", f"{PREFIX}-{issuance['vintage']}-999999999")
        assert result.exit_code == 1 and "serial_not_found" in result.output


class TestDisclosure:
    async def test_public_lists_and_totals(self, client, authority):
        before = (await client.get("/v1/public/cer/totals")).json()
        owner, issuance = await issued_units(client, authority, 4)
        r = await retire(client, owner.org, {"tonnes": 1})
        number = r.json()["certificate_number"]
        after = (await client.get("/v1/public/cer/totals")).json()
        assert after["issued_tonnes"] - before["issued_tonnes"] == 4
        assert after["retired_tonnes"] - before["retired_tonnes"] == 1
        assert after["certificates"] - before["certificates"] == 1
        assert after["projects"] - before["projects"] == 1
        # (tests move the clock, so "newest first" is by each test's clock: look the rows up)
        r = await client.get("/v1/public/cer/retirements", params={"limit": 200})
        [mine] = [x for x in r.json()["items"] if x["certificate_number"] == number]
        assert (mine["tonnes"], mine["beneficiary"]) == (1, {"kind": "organization", "name": "Green Co"})
        assert "holder_org_id" not in mine
        r = await client.get("/v1/public/cer/issuances", params={"limit": 200})
        [mine] = [x for x in r.json()["items"] if x["id"] == issuance["id"]]
        assert (mine["tonnes"], mine["serials"], mine["owner_name"]) == (
            4,
            issuance["serials"],
            issuance["owner_name"],
        )
        r = await client.get(
            "/v1/public/cer/projects", params={"status": "issued", "owner_org_id": owner.org.id}
        )
        assert [(p["status"], p["publicity"], p["issued_tonnes"]) for p in r.json()["items"]] == [
            ("issued", "ended", 4)
        ]


class TestDemo:
    async def test_demo_loads_an_account_a_project_and_prices(self, client):
        from app.cer import demo as cer_demo
        from app.core import db
        from app.points import demo as points_demo

        async with db.session_scope() as session:
            await points_demo.load(session)
        async with db.session_scope() as session:
            lines = await cer_demo.load(session)
        assert lines[0].startswith("CER: registry account for the demo operator")
        r = await client.get("/v1/cer/reference-price", params={"on": clock.today().isoformat()})
        assert r.status_code == 200, r.text
