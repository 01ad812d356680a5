"""A person's own records on the platform (``/me/history``, ``/me/behaviours``, ``/me/orders``): every app's
entries, behaviours and orders, where an app's token shows only its own; each page only for the person's own
session, paged by cursor, never kept by the browser; a voucher shown with its QR code."""

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
import sqlalchemy as sa

from app.core import db
from app.points import service as points_service
from app.users import pages as me_pages
from tests.factories import authority_token, bearer, make_operator, person_session, unique
from tests.factories_mall import Person, fund, ledger_violations, make_item, make_merchant, place
from tests.factories_points import enrol, ensure_rule, make_methodology, phone, record, submit, user_headers
from tests.web.helpers import HTML, csrf_token


@pytest.fixture
async def browser_client(app):
    """An in-process client that asks for HTML, as a browser does, and keeps cookies."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML, timeout=60) as c:
        yield c


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _rows(html: str, table_id: str) -> list[list[str]]:
    """The body rows of the table in ``#table_id``, each cell's text."""
    block = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    body = block.split("<tbody>", 1)[1]
    return [
        [_text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


async def _name(client, org) -> str:
    r = await client.get(f"/v1/organizations/{org.id}", headers=org.headers)
    assert r.status_code == 200, r.text
    return r.json()["name"]


@pytest.fixture
async def alice(client, browser_client):
    """One person entrusted to two apps, with every kind of entry: two apps' earnings, two orders (one
    cancelled), a redemption in the second app's own mall, a clawback. Signed in on ``browser_client``."""
    await ensure_rule()
    authority = await authority_token(client)
    first, second = await make_operator(client, authority), await make_operator(client, authority)
    btype = await make_methodology(factor="1000")  # 1 km = 1,000 g = 100 points
    number = phone()
    people = []
    for op in (first, second):
        u = await enrol(client, op, number=number)
        people.append(
            Person(
                u["external_user_id"], u["user_id"], await user_headers(client, op, u["external_user_id"]), op
            )
        )
    people[1].days_funded = 5  # the second app's ride on another day than the first's: no overlap
    await fund(client, first, btype, [people[0]], 200)
    await fund(client, second, btype, [people[1]], 100)
    merchant = await make_merchant(client, authority)
    title = unique("Tote bag")
    item = await make_item(client, merchant, title=title, points_price=50, stock=5, voucher_valid_days=30)
    kept = (await place(client, people[0], item["id"])).json()
    cancelled = (await place(client, people[0], item["id"])).json()
    r = await client.post(f"/v1/me/orders/{cancelled['id']}/cancel", headers=people[0].headers)
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/me/operator-redemptions",
        json={"operator_order_id": unique("op-order"), "points": 20, "description": "a <b>cinema</b> ticket"},
        headers=people[1].headers,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/points/accounts/{people[0].user_id}/clawback",
        json={"points": 10, "reason": "duplicate trips"},
        headers=bearer(authority),
    )
    assert r.status_code == 200, r.text
    await person_session(browser_client, number)
    browser_client.cookies.set("lang", "en")
    return {
        "people": people,
        "names": {
            "first": await _name(client, first),
            "second": await _name(client, second),
            "merchant": await _name(client, merchant),
        },
        "title": title,
        "merchant": merchant,
        "kept": kept,
        "cancelled": cancelled,
    }


class TestHistory:
    async def test_every_apps_entries_newest_first_with_where_each_came_from(self, browser_client, alice):
        r = await browser_client.get("/me/history")
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        names, title = alice["names"], alice["title"]
        rows = [row[1:] for row in _rows(r.text, "history")]  # the time aside
        assert rows == [
            ["Taken back by the authority duplicate trips", "−10", "220"],
            [f"Spent in {names['second']} a <b>cinema</b> ticket", "−20", "230"],
            [f"Given back: 1 × {title} Points mall · {names['merchant']}", "+50", "250"],
            [f"1 × {title} Points mall · {names['merchant']}", "−50", "200"],
            [f"1 × {title} Points mall · {names['merchant']}", "−50", "250"],
            [f"Low-carbon behaviours Recorded by {names['second']}", "+100", "300"],
            [f"Low-carbon behaviours Recorded by {names['first']}", "+200", "200"],
        ]
        assert "<b>cinema</b>" not in r.text  # an app's words are shown as text, never as markup

    async def test_an_apps_token_still_sees_only_its_own_share(self, client, alice):
        first, second = alice["people"]
        r = await client.get("/v1/me/ledger", headers=second.headers)
        # not the first app's earning nor the orders placed through it; the clawback took from a lot both
        # apps' points are in (one lot a day of expiry), so both see it
        assert [(e["kind"], e["amount"]) for e in r.json()["items"]] == [
            ("clawback", -10),
            ("redeem", -20),
            ("earn", 100),
        ]

    async def test_pages_by_cursor_with_nothing_twice_and_a_bad_cursor_is_a_clear_page(
        self, browser_client, alice, monkeypatch
    ):
        whole = [row[1:] for row in _rows((await browser_client.get("/me/history")).text, "history")]
        monkeypatch.setattr(me_pages, "PAGE_SIZE", 3)
        seen, url, pages = [], "/me/history", 0
        while url:
            r = await browser_client.get(url)
            assert r.status_code == 200, r.text
            seen += [row[1:] for row in _rows(r.text, "history")]
            pages += 1
            found = re.search(r'href="([^"]+)" rel="next"', r.text)
            url = unescape(found.group(1)) if found else None
            if pages > 1:
                assert 'href="/me/history">First page<' in r.text
        assert (pages, seen) == (3, whole)
        r = await browser_client.get("/me/history", params={"cursor": "not-a-cursor"})
        assert r.status_code == 400 and "text/html" in r.headers["content-type"]
        assert "The request could not be understood" in r.text

    async def test_without_the_persons_session_it_asks_to_sign_in(self, client, alice):
        for path in ("/me/history", "/me/behaviours", "/me/orders", f"/me/orders/{alice['kept']['id']}"):
            r = await client.get(path, headers={"Accept": "text/html"})
            assert (r.status_code, r.headers.get("location")) == (303, "/me/sign-in"), path
        r = await client.get(
            f"/me/orders/{alice['kept']['id']}/voucher.svg", headers=alice["people"][0].headers
        )
        assert r.status_code == 303  # an app's token is not the person's session

    async def test_points_that_expired_say_so(self, client, app, alice):
        op = alice["people"][0].operator
        number = phone()
        u = await enrol(client, op, number=number)
        person = Person(
            u["external_user_id"], u["user_id"], await user_headers(client, op, u["external_user_id"]), op
        )
        await fund(client, op, await make_methodology(factor="1000"), [person], 100)
        account = (await client.get("/v1/me/account", headers=person.headers)).json()
        async with db.session_scope() as session:
            await points_service.expire_due(
                session, now=datetime.fromisoformat(account["expiring"][0]["expires_at"])
            )
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML) as other:
            await person_session(other, number)
            other.cookies.set("lang", "en")
            r = await other.get("/me/history")
        assert [row[1:] for row in _rows(r.text, "history")] == [
            ["Points expired Points are valid for a limited time after they are earned.", "−100", "0"],
            [f"Low-carbon behaviours Recorded by {alice['names']['first']}", "+100", "100"],
        ]

    async def test_one_apps_share_as_its_own_token_reads_it(self, client, browser_client, alice):
        first, second = alice["people"]
        r = await browser_client.get("/me/history", params={"app": second.operator.id})
        assert r.status_code == 200
        api = (await client.get("/v1/me/ledger", headers=second.headers)).json()["items"]
        shown = [row[2] for row in _rows(r.text, "history")]
        assert shown == ["−10", "−20", "+100"] == [f"{e['amount']:+d}".replace("-", "−") for e in api]
        assert f'<option value="{second.operator.id}" selected' in r.text
        nxt = await browser_client.get("/me/history", params={"app": str(uuid.uuid4())})  # not one of theirs
        assert len(_rows(nxt.text, "history")) == 7 and '<option value="" selected' in nxt.text


