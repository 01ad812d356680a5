"""Organisation registration and the scene operator's portal in a real browser (Chromium).

A scene operator registers through the form, the authority approves it (through the API), the operator
signs in, applies for a scene and sees it approved after the experts' review and the authority's
decision (through the API). Axe runs on every page; screenshots at 375 and 1280 px in both languages
go to /tmp/shots/scene-operator-*.png.
"""

import uuid

import pytest

from tests.factories import PASSWORD, authority_token, bearer
from tests.factories_scenes import decide_panel, ensure_experts, open_scene_review
from tests.web.helpers import LANGUAGES
from tests.web.test_organizations_pages import valid_credit_code, wrong_check_digit
from tests.web.test_web_browser import axe_violations, sign_in


async def register(page, *, name: str, username: str, credit_code: str) -> None:
    await page.goto("/register")
    await page.get_by_label("场景运营机构").check()
    await page.get_by_label("注册名称").fill(name)
    await page.get_by_label("统一社会信用代码").fill(credit_code)
    await page.get_by_label("用户名").fill(username)
    await page.locator("#f-password").fill(PASSWORD)
    await page.get_by_label("再次输入密码").fill(PASSWORD)
    await page.get_by_role("button", name="提交申请").click()
    await page.wait_for_load_state()


async def approve(client, name: str) -> str:
    authority = await authority_token(client)
    orgs = (
        await client.get(
            "/v1/organizations?status=pending&kind=scene_operator&limit=200", headers=bearer(authority)
        )
    ).json()["items"]
    org = next(o for o in orgs if o["name"] == name)
    r = await client.post(f"/v1/organizations/{org['id']}/approve", headers=bearer(authority))
    assert r.status_code == 200, r.text
    return org["id"]


async def behaviour_label(client) -> tuple[str, str]:
    types = (await client.get("/v1/public/scenes/behaviour-types")).json()["behaviour_types"]
    return ("own_cup", "自带杯") if "own_cup" in types else (types[0], types[0])


async def fill_scene(page, name: str, behaviour: str, *, lat: str = "22.54093") -> None:
    await page.get_by_label("场景名称").fill(name)
    await page.get_by_label("经营场所").check()
    await page.get_by_label("地址").fill("Science Park, Nanshan District, Shenzhen")
    await page.get_by_label("区代码").fill("440305")
    await page.get_by_label("纬度").fill(lat)
    await page.get_by_label("经度").fill("113.95281")
    await page.get_by_label(behaviour, exact=True).check()
    await page.get_by_label("说明").fill("Bring your own cup: <b>each</b> drink is recorded.")
    await page.get_by_role("button", name="提交申请").click()
    await page.wait_for_load_state()


