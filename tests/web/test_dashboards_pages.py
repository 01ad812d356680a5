"""The authority's dashboards, audit log viewer, health checks and sandbox clock over HTTP (in process, in
English). The figures are platform-wide, so each test reads a series before and after making its own data
and checks the difference exactly, and the rows of its own operator, behaviour type and merchant whole."""

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from app.core import audit, clock, db
from app.dashboards import pages as dashboard_pages
from tests.factories import bearer, invoke_cli, make_operator, unique
from tests.factories_cer import issued_units
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit
from tests.web.helpers import HTML, make_authority_account, page_token, sign_in
from tests.web.merchant_helpers import mall_world, shop, voucher


@pytest.fixture(scope="module")
async def world(app):
    return await mall_world(app)


@pytest.fixture(autouse=True)
def reset_clock():
    yield
    clock.freeze(None)
    clock.set_offset(timedelta(0))


@pytest.fixture
async def console(browser_client):
    """An authority account signed in, in English."""
    username = await make_authority_account()
    browser_client.cookies.set("lang", "en")
    r = await sign_in(browser_client, username, next="/console/dashboards")
    assert r.status_code == 303
    return browser_client


def field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field__error" id="f-{name}-error">([^<]*)</p>', html)
    assert match, f"no error beside {name}"
    return unescape(match.group(1))


async def series(client, key: str, **params) -> list[dict]:
    r = await client.get(f"/console/dashboards/{key}.csv", params=params, headers=HTML)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(r.text.removeprefix("\ufeff"))))


def by_day(rows: list[dict], day: date) -> dict:
    [row] = [r for r in rows if r["day"] == day.isoformat()]
    return row


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)  # noon in Shanghai


PATHS = (
    "/console/dashboards",
    "/console/dashboards/points.csv",
    "/console/audit",
    "/console/audit/0/1",
    "/console/health",
    "/console/clock",
)


class TestAccess:
    async def test_a_browser_not_signed_in_is_sent_to_sign_in(self, browser_client):
        for path in PATHS:
            r = await browser_client.get(path, headers=HTML)
            assert (r.status_code, r.headers["location"]) == (
                303,
                f"/sign-in?next={path.replace('/', '%2F')}",
            )

    async def test_another_role_gets_a_403_page(self, client, browser_client, world):
        s = await shop(client, world)
        browser_client.cookies.set("lang", "en")
        await sign_in(browser_client, s.merchant.admin_username)
        for path in PATHS:
            r = await browser_client.get(path, headers=HTML)
            assert r.status_code == 403, path
            assert "text/html" in r.headers["content-type"]
        token = await page_token(browser_client, "/merchant")
        for path in ("/console/health", "/console/clock/advance", "/console/clock/reset"):
            r = await browser_client.post(path, data={"csrf_token": token, "amount": "1"}, headers=HTML)
            assert r.status_code == 403, path