class TestBehaviours:
    async def test_every_apps_records_latest_first(self, browser_client, alice):
        r = await browser_client.get("/me/behaviours")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        names = alice["names"]
        rows = [row[2:] for row in _rows(r.text, "behaviours")]  # the time and the behaviour's code aside
        # the first app's ride was yesterday, the second's six days ago
        assert rows == [
            ["2 km", "2 kg", "200", names["first"]],
            ["1 km", "1 kg", "100", names["second"]],
        ]

    async def test_one_apps_records_and_the_link_from_its_entrustment(self, browser_client, alice):
        first = alice["people"][0].operator
        overview = await browser_client.get("/me")
        assert f'href="/me/behaviours?app={first.id}"' in overview.text
        r = await browser_client.get("/me/behaviours", params={"app": first.id})
        assert [row[2:] for row in _rows(r.text, "behaviours")] == [
            ["2 km", "2 kg", "200", alice["names"]["first"]]
        ]

    async def test_a_record_the_days_limit_cut_says_so(self, client, app, alice):
        op = alice["people"][0].operator
        number = phone()
        u = await enrol(client, op, number=number)
        btype = await make_methodology(factor="1000")
        day = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=1)
        r = await submit(
            client,
            op,
            [
                record(u["external_user_id"], btype, quantity=1.5, start=day),  # 150 points
                record(
                    u["external_user_id"], btype, quantity=1.0, start=day + timedelta(hours=1)
                ),  # 50 of 100
            ],
        )
        assert [x["code"] for x in r.json()["results"]] == [None, "capped"], r.text
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML) as other:
            await person_session(other, number)
            other.cookies.set("lang", "en")
            r = await other.get("/me/behaviours")
        assert [row[2:5] for row in _rows(r.text, "behaviours")] == [
            ["1 km", "1 kg", "50 The day's points limit was reached"],
            ["1.5 km", "1.5 kg", "150"],
        ]