class TestSceneOperatorJourney:
    async def test_register_approved_sign_in_apply_and_see_the_scene_approved(self, client, page):
        name, username = f"Green Venues {uuid.uuid4().hex[:6]}", f"venues-{uuid.uuid4().hex[:8]}"
        await register(page, name=name, username=username, credit_code=valid_credit_code())
        await page.get_by_role("heading", name="申请已收到", level=1).wait_for()
        assert await axe_violations(page) == []
        # before the decision, signing in says the application is pending
        page.record.error_status_expected = True
        await sign_in(page, username)
        await page.locator('#sign-in-error [data-status="pending"]').wait_for()
        assert await axe_violations(page) == []

        await approve(client, name)
        await sign_in(page, username)
        await page.goto("/organization")
        await page.locator('[data-status="approved"]').wait_for()
        assert await axe_violations(page) == []
        await page.locator("main").get_by_role("link", name="我的场景").click()
        await page.wait_for_load_state()
        await page.get_by_text("您还没有申请过场景。").wait_for()
        assert await axe_violations(page) == []

        await page.get_by_role("link", name="申请新场景").click()
        await page.wait_for_load_state()
        await page.get_by_text("GCJ-02").first.wait_for()
        assert await axe_violations(page) == []
        code, label = await behaviour_label(client)
        scene_name = f"Green Bean Café {uuid.uuid4().hex[:4]}"
        await fill_scene(page, scene_name, label)
        await page.get_by_role("heading", name=scene_name, level=1).wait_for()
        await page.get_by_text("您的申请已提交主管部门。").wait_for()
        assert (
            await page.locator("#scene-status [data-status], #scene-status").first.get_attribute(
                "data-status"
            )
            == "submitted"
        )
        await page.get_by_text(
            "Bring your own cup: <b>each</b> drink is recorded."
        ).wait_for()  # markup as text
        assert await axe_violations(page) == []
        scene_id = page.url.split("/")[-1].split("?")[0]

        # the authority draws the panel, the experts give opinions, the authority decides: approved
        authority = await authority_token(client)
        await ensure_experts(client, authority)
        panel = await open_scene_review(client, authority, scene_id)
        await page.reload()
        assert await page.locator("#scene-status").get_attribute("data-status") == "under_review"
        await decide_panel(client, authority, panel, "pass", "Meets the scene creation guidelines.")
        await page.reload()
        assert await page.locator("#scene-status").get_attribute("data-status") == "approved"
        label_code = (await page.locator("#label-code").inner_text()).strip()
        assert label_code.startswith("SZ-CJ-")
        await page.get_by_text("Meets the scene creation guidelines.").wait_for()
        assert await axe_violations(page) == []
        await page.locator(".breadcrumb").get_by_role("link", name="我的场景").click()
        await page.wait_for_load_state()
        await page.get_by_text(label_code).wait_for()
        # request a change
        await page.get_by_role("link", name=scene_name).click()
        await page.wait_for_load_state()
        await page.get_by_role("link", name="申请变更").click()
        await page.wait_for_load_state()
        assert await page.get_by_label("纬度").input_value() == "22.54093"
        await page.get_by_label("地址").fill("2 Fuzhong 3rd Road, Futian")
        await page.get_by_label("区代码").fill("440304")
        await page.get_by_role("button", name="提交变更申请").click()
        await page.wait_for_load_state()
        await page.get_by_text("您的变更申请已提交评审。").wait_for()
        assert await page.locator("#change-status").get_attribute("data-status") == "submitted"
        assert await axe_violations(page) == []


class TestBadInput:
    async def test_a_credit_code_failing_its_check_digit(self, page):
        page.record.error_status_expected = True
        code = wrong_check_digit(valid_credit_code())
        await register(page, name="Check digit test", username=f"cd-{uuid.uuid4().hex[:8]}", credit_code=code)
        error = page.locator("#f-credit_code-error")
        assert await error.inner_text() == "信用代码的最后一位与前面的字符不符：请对照营业执照核对。"
        field = page.get_by_label("统一社会信用代码")
        assert await field.get_attribute("aria-invalid") == "true"
        assert await field.input_value() == code
        assert "f-credit_code-error" in (await field.get_attribute("aria-describedby") or "")
        assert await axe_violations(page) == []

    async def test_coordinates_outside_their_range(self, client, page):
        page.record.error_status_expected = True
        name, username = f"Range test {uuid.uuid4().hex[:6]}", f"range-{uuid.uuid4().hex[:8]}"
        await register(page, name=name, username=username, credit_code=valid_credit_code())
        await approve(client, name)
        await sign_in(page, username)
        await page.goto("/scene-operator/scenes/new")
        _, label = await behaviour_label(client)
        await fill_scene(page, "Out of range", label, lat="122.5")
        assert await page.locator("#f-lat-error").inner_text() == "纬度须在 -90 到 90 之间。"
        assert await page.get_by_label("纬度").get_attribute("aria-invalid") == "true"
        assert await page.get_by_label("场景名称").input_value() == "Out of range"
        assert await axe_violations(page) == []


