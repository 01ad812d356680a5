"""The pages in a real browser (Chromium through Playwright) against a real server.

The ``page`` fixture checks after each test that every request went to the server's own origin and
that nothing was logged as an error (a Content-Security-Policy violation would be).
"""

import re

import httpx
import sqlalchemy as sa
from babel.numbers import format_decimal

from app.core import db
from tests.factories import PASSWORD
from tests.web.helpers import LANGUAGES, make_authority_account

AXE = "/static/vendor/axe-core-4.14.1/axe.min.js"


async def axe_violations(page) -> list[str]:
    """Serious and critical accessibility violations axe-core (vendored, same origin) finds on the page."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(url=AXE)
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def session_rows(username: str) -> int:
    async with db.session_scope() as session:
        return (
            await session.execute(
                sa.text(
                    "SELECT count(*) FROM web_sessions w JOIN staff_users s ON s.id = w.staff_user_id"
                    " WHERE s.username = :u"
                ),
                {"u": username},
            )
        ).scalar_one()


async def sign_in(page, username: str, password: str = PASSWORD) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_load_state()


class TestHomePage:
    async def test_the_totals_are_those_of_the_json_api(self, app, page, live_server):
        async with httpx.AsyncClient(base_url=live_server) as api:
            totals = (await api.get("/v1/public/totals")).json()
            cer = (await api.get("/v1/public/cer/totals")).json()
        await page.goto("/")

        async def shown(name: str) -> str:
            return (await page.locator(f'[data-total="{name}"]').inner_text()).strip()

        grouped = lambda n: format_decimal(n, locale="zh_CN")  # noqa: E731
        assert await shown("people") == grouped(totals["people"])
        assert await shown("behaviours") == grouped(totals["behaviours"])
        assert await shown("reduction") == format_decimal(
            totals["reduction_g"] / 10**6, "#,##0.000", locale="zh_CN"
        )
        assert await shown("points-issued") == grouped(totals["points_credited"])
        assert await shown("points-spent") == grouped(totals["points_used"])
        assert await shown("points-expired") == grouped(totals["points_expired"])
        assert await shown("cer-issued") == grouped(cer["issued_tonnes"])
        assert await shown("cer-retired") == grouped(cer["retired_tonnes"])
        assert await page.locator("html").get_attribute("lang") == "zh-CN"
        assert await page.get_by_role("link", name="登录").count() == 2  # the header's and the staff card's


class TestSignInAndOut:
    async def test_a_staff_account_signs_in_and_out(self, app, page):
        username = await make_authority_account()
        await sign_in(page, username)
        assert page.url.endswith("/console")  # the authority's own landing
        await page.get_by_text(username, exact=True).wait_for()
        assert await session_rows(username) == 1
        cookies = {c["name"]: c for c in await page.context.cookies()}
        assert cookies["cp_session"]["httpOnly"] and cookies["cp_session"]["sameSite"] == "Lax"
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="退出登录").click()
        await page.wait_for_load_state()
        assert await session_rows(username) == 0
        assert "cp_session" not in {c["name"] for c in await page.context.cookies()}
        assert await page.get_by_role("button", name="退出登录").count() == 0

    async def test_a_wrong_password_shows_the_error_beside_the_form(self, app, page):
        page.record.error_status_expected = True
        username = await make_authority_account()
        await sign_in(page, username, "not-the-password")
        await page.get_by_role("alert").get_by_text("用户名或密码错误。").wait_for()
        assert await page.get_by_label("用户名").input_value() == username
        assert await axe_violations(page) == []
        await page.get_by_label("用户名").fill("")
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_load_state()
        await page.get_by_text("请输入用户名。").wait_for()
        await page.get_by_text("请输入密码。").wait_for()
        assert await page.get_by_label("用户名").get_attribute("aria-invalid") == "true"
        assert await axe_violations(page) == []


class TestCsrf:
    async def test_a_form_posted_without_its_token_is_refused(self, page):
        page.record.error_status_expected = True
        await page.goto("/")
        await page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
        await page.get_by_role("button", name="English").click()
        await page.wait_for_load_state()
        await page.get_by_role("heading", name="表单已失效").wait_for()
        assert await page.locator("html").get_attribute("lang") == "zh-CN"  # the switch did not happen
        assert await axe_violations(page) == []


class TestLanguage:
    async def test_chinese_by_default_english_remembered_across_pages(self, page):
        await page.goto("/")
        assert await page.locator("html").get_attribute("lang") == "zh-CN"
        await page.get_by_role("heading", name="碳普惠平台", level=1).wait_for()
        await page.get_by_role("button", name="English").click()
        await page.wait_for_load_state()
        assert await page.locator("html").get_attribute("lang") == "en"
        await page.get_by_role("heading", name="Carbon Inclusion Platform", level=1).wait_for()
        assert await axe_violations(page) == []
        await page.get_by_role("link", name="Sign in").first.click()
        await page.wait_for_load_state()
        assert await page.locator("html").get_attribute("lang") == "en"
        await page.get_by_label("Username").wait_for()
        assert await axe_violations(page) == []
        await page.reload()
        assert await page.locator("html").get_attribute("lang") == "en"
        await page.get_by_role("button", name="中文").click()
        await page.wait_for_load_state()
        assert await page.locator("html").get_attribute("lang") == "zh-CN"
        await page.get_by_label("用户名").wait_for()


class TestErrorPages:
    async def test_a_404_page_shows_the_request_id(self, page):
        page.record.error_status_expected = True
        response = await page.goto("/no/such/page")
        assert response.status == 404
        await page.get_by_role("heading", name="页面不存在").wait_for()
        assert await page.locator(".request-id").inner_text() == response.headers["x-request-id"]
        assert await axe_violations(page) == []


class TestApiReference:
    # Swagger UI and ReDoc work through the whole OpenAPI document (400 kB) before showing anything:
    # seconds on an idle machine, much longer on a busy one.
    RENDER_MS = 120_000

    async def test_docs_renders_swagger_ui_from_this_server(self, page):
        await page.goto("/docs")
        title = page.locator(".swagger-ui .info .title").get_by_text("Carbon points platform")
        await title.wait_for(timeout=self.RENDER_MS)
        await page.locator(".opblock-tag", has_text="public").first.wait_for()
        assert any(u.endswith("/openapi.json") for u in page.record.requests)

    async def test_redoc_renders_from_this_server(self, page):
        await page.goto("/redoc")
        heading = page.get_by_role("heading", name=re.compile("Carbon points platform")).first
        await heading.wait_for(timeout=self.RENDER_MS)


class TestLayouts:
    PAGES = {"home": ("/", 200), "sign-in": ("/sign-in", 200), "not-found": ("/no/such/page", 404)}

    async def test_phone_and_desktop_in_both_languages(self, page, shots):
        page.record.error_status_expected = True
        for language, switch in LANGUAGES:
            if switch:
                await page.goto("/")
                await page.get_by_role("button", name=switch).click()
                await page.wait_for_load_state()
            for width, height in ((375, 812), (1280, 800)):
                await page.set_viewport_size({"width": width, "height": height})
                for name, (path, status) in self.PAGES.items():
                    assert (await page.goto(path)).status == status, name
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, f"{name} ({language}) scrolls sideways at {width} px"
                    if width == 375:
                        assert await axe_violations(page) == [], f"{name} ({language})"
                    await page.screenshot(path=str(shots / f"{name}-{language}-{width}.png"), full_page=True)
        # the skip link is the first stop of the keyboard, visible when focused, and leads to the content
        await page.goto("/")
        await page.keyboard.press("Tab")
        skip = page.locator(".skip-link")
        assert await skip.evaluate("e => e === document.activeElement")
        box = await skip.bounding_box()
        assert box is not None and box["y"] >= 0
        await page.keyboard.press("Enter")
        assert await page.evaluate("location.hash") == "#main"
