"""Webhook subscriptions in a real browser (Chromium), in Chinese: an operator's admin opens them from the
console, subscribes an endpoint to two event types, sees the secret once, pauses the subscription and gets
a new secret after a confirmation. Axe runs on every page of the walk. With ``CARBON_SHOTS=1`` the test
also takes screenshots of every webhook page at 375 and 1280 px in Chinese and English into
/tmp/shots/webhooks/ (left out otherwise, to keep the suite fast)."""

import os
import uuid

from tests.factories import make_operator, unique
from tests.web.helpers import LANGUAGES
from tests.web.test_web_browser import axe_violations, sign_in
from tests.web.test_webhooks_pages import _failed_delivery, disabled_by_the_platform

SHOTS_WANTED = os.environ.get("CARBON_SHOTS") == "1"


class TestWebhooksJourney:
    async def test_subscribe_see_the_secret_once_pause_and_rotate(self, client, page, shots):
        op = await make_operator(client)
        url = f"https://hooks.example.com/{unique('carbon')}"
        await sign_in(page, op.admin_username)
        assert page.url.endswith("/operator")
        await page.locator('.console-nav a[href="/webhooks"]').click()
        await page.wait_for_load_state()
        assert page.url.endswith("/webhooks")
        assert await axe_violations(page) == []

        await page.get_by_role("link", name="新建订阅").click()
        await page.wait_for_load_state()
        await page.get_by_label("回调地址").fill(url)
        await page.get_by_label("entrustment.withdrawn").check()
        await page.get_by_label("points.expiring").check()
        await page.get_by_label("备注（仅本单位可见）").fill("地铁 App 后台")
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="订阅", exact=True).click()
        await page.wait_for_load_state()
        assert (await page.locator("h1").inner_text()).strip() == "订阅已创建"
        first = (await page.locator("#secret").inner_text()).strip()
        assert first.startswith("whsec_") and len(first) == 49
        assert "密钥只显示这一次。" in await page.locator(".notice").inner_text()
        assert await axe_violations(page) == []

        await page.get_by_role("link", name="我已妥善保存密钥").click()
        await page.wait_for_load_state()
        sid = page.url.rsplit("/", 1)[1]
        assert uuid.UUID(sid) and first not in await page.content()
        assert await page.locator('[data-status="active"]').count() == 1
        await page.get_by_role("button", name="暂停").click()
        await page.wait_for_load_state()
        assert page.url.endswith(f"/webhooks/{sid}?done=paused")
        assert (
            await page.locator(".alert--ok").inner_text()
        ).strip() == "订阅已暂停：新事件不再推送到该地址。"
        assert (await page.locator('dd[data-status="paused"]').inner_text()).strip() == "已暂停"
        assert await axe_violations(page) == []

        await page.get_by_role("link", name="更换密钥…").click()
        await page.wait_for_load_state()
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="生成新密钥").click()
        await page.wait_for_load_state()
        assert (await page.locator("h1").inner_text()).strip() == "新密钥"
        second = (await page.locator("#secret").inner_text()).strip()
        assert second.startswith("whsec_") and second != first
        assert await axe_violations(page) == []
        await page.goto("/webhooks")
        assert await page.locator("#subscriptions tbody th a").all_inner_texts() == [url]

        if SHOTS_WANTED:
            await screenshots(page, shots, op, sid)


async def screenshots(page, shots, op, sid: str) -> None:
    """Every webhook page at a phone's and a desktop's width in both languages, with something on each."""
    await page.goto(f"/webhooks/{sid}")
    await page.locator(f'form[action="/webhooks/{sid}/resume"] button').click()  # paused: no deliveries
    await page.wait_for_load_state()
    _, delivery_id = await _failed_delivery(op, sid)
    folder = shots / "webhooks"
    folder.mkdir(exist_ok=True)
    for language, switch in LANGUAGES:
        if switch:
            await page.get_by_role("button", name=switch).click()
            await page.wait_for_load_state()
        for width, height in ((375, 812), (1280, 800)):
            await page.set_viewport_size({"width": width, "height": height})
            for name, path in (
                ("list", "/webhooks"),
                ("new", "/webhooks/new"),
                ("detail", f"/webhooks/{sid}"),
                ("delivery", f"/webhooks/{sid}/deliveries/{delivery_id}"),
                ("rotate", f"/webhooks/{sid}/rotate-secret"),
                ("delete", f"/webhooks/{sid}/delete"),
            ):
                assert (await page.goto(path)).status == 200, name
                await check(page, folder, name, language, width)
            await page.goto("/webhooks/new")
            await page.locator("#f-url").fill("http://hooks.example.com/x")
            await page.locator("input[name=event_types]").first.check()
            page.record.error_status_expected = True  # the refused form answers 400
            await page.locator("form.webhook-form button[type=submit]").click()
            await page.wait_for_load_state()
            await check(page, folder, "new-refused", language, width)
            await page.goto(f"/webhooks/{sid}/rotate-secret")
            await page.locator('main form[action$="/rotate-secret"] button').click()
            await page.wait_for_load_state()
            await check(page, folder, "secret", language, width)
    await disabled_notice_shots(page, folder, sid)


async def disabled_notice_shots(page, folder, sid: str) -> None:
    """The notice of a subscription the platform disabled, where the admin looks: the list and the console."""
    await disabled_by_the_platform(sid)
    for language, switch in reversed(LANGUAGES):  # the pages are in the last language of the loop above
        if switch is None and len(LANGUAGES) > 1:
            await page.get_by_role("button", name="中文").click()
            await page.wait_for_load_state()
        for width, height in ((375, 812), (1280, 800)):
            await page.set_viewport_size({"width": width, "height": height})
            for name, path in (("list-disabled", "/webhooks"), ("operator-disabled", "/operator")):
                assert (await page.goto(path)).status == 200, name
                assert await page.locator("#disabled-webhooks").count() == 1, name
                await check(page, folder, name, language, width)


async def check(page, folder, name: str, language: str, width: int) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} ({language}) scrolls sideways at {width} px"
    if width == 375:
        assert await axe_violations(page) == [], f"{name} ({language})"
    await page.screenshot(path=str(folder / f"{name}-{language}-{width}.png"), full_page=True)
