"""Scoped user tokens (issue 14): through operator A's token a person sees the one account's balance, but
only the behaviours, ledger entries and orders that come from A; ordering needs `mall`; operator
redemptions happen only in A's own mall."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from app.core import clock, db
from app.points import service as points_service
from tests.factories import Org, assert_problem, authority_token, make_operator, unique
from tests.factories_mall import Person, fund, make_item, make_merchant
from tests.factories_points import enrol, phone, user_headers


@dataclass
class Two:
    """One person entrusting two operators (both trusted, ``a`` with the scopes of the test)."""

    a: Org
    b: Org
    via_a: Person
    via_b: Person

    @property
    def user_id(self) -> str:
        return self.via_a.user_id


async def _two(client, btype: str, *, a_points: int = 100, b_points: int = 200, a_scopes=None) -> Two:
    authority = await authority_token(client)
    a = await make_operator(client, authority, **({"scopes": a_scopes} if a_scopes else {}))
    b = await make_operator(client, authority)
    number = phone()
    since = clock.now() - timedelta(days=60)
    ua = await enrol(client, a, number=number, accepted_at=since)
    ub = await enrol(client, b, number=number, accepted_at=since)
    assert ua["user_id"] == ub["user_id"]
    via_a = Person(
        ua["external_user_id"], ua["user_id"], await user_headers(client, a, ua["external_user_id"]), a
    )
    via_b = Person(
        ub["external_user_id"], ub["user_id"], await user_headers(client, b, ub["external_user_id"]), b
    )
    if a_points:
        await fund(client, a, btype, [via_a], a_points)
    via_b.days_funded = via_a.days_funded  # other days: no overlap between the two operators' records
    if b_points:
        await fund(client, b, btype, [via_b], b_points)
    return Two(a, b, via_a, via_b)


async def _get(client, person: Person, path: str) -> dict:
    r = await client.get(path, headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _ledger(client, person: Person) -> list[tuple]:
    items = (await _get(client, person, "/v1/me/ledger"))["items"]
    return [(e["kind"], e["amount"], e["ref_type"]) for e in items]


async def _order(client, person: Person, item_id: str) -> dict:
    headers = {**person.headers, "Idempotency-Key": unique("order")}
    r = await client.post("/v1/me/orders", json={"item_id": item_id, "quantity": 1}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _redeem(client, person: Person, points: int = 30) -> dict:
    body = {"operator_order_id": unique("op-order"), "points": points, "description": "a tote bag"}
    r = await client.post("/v1/me/operator-redemptions", json=body, headers=person.headers)
    assert r.status_code == 201, r.text
    return r.json()


class TestFilters:
    async def test_the_balance_is_the_one_account_records_and_ledger_are_the_operators(self, client, btype):
        two = await _two(client, btype)
        for person in (two.via_a, two.via_b):
            account = await _get(client, person, "/v1/me/account")
            assert (account["balance"], account["lifetime_points"]) == (300, 300)
        behaviours_a = (await _get(client, two.via_a, "/v1/me/behaviours"))["items"]
        behaviours_b = (await _get(client, two.via_b, "/v1/me/behaviours"))["items"]
        assert [(b["operator_id"], b["points"]) for b in behaviours_a] == [(two.a.id, 100)]
        assert [(b["operator_id"], b["points"]) for b in behaviours_b] == [(two.b.id, 200)]
        assert await _ledger(client, two.via_a) == [("earn", 100, "batch")]
        assert await _ledger(client, two.via_b) == [("earn", 200, "batch")]

    async def test_orders_and_their_refunds_are_seen_through_the_operator_they_were_placed_through(
        self, client, btype
    ):
        two = await _two(client, btype)
        merchant = await make_merchant(client)
        item = await make_item(client, merchant, points_price=50)
        order = await _order(client, two.via_b, item["id"])
        assert (await _get(client, two.via_a, "/v1/me/orders"))["items"] == []
        assert [o["id"] for o in (await _get(client, two.via_b, "/v1/me/orders"))["items"]] == [order["id"]]
        for path in ("", "/voucher.svg", "/voucher.png"):
            r = await client.get(f"/v1/me/orders/{order['id']}{path}", headers=two.via_a.headers)
            assert_problem(r, 404, "order_not_found")
        r = await client.post(f"/v1/me/orders/{order['id']}/cancel", headers=two.via_a.headers)
        assert_problem(r, 404, "order_not_found")
        assert (await _get(client, two.via_b, f"/v1/me/orders/{order['id']}"))["status"] == "issued"
        assert await _ledger(client, two.via_a) == [("earn", 100, "batch")]
        r = await client.post(f"/v1/me/orders/{order['id']}/cancel", headers=two.via_b.headers)
        assert (r.status_code, r.json()["status"]) == (200, "cancelled")
        assert await _ledger(client, two.via_b) == [
            ("refund", 50, "mall_order"),
            ("redeem", -50, "mall_order"),
            ("earn", 200, "batch"),
        ]
        assert await _ledger(client, two.via_a) == [("earn", 100, "batch")]
        assert (await _get(client, two.via_a, "/v1/me/account"))["balance"] == 300

    async def test_operator_redemptions_are_in_the_operators_own_mall_only(self, client, btype):
        two = await _two(client, btype)
        redemption = await _redeem(client, two.via_a, 30)
        assert redemption["operator_id"] == two.a.id
        r = await client.get("/v1/operator/redemptions", headers=two.a.headers)
        assert [x["operator_order_id"] for x in r.json()["items"]] == [redemption["operator_order_id"]]
        r = await client.get("/v1/operator/redemptions", headers=two.b.headers)
        assert r.json()["items"] == []
        r = await client.post(
            f"/v1/operator/redemptions/{redemption['operator_order_id']}/reverse", headers=two.b.headers
        )
        assert_problem(r, 404, "redemption_not_found")
        assert await _ledger(client, two.via_a) == [
            ("redeem", -30, "operator_redemption"),
            ("earn", 100, "batch"),
        ]
        assert await _ledger(client, two.via_b) == [("earn", 200, "batch")]
        r = await client.post(
            f"/v1/operator/redemptions/{redemption['operator_order_id']}/reverse", headers=two.a.headers
        )
        assert r.status_code == 200, r.text
        assert await _ledger(client, two.via_a) == [
            ("refund", 30, "operator_redemption"),
            ("redeem", -30, "operator_redemption"),
            ("earn", 100, "batch"),
        ]
        assert await _ledger(client, two.via_b) == [("earn", 200, "batch")]

    async def test_an_expiry_is_seen_through_the_operators_that_credited_the_lot(self, client, btype):
        both = await _two(client, btype)  # both operators credited the same lot (the day's)
        only_b = await _two(client, btype, a_points=0)  # entrusts A too, but only B credited
        expires = datetime.fromisoformat(
            (await _get(client, both.via_a, "/v1/me/account"))["expiring"][0]["expires_at"]
        )
        async with db.session_scope() as session:
            while (await points_service.expire_due(session, now=expires)).accounts:
                pass
        assert (await _ledger(client, both.via_a))[0] == ("expire", -300, "expiry")
        assert (await _ledger(client, both.via_b))[0] == ("expire", -300, "expiry")
        assert await _ledger(client, only_b.via_a) == []
        assert await _ledger(client, only_b.via_b) == [("expire", -200, "expiry"), ("earn", 200, "batch")]
        assert (await _get(client, only_b.via_a, "/v1/me/account"))["balance"] == 0

    async def test_a_clawback_is_seen_through_the_operators_that_credited_the_lots_it_took(
        self, client, btype
    ):
        both = await _two(client, btype)  # both operators credited the day's lot
        only_b = await _two(client, btype, a_points=0)  # entrusts A too, but only B credited
        authority = await authority_token(client)
        for two, points in ((both, 120), (only_b, 50)):
            r = await client.post(
                f"/v1/points/accounts/{two.user_id}/clawback",
                json={"points": points, "reason": "fraud found"},
                headers={"Authorization": f"Bearer {authority}"},
            )
            assert r.status_code == 200, r.text
        assert (await _ledger(client, both.via_a))[0] == ("clawback", -120, "clawback")
        assert (await _ledger(client, both.via_b))[0] == ("clawback", -120, "clawback")
        assert await _ledger(client, only_b.via_a) == []
        assert await _ledger(client, only_b.via_b) == [("clawback", -50, "clawback"), ("earn", 200, "batch")]
        assert (await _get(client, only_b.via_a, "/v1/me/account"))["balance"] == 150

    async def test_pages_of_the_filtered_ledger_and_behaviours(self, client, btype):
        two = await _two(client, btype, a_points=600, b_points=400)  # 3 days of A's, 2 of B's
        for path, count in (("/v1/me/ledger", 1), ("/v1/me/behaviours", 3)):
            seen, cursor = [], None
            while True:
                page = await _get(
                    client, two.via_a, path + "?limit=1" + (f"&cursor={cursor}" if cursor else "")
                )
                seen += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert len(seen) == count
            assert all(s.get("operator_id", two.a.id) == two.a.id for s in seen)


class TestScopes:
    async def test_ordering_needs_mall(self, client, btype):
        two = await _two(client, btype, a_scopes=("behaviours:submit", "account:read"))
        merchant = await make_merchant(client)
        item = await make_item(client, merchant, points_price=50)
        headers = {**two.via_a.headers, "Idempotency-Key": unique("order")}
        r = await client.post("/v1/me/orders", json={"item_id": item["id"], "quantity": 1}, headers=headers)
        problem = assert_problem(r, 403, "scope_required")
        assert problem["scope"] == "mall" and "/oauth/authorize" in problem["detail"]
        order = await _order(client, two.via_b, item["id"])
        for method, path in (
            ("GET", "/v1/me/orders"),
            ("GET", f"/v1/me/orders/{order['id']}"),
            ("GET", f"/v1/me/orders/{order['id']}/voucher.svg"),
            ("POST", f"/v1/me/orders/{order['id']}/cancel"),
        ):
            r = await client.request(method, path, headers=two.via_a.headers)
            assert assert_problem(r, 403, "scope_required")["scope"] == "mall", path
        assert (await _get(client, two.via_a, "/v1/me/account"))[
            "balance"
        ] == 250  # only B's order was placed
        assert len((await _get(client, two.via_a, "/v1/me/behaviours"))["items"]) == 1

    async def test_reading_the_account_needs_account_read(self, client, btype):
        two = await _two(client, btype, a_scopes=("behaviours:submit",))
        for path in ("/v1/me/account", "/v1/me/ledger", "/v1/me/behaviours"):
            r = await client.get(path, headers=two.via_a.headers)
            assert assert_problem(r, 403, "scope_required")["scope"] == "account:read", path
        # spending in the operator's own mall needs no scope beyond the entrustment
        assert (await _redeem(client, two.via_a, 20))["operator_id"] == two.a.id
        assert (await _get(client, two.via_b, "/v1/me/account"))["balance"] == 280

    @pytest.mark.parametrize("scope", ["account:read", "mall"])
    async def test_staff_and_client_tokens_never_pass_as_a_person(self, client, scope):
        op = await make_operator(client)
        path = "/v1/me/account" if scope == "account:read" else "/v1/me/orders"
        for headers in (op.headers, {"Authorization": f"Bearer {op.extra['admin_token']}"}):
            assert_problem(await client.get(path, headers=headers), 403, "forbidden_role")
