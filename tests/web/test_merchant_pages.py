"""The merchant's till and back office over HTTP (in process, in English): redeeming vouchers with each
refusal, items with their errors beside the fields, the statement, orders and used-points reports."""

import csv
import io
import re
from datetime import datetime, timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from app.auth.principal import Principal
from app.core import clock, db
from app.organizations import service as org_service
from tests.factories import PASSWORD, bearer, login
from tests.factories_mall import people, place
from tests.web.helpers import HTML, csrf_token, make_authority_account, page_token, sign_in
from tests.web.merchant_helpers import mall_world, shop, voucher


@pytest.fixture(scope="session")
async def world(app):
    return await mall_world(app)


@pytest.fixture(autouse=True)
def reset_clock():
    yield
    clock.freeze(None)
    clock.set_offset(timedelta(0))


@pytest.fixture
async def till(client, browser_client, world):
    """A shop whose merchant admin is signed in, in English."""
    s = await shop(client, world)
    browser_client.cookies.set("lang", "en")
    r = await sign_in(browser_client, s.merchant.admin_username, PASSWORD, "/merchant")
    assert (r.status_code, r.headers["location"]) == (303, "/merchant")
    return s


def alert(html: str) -> str:
    match = re.search(r'<div class="alert alert--error" role="alert"[^>]*>([^<]*)</div>', html)
    assert match, "no error shown"
    return unescape(match.group(1))


def field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field__error" id="f-{name}-error">([^<]*)</p>', html)
    assert match, f"no error beside {name}"
    return unescape(match.group(1))


async def post(browser_client, path: str, data: dict, form_page: str = "/merchant"):
    token = await page_token(browser_client, form_page)
    return await browser_client.post(path, data={"csrf_token": token, **data}, headers=HTML)


async def check(browser_client, code: str):
    return await post(browser_client, "/merchant/vouchers/check", {"code": code})


async def redeem(browser_client, code: str):
    return await post(browser_client, "/merchant/vouchers/redeem", {"code": code})


async def order_status(client, s, order_id: str) -> str:
    r = await client.get(f"/v1/me/orders/{order_id}", headers=s.buyer.headers)
    return r.json()["status"]


NOT_FOUND = "No voucher of your shop has this code. Check the code and try again."


class TestAccess:
    async def test_a_browser_not_signed_in_is_sent_to_sign_in(self, browser_client):
        r = await browser_client.get("/merchant")
        assert (r.status_code, r.headers["location"]) == (303, "/sign-in?next=%2Fmerchant")

    async def test_another_role_gets_a_403_page(self, browser_client):
        username = await make_authority_account()
        await sign_in(browser_client, username)
        for path in (
            "/merchant",
            "/merchant/items",
            "/merchant/statement",
            "/merchant/orders",
            "/merchant/reports",
        ):
            r = await browser_client.get(path)
            assert r.status_code == 403, path
            assert r.headers["content-type"].startswith("text/html")