class TestDashboards:
    async def test_records_reductions_and_points_of_a_new_operator(self, client, console):
        await ensure_rule()
        btype = await make_methodology(factor="1000")  # 1 km = 1,000 g = 100 points
        op = await make_operator(client)
        person = await enrol(client, op)
        today = clock.today()
        d1, d2 = today - timedelta(days=2), today - timedelta(days=1)
        points_before = by_day(await series(console, "points"), today)
        r = await submit(
            client,
            op,
            [
                record(person["external_user_id"], btype, quantity=1.0, start=noon(d1)),
                record(person["external_user_id"], btype, quantity=0.5, start=noon(d1) + timedelta(hours=1)),
                record(person["external_user_id"], btype, quantity=1.2, start=noon(d2)),
            ],
        )
        assert r.json()["summary"]["accepted"] == 3, r.text

        rows = [r for r in await series(console, "records-by-type") if r["behaviour_type"] == btype]
        assert rows == [
            {"day": d1.isoformat(), "behaviour_type": btype, "records": "2", "reduction_g": "1500"},
            {"day": d2.isoformat(), "behaviour_type": btype, "records": "1", "reduction_g": "1200"},
        ]
        authority = await console_token(client)
        name = (await client.get(f"/v1/organizations/{op.id}", headers=bearer(authority))).json()["name"]
        rows = [r for r in await series(console, "records-by-operator") if r["operator_id"] == op.id]
        assert rows == [
            {
                "day": d1.isoformat(),
                "operator_id": op.id,
                "operator": name,
                "records": "2",
                "reduction_g": "1500",
            },
            {
                "day": d2.isoformat(),
                "operator_id": op.id,
                "operator": name,
                "records": "1",
                "reduction_g": "1200",
            },
        ]
        points_after = by_day(await series(console, "points"), today)
        assert int(points_after["issued"]) - int(points_before["issued"]) == 270
        assert (points_after["spent"], points_after["expired"]) == (
            points_before["spent"],
            points_before["expired"],
        )

        r = await console.get("/console/dashboards", headers=HTML)
        assert r.status_code == 200
        html = r.text
        assert (
            f'<input id="f-from" name="from" type="date" value="{(today - timedelta(days=29)).isoformat()}"'
            in html
        )
        assert f'<input id="f-to" name="to" type="date" value="{today.isoformat()}"' in html
        # each cell carries its column's name, for the cards a phone shows
        figures = '<td data-label="Records">{}</td><td data-label="Reductions">{}</td>'
        assert f'<td data-label="Behaviour type">{btype}</td>' + figures.format(2, "1.5 kg") in html
        assert f'<td data-label="Behaviour type">{btype}</td>' + figures.format(1, "1.2 kg") in html
        assert f'<td data-label="Operator">{name}</td>' + figures.format(2, "1.5 kg") in html
        assert 'href="/console/dashboards/records-by-type.csv?from=' in html
        assert "data-chart=" in html and "<script>" not in html

    async def test_one_day_and_its_csv_file_name(self, console):
        day = clock.today() - timedelta(days=3)
        r = await console.get(
            "/console/dashboards/points.csv",
            params={"from": day.isoformat(), "to": day.isoformat()},
            headers=HTML,
        )
        assert r.status_code == 200
        assert r.headers["content-disposition"] == f'attachment; filename="points-{day}-{day}.csv"'
        lines = r.text.removeprefix("\ufeff").splitlines()
        assert lines[0] == "day,issued,spent,expired"
        assert len(lines) == 2 and lines[1].startswith(f"{day.isoformat()},")

    async def test_mall_activity_of_a_new_merchant(self, client, console, world):
        s = await shop(client, world)
        await voucher(client, s)
        await voucher(client, s, quantity=2)
        authority = await console_token(client)
        name = (await client.get(f"/v1/organizations/{s.merchant.id}", headers=bearer(authority))).json()[
            "name"
        ]
        rows = [r for r in await series(console, "mall") if r["merchant_id"] == s.merchant.id]
        assert rows == [
            {
                "merchant_id": s.merchant.id,
                "merchant": name,
                "orders": "2",
                "points": "150",
                "redeemed": "0",
                "cancelled": "0",
                "expired": "0",
                "refunded_points": "0",
            }
        ]
        html = (await console.get("/console/dashboards", headers=HTML)).text
        assert (
            f'<th scope="row" data-label="Merchant">{name}</th><td data-label="Orders">2</td>'
            '<td data-label="Points spent">150</td><td data-label="Redeemed">0</td>'
            '<td data-label="Cancelled">0</td>'
            '<td data-label="Expired unused">0</td><td data-label="Points refunded">0</td>' in html
        )

    async def test_points_about_to_expire(self, client, console):
        await ensure_rule()
        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        person = await enrol(client, op)
        r = await submit(client, op, [record(person["external_user_id"], btype, quantity=0.4)])
        assert r.json()["summary"]["accepted"] == 1
        day = clock.today() + timedelta(days=5)
        before = {r["day"]: r for r in await series(console, "expiring")}
        async with db.session_scope() as session:
            await session.execute(
                sa.text("UPDATE point_lots SET expires_at = :at WHERE user_id = :u"),
                {"at": noon(day), "u": uuid.UUID(person["user_id"])},
            )
        after = {r["day"]: r for r in await series(console, "expiring")}
        was = before.get(day.isoformat(), {"points": "0", "accounts": "0"})
        assert int(after[day.isoformat()]["points"]) - int(was["points"]) == 40
        assert int(after[day.isoformat()]["accounts"]) - int(was["accounts"]) == 1
        r = await console.get("/console/dashboards/expiring.csv", headers=HTML)
        first, last = clock.today(), clock.today() + timedelta(days=30)
        assert r.headers["content-disposition"] == f'attachment; filename="expiring-{first}-{last}.csv"'

    async def test_certified_reductions_issued_transferred_and_retired(self, client, console):
        authority = await console_token(client)
        before = await series(console, "cer", **{"from": "2000-01-01", "to": "2000-12-31"})
        assert len(before) == 366 and before[0] == {
            "day": "2000-01-01",
            "issued_t": "0",
            "transferred_t": "0",
            "retired_t": "0",
        }
        today = clock.today()
        window = {"from": today.isoformat(), "to": (today + timedelta(days=60)).isoformat()}
        before = {r["day"]: r for r in await series(console, "cer", **window)}
        try:
            owner, issuance = await issued_units(client, authority, 3)  # after publicity: the clock moved
        finally:
            clock.set_offset(timedelta(0))
        issued_on = clock.local_day(datetime.fromisoformat(issuance["issued_at"]))
        buyer = await make_operator(client, authority)
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": buyer.id, "tonnes": 1}, headers=owner.headers
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/v1/cer/retirements",
            json={"tonnes": 2, "beneficiary": {"kind": "event", "name": unique("会议")}, "purpose": "碳中和"},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        after = {r["day"]: r for r in await series(console, "cer", **window)}
        change = {
            day: {
                k: int(after[day][k]) - int(before[day][k])
                for k in ("issued_t", "transferred_t", "retired_t")
            }
            for day in after
            if after[day] != before[day]
        }
        assert change == {
            issued_on.isoformat(): {"issued_t": 3, "transferred_t": 0, "retired_t": 0},
            today.isoformat(): {"issued_t": 0, "transferred_t": 1, "retired_t": 2},
        }

    @pytest.mark.parametrize(
        ("params", "field", "message"),
        [
            ({"from": "2026-13-01"}, "from", "Enter a date such as"),
            ({"to": "yesterday"}, "to", "Enter a date such as"),
            ({"from": "1999-12-31"}, "from", "Enter a date between the years 2000 and 2200."),
            ({"from": "2026-03-02", "to": "2026-03-01"}, "to", "The last day must not be before the first."),
            (
                {"from": "2025-01-01", "to": "2026-01-02"},
                "to",
                "A period can span at most 366 days (a year).",
            ),
        ],
    )
    async def test_a_bad_period_is_named_beside_its_field(self, console, params, field, message):
        r = await console.get("/console/dashboards", params=params, headers=HTML)
        assert r.status_code == 400
        assert field_error(r.text, field).startswith(message)
        assert "data-chart=" not in r.text
        r = await console.get("/console/dashboards/points.csv", params=params, headers=HTML)
        assert r.status_code == 400
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert r.text.startswith(message)

    async def test_a_year_is_allowed_and_an_unknown_series_is_404(self, console):
        r = await console.get(
            "/console/dashboards", params={"from": "2025-01-01", "to": "2025-12-31"}, headers=HTML
        )
        assert r.status_code == 200
        assert "From Jan 1, 2025 to Dec 31, 2025 (365 days)." in unescape(r.text)
        r = await console.get("/console/dashboards/everything.csv", headers=HTML)
        assert r.status_code == 404


