"""The authority's dashboards, audit log, health checks and sandbox clock in a real browser: one walk
through them, accessibility (axe) and the layouts at 375 px and 1280 px in both languages
(screenshots in /tmp/shots/dashboards/). Resetting the clock from its page, and in Chinese the checks of
the audit search and the clock pages, are test_journey_browser.py's (here the fixture's code puts the clock
back)."""

from datetime import timedelta

from babel.dates import format_date

from app.core import clock, db
from tests.factories import PASSWORD, make_operator
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit
from tests.web.helpers import LANGUAGES, make_authority_account
from tests.web.test_web_browser import axe_violations


async def check(page, shots, name: str) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways"
    assert await axe_violations(page) == [], name
    folder = shots / "dashboards"
    folder.mkdir(exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def charts_drawn(page) -> list[str]:
    """The sections whose chart Chart.js drew; every chart on the page must be drawn."""
    # polled from here: wait_for_function's own polling evaluates a string in the page, which the
    # strict CSP refuses (no 'unsafe-eval') when the first look finds Chart.js not loaded yet
    for _ in range(100):
        if await page.evaluate(
            "!!window.Chart && document.querySelectorAll('canvas[data-chart]').length > 0"
        ):
            break
        await page.wait_for_timeout(100)
    drawn = await page.evaluate(
        "Array.from(document.querySelectorAll('canvas[data-chart]'))"
        ".filter(c => window.Chart.getChart(c)).map(c => c.closest('section').id)"
    )
    assert len(drawn) == await page.locator("canvas[data-chart]").count()
    return drawn


class TestDashboardsWalk:
    async def test_dashboards_audit_health_and_clock(self, client, page, shots):
        page.record.error_status_expected = True  # the bad period answers 400
        await ensure_rule()
        btype = await make_methodology(factor="1000")
        op = await make_operator(client)
        person = await enrol(client, op)
        start = clock.now() - timedelta(days=1)
        await submit(client, op, [record(person["external_user_id"], btype, quantity=1.5, start=start)])
        await page.goto("/sign-in?next=/console/dashboards")
        await page.get_by_label("用户名").fill(await make_authority_account())
        await page.get_by_label("密码").fill(PASSWORD)
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_url("**/console/dashboards")
        try:
            # dashboards: six charts, each with its table and CSV
            assert {"records-by-type", "records-by-operator", "points"} <= set(await charts_drawn(page))
            by_type = page.locator("#records-by-type")
            await by_type.get_by_text("以表格查看数据").click()
            cells = await by_type.locator("tr", has_text=btype).locator("td").all_inner_texts()
            assert cells == [btype, "1", "1.5 千克"]
            await page.get_by_label("开始日期").fill("2026-03-02")
            await page.get_by_label("结束日期").fill("2026-03-01")
            await page.get_by_role("button", name="查看").click()
            await page.wait_for_load_state()
            assert "结束日期不能早于起始日期。" in await page.locator("#f-to-error").inner_text()
            assert await axe_violations(page) == []

            # the audit log: search by action, open an entry
            await page.get_by_role("link", name="沙盒时钟").click()
            await page.get_by_label("拨快时长").fill("3")
            await page.get_by_role("button", name="拨快").click()
            await page.wait_for_load_state()
            assert await page.locator("#clock-offset").inner_text() == "3 天 0 小时 0 分钟"
            # the server's process applies it within a second: the portal's "as of" is three days on
            ahead = format_date(clock.local_day(clock.real_now()) + timedelta(days=3), "long", locale="zh_CN")
            for _ in range(20):
                await page.goto("/")
                if (
                    ahead
                    in await page.locator("section[aria-labelledby=figures-heading] p.muted").inner_text()
                ):
                    break
                await page.wait_for_timeout(250)
            assert (
                ahead in await page.locator("section[aria-labelledby=figures-heading] p.muted").inner_text()
            )
            await page.goto("/console/clock")
            await page.get_by_role("link", name="审计日志").click()
            await page.get_by_label("操作", exact=True).fill("clock.")
            await page.get_by_role("button", name="搜索").click()
            await page.wait_for_load_state()
            first = page.locator("#entries tbody tr").first
            assert await first.locator("code.action-code").inner_text() == "clock.advance"
            await first.locator("a").click()
            await page.wait_for_load_state()
            assert '"by_seconds": 259200' in await page.locator(".dash-data").inner_text()
            assert await axe_violations(page) == []

            # health: run both verifications
            await page.get_by_role("link", name="账本与审计健康检查").click()
            await page.get_by_role("button", name="开始检查").click()
            await page.wait_for_load_state()
            assert (await page.get_by_role("status").inner_text()).startswith("全部正常")
            assert await page.locator(".dash-check .badge--good").count() == 11

            pages = {
                "dashboards": "/console/dashboards",
                "audit": "/console/audit?action=clock.",
                "health": "/console/health",
                "clock": "/console/clock",
            }
            for language, switch in LANGUAGES:
                if switch:
                    await page.get_by_role("button", name=switch).click()
                    await page.wait_for_load_state()
                for width, height in ((375, 812), (1280, 800)):
                    await page.set_viewport_size({"width": width, "height": height})
                    for name, path in pages.items():
                        if language == "zh" and name in ("audit", "clock"):
                            continue  # the journey's
                        assert (await page.goto(path)).status == 200, name
                        if name == "dashboards":
                            assert {"records-by-type", "records-by-operator", "points"} <= set(
                                await charts_drawn(page)
                            )
                            await page.locator("#records-by-type details summary").click()
                        await check(page, shots, f"{name}-{language}-{width}")
                    await page.goto("/console/audit?action=clock.")
                    await page.locator("#entries tbody tr a").first.click()
                    await page.wait_for_load_state()
                    await check(page, shots, f"entry-{language}-{width}")
                    await page.goto("/console/health")
                    await page.locator("form.dash-run button").click()
                    await page.wait_for_load_state()
                    await check(page, shots, f"health-run-{language}-{width}")
        finally:
            async with db.session_scope() as session:
                await clock.reset(session, "test")
            clock.apply_sandbox(timedelta(0))
