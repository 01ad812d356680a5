"""The authority's console in a real browser: accessibility (axe) and the layouts at 375 px and 1280 px in
both languages (/tmp/shots/console2/), with a subject of each kind: an organisation's application, a scene,
its panel, methodology and exchange-rule versions, an expert. The decisions themselves are taken in
test_journey_browser.py, which checks its pages in Chinese (axe, no sideways scrolling at either width): here
those pages are checked in English only (CARBON_SHOTS=1 or CARBON_BROWSER_LANGUAGES=all)."""

from tests.factories import bearer, make_org
from tests.web.helpers import LANGUAGES, make_authority_account
from tests.web.test_web_browser import axe_violations, sign_in

# the pages test_journey_browser.py checks in Chinese
JOURNEY = {"home", "decision", "scene", "panel", "methodology", "cer"}
ENGLISH = any(language == "en" for language, _ in LANGUAGES)


async def subjects(client, authority: str) -> dict[str, str]:
    """One subject of each kind the console decides on, at the step a civil servant sees most: pages by name."""
    from tests.factories_methodologies import create, rule_years
    from tests.factories_points import ensure_rule
    from tests.factories_scenes import approved_scene, ensure_experts

    # the shipped exchange rule (v1) first: were the draft below v1, the catalogue would never be loaded on
    # this worker and every later test's records would find no rule in force (out_of_effective_period)
    await ensure_rule()
    await ensure_experts(client, authority, "retail", 1)
    pages = {}
    if ENGLISH:  # in Chinese these are the journey's
        scene = await approved_scene(
            client, authority, await make_org(client, "scene_operator", authority=authority)
        )
        method = await create(client, authority, "methodologies")
        r = await client.post(f"/v1/methodologies/{method['id']}/submit", headers=bearer(authority))
        assert r.status_code == 200, r.text
        pages = {
            "scene": f"/console/scenes/{scene['id']}",
            "panel": f"/console/panels/{scene['review_panel_id']}?check=1",
            "methodology": f"/console/methodologies/{method['id']}",
        }
    rule = await create(
        client, authority, "exchange-rules", effective_from=f"{rule_years()}-01-01T00:00:00+08:00"
    )
    expert = (await client.get("/v1/experts?field=retail", headers=bearer(authority))).json()["items"][0]
    person = await _person_with_points(client, authority)
    return {
        **pages,
        "person": f"/console/people/{person}",
        "rule": f"/console/exchange-rules/{rule['id']}",
        "rule-form": "/console/exchange-rules/new",
        "expert": f"/console/experts/{expert['id']}",
    }


async def _person_with_points(client, authority: str) -> str:
    """A person with an earning, an order and a clawback on the ledger, and their behaviours: the account id."""
    from tests.factories import make_operator
    from tests.factories_mall import Person, fund, make_item, make_merchant, place
    from tests.factories_points import enrol, make_methodology, user_headers

    op = await make_operator(client, authority)
    u = await enrol(client, op)
    person = Person(
        u["external_user_id"], u["user_id"], await user_headers(client, op, u["external_user_id"]), op
    )
    await fund(client, op, await make_methodology(factor="1000"), [person], 200)
    item = await make_item(client, await make_merchant(client, authority), points_price=50)
    assert (await place(client, person, item["id"])).status_code == 201
    r = await client.post(
        f"/v1/points/accounts/{person.user_id}/clawback",
        json={"points": 10, "reason": "a ride reported twice"},
        headers=bearer(authority),
    )
    assert r.status_code == 200, r.text
    return person.user_id


async def check(page, shots, name: str) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} scrolls sideways"
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
                    if language == "zh" and name in JOURNEY:
                        continue
                    assert (await page.goto(path)).status == 200, name
                    await check(page, shots, f"{name}-{language}-{width}")
                await page.goto("/console/clawback")
                await page.locator("form[action='/console/clawback/preview'] button").click()
                await page.wait_for_load_state()
                await check(page, shots, f"clawback-errors-{language}-{width}")