class TestRedeem:
    async def test_the_till_shows_what_a_voucher_buys_then_redeems_it_once(
        self, client, browser_client, till
    ):
        r = await browser_client.get("/merchant")
        assert r.status_code == 200
        assert re.search(
            r'<input class="till__code" id="f-code" name="code" type="text" value="" required autofocus',
            r.text,
        )
        order = await voucher(client, till)
        code = order["voucher"]["code"]
        r = await check(browser_client, code.lower().replace("-", " "))  # as a clerk might type it
        assert r.status_code == 200
        facts = re.findall(r"<dt>([^<]*)</dt><dd[^>]*>([^<]*)</dd>", r.text)
        ordered_on = datetime.fromisoformat(order["created_at"]).astimezone(clock.zone())
        assert [(k, unescape(v)) for k, v in facts] == [
            ("Item", till.item["title"]),
            ("Quantity", "1"),
            ("Points paid", "50"),
            ("Ordered on", f"{ordered_on:%b} {ordered_on.day}, {ordered_on.year}"),
            ("Valid until", facts[4][1]),
        ]
        assert await order_status(client, till, order["id"]) == "issued"  # looking does not use it
        r = await redeem(browser_client, code)
        assert (r.status_code, r.headers["location"]) == (303, f"/merchant/redeemed/{order['id']}")
        r = await browser_client.get(r.headers["location"])
        assert r.status_code == 200
        assert "<h1>Voucher redeemed</h1>" in r.text
        assert code not in r.text
        assert await order_status(client, till, order["id"]) == "redeemed"
        r = await check(browser_client, code)
        assert r.status_code == 409
        assert alert(r.text) == "This voucher has already been used. It cannot be used again."
        assert 'value="' + code.lower().replace("-", " ") + '"' not in r.text
        r = await redeem(browser_client, code)
        assert r.status_code == 409
        assert alert(r.text) == "This voucher has already been used. It cannot be used again."

    async def test_another_merchants_voucher_is_not_found_like_a_code_that_does_not_exist(
        self, client, browser_client, world, till
    ):
        other = await shop(client, world)
        theirs = await voucher(client, other)
        for code in (theirs["voucher"]["code"], "0000-0000-0000-0000"):
            for attempt in (check, redeem):
                r = await attempt(browser_client, code)
                assert r.status_code == 404
                assert alert(r.text) == NOT_FOUND
                assert 'data-refused="VoucherNotFound"' in r.text
        assert await order_status(client, other, theirs["id"]) == "issued"

    async def test_a_cancelled_order(self, client, browser_client, till):
        order = await voucher(client, till)
        r = await client.post(f"/v1/me/orders/{order['id']}/cancel", headers=till.buyer.headers)
        assert r.status_code == 200
        r = await check(browser_client, order["voucher"]["code"])
        assert r.status_code == 409
        assert alert(r.text) == "The buyer cancelled this order, so its voucher can no longer be used."

    async def test_an_expired_voucher(self, client, browser_client, till):
        order = await voucher(client, till)
        async with db.session_scope() as session:  # the voucher ran out a second ago (the session has not)
            await session.execute(
                sa.text(
                    "UPDATE mall_orders SET voucher_expires_at = now() - interval '1 second' WHERE id = :id"
                ),
                {"id": order["id"]},
            )
        for attempt in (check, redeem):
            r = await attempt(browser_client, order["voucher"]["code"])
            assert r.status_code == 409
            assert alert(r.text) == "This voucher has expired and can no longer be used."

    async def test_an_empty_or_malformed_code_is_refused_beside_the_field(self, browser_client, till):
        r = await check(browser_client, "  ")
        assert r.status_code == 400
        assert alert(r.text) == "Enter the voucher code."
        r = await check(browser_client, "ABCD-EFGH")
        assert r.status_code == 400
        assert alert(r.text) == "A voucher code has 16 letters and digits, like ABCD-EFGH-JKMN-PQRS."
        assert 'value="ABCD-EFGH"' in r.text
        assert 'aria-invalid="true"' in r.text

    async def test_wrong_look_ups_count_against_the_guess_limit(
        self, client, browser_client, till, settings, monkeypatch
    ):
        monkeypatch.setattr(settings, "voucher_guess_limit_per_minute", 2)
        order = await voucher(client, till)
        clock.freeze(clock.now().replace(second=30, microsecond=0))
        for _ in range(2):
            assert (await check(browser_client, "0000-0000-0000-0000")).status_code == 404
        r = await check(browser_client, "0000-0000-0000-0001")  # the third wrong look-up in the minute
        assert r.status_code == 429
        assert alert(r.text) == "Too many wrong codes in a minute. Wait a minute, then try again."
        assert int(r.headers["retry-after"]) >= 1
        r = await check(browser_client, order["voucher"]["code"])  # even a good code waits out the minute
        assert r.status_code == 429
        assert (await redeem(browser_client, order["voucher"]["code"])).status_code == 429
        assert await order_status(client, till, order["id"]) == "issued"

    async def test_the_success_page_of_another_merchants_order_is_not_found(
        self, client, browser_client, world, till
    ):
        other = await shop(client, world)
        theirs = await voucher(client, other)
        r = await browser_client.get(f"/merchant/redeemed/{theirs['id']}")
        assert r.status_code == 404


