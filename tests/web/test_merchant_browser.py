"""The merchant's till and back office in a real browser: redeeming a voucher by code and by the
camera, the refusals, items with markup in their titles and errors beside the fields, accessibility
(axe) and the layouts at 375 px and 1280 px in both languages (screenshots in /tmp/shots/merchant-*)."""

import base64
import io
import re

import pytest
from PIL import Image
from playwright.async_api import expect

from app.mall import vouchers
from tests.factories import PASSWORD
from tests.web.helpers import LANGUAGES
from tests.web.merchant_helpers import mall_world, shop, voucher
from tests.web.test_web_browser import axe_violations

NOT_FOUND = "本店没有这个券码的券。请核对券码后重试。"
ALREADY_USED = "此券已使用过，不能再次使用。"


@pytest.fixture(scope="session")
async def world(app):
    return await mall_world(app)


async def sign_in(page, username: str, next: str = "/merchant") -> None:
    await page.goto(f"/sign-in?next={next}")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_load_state()


async def type_code(page, code: str) -> None:
    await page.goto("/merchant")
    # the field is ready at the counter: `autofocus` applies on the next frame, so wait for it (fails after 5 s;
    # an assertion, not wait_for_function, whose polling evaluates a string the pages' CSP refuses)
    await expect(page.locator("#f-code")).to_be_focused(timeout=5000)
    await page.keyboard.type(code)
    await page.locator("#till-form button[type=submit]").click()
    await page.wait_for_load_state()