async def console_token(client) -> str:
    from tests.factories import authority_token

    return await authority_token(client)


class TestAuditLog:
    async def _entries(self, n: int) -> tuple[str, str]:
        actor, subject = unique("authority:viewer-test"), unique("subject")
        for i in range(n):
            async with db.session_scope() as session:
                audit.record(
                    session,
                    actor=actor,
                    action=f"test.step{i}",
                    subject_type="viewer_test",
                    subject_id=subject,
                    data={"step": i, "名称": "测试"},
                )
        return actor, subject

    async def test_search_by_actor_pages_newest_first(self, console, monkeypatch):
        actor, subject = await self._entries(3)
        monkeypatch.setattr(dashboard_pages, "AUDIT_PAGE", 2)
        r = await console.get("/console/audit", params={"actor": actor}, headers=HTML)
        assert r.status_code == 200
        assert re.findall(r"<code>(test\.step\d)</code>", r.text) == ["test.step2", "test.step1"]
        next_url = unescape(
            re.search(r'<a class="button button--quiet" href="([^"]+)" rel="next"', r.text).group(1)
        )
        r = await console.get(next_url, headers=HTML)
        assert re.findall(r"<code>(test\.step\d)</code>", r.text) == ["test.step0"]
        assert 'rel="next"' not in r.text

    async def test_search_by_action_subject_and_day(self, console):
        actor, subject = await self._entries(2)
        today = clock.today().isoformat()
        params = {
            "action": "test.step1",
            "subject_type": "viewer_test",
            "subject_id": subject,
            "from": today,
            "to": today,
        }
        r = await console.get("/console/audit", params=params, headers=HTML)
        assert re.findall(r"<code>(test\.step\d)</code>", r.text) == ["test.step1"]
        yesterday = (clock.today() - timedelta(days=1)).isoformat()
        r = await console.get(
            "/console/audit", params={**params, "from": yesterday, "to": yesterday}, headers=HTML
        )
        assert "No entry matches." in r.text

    async def test_an_entry_with_its_hashes_and_position(self, console):
        actor, subject = await self._entries(2)
        async with db.session_scope() as session:
            result = await audit.search(session, audit.Search(actor=actor), 10, None)
        newest, older = result["items"]
        assert newest.prev_hash == older.hash and newest.seq == older.seq + 1
        r = await console.get(f"/console/audit/{newest.chain}/{newest.seq}", headers=HTML)
        assert r.status_code == 200
        assert newest.hash in r.text
        assert f'<a href="/console/audit/{newest.chain}/{older.seq}">{older.hash}</a>' in r.text
        assert f"<dt>Position in the chain</dt><dd>{newest.seq:,}</dd>" in r.text
        assert (
            '<pre class="dash-data">{\n  &#34;step&#34;: 1,\n  &#34;名称&#34;: &#34;测试&#34;\n}</pre>'
            in r.text
        )
        assert (await console.get("/console/audit/99/1", headers=HTML)).status_code == 404

    async def test_an_entry_opens_its_subjects_page_where_the_console_has_one(self, console):
        person, actor = uuid.uuid4(), unique("authority:link")
        async with db.session_scope() as session:
            for subject_type, subject_id in (("user", str(person)), ("viewer_test", "x/y")):
                audit.record(
                    session,
                    actor=actor,
                    action="test.link",
                    subject_type=subject_type,
                    subject_id=subject_id,
                )
        async with db.session_scope() as session:
            found = (await audit.search(session, audit.Search(actor=actor), 10, None))["items"]
        pages = {}
        for entry in found:
            r = await console.get(f"/console/audit/{entry.chain}/{entry.seq}", headers=HTML)
            pages[entry.subject_type] = re.findall(r'<a href="([^"]+)">Open its page</a>', r.text)
        assert pages == {"user": [f"/console/people/{person}"], "viewer_test": []}

    async def test_bad_days_are_named(self, console):
        r = await console.get("/console/audit", params={"from": "2026-02-30"}, headers=HTML)
        assert r.status_code == 400
        assert field_error(r.text, "from").startswith("Enter a date such as")
        r = await console.get(
            "/console/audit", params={"from": "2026-03-02", "to": "2026-03-01"}, headers=HTML
        )
        assert r.status_code == 400
        assert field_error(r.text, "to") == "The last day must not be before the first."
        r = await console.get("/console/audit", params={"cursor": "forged"}, headers=HTML)
        assert r.status_code == 400