class TestLayouts:
    @pytest.mark.parametrize("language", [code for code, _ in LANGUAGES])
    async def test_phone_and_desktop(self, client, page, shots, language):
        page.record.error_status_expected = True
        name, username = f"Layout Venues {uuid.uuid4().hex[:6]}", f"layout-{uuid.uuid4().hex[:8]}"
        await register(page, name=name, username=username, credit_code=valid_credit_code())
        await approve(client, name)
        await sign_in(page, username)
        await page.goto("/scene-operator/scenes/new")
        code, label = await behaviour_label(client)
        await fill_scene(page, "Green Bean Café (Science Park)", label)
        scene_path = page.url.split("?")[0]
        scene_id = scene_path.split("/")[-1]
        authority = await authority_token(client)
        await ensure_experts(client, authority)
        await decide_panel(client, authority, await open_scene_review(client, authority, scene_id), "pass",
                           "Meets the scene creation guidelines; evidence checked.")  # fmt: skip
        await page.goto("/scene-operator/scenes/new")
        await fill_scene(page, "Futian Civic Center Canteen", label)  # left in review
        if language == "en":
            await page.get_by_role("button", name="English").click()
            await page.wait_for_load_state()
        pages = {
            "home": "/scene-operator",
            "apply": "/scene-operator/scenes/new",
            "scene": scene_path,
            "change": scene_path + "/change",
            "account": "/organization",
        }
        for width, height in ((375, 812), (1280, 800)):
            await page.set_viewport_size({"width": width, "height": height})
            for shot, path in pages.items():
                assert (await page.goto(path)).status == 200, shot
                await self.check(page, shots, f"{shot}-{language}-{width}")
            await page.goto("/scene-operator/scenes/new")
            await page.get_by_role("button", name="Apply" if language == "en" else "提交申请").click()
            await page.wait_for_load_state()
            await self.check(page, shots, f"apply-errors-{language}-{width}")
        # the public side: the form and what follows it (signed out)
        await page.get_by_role("button", name="Sign out" if language == "en" else "退出登录").click()
        await page.wait_for_load_state()
        for width, height in ((375, 812), (1280, 800)):
            await page.set_viewport_size({"width": width, "height": height})
            await page.goto("/register")
            await self.check(page, shots, f"register-{language}-{width}")
            await page.get_by_role("button", name="Apply" if language == "en" else "提交申请").click()
            await page.wait_for_load_state()
            await self.check(page, shots, f"register-errors-{language}-{width}")
            await page.goto("/register/done?kind=scene_operator")
            await self.check(page, shots, f"registered-{language}-{width}")

    @staticmethod
    async def check(page, shots, name: str) -> None:
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways"
        assert await axe_violations(page) == [], name
        await page.screenshot(path=str(shots / f"scene-operator-{name}.png"), full_page=True)


class TestDemo:
    async def test_the_demo_operator_sees_a_scene_in_review_and_one_with_records(self, client, page, shots):
        from app.core import db
        from app.methodologies import demo as methodologies_demo
        from app.points import demo as points_demo
        from app.scenes import demo as scenes_demo

        await authority_token(client)
        async with db.session_scope() as session:
            await methodologies_demo.load(session)
            await points_demo.load(session)
            await scenes_demo.load(session)  # once a session: loading again adds nothing
        await sign_in(page, scenes_demo.OPERATOR[0], scenes_demo.OPERATOR[1])
        assert page.url.endswith("/scene-operator")
        await page.get_by_role("link", name="Nanshan Library Water Refill Station").click()
        await page.wait_for_load_state()
        assert await page.locator("#scene-status").get_attribute("data-status") == "under_review"
        assert (await page.locator("#opinions-in").inner_text()).startswith("已提交意见：1 / 2")
        await page.locator(".breadcrumb").get_by_role("link", name="我的场景").click()
        await page.wait_for_load_state()
        await page.get_by_role("link", name="Green Bean Café (Science Park)").click()
        await page.wait_for_load_state()
        records = int((await page.locator('[data-total="records"]').inner_text()).replace(",", ""))
        assert records > 0
        await page.get_by_role("table", name="按月份").wait_for()
        cafe = page.url
        for language, _switch in LANGUAGES:
            if language == "en":
                await page.get_by_role("button", name="English").click()
                await page.wait_for_load_state()
            for width, height in ((375, 812), (1280, 800)):
                await page.set_viewport_size({"width": width, "height": height})
                for name, path in (("demo-home", "/scene-operator"), ("demo-cafe", cafe)):
                    await page.goto(path)
                    await TestLayouts.check(page, shots, f"{name}-{language}-{width}")
