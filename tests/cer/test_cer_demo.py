"""The whole demo carries one CER project to a retirement certificate, moving the sandbox clock past its
publicity as the authority would (audited); the portal's lists are not empty; nothing moves twice."""

import io
import re
from datetime import datetime, timedelta

import pytest
from rich.console import Console

from app.cer import demo as cer_demo
from app.core import audit, clock, db
from app.demo import DemoRefused, load_demo
from app.demo import authority as demo_authority
from app.organizations import service as org_service
from tests.factories import authority_token


async def loaded() -> str:
    buffer = io.StringIO()
    await load_demo(Console(file=buffer, width=400), only_if_empty=False)
    return buffer.getvalue()


async def clock_advances(actor: str) -> list[dict]:
    async with db.session_scope() as session:
        page = await audit.search(session, audit.Search(actor=actor, action="clock.advance"), 100, None)
    return [e.data for e in page["items"] if e.actor == actor]


class TestDemoCertificate:
    async def test_issued_after_the_clock_moved_retired_and_its_certificate_page(self, client):
        await authority_token(client)
        async with db.session_scope() as session:
            actor = (await demo_authority(session)).actor
        moves_before = await clock_advances(actor)
        out = await loaded()
        found = re.search(
            r"CER: demo certificate (?:already there )?(CERT-\d{4}-\d+) \(1 t for (.+)\): (\S+)", out
        )
        assert found, out
        number, beneficiary, url = found.groups()
        assert beneficiary == cer_demo.BENEFICIARY.name
        assert url.endswith(f"/certificates/{number}")

        # the issued project: created on the first day, issued on the day after its publicity's last day
        async with db.session_scope() as session:
            operator_id = await org_service.staff_org_id(session, cer_demo.OPERATOR_USERNAME)
        r = await client.get(
            "/v1/public/cer/projects", params={"status": "issued", "owner_org_id": str(operator_id)}
        )
        [project] = [p for p in r.json()["items"] if p["name"].startswith("深圳电动车通勤 demo")]
        starts = datetime.fromisoformat(project["publicity_starts_on"]).date()
        ends = datetime.fromisoformat(project["publicity_ends_on"]).date()
        assert (project["period_start"], project["period_end"]) == (
            (starts - timedelta(days=cer_demo.PERIOD_DAYS)).isoformat(),
            (starts - timedelta(days=1)).isoformat(),
        )
        r = await client.get("/v1/public/cer/issuances")
        assert r.status_code == 200, r.text
        [issuance] = [i for i in r.json()["items"] if i["project_id"] == project["id"]]
        assert clock.local_day(datetime.fromisoformat(issuance["issued_at"])) == ends + timedelta(days=1)
        # ... because the demo authority moved the sandbox clock by exactly that much: audited
        by = int(timedelta(days=(ends - starts).days + 1).total_seconds())
        moves = await clock_advances(actor)
        assert by in [m["by_seconds"] for m in moves], moves
        if "already there" not in out:  # loaded in this test (not by another before it)
            assert [m["by_seconds"] for m in moves[: len(moves) - len(moves_before)]] == [by]
            assert f"the sandbox clock moved {by // 86400} days forward to {ends + timedelta(days=1)}" in out
            async with db.session_scope() as session:
                sandbox = await clock.read_sandbox(session)
            assert (sandbox.offset, sandbox.updated_by) == (
                timedelta(seconds=moves[0]["offset_seconds"]),
                actor,
            )
            assert moves[0]["offset_seconds"] >= by
            # the week project: the demo people's trips of the week before the first day, in publicity
            r = await client.get(
                "/v1/public/cer/projects", params={"status": "publicity", "owner_org_id": str(operator_id)}
            )
            week = [p for p in r.json()["items"] if p["name"].startswith("深圳低碳出行 demo")]
            assert [(p["period_start"], p["period_end"], p["publicity_starts_on"]) for p in week] == [
                (
                    (starts - timedelta(days=8)).isoformat(),
                    (starts - timedelta(days=1)).isoformat(),
                    (ends + timedelta(days=1)).isoformat(),
                )
            ]
            assert cer_demo.NEV_CODE not in week[0]["methodology_codes"]
            assert clock.today() <= ends  # this process's clock is put back: the offset is uncommitted here

        r = await client.get("/v1/public/cer/retirements")
        assert number in [x["certificate_number"] for x in r.json()["items"]], r.text
        for page in ("/cer/issuances", "/cer/retirements"):
            r = await client.get(page)
            assert r.status_code == 200, r.text
        r = await client.get("/cer/retirements")
        assert number in r.text
        r = await client.get(f"/certificates/{number}")
        assert r.status_code == 200 and number in r.text
        assert cer_demo.BENEFICIARY.name in r.text
        r = await client.get(f"/v1/public/certificates/{number}")
        assert r.status_code == 200
        content = r.json()["content"]
        assert (content["tonnes"], content["purpose"]) == (1, cer_demo.PURPOSE)
        r = await client.get("/v1/cer/reference-price", params={"on": (ends + timedelta(days=1)).isoformat()})
        assert r.status_code == 200, r.text

        # loading again adds nothing, moves nothing and prints the same certificate
        async with db.session_scope() as session:
            again = await cer_demo.load(session)
        assert any(line.startswith(f"CER: demo certificate already there {number}") for line in again), again
        assert not any("sandbox clock moved" in line for line in again), again
        assert await clock_advances(actor) == moves


class TestProduction:
    async def test_the_demo_is_refused_and_loads_nothing(self, settings, monkeypatch):
        monkeypatch.setattr(settings, "environment", "production")
        buffer = io.StringIO()
        with pytest.raises(DemoRefused) as refused:
            await load_demo(Console(file=buffer, width=400), only_if_empty=False)
        assert (refused.value.status, refused.value.code) == (403, "demo_refused")
        assert buffer.getvalue() == ""