ITEM = {
    "title": "Oat latte",
    "description": "Any size.",
    "points_price": "80",
    "stock": "",
    "per_user_limit": "",
    "voucher_valid_days": "30",
    "expiry_policy": "refund",
    "sale_starts_at": "",
    "sale_ends_at": "",
}


async def my_items(client, s) -> list[dict]:
    r = await client.get("/v1/merchant/items", headers=s.merchant.headers)
    return r.json()["items"]


class TestItems:
    async def test_create_edit_pause_resume_and_stop_selling(self, client, browser_client, till):
        r = await post(browser_client, "/merchant/items/new", ITEM, "/merchant/items/new")
        assert r.status_code == 303
        [created] = [i for i in await my_items(client, till) if i["title"] == "Oat latte"]
        assert (created["points_price"], created["stock"], created["expiry_policy"]) == (80, None, "refund")
        r = await browser_client.get(f"/merchant/items/{created['id']}/edit")
        assert 'name="points_price" type="text" value="80"' in r.text
        form = f"/merchant/items/{created['id']}/edit"
        r = await post(
            browser_client,
            form,
            {**ITEM, "points_price": "90", "stock": "12", "sale_ends_at": "2099-01-01T18:00"},
            form,
        )
        assert r.status_code == 303
        got = next(i for i in await my_items(client, till) if i["id"] == created["id"])
        assert (got["points_price"], got["stock"], got["sale_ends_at"]) == (90, 12, "2099-01-01T10:00:00Z")
        for action, status in (("pause", "paused"), ("resume", "active"), ("end", "ended")):
            r = await post(browser_client, f"/merchant/items/{created['id']}/{action}", {}, "/merchant/items")
            assert r.status_code == 303
            got = next(i for i in await my_items(client, till) if i["id"] == created["id"])
            assert got["status"] == status
        r = await post(browser_client, form, ITEM, form)
        assert r.status_code == 409
        assert alert(r.text) == "The sale of this item has ended; it can no longer be edited."

    async def test_bad_input_shows_each_error_beside_its_field(self, client, browser_client, till):
        bad = {
            **ITEM,
            "title": " ",
            "points_price": "0",
            "stock": "-1",
            "per_user_limit": "lots",
            "voucher_valid_days": "9999",
            "expiry_policy": "burn",
            "sale_starts_at": "tomorrow",
        }
        r = await post(browser_client, "/merchant/items/new", bad, "/merchant/items/new")
        assert r.status_code == 400
        assert field_error(r.text, "sale_starts_at") == "Enter a date and a time, or leave it empty."
        assert alert(r.text) == "Please correct the fields marked below."
        r = await post(
            browser_client, "/merchant/items/new", {**bad, "sale_starts_at": ""}, "/merchant/items/new"
        )
        assert r.status_code == 400
        assert {
            name: field_error(r.text, name)
            for name in (
                "title",
                "points_price",
                "stock",
                "per_user_limit",
                "voucher_valid_days",
                "expiry_policy",
            )
        } == {
            "title": "Enter a title of 1 to 200 characters.",
            "points_price": "Enter the price as a whole number of points from 1 to 1,000,000,000.",
            "stock": "Enter the stock as a whole number from 0 to 100,000,000, or leave it empty for unlimited.",
            "per_user_limit": "Enter a whole number from 1 to 10,000, or leave it empty for no limit.",
            "voucher_valid_days": "Enter a whole number of days from 1 to 3,650.",
            "expiry_policy": "Choose what happens to vouchers that are never used.",
        }
        assert 'id="f-per_user_limit" name="per_user_limit" type="text" value="lots"' in r.text
        assert 'aria-describedby="f-points_price-error"' in r.text
        r = await post(
            browser_client,
            "/merchant/items/new",
            {**ITEM, "sale_starts_at": "2099-01-02T10:00", "sale_ends_at": "2099-01-01T10:00"},
            "/merchant/items/new",
        )
        assert r.status_code == 400
        assert field_error(r.text, "sale_ends_at") == "The end of the sale must be after its start."
        assert [i["title"] for i in await my_items(client, till)] == [till.item["title"]]

    async def test_markup_in_a_title_is_text(self, browser_client, till):
        r = await post(
            browser_client,
            "/merchant/items/new",
            {**ITEM, "title": "<script>alert(1)</script>"},
            "/merchant/items/new",
        )
        assert r.status_code == 303
        r = await browser_client.get("/merchant/items")
        assert "<script>alert(1)</script>" not in r.text
        assert '<h3 class="item-card__title">&lt;script&gt;alert(1)&lt;/script&gt;</h3>' in r.text

    async def test_an_untouched_stock_keeps_the_orders_placed_while_the_form_was_open(
        self, client, browser_client, world
    ):
        s = await shop(client, world, stock=10)
        browser_client.cookies.set("lang", "en")
        await sign_in(browser_client, s.merchant.admin_username)
        form = f"/merchant/items/{s.item['id']}/edit"
        token = await page_token(browser_client, form)
        await voucher(client, s)  # someone orders meanwhile: 9 left
        shown = {**ITEM, "title": s.item["title"], "points_price": "60", "stock": "10", "stock_was": "10"}
        r = await browser_client.post(form, data={"csrf_token": token, **shown}, headers=HTML)
        assert r.status_code == 303
        got = (await client.get(f"/v1/mall/items/{s.item['id']}")).json()
        assert (got["points_price"], got["stock"]) == (60, 9)
        r = await browser_client.post(form, data={"csrf_token": token, **shown, "stock": "20"}, headers=HTML)
        assert r.status_code == 303
        assert (await client.get(f"/v1/mall/items/{s.item['id']}")).json()["stock"] == 20

    async def test_another_merchants_item_cannot_be_edited(self, client, browser_client, world, till):
        other = await shop(client, world)
        r = await browser_client.get(f"/merchant/items/{other.item['id']}/edit")
        assert r.status_code == 403
        token = csrf_token((await browser_client.get("/merchant/items")).text)
        r = await browser_client.post(
            f"/merchant/items/{other.item['id']}/end", data={"csrf_token": token}, headers=HTML
        )
        assert r.status_code == 403
        assert (await client.get(f"/v1/mall/items/{other.item['id']}")).json()["status"] == "active"


