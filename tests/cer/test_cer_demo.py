"""The whole demo carries one CER project to a retirement certificate: the portal's lists are not empty."""

import io
import re

from rich.console import Console

from app.cer import demo as cer_demo
from app.core import db
from app.demo import load_demo
from tests.factories import authority_token


async def loaded() -> str:
    console = Console(file=io.StringIO(), width=400)
    await load_demo(console, only_if_empty=False)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


class TestDemoCertificate:
    async def test_issued_retired_and_its_certificate_page(self, client):
        await authority_token(client)
        out = await loaded()
        found = re.search(
            r"CER: demo certificate (?:already there )?(CERT-\d{4}-\d+) \(1 t for (.+)\): (\S+)", out
        )
        assert found, out
        number, beneficiary, url = found.groups()
        assert beneficiary == cer_demo.BENEFICIARY.name
        assert url.endswith(f"/certificates/{number}")

        r = await client.get("/v1/public/cer/issuances")
        assert r.status_code == 200 and r.json()["items"], r.text
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

        # loading again adds nothing and prints the same certificate
        async with db.session_scope() as session:
            again = await cer_demo.load(session)
        assert any(line.startswith(f"CER: demo certificate already there {number}") for line in again), again