class TestHealth:
    async def test_a_broken_ledger_row_is_named(self, client, console):
        r = await console.get("/console/health", headers=HTML)
        assert r.status_code == 200 and "Run the checks" in r.text
        token = await page_token(console, "/console/health")
        r = await console.post("/console/health", data={}, headers=HTML)
        assert r.status_code == 403  # no form token
        r = await console.post("/console/health", data={"csrf_token": token}, headers=HTML)
        assert r.status_code == 200
        assert "Everything holds: the ledger's 10 invariants" in unescape(r.text)
        assert r.text.count('<span class="badge badge--good">Passed</span>') == 11
        assert re.search(r"Points ledger <span class=\"muted dash-took\">[\d,]+ ms</span>", r.text)

        await ensure_rule()
        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        person = await enrol(client, op)
        await submit(client, op, [record(person["external_user_id"], btype, quantity=1.0)])
        user = uuid.UUID(person["user_id"])
        async with db.session_scope() as session:
            await session.execute(
                sa.text("UPDATE point_accounts SET balance = balance + 5 WHERE user_id = :u"), {"u": user}
            )
        try:
            r = await console.post("/console/health", data={"csrf_token": token}, headers=HTML)
        finally:
            async with db.session_scope() as session:
                await session.execute(
                    sa.text("UPDATE point_accounts SET balance = balance - 5 WHERE user_id = :u"), {"u": user}
                )
        html = unescape(r.text)
        assert "Something is broken. What broke is named below." in html
        broken = re.findall(r'<li class="dash-check dash-check--bad" data-check="([^"]+)">', html)
        assert broken == [
            "account balance equals the sum of its entries",
            "account balance equals the sum of its lots' remainders",
        ]
        assert (
            f'<span class="dash-example__part">Account: <code>{user}</code></span>'
            '<span class="dash-example__part">Balance: <code>105</code></span>'
            '<span class="dash-example__part">Sum of its entries: <code>100</code></span>'
        ) in html
        assert "Every chain links and hashes right" in html


