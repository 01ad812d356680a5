"""OWASP API6:2023 Unrestricted Access to Sensitive Business Flows.

The flows worth automating against this platform: guessing voucher codes at a counter, scalping a
scarce mall item with many concurrent orders (also through a second operator's token of the same
person), claiming the same real-world behaviour twice, and farming points with many records a day.
Each is limited: voucher guesses per merchant (then 429, even for a valid code), per-person item
limits counted per person (not per token or per request), evidence claimed once platform-wide,
daily point caps; and no route moves points from one person to another.
"""

import asyncio
import re
from datetime import timedelta

import pytest

from app.core import clock
from tests.factories import make_operator, unique
from tests.factories_mall import Person, make_item, make_merchant, people, place, purchased
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit, user_headers
from tests.factories_security import hold_the_rate_window
from tests.security.access import ACCESS, AUTHORITY


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


class TestVoucherGuessing:
    async def test_guesses_are_limited_per_merchant_and_then_even_a_valid_code_waits(
        self, client, settings, monkeypatch
    ):
        hold_the_rate_window(monkeypatch)
        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        (buyer,) = await people(client, op, btype, 1, points=100)
        merchant, other = await make_merchant(client), await make_merchant(client)
        item = await make_item(client, merchant, points_price=10)
        order = (await place(client, buyer, item["id"])).json()
        monkeypatch.setattr(settings, "voucher_guess_limit_per_minute", 5)
        codes = []
        for i in range(6):
            r = await client.post(
                f"/v1/merchant/vouchers/ABCD-EFGH-JKMN-{i:04d}/redeem", headers=merchant.headers
            )
            codes.append(r.status_code)
        assert codes == [404, 404, 404, 404, 404, 429]
        assert r.headers["retry-after"] == "31"
        r = await client.post(
            f"/v1/merchant/vouchers/{order['voucher']['code']}/redeem", headers=merchant.headers
        )
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
        # another merchant has its own allowance; the voucher is still unused
        r = await client.post("/v1/merchant/vouchers/ABCD-EFGH-JKMN-9999/redeem", headers=other.headers)
        assert r.status_code == 404
        r = await client.get(f"/v1/me/orders/{order['id']}", headers=buyer.headers)
        assert r.json()["status"] == "issued"

    async def test_codes_are_not_sequential(self, client):
        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        (buyer,) = await people(client, op, btype, 1, points=200)
        item = await make_item(client, await make_merchant(client), points_price=10)
        codes = [(await place(client, buyer, item["id"])).json()["voucher"]["code"] for _ in range(5)]
        assert all(re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", c) for c in codes)
        for a, b in zip(codes, codes[1:], strict=False):
            assert sum(x != y for x, y in zip(a, b, strict=True)) >= 8  # no shared prefix or counter


class TestScalping:
    async def test_a_burst_of_orders_gets_the_per_person_limit_and_no_more(self, client):
        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        (bot,) = await people(client, op, btype, 1, points=200)
        item = await make_item(
            client, await make_merchant(client), points_price=10, stock=20, per_user_limit=2
        )
        results = await asyncio.gather(*[place(client, bot, item["id"]) for _ in range(12)])
        codes = sorted(r.status_code for r in results)
        assert codes == [201, 201] + [409] * 10
        assert {r.json()["code"] for r in results if r.status_code == 409} == {"per_user_limit_exceeded"}
        assert await purchased(item["id"], bot.user_id) == 2

    async def test_a_second_operators_token_is_the_same_person(self, client):
        btype = await make_methodology(factor="1000")
        a, b = await make_operator(client), await make_operator(client)
        number = f"+86136{abs(hash(unique('n'))) % 10**8:08d}"
        at_a = await enrol(client, a, number=number, accepted_at=clock.now() - timedelta(days=60))
        at_b = await enrol(client, b, number=number, accepted_at=clock.now() - timedelta(days=60))
        assert at_a["user_id"] == at_b["user_id"]
        r = await submit(client, a, [record(at_a["external_user_id"], btype, quantity=2.0)])
        assert r.json()["summary"]["accepted"] == 1
        via_a = Person(
            at_a["external_user_id"],
            at_a["user_id"],
            await user_headers(client, a, at_a["external_user_id"]),
            a,
        )
        via_b = Person(
            at_b["external_user_id"],
            at_b["user_id"],
            await user_headers(client, b, at_b["external_user_id"]),
            b,
        )
        item = await make_item(
            client, await make_merchant(client), points_price=10, stock=20, per_user_limit=2
        )
        results = await asyncio.gather(*[place(client, who, item["id"]) for who in (via_a, via_b) * 4])
        assert sorted(r.status_code for r in results) == [201, 201] + [409] * 6
        assert await purchased(item["id"], at_a["user_id"]) == 2

    async def test_stock_is_never_oversold_to_many_people(self, client):
        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        crowd = await people(client, op, btype, 8, points=50)
        item = await make_item(client, await make_merchant(client), points_price=10, stock=3)
        results = await asyncio.gather(*[place(client, p, item["id"]) for p in crowd])
        assert sorted(r.status_code for r in results) == [201] * 3 + [409] * 5
        r = await client.get(f"/v1/mall/items/{item['id']}")
        assert r.json()["stock"] == 0


class TestPointFarming:
    async def test_the_same_ride_claimed_by_two_operators_counts_once(self, client):
        btype = await make_methodology()
        a, b = await make_operator(client), await make_operator(client)
        ua, ub = await enrol(client, a), await enrol(client, b)
        ride = record(ua["external_user_id"], btype, quantity=5.0, evidence=unique("card-txn"))
        r = await submit(client, a, [ride])
        assert r.json()["results"][0]["status"] == "accepted"
        copy = {**ride, "record_id": unique("rec"), "external_user_id": ub["external_user_id"]}
        r = await submit(client, b, [copy])
        assert [(x["status"], x["code"], x["points"]) for x in r.json()["results"]] == [
            ("rejected", "evidence_already_claimed", 0)
        ]

    async def test_a_day_earns_at_most_the_daily_cap(self, client):
        btype = await make_methodology(max_day=None)
        op = await make_operator(client)
        person = await enrol(client, op)
        start = clock.now().replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=1)
        records = [
            record(
                person["external_user_id"],
                btype,
                quantity=50.0,
                start=start + timedelta(minutes=30 * i),
                minutes=20,
            )
            for i in range(10)
        ]
        r = await submit(client, op, records)
        assert r.json()["summary"]["accepted"] == 10
        assert sum(x["points"] for x in r.json()["results"]) == 200

    def test_only_the_authority_names_a_persons_account(self):
        """No route takes a person's id but the authority's clawback: points never move between people."""
        for (method, path), roles in ACCESS.items():
            if "{user_id}" in path:
                assert roles == AUTHORITY, (method, path)