class TestOrders:
    async def test_the_list_the_filter_and_a_voucher_to_show_at_the_counter(
        self, client, browser_client, alice
    ):
        kept, cancelled, title, merchant = (
            alice["kept"],
            alice["cancelled"],
            alice["title"],
            alice["names"]["merchant"],
        )
        r = await browser_client.get("/me/orders")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert [row[:4] for row in _rows(r.text, "orders")] == [
            [f"1 × {title}", merchant, "50", "Cancelled"],
            [f"1 × {title}", merchant, "50", "Not used yet"],
        ]
        r = await browser_client.get("/me/orders", params={"status": "issued"})
        assert [row[3] for row in _rows(r.text, "orders")] == ["Not used yet"]
        assert f'href="/me/orders/{kept["id"]}"' in r.text

        r = await browser_client.get(f"/me/orders/{kept['id']}")
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        code = re.search(r'id="voucher-code">([^<]+)<', r.text).group(1)
        assert code == kept["voucher"]["code"]
        assert f'src="/me/orders/{kept["id"]}/voucher.svg"' in r.text
        image = await browser_client.get(f"/me/orders/{kept['id']}/voucher.svg")
        assert (image.status_code, image.headers["content-type"], image.headers["cache-control"]) == (
            200,
            "image/svg+xml",
            "no-store",
        )
        api = await client.get(f"/v1/me/orders/{kept['id']}/voucher.svg", headers=alice["people"][0].headers)
        assert image.content == api.content

        r = await browser_client.get(f"/me/orders/{cancelled['id']}")
        assert r.status_code == 200 and 'id="voucher-code"' not in r.text and "voucher.svg" not in r.text
        assert "Cancelled" in _text(r.text)
        # nor its image, asked for by an <img> (as Chromium asks) or opened in a tab
        image = await browser_client.get(
            f"/me/orders/{cancelled['id']}/voucher.svg", headers={"accept": "image/avif,image/webp,*/*"}
        )
        assert (image.status_code, image.json()["code"]) == (409, "voucher_cancelled")
        page = await browser_client.get(
            f"/me/orders/{cancelled['id']}/voucher.svg", headers={"accept": "text/html"}
        )
        assert page.status_code == 409 and page.headers["content-type"].startswith("text/html")
        assert "This can no longer be done" in _text(page.text)

    async def test_the_overview_lists_the_vouchers_to_use_newest_first(
        self, client, browser_client, alice, monkeypatch
    ):
        from app.users import me

        kept, title = alice["kept"], alice["title"]
        r = await browser_client.get("/me")
        vouchers = re.findall(r'<li><a href="/me/orders/([0-9a-f-]+)"><strong>([^<]+)</strong>', r.text)
        assert vouchers == [(kept["id"], f"1 × {title}")]  # not the cancelled one
        assert "All vouchers not used yet" not in r.text
        newer = (await place(client, alice["people"][0], kept["item_id"])).json()
        monkeypatch.setattr(me, "VOUCHERS_SHOWN", 1)
        r = await browser_client.get("/me")
        assert re.findall(r'<li><a href="/me/orders/([0-9a-f-]+)">', r.text) == [newer["id"]]
        assert '<a href="/me/orders?status=issued">All vouchers not used yet</a>' in r.text
        for order in (kept, newer):
            assert (
                await client.post(f"/v1/me/orders/{order['id']}/cancel", headers=alice["people"][0].headers)
            ).status_code == 200
        r = await browser_client.get("/me")
        assert 'id="vouchers"' not in r.text

    async def test_a_voucher_past_its_expiry_is_expired_before_the_job_ran(
        self, client, browser_client, alice
    ):
        kept = alice["kept"]
        async with db.session_scope() as session:  # its time ran out a minute ago; the job has not run since
            await session.execute(
                sa.text(
                    "UPDATE mall_orders SET voucher_expires_at = now() - interval '1 minute' WHERE id = :id"
                ),
                {"id": uuid.UUID(kept["id"])},
            )
        r = await browser_client.get("/me/orders")
        assert [row[3] for row in _rows(r.text, "orders")] == ["Cancelled", "Expired"]
        r = await browser_client.get(f"/me/orders/{kept['id']}")
        assert "voucher.svg" not in r.text and 'id="voucher-code"' not in r.text and "/cancel" not in r.text
        assert 'class="badge badge--neutral">Expired<' in r.text
        r = await browser_client.get(f"/me/orders/{kept['id']}/cancel")
        assert (r.status_code, r.headers["location"]) == (303, f"/me/orders/{kept['id']}")
        assert 'id="vouchers"' not in (await browser_client.get("/me")).text
        token = csrf_token((await browser_client.get("/me/history")).text)
        r = await browser_client.post(f"/me/orders/{kept['id']}/cancel", data={"csrf_token": token})
        assert r.status_code == 409
        assert "This order cannot be cancelled: its voucher has expired." in _text(r.text)

    async def test_another_persons_order_or_none_is_a_404_page(self, client, browser_client, alice):
        op = alice["people"][0].operator
        u = await enrol(client, op)
        other = Person(
            u["external_user_id"], u["user_id"], await user_headers(client, op, u["external_user_id"]), op
        )
        btype = await make_methodology(factor="1000")
        await fund(client, op, btype, [other], 100)
        merchant = await make_merchant(client)
        item = await make_item(client, merchant, points_price=50)
        theirs = (await place(client, other, item["id"])).json()
        for path in (
            f"/me/orders/{theirs['id']}",
            f"/me/orders/{uuid.uuid4()}",
            f"/me/orders/{theirs['id']}/voucher.svg",
        ):
            r = await browser_client.get(path)
            assert r.status_code == 404, path
            assert theirs["voucher"]["code"] not in r.text
        r = await browser_client.get("/me/orders/not-an-id")
        assert (
            r.status_code == 400 and "text/html" in r.headers["content-type"]
        )  # as every page answers a bad id
        r = await browser_client.get("/me/orders", params={"status": "lost"})
        assert r.status_code == 200 and len(_rows(r.text, "orders")) == 2  # an unknown status filters nothing