class TestSandboxClock:
    async def _advance(self, console, amount: str, unit: str = "days"):
        token = await page_token(console, "/console/clock")
        return await console.post(
            "/console/clock/advance", data={"csrf_token": token, "amount": amount, "unit": unit}, headers=HTML
        )

    async def test_advance_seen_by_every_engine_audited_and_reset(self, console, app):
        r = await console.get("/console/clock", headers=HTML)
        assert r.status_code == 200
        assert '<dd id="clock-offset">0 days 0 hours 0 minutes</dd>' in r.text
        try:
            r = await self._advance(console, "10")
            assert (r.status_code, r.headers["location"]) == (303, "/console/clock")
            r = await self._advance(console, "6", "hours")
            assert r.status_code == 303
            r = await console.get("/console/clock", headers=HTML)
            assert '<dd id="clock-offset">10 days 6 hours 0 minutes</dd>' in r.text
            # another engine (as another process would) reads the committed offset
            other = db.create_engine(app.state.urls.database_url, pool_size=1)
            try:
                assert await clock.refresh(other) == timedelta(days=10, hours=6)
            finally:
                await other.dispose()
            assert clock.now() - datetime.now(UTC) > timedelta(days=10, hours=5, minutes=59)
            async with db.session_scope() as session:
                entries = (await audit.search(session, audit.Search(subject_type="platform_clock"), 2, None))[
                    "items"
                ]
            assert [(e.action, e.data) for e in entries] == [
                ("clock.advance", {"by_seconds": 6 * 3600, "offset_seconds": 10 * 86400 + 6 * 3600}),
                ("clock.advance", {"by_seconds": 10 * 86400, "offset_seconds": 10 * 86400}),
            ]
            assert entries[0].actor.startswith("authority:")
            token = await page_token(console, "/console/clock")
            r = await console.post("/console/clock/reset", data={"csrf_token": token}, headers=HTML)
            assert r.status_code == 303
            r = await console.get("/console/clock", headers=HTML)
            assert '<dd id="clock-offset">0 days 0 hours 0 minutes</dd>' in r.text
            async with db.session_scope() as session:
                [entry] = (
                    await audit.search(
                        session, audit.Search(actor=entries[0].actor, action="clock.reset"), 1, None
                    )
                )["items"]
            assert (entry.action, entry.data) == (
                "clock.reset",
                {"from_offset_seconds": 10 * 86400 + 6 * 3600, "offset_seconds": 0},
            )
        finally:
            async with db.session_scope() as session:
                await clock.reset(session, "test")
            clock.apply_sandbox(timedelta(0))
        assert await clock.refresh() == timedelta(0)

    @pytest.mark.parametrize(
        ("amount", "unit", "message"),
        [
            ("", "days", "Enter a whole number from 1 to 3,650."),
            ("0", "days", "Enter a whole number from 1 to 3,650."),
            ("-3", "days", "Enter a whole number from 1 to 3,650."),
            ("2.5", "days", "Enter a whole number from 1 to 3,650."),
            ("87601", "hours", "Enter a whole number from 1 to 87,600."),
            ("3651", "days", "Enter a whole number from 1 to 3,650."),
        ],
    )
    async def test_bad_amounts_move_nothing(self, console, amount, unit, message):
        r = await self._advance(console, amount, unit)
        assert r.status_code == 400
        assert field_error(r.text, "amount") == message
        assert '<dd id="clock-offset">0 days 0 hours 0 minutes</dd>' in r.text

    async def test_at_most_ten_years_in_all(self, console):
        try:
            assert (await self._advance(console, "3650")).status_code == 303
            r = await self._advance(console, "1", "hours")
            assert r.status_code == 400
            assert (
                field_error(r.text, "amount")
                == "The clock can be moved at most 3,650 days ahead in all. Reset it first."
            )
        finally:
            async with db.session_scope() as session:
                await clock.reset(session, "test")
            clock.apply_sandbox(timedelta(0))

    async def test_refused_in_production(self, console, settings, monkeypatch):
        token = await page_token(console, "/console/clock")
        monkeypatch.setattr(settings, "environment", "production")
        r = await console.get("/console/clock", headers=HTML)
        assert r.status_code == 200
        refusal = "The platform's clock can be moved only in the local and test environments."
        assert refusal in unescape(r.text) and "/console/clock/advance" not in r.text
        r = await console.post(
            "/console/clock/advance", data={"csrf_token": token, "amount": "1"}, headers=HTML
        )
        assert r.status_code == 403 and refusal in unescape(r.text)
        r = await console.post("/console/clock/reset", data={"csrf_token": token}, headers=HTML)
        assert r.status_code == 403
        async with db.session_scope() as session:
            with pytest.raises(clock.SandboxClockRefused):
                await clock.advance(session, timedelta(days=1), "test")
        clock.apply_sandbox(timedelta(days=1))
        assert clock.sandbox_offset() == timedelta(0)