async def edges(box) -> tuple[str, str]:
    """Whether the box's left and right inner edges are shaded, read from its pixels: a pixel column just inside
    each border, in the rows below the header, against one in the middle."""
    image = Image.open(io.BytesIO(await box.screenshot())).convert("L")
    width, height = image.size
    rows = range(height // 2, height - 4)

    def shade(x: int) -> float:
        return sum(image.getpixel((x, y)) for y in rows) / len(rows)

    middle = shade(width // 2 + 3)
    return tuple("shadow" if middle - shade(x) > 8 else "plain" for x in (3, width - 4))  # type: ignore[return-value]


async def refusal(page) -> str:
    return (await page.get_by_role("alert").inner_text()).strip()


class TestRedeemAtTheTill:
    async def test_redeem_by_code_then_already_used_and_another_merchants_not_found(
        self, client, world, page
    ):
        page.record.error_status_expected = True  # the refusals answer 404 and 409
        s = await shop(client, world)
        order = await voucher(client, s, quantity=2)
        theirs = await voucher(client, await shop(client, world))
        await sign_in(page, s.merchant.admin_username)
        assert page.url.endswith("/merchant")
        code = order["voucher"]["code"]
        await type_code(page, code)
        await page.get_by_role("heading", name="确认核销").wait_for()
        facts = page.locator("#voucher-facts")
        assert await facts.locator("dd").first.inner_text() == s.item["title"]
        assert (await facts.inner_text()).split("\n")[2:6] == ["数量", "2", "支付积分", "100"]
        assert code not in page.url
        assert await axe_violations(page) == []
        await page.get_by_role("button", name="立即核销").click()
        await page.wait_for_load_state()
        await page.get_by_role("heading", name="核销成功").wait_for()
        assert page.url.endswith(f"/merchant/redeemed/{order['id']}")
        assert await axe_violations(page) == []
        await page.get_by_role("link", name="核销下一张券").click()
        await page.wait_for_load_state()
        await type_code(page, code)
        assert await refusal(page) == ALREADY_USED
        assert await page.get_by_label("券码").get_attribute("aria-invalid") == "true"
        assert await axe_violations(page) == []
        await type_code(page, theirs["voucher"]["code"])
        assert await refusal(page) == NOT_FOUND
        assert await axe_violations(page) == []
        assert not any(
            order["voucher"]["code"] in u or theirs["voucher"]["code"] in u for u in page.record.requests
        )

    async def test_scanning_the_qr_code_with_the_camera(self, client, world, page):
        s = await shop(client, world)
        order = await voucher(client, s)
        png = base64.b64encode(vouchers.qr_image(order["voucher"]["code"], "png")).decode()
        # The camera films the voucher's QR code: a canvas showing the PNG the buyer's app gets.
        await page.add_init_script(
            """(() => {
              const src = "data:image/png;base64,PNG";
              navigator.mediaDevices.getUserMedia = () => new Promise((resolve) => {
                const image = new Image();
                image.onload = () => {
                  const canvas = document.createElement("canvas");
                  canvas.width = 640; canvas.height = 480;
                  const context = canvas.getContext("2d");
                  const draw = () => {
                    context.fillStyle = "#fff"; context.fillRect(0, 0, 640, 480);
                    context.drawImage(image, 170, 90, 300, 300);
                  };
                  draw(); setInterval(draw, 100);
                  resolve(canvas.captureStream(10));
                };
                image.src = src;
              });
            })();""".replace("PNG", png)
        )
        await sign_in(page, s.merchant.admin_username)
        scan = page.get_by_role("button", name="用摄像头扫描二维码")
        await scan.wait_for()
        await scan.click()
        await page.get_by_role("heading", name="确认核销").wait_for(timeout=20_000)
        assert await page.locator("#voucher-facts dd").first.inner_text() == s.item["title"]
        await page.get_by_role("button", name="立即核销").click()
        await page.get_by_role("heading", name="核销成功").wait_for()


class TestItems:
    async def test_a_title_with_markup_is_text_and_bad_input_is_shown_beside_the_field(
        self, client, world, page
    ):
        page.record.error_status_expected = True  # the refused form answers 400
        s = await shop(client, world)
        dialogs = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        await sign_in(page, s.merchant.admin_username, "/merchant/items")
        await page.get_by_role("link", name="上架新商品").click()
        await page.wait_for_load_state()
        await page.get_by_label("名称").fill("<script>alert(1)</script> 燕麦拿铁")
        await page.get_by_label("积分价格").fill("0")
        await page.get_by_role("button", name="上架").click()
        await page.wait_for_load_state()
        price = page.get_by_label("积分价格")
        assert await price.get_attribute("aria-invalid") == "true"
        assert await page.locator("#f-points_price-error").inner_text() == (
            "请输入 1 至 1,000,000,000 的整数积分价格。"
        )
        assert await price.get_attribute("aria-describedby") == "f-points_price-error"
        assert await page.get_by_label("名称").input_value() == "<script>alert(1)</script> 燕麦拿铁"
        assert await axe_violations(page) == []
        await price.fill("80")
        await page.get_by_role("button", name="上架").click()
        await page.wait_for_load_state()
        assert re.search(r"/merchant/items\?saved=", page.url)
        card = page.locator(".item-card", has_text="燕麦拿铁")
        assert await card.get_by_role("heading").inner_text() == "<script>alert(1)</script> 燕麦拿铁"
        assert dialogs == []
        assert await axe_violations(page) == []
        await card.get_by_role("button", name=re.compile("^暂停销售")).click()
        await page.wait_for_load_state()
        assert (
            await page.locator(".item-card", has_text="燕麦拿铁").locator(".badge").inner_text() == "已暂停"
        )


class TestLayouts:
    async def test_every_page_in_both_languages_at_phone_and_desktop_width(self, client, world, page, shots):
        page.record.error_status_expected = True
        s = await shop(client, world, stock=25, per_user_limit=5)
        used = await voucher(client, s)
        await sign_in(page, s.merchant.admin_username)
        await type_code(page, used["voucher"]["code"])
        await page.get_by_role("button", name="立即核销").click()
        await page.wait_for_load_state()
        pages = {
            "till": "/merchant",
            "redeemed": f"/merchant/redeemed/{used['id']}",
            "statement": "/merchant/statement",
            "items": "/merchant/items",
            "item-new": "/merchant/items/new",
            "item-edit": f"/merchant/items/{s.item['id']}/edit",
            "orders": "/merchant/orders",
            "reports": "/merchant/reports",
        }
        for language, switch in LANGUAGES:
            if switch:
                await page.goto("/merchant")
                await page.get_by_role("button", name=switch).click()
                await page.wait_for_load_state()
            waiting = await voucher(client, s)
            for width, height in ((375, 812), (1280, 800)):
                await page.set_viewport_size({"width": width, "height": height})
                for name, path in pages.items():
                    assert (await page.goto(path)).status == 200, name
                    await self.check(page, shots, f"{name}-{language}-{width}")
                await type_code(page, waiting["voucher"]["code"])
                await self.check(page, shots, f"confirm-{language}-{width}")
                await type_code(page, used["voucher"]["code"])
                await self.check(page, shots, f"refused-{language}-{width}")
                await page.goto("/merchant/items/new")
                await page.get_by_role("button", name=re.compile("上架|List the item")).click()
                await page.wait_for_load_state()
                await self.check(page, shots, f"item-errors-{language}-{width}")

    async def test_a_table_wider_than_a_tablet_shows_a_shadow_on_the_side_with_more(
        self, client, world, page
    ):
        s = await shop(client, world, stock=5, per_user_limit=5)
        await voucher(client, s)
        await sign_in(page, s.merchant.admin_username)
        await page.set_viewport_size({"width": 768, "height": 1024})  # a tablet in portrait
        await page.goto("/merchant/orders")
        await page.get_by_role("button", name="English").click()  # its longer headings: wider than the box
        await page.wait_for_load_state()
        box = page.locator(".table-scroll")
        width = await box.evaluate("b => b.scrollWidth - b.clientWidth")
        assert width > 0  # seven columns: the table is wider than its box and scrolls inside it

        assert await edges(box) == ("plain", "shadow")  # at the start: more to the right
        await box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
        assert await edges(box) == ("shadow", "plain")  # at the end: more to the left

        await page.set_viewport_size({"width": 1280, "height": 800})
        assert await box.evaluate("b => b.scrollWidth - b.clientWidth") == 0
        assert await edges(box) == ("plain", "plain")  # everything in view: no shadow
        await page.get_by_role("button", name="中文").click()
        await page.wait_for_load_state()

    @staticmethod
    async def check(page, shots, name: str) -> None:
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways"
        assert await axe_violations(page) == [], name
        await page.screenshot(path=str(shots / f"merchant-{name}.png"), full_page=True)