async def _status(client, person, order_id: str) -> tuple[str, int]:
    r = await client.get(f"/v1/me/orders/{order_id}", headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()["status"], r.json()["refunded_points"]


async def _balance(client, person) -> int:
    return (await client.get("/v1/me/account", headers=person.headers)).json()["balance"]


class TestCancel:
    async def test_a_confirmation_then_the_points_back_once(self, client, browser_client, alice):
        person, kept = alice["people"][0], alice["kept"]
        before = await _balance(client, person)
        r = await browser_client.get(f"/me/orders/{kept['id']}")
        assert f'href="/me/orders/{kept["id"]}/cancel"' in r.text
        form = await browser_client.get(f"/me/orders/{kept['id']}/cancel")
        assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
        assert "The 50 points go back to your account" in _text(form.text)
        back = re.search(
            r'<a class="button button--quiet button--wide" href="([^"]+)">([^<]+)</a>', form.text
        )
        assert back.groups() == (f"/me/orders/{kept['id']}", "Keep the order and go back")
        r = await browser_client.post(f"/me/orders/{kept['id']}/cancel", data={})
        assert r.status_code == 403 and await _status(client, person, kept["id"]) == ("issued", 0)
        r = await browser_client.post(
            f"/me/orders/{kept['id']}/cancel", data={"csrf_token": csrf_token(form.text)}
        )
        assert (r.status_code, r.headers["location"]) == (303, f"/me/orders/{kept['id']}?cancelled=1")
        r = await browser_client.get(r.headers["location"])
        assert "Order cancelled: 50 points were given back to your account." in _text(r.text)
        assert 'id="voucher-code"' not in r.text and "/cancel" not in r.text
        assert await _status(client, person, kept["id"]) == ("cancelled", 50)
        assert await _balance(client, person) == before + 50
        r = await browser_client.get(f"/me/orders/{kept['id']}/cancel")  # nothing left to cancel
        assert (r.status_code, r.headers["location"]) == (303, f"/me/orders/{kept['id']}")
        history = await browser_client.get("/me/history")
        assert _rows(history.text, "history")[0][1:] == [
            f"Given back: 1 × {alice['title']} Points mall · {alice['names']['merchant']}",
            "+50",
            str(before + 50),
        ]

    async def test_a_voucher_used_at_the_counter_meanwhile_is_not_cancelled(
        self, client, browser_client, alice
    ):
        person, kept = alice["people"][0], alice["kept"]
        form = await browser_client.get(f"/me/orders/{kept['id']}/cancel")
        code = kept["voucher"]["code"]
        r = await client.post(f"/v1/merchant/vouchers/{code}/redeem", headers=alice["merchant"].headers)
        assert r.status_code == 200, r.text
        before = await _balance(client, person)
        r = await browser_client.post(
            f"/me/orders/{kept['id']}/cancel", data={"csrf_token": csrf_token(form.text)}
        )
        assert r.status_code == 409
        assert "This order cannot be cancelled: its voucher was used at the counter." in _text(r.text)
        assert await _status(client, person, kept["id"]) == ("redeemed", 0)
        assert await _balance(client, person) == before

    async def test_another_persons_order_is_a_404_page_and_stays(self, client, browser_client, alice):
        op = alice["people"][0].operator
        u = await enrol(client, op)
        other = Person(
            u["external_user_id"], u["user_id"], await user_headers(client, op, u["external_user_id"]), op
        )
        await fund(client, op, await make_methodology(factor="1000"), [other], 100)
        item = await make_item(client, alice["merchant"], points_price=50)
        theirs = (await place(client, other, item["id"])).json()
        form = await browser_client.get(f"/me/orders/{alice['kept']['id']}/cancel")
        r = await browser_client.post(
            f"/me/orders/{theirs['id']}/cancel", data={"csrf_token": csrf_token(form.text)}
        )
        assert r.status_code == 404
        assert await _status(client, other, theirs["id"]) == ("issued", 0)

    async def test_two_cancels_at_once_give_the_points_back_once(self, client, browser_client, alice):
        person, kept = alice["people"][0], alice["kept"]
        before = await _balance(client, person)
        token = csrf_token((await browser_client.get(f"/me/orders/{kept['id']}/cancel")).text)
        answers = await asyncio.gather(
            *[
                browser_client.post(f"/me/orders/{kept['id']}/cancel", data={"csrf_token": token})
                for _ in range(4)
            ]
        )
        assert sorted(r.status_code for r in answers) == [303, 409, 409, 409]
        for r in answers:
            if r.status_code == 409:
                assert "This order was cancelled already; its points were given back." in _text(r.text)
        assert await _status(client, person, kept["id"]) == ("cancelled", 50)
        assert await _balance(client, person) == before + 50
        assert await ledger_violations() == []


class TestExport:
    async def test_it_holds_the_orders_and_the_redemptions_too(self, client, browser_client, alice):
        r = await browser_client.get("/me/export")
        assert r.status_code == 200
        data = r.json()
        kept, cancelled = alice["kept"], alice["cancelled"]
        assert [(o["id"], o["status"], o["voucher"]["code"]) for o in data["orders"]] == [
            (cancelled["id"], "cancelled", cancelled["voucher"]["code"]),
            (kept["id"], "issued", kept["voucher"]["code"]),
        ]
        assert [
            (x["operator_id"], x["points"], x["description"], x["status"])
            for x in data["operator_redemptions"]
        ] == [(alice["people"][1].operator.id, 20, "a <b>cinema</b> ticket", "completed")]
        assert [e["kind"] for e in data["ledger"]] == [
            "clawback",
            "redeem",
            "refund",
            "redeem",
            "redeem",
            "earn",
            "earn",
        ]
