"""The access log: one line a request, and no secret that travelled in the path."""

import json
import logging

import pytest

from tests.factories import authority_token, make_operator
from tests.factories_mall import make_item, make_merchant, people, place
from tests.factories_points import ensure_rule, make_methodology


@pytest.fixture
def access_lines(caplog):
    caplog.set_level(logging.INFO, logger="carbon.access")

    def lines() -> list[str]:
        return [json.dumps(r.__dict__, default=str) for r in caplog.records if r.name == "carbon.access"]

    return lines


class TestVoucherCodes:
    async def test_a_redemption_is_logged_without_its_code(self, client, access_lines):
        await ensure_rule()
        authority = await authority_token(client)
        [buyer] = await people(
            client,
            await make_operator(client, authority),
            await make_methodology(factor="1000"),
            1,
            points=200,
        )
        merchant = await make_merchant(client, authority)
        item = await make_item(client, merchant)
        code = (await place(client, buyer, item["id"])).json()["voucher"]["code"]
        typed = code.lower().replace("-", " ")  # a clerk may type it any way
        for sent in (code, typed):
            r = await client.post(f"/v1/merchant/vouchers/{sent}/redeem", headers=merchant.headers)
            assert r.status_code in (200, 409), r.text
        redemptions = [line for line in access_lines() if "/redeem" in line]
        assert len(redemptions) == 2
        for line in redemptions:
            assert json.loads(line)["path"] == "/v1/merchant/vouchers/[redacted]/redeem"
            for secret in (code, code.replace("-", ""), typed, typed.replace(" ", "%20")):
                assert secret not in line

    async def test_a_wrong_code_is_not_logged_either(self, client, access_lines):
        merchant = await make_merchant(client)
        r = await client.post("/v1/merchant/vouchers/ABCD-EFGH-JKMN-PQRS/redeem", headers=merchant.headers)
        assert r.status_code == 404
        assert [json.loads(line)["path"] for line in access_lines() if "/redeem" in line] == [
            "/v1/merchant/vouchers/[redacted]/redeem"
        ]
        assert all("ABCD" not in line for line in access_lines())

    async def test_nor_one_sent_with_the_wrong_method(self, client, access_lines):
        r = await client.get("/v1/merchant/vouchers/ABCD-EFGH-JKMN-PQRT/redeem")
        assert r.status_code == 405
        assert [json.loads(line)["path"] for line in access_lines()] == [
            "/v1/merchant/vouchers/[redacted]/redeem"
        ]


class TestOtherPaths:
    async def test_plain_paths_are_logged_as_they_came(self, client, access_lines):
        await client.get("/v1/public/operators?limit=1")
        [line] = [json.loads(line) for line in access_lines()]
        assert (line["method"], line["path"], line["status"]) == ("GET", "/v1/public/operators", 200)

    async def test_unmatched_paths_too(self, client, access_lines):
        await client.get("/v1/nowhere/at-all")
        [line] = [json.loads(line) for line in access_lines()]
        assert (line["path"], line["status"]) == ("/v1/nowhere/at-all", 404)