class TestClockCommands:
    async def test_show_advance_and_reset(self, run_sync):
        try:
            r = await invoke_cli(run_sync, "clock", "advance", "2d")
            assert r.exit_code == 0, r.output
            assert "moved forward by: 2 days 0 hours 0 minutes" in r.output
            r = await invoke_cli(run_sync, "clock", "advance", "90m")
            assert "moved forward by: 2 days 1 hours 30 minutes" in r.output
            r = await invoke_cli(run_sync, "clock", "show")
            assert r.exit_code == 0
            assert "moved forward by: 2 days 1 hours 30 minutes" in r.output
            assert "by cli:" in r.output
            async with db.session_scope() as session:
                [entry] = (
                    await audit.search(
                        session, audit.Search(actor="cli:", subject_type="platform_clock"), 1, None
                    )
                )["items"]
            assert (entry.action, entry.data["by_seconds"]) == ("clock.advance", 5400)
            assert entry.actor.startswith("cli:")
            assert (await invoke_cli(run_sync, "clock", "advance", "-1d")).exit_code == 2  # not an option
            for bad in ("0d", "5x", "1.5d", "10 days"):
                r = await invoke_cli(run_sync, "clock", "advance", bad)
                assert r.exit_code == 2, bad
                assert "invalid_advance" in r.output
            r = await invoke_cli(run_sync, "clock", "reset")
            assert r.exit_code == 0
            assert "moved forward by: 0 days 0 hours 0 minutes" in r.output
        finally:
            async with db.session_scope() as session:
                await clock.reset(session, "test")
            clock.apply_sandbox(timedelta(0))

    async def test_refused_in_production(self, run_sync, settings, monkeypatch):
        monkeypatch.setattr(settings, "environment", "production")
        for args in (("clock", "advance", "1d"), ("clock", "show"), ("clock", "reset")):
            r = await invoke_cli(run_sync, *args)
            assert r.exit_code == 1
            assert (
                "sandbox_clock_refused: the platform's clock can be moved only in the local and test"
                in r.output
            )
