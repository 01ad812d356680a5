"""The authority's console in a real browser: accessibility (axe) and the layouts at 375 px and 1280 px in
both languages (/tmp/shots/console2/), with a subject of each kind: an organisation's application, a scene,
its panel, methodology and exchange-rule versions, an expert. The decisions themselves are taken in
test_journey_browser.py (which runs axe at 1280 px on the pages it visits: here they are checked at 375 px)."""

from tests.factories import bearer, make_org
from tests.web.helpers import LANGUAGES, make_authority_account
from tests.web.test_web_browser import axe_violations, sign_in

# pages whose decisions the journey takes in Chinese at 1280 px, axe included
JOURNEY = {"home", "decision", "scene", "panel", "methodology"}


async def subjects(client, authority: str) -> dict[str, str]:
    """One subject of each kind the console decides on, at the step a civil servant sees most: pages by name."""
    from tests.factories_methodologies import create, rule_years
    from tests.factories_points import ensure_rule
    from tests.factories_scenes import approved_scene, ensure_experts

    # the shipped exchange rule (v1) first: were the draft below v1, the catalogue would never be loaded on
    # this worker and every later test's records would find no rule in force (out_of_effective_period)
    await ensure_rule()
    scene_operator = await make_org(client, "scene_operator", authority=authority)
    await ensure_experts(client, authority, "retail", 1)
    scene = await approved_scene(client, authority, scene_operator)
    method = await create(client, authority, "methodologies")
    r = await client.post(f"/v1/methodologies/{method['id']}/submit", headers=bearer(authority))
    assert r.status_code == 200, r.text
    rule = await create(
        client, authority, "exchange-rules", effective_from=f"{rule_years()}-01-01T00:00:00+08:00"
    )
    expert = (await client.get("/v1/experts?field=retail", headers=bearer(authority))).json()["items"][0]
    return {
        "scene": f"/console/scenes/{scene['id']}",
        "panel": f"/console/panels/{scene['review_panel_id']}?check=1",
        "methodology": f"/console/methodologies/{method['id']}",
        "rule": f"/console/exchange-rules/{rule['id']}",
        "rule-form": "/console/exchange-rules/new",
        "expert": f"/console/experts/{expert['id']}",
    }


async def check(page, shots, name: str, axe: bool = True) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways"
    if axe:
        assert await axe_violations(page) == [], name
    (shots / "console2").mkdir(exist_ok=True)
    await page.screenshot(path=str(shots / "console2" / f"{name}.png"), full_page=True)


class TestConsole:
    async def test_every_page_in_both_languages(self, client, authority, page, shots):
        page.record.error_status_expected = True  # the clawback form's errors answer 400
        org = await make_org(client, "verifier", approve=False)
        more = await subjects(client, authority)
        await sign_in(page, await make_authority_account())
        assert page.url.endswith("/console")
        pages = {
            "home": "/console",
            "queue": "/console/organizations?status=pending",
            "decision": f"/console/organizations/{org.id}",
            "methodologies": "/console/methodologies?status=published",
            "cer": "/console/cer",
            "prices": "/console/prices",
            "experts": "/console/experts",
            **more,
        }
        for language, switch in LANGUAGES:
            if switch:
                await page.get_by_role("button", name=switch).click()
                await page.wait_for_load_state()
            for width, height in ((375, 812), (1280, 800)):
                await page.set_viewport_size({"width": width, "height": height})
                for name, path in pages.items():
                    assert (await page.goto(path)).status == 200, name
                    journey = language == "zh" and width == 1280 and name in JOURNEY
                    await check(page, shots, f"{name}-{language}-{width}", axe=not journey)
                await page.goto("/console/clawback")
                await page.locator("form[action='/console/clawback/preview'] button").click()
                await page.wait_for_load_state()
                await check(page, shots, f"clawback-errors-{language}-{width}")
