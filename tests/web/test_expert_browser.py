"""The experts' workspace in a real browser (Chromium): an expert signs in, finds the panel, declares no
conflict of interest, reads the scene's documents and gives an opinion, confirmed before it is sent, in
English (the Chinese walk is the one of test_journey_browser.py; here too with CARBON_SHOTS=1 or
CARBON_BROWSER_LANGUAGES=all, first, on a panel of its own). Every page at 375 and 1280 px: no sideways
scrolling, axe; screenshots go to /tmp/shots/expert-*.png."""

import uuid

from tests.factories import authority_token, bearer, make_org
from tests.factories_scenes import make_expert, make_scene, strangers
from tests.web.helpers import LANGUAGES
from tests.web.test_web_browser import axe_violations, sign_in

REASONS = {
    "zh": "证明材料与地址相符，记录的低碳行为适合该类场所，同意认定。",
    "en": "The evidence matches the address and the behaviours fit a café: I recommend approval.",
}


async def check(page, shots, name: str) -> None:
    """At a phone's width and a desktop's: no sideways scrolling, no serious axe violation, a screenshot."""
    for width, height in ((375, 812), (1280, 800)):
        await page.set_viewport_size({"width": width, "height": height})
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {width}"
        assert await axe_violations(page) == [], name
        await page.screenshot(path=str(shots / f"expert-{name}-{width}.png"), full_page=True)


async def walk(page, shots, language: str, scene: dict, panel: dict) -> None:
    en = language == "en"
    await page.goto("/expert")
    await check(page, shots, f"home-{language}")
    await page.locator(f'[data-panel="{panel["id"]}"]').get_by_role("link", name=scene["name"]).click()
    await page.wait_for_load_state()
    await page.get_by_role("heading", name="Declaration of interests" if en else "利益冲突声明").wait_for()
    assert await page.locator("#subject-name").inner_text() == scene["name"]
    await check(page, shots, f"declaration-{language}")
    await page.get_by_label(
        "I declare that I have no conflict of interest"
        if en
        else "本人声明与该评审事项及其申请单位不存在利益冲突"
    ).check()
    await page.get_by_role(
        "button", name="Make the declaration and open the documents" if en else "作出声明并查阅评审材料"
    ).click()
    await page.wait_for_load_state()
    documents = page.locator("#scene-documents")
    await documents.get_by_text(scene["address"]).wait_for()
    await documents.get_by_text(f"{scene['lat']}, {scene['lng']}").wait_for()
    await documents.get_by_role("link", name=scene["evidence_links"][0]).wait_for()
    await check(page, shots, f"subject-{language}")
    await page.locator("#give-opinion").click()
    await page.wait_for_load_state()
    await check(page, shots, f"opinion-{language}")
    await page.get_by_label("Pass" if en else "通过", exact=True).check()
    await page.get_by_label("Score (0 to 100)" if en else "评分（0 至 100 分）").fill("88")
    await page.get_by_label("Your reasons" if en else "评审理由").fill(REASONS[language])
    await page.get_by_role("button", name="Check before sending" if en else "核对后提交").click()
    await page.wait_for_load_state()
    await page.locator("#confirm-opinion").wait_for()
    await check(page, shots, f"confirm-{language}")
    await page.get_by_role("button", name="Send my opinion" if en else "提交评审意见").click()
    await page.wait_for_load_state()
    await page.locator("#opinion-given").wait_for()
    assert await page.locator("#my-opinion [data-verdict]").get_attribute("data-verdict") == "pass"
    await page.locator("#my-opinion").get_by_text(REASONS[language]).wait_for()
    await check(page, shots, f"given-{language}")


class TestExpertJourney:
    async def test_sign_in_declare_read_the_scene_and_give_an_opinion(self, client, page, shots):
        authority = await authority_token(client)
        expert = await make_expert(
            client, authority, fields=["retail"], name=f"Dr Lin {uuid.uuid4().hex[:4]}"
        )
        walks = [language for language, _ in LANGUAGES if language != "en"] + ["en"]
        names = {"zh": "绿豆咖啡（科技园店）", "en": "Harbour Canteen"}
        panels = []
        for name in (names[language] for language in walks):
            operator = await make_org(client, "scene_operator", authority=authority)
            scene = await make_scene(client, operator, submit=True, name=f"{name} {uuid.uuid4().hex[:4]}")
            r = await client.post(
                f"/v1/scenes/{scene['id']}/review",
                json={
                    "size": 1,
                    "field": "retail",
                    "exclude_experts": await strangers(client, authority, "retail", [expert.id]),
                },
                headers=bearer(authority),
            )
            assert r.status_code == 201, r.text
            panels.append((scene, r.json()))

        await sign_in(page, expert.username)
        assert page.url.endswith("/expert")
        for language, (scene, panel) in zip(walks, panels, strict=True):
            if language == "en":
                await page.get_by_role("button", name="English").click()
                await page.wait_for_load_state()
            await walk(page, shots, language, scene, panel)
        for _, panel in panels:
            (member,) = (await client.get(f"/v1/reviews/{panel['id']}", headers=bearer(authority))).json()[
                "members"
            ]
            assert (member["conflict_declared"], member["verdict"], member["score"]) == (False, "pass", 88)