class TestBackOffice:
    async def test_statement_orders_and_reports_after_a_redemption(self, client, browser_client, till):
        order = await voucher(client, till, quantity=2)
        await redeem(browser_client, order["voucher"]["code"])
        r = await browser_client.get("/merchant/statement")
        assert r.status_code == 200
        lines = re.findall(
            r'<tr><th scope="row">([^<]*)</th><td class="num">([^<]*)</td><td class="num">'
            r'([^<]*)</td><td class="num">([^<]*)</td></tr>',
            r.text,
        )
        assert lines == [
            ("Orders placed", "1", "2", "100"),
            ("Vouchers redeemed at the counter", "1", "2", "100"),
            ("Orders cancelled by buyers", "0", "0", "0"),
            ("Expired unused, points refunded", "0", "0", "0"),
            ("Expired unused, points forfeited", "0", "0", "0"),
        ]
        assert "<h1>Today's statement</h1>" in r.text
        r = await browser_client.get("/merchant/orders")
        assert r.status_code == 200
        assert unescape(till.item["title"]) in unescape(r.text)
        assert order["voucher"]["code"] not in r.text
        assert "Redeemed" in r.text
        r = await browser_client.get("/merchant/orders?status=issued")
        assert "No orders yet." in r.text
        today = clock.today().isoformat()
        r = await browser_client.get(f"/merchant/reports?from={today}&to={today}")
        assert r.status_code == 200
        assert f'href="/merchant/reports/used-points.csv?from={today}&amp;to={today}"' in r.text
        page_csv = await browser_client.get(f"/merchant/reports/used-points.csv?from={today}&to={today}")
        api_csv = await client.get(
            "/v1/merchant/reports/used-points",
            params={"from": today, "to": today, "format": "csv"},
            headers=bearer(await login(client, till.merchant.admin_username)),
        )
        assert page_csv.status_code == 200
        assert page_csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert page_csv.text == api_csv.text
        assert list(csv.reader(io.StringIO(page_csv.text)))[1][2:] == ["1", "100", "0", "100"]

    async def test_bad_days_are_shown_beside_their_fields(self, browser_client, till):
        r = await browser_client.get("/merchant/statement?day=yesterday")
        assert r.status_code == 400
        assert field_error(r.text, "day") == f"Enter a date such as {clock.today().isoformat()}."
        r = await browser_client.get("/merchant/reports?from=2026-02-01&to=2026-01-01")
        assert r.status_code == 400
        assert field_error(r.text, "to") == (
            "The last day must not be before the first, and a report spans at most 366 days."
        )
        r = await browser_client.get("/merchant/reports?from=soon")
        assert r.status_code == 400
        assert field_error(r.text, "from").startswith("Enter a date such as ")


async def _alices_coffee_orders(mall_demo) -> list:
    """The demo's Alice's coffee orders, in every state."""
    from app.mall import service as mall_service
    from app.users import service as users_service

    async with db.session_scope() as session:
        operator_id = await org_service.staff_org_id(session, mall_demo.DEMO_OPERATOR)
        assert operator_id is not None
        user_id = await users_service.entrusted_user(session, operator_id, mall_demo.BUYERS[1])
        orders = await mall_service.list_my_orders(
            session, Principal("user", "user", user_id, operator_id), status=None, limit=50, cursor=None
        )
    return [o for o in orders["items"] if o.title == mall_demo.ITEMS[0].title]


class TestDemo:
    async def test_the_demo_merchant_has_items_and_a_voucher_waiting_for_the_till(
        self, client, browser_client, world
    ):
        from app.mall import demo as mall_demo
        from app.methodologies import demo as methodologies_demo
        from app.points import demo as points_demo

        await make_authority_account()  # the demo acts as the first authority account
        for module in (methodologies_demo, points_demo, mall_demo):
            async with db.session_scope() as session:
                lines = await module.load(session)
        if lines[0].startswith("mall: demo merchant already there"):  # loaded earlier without the people
            async with db.session_scope() as session:
                merchant_id = await org_service.staff_org_id(session, mall_demo.MERCHANT[0])
                admin_id = await org_service.staff_id(session, mall_demo.MERCHANT[0])
                assert merchant_id and admin_id
                lines = await mall_demo._orders(
                    session, Principal("staff", "merchant", admin_id, merchant_id)
                )
        waiting = [line for line in lines if "not used yet" in line]
        if waiting:
            code = re.search(r"voucher ([0-9A-Z-]{19})", waiting[0]).group(1)
        else:  # an earlier full demo load placed the orders and the buyers spent their points
            orders = await _alices_coffee_orders(mall_demo)
            assert orders, "the demo placed no coffee order for Alice"
            waiting = [o.voucher.code for o in orders if o.status == "issued"]
            if waiting:
                code = waiting[0]
            else:  # another test's expiry jobs ran at a clock moved years ahead (the model test): a new order
                [buyer] = await people(client, world.operator, world.btype, 1, points=200)
                r = await place(client, buyer, str(orders[0].item_id))
                assert r.status_code == 201, r.text
                code = r.json()["voucher"]["code"]
        browser_client.cookies.set("lang", "en")
        await sign_in(browser_client, *mall_demo.MERCHANT)
        r = await browser_client.get("/merchant/items")
        assert [unescape(t) for t in re.findall(r'<h3 class="item-card__title">([^<]*)</h3>', r.text)][
            -3:
        ] == [i.title for i in reversed(mall_demo.ITEMS)]
        r = await check(browser_client, code)
        assert r.status_code == 200
        assert "Americano in your own cup" in r.text
