"""Issue 15's walk, as the people would do it, each in a browser of their own (Chromium): the authority
approves a verifier's application; draws a scene's review panel whose two experts declare no conflict and
give their opinions in /expert, then decides; publishes a methodology version after its expert review; moves
the sandbox clock past a CER project's publicity, assigns the verifier it approved, who looks at the records
and a sample and verifies in /verifier; draws the project's panel, files and issues; and finds each step on
the dashboards and in the audit log. The role boundaries hold: a merchant opening /console gets the 403
page, an expert sees only their own panels. Axe on every page visited; with CARBON_SHOTS=1 screenshots at
1280 and 375 px in both languages go to /tmp/shots/journey/.

What the issue does not name is set up over the API: the staff accounts, the experts, the scene's and the
project's owners, their behaviour records, the owner submitting its project, the opinions on the
methodology (the experts' workspace shows a methodology version by its id only). The panels are drawn in
the console with a seed the test chooses so that its own experts are drawn from the worker's whole pool
(the draw is public and reproducible: any seed is a valid input, and the panel page re-runs it)."""

import itertools
import uuid
from datetime import date, timedelta

import pytest

from app.cer import registry as cer_registry
from app.core import clock, db
from app.reviews.draw import draw, rank_key
from app.web import i18n
from tests.factories import bearer, login, make_org
from tests.factories_cer import add_records, create_project, make_owner
from tests.factories_methodologies import create as create_version
from tests.factories_scenes import active_expert_ids, declare, make_expert, make_scene
from tests.web.conftest import SHOTS, SHOTS_WANTED
from tests.web.helpers import LANGUAGES, make_authority_account
from tests.web.test_web_browser import axe_violations, sign_in

FOLDER = "journey"
EXPERT_FIELDS = ["retail", "travel", "verification"]
SCENE_REASON = "证明材料与门店地址相符，自带杯减量的做法适合该类场所，同意认定。"
DECISION_REASON = "两位专家均认为符合场景认定指南，予以认定。"


def zh(msgid: str) -> str:
    """The page's words in Chinese, from the catalogue the server reads (the wording may change)."""
    return i18n.translations("zh_CN").gettext(msgid)


def offset(days: int) -> str:
    return zh("%(days)s days %(hours)s hours %(minutes)s minutes") % {"days": days, "hours": 0, "minutes": 0}


def seed_drawing(candidates: list[str], wanted: list[str]) -> str:
    """A seed whose draw of ``len(wanted)`` from ``candidates`` is exactly ``wanted``: their rank keys come
    before every other candidate's (removing others from the list keeps that true)."""
    others = [c for c in candidates if c not in wanted]
    for n in itertools.count():
        seed = f"journey-{n:07d}"
        worst = max((rank_key(seed, w), w) for w in wanted)
        if all((rank_key(seed, o), o) > worst for o in others):
            assert sorted(draw(seed, candidates, len(wanted))) == sorted(wanted)
            return seed
    raise AssertionError("unreachable")


async def look(tab, name: str, axe: bool = True) -> None:
    """Axe clean (at 1280 px), no sideways scrolling at 1280 px nor at 375 px (the workspaces' own walks
    leave these pages to this one); with CARBON_SHOTS=1 a picture at each width."""
    if axe:
        assert await axe_violations(tab) == [], name
    for width, height in ((1280, 800), (375, 812)):
        await tab.set_viewport_size({"width": width, "height": height})
        for _ in range(20):  # charts follow the new width on their next frames
            overflow = await tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow <= 0:
                break
            await tab.wait_for_timeout(100)
        assert overflow <= 0, f"{name} scrolls sideways at {width} px"
        if SHOTS_WANTED:
            await tab.screenshot(path=str(SHOTS / FOLDER / f"{name}-{width}.png"), full_page=True)
    await tab.set_viewport_size({"width": 1280, "height": 800})


async def go(tab, path: str, name: str | None = None, status: int = 200) -> None:
    assert (await tab.goto(path)).status == status, path
    if name:
        await look(tab, name)


async def click(tab, locator) -> None:
    await locator.click()
    await tab.wait_for_load_state()


class People:
    """Browser contexts of their own (cookies apart), their requests and errors reported like the page's."""

    def __init__(self, browser, live_server, page) -> None:
        self.browser, self.base, self.page = browser, live_server, page
        self.contexts: list = []

    async def open(self, username: str):
        context = await self.browser.new_context(base_url=self.base, viewport={"width": 1280, "height": 800})
        self.contexts.append(context)
        tab = await context.new_page()
        record = self.page.record
        tab.on("request", lambda request: record.requests.append(request.url))
        tab.on(
            "console",
            lambda m: record.console_errors.append(f"{tab.url}: {m.text}") if m.type == "error" else None,
        )
        tab.on("pageerror", lambda exc: record.console_errors.append(f"{tab.url}: {exc}"))
        await sign_in(tab, username)
        return tab

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


async def panel_ids(tab) -> set[str]:
    await tab.goto("/expert")
    return set(await tab.locator("[data-panel]").evaluate_all("cards => cards.map(c => c.dataset.panel)"))


async def give_opinion(
    tab, panel_id: str, subject: str, documents: str, text: str, name: str, again: bool = False
) -> None:
    """An expert opens the panel from their home page, declares no conflict, reads and gives one opinion
    (``again``: the home and declaration pages were checked on an earlier panel)."""
    await go(tab, "/expert")
    await look(tab, f"{name}-home", axe=not again)
    await click(tab, tab.locator(f'[data-panel="{panel_id}"]').get_by_role("link", name=subject))
    assert await tab.locator("#subject-name").inner_text() == subject
    await look(tab, f"{name}-declaration", axe=not again)
    await tab.get_by_label(
        zh(
            "I declare that I have no conflict of interest with this subject or its owner, and I will keep its documents confidential."
        )
    ).check()
    await click(tab, tab.get_by_role("button", name=zh("Make the declaration and open the documents")))
    await tab.locator(documents).wait_for()
    await look(tab, f"{name}-documents")
    await click(tab, tab.locator("#give-opinion"))
    await tab.get_by_label(zh("Pass"), exact=True).check()
    await tab.get_by_label(zh("Score (0 to 100)")).fill("90")
    await tab.get_by_label(zh("Your reasons")).fill(text)
    await click(tab, tab.get_by_role("button", name=zh("Check before sending")))
    await tab.locator("#confirm-opinion").wait_for()
    await click(tab, tab.get_by_role("button", name=zh("Send my opinion")))
    await tab.locator("#opinion-given").wait_for()
    assert await tab.locator("#my-opinion [data-verdict]").get_attribute("data-verdict") == "pass"
    await tab.locator("#my-opinion").get_by_text(text).wait_for()


async def draw_panel(page, client, token: str, field: str, experts: list, form_field: bool) -> str:
    """On a subject's console page: fill the panel form with a seed drawing ``experts``, draw, and check
    on the panel's page that the recorded draw re-runs to the same members. The panel's id."""
    seed = seed_drawing(await active_expert_ids(client, token, field), [e.id for e in experts])
    if form_field:
        await page.get_by_label(zh("Field of expertise")).select_option(field)
    await page.get_by_label(zh("Panel size")).fill(str(len(experts)))
    await page.get_by_label(zh("Seed of the draw")).fill(seed)
    await click(page, page.get_by_role("button", name=zh("Draw the panel")))
    if "/console/panels/" not in page.url:  # a CER project's page says the review is under way
        await click(
            page, page.get_by_role("link", name=zh("Open the panel: the draw, the opinions and the decision"))
        )
    await click(page, page.get_by_role("button", name=zh("Re-run the draw from the record")))
    assert await page.locator("[data-rerun]").get_attribute("data-rerun") == "same"
    members = await page.locator("#members-heading + .table-scroll tbody th").all_inner_texts()
    assert sorted(members) == sorted(e.body["name"] for e in experts)
    return page.url.split("/console/panels/", 1)[1].split("?", 1)[0]


async def decide(page, reason: str, name: str) -> None:
    """On a panel's console page: every opinion is in; the authority records that the subject passes."""
    await page.reload()
    await page.get_by_label(zh("Outcome")).select_option("pass")
    await page.get_by_label(zh("Reason")).fill(reason)
    await click(page, page.get_by_role("button", name=zh("Record the decision")))
    assert await page.locator("h1 .badge").inner_text() == zh("Passed")
    await look(page, name)


async def issued_on(day: date) -> int:
    """The tonnes the dashboards count as issued on ``day`` (before this test's issuance)."""
    async with db.session_scope() as session:
        return sum(d.issued for d in await cer_registry.flow_days(session, day, day))


def number(text: str) -> int:
    return int(text.replace(",", ""))


async def audit_actions(page, subject_id: str, form: bool = False) -> list[str]:
    """The audit log searched by subject id (``form``: typed in the search form, as on the first search):
    the actions found, newest first."""
    if form:
        await page.goto("/console/audit")
        await page.get_by_label(zh("Subject id")).fill(subject_id)
        await click(page, page.get_by_role("button", name=zh("Search")))
    else:
        await page.goto(f"/console/audit?subject_id={subject_id}")
    return await page.locator("#entries tbody tr code.action-code").all_inner_texts()


@pytest.fixture
async def clock_reset():
    """The sandbox clock is the database's: put it back for the next tests on this worker, whatever happens."""
    yield
    async with db.session_scope() as session:
        await clock.reset(session, "test")
    clock.apply_sandbox(timedelta(0))


class TestJourney:
    async def test_the_authority_experts_and_a_verifier_take_every_decision_in_their_browsers(
        self, client, browser, live_server, page, shots, clock_reset
    ):
        page.record.error_status_expected = True  # the 403 and 404 pages of the role boundaries
        (shots / FOLDER).mkdir(exist_ok=True)
        staff = await make_authority_account()
        token = await login(client, staff)
        tag = uuid.uuid4().hex[:4]
        lin, chen = [
            await make_expert(client, token, fields=EXPERT_FIELDS, name=f"{name}（{tag}）")
            for name in ("林晓岚", "陈思远")
        ]
        verifier = await make_org(client, "verifier", approve=False)
        verifier_name = (await client.get(f"/v1/organizations/{verifier.id}", headers=bearer(token))).json()[
            "name"
        ]
        cafe = await make_org(client, "scene_operator", authority=token)
        scene = await make_scene(client, cafe, submit=True, name=f"绿豆咖啡（科技园店）{tag}")
        method = await create_version(client, token, "methodologies", name=f"共享单车骑行 {tag}")
        owner = await make_owner(client, token)
        await add_records(client, owner, [(3, 12.0), (3, 6.5), (2, 4.0)])
        await add_records(client, owner, [(2, 8.0)])  # a second signed batch: 30.5 km, 1.525 t
        project = await create_project(
            client, owner, clock.today() - timedelta(days=5), clock.today() - timedelta(days=1)
        )
        people = People(browser, live_server, page)
        try:
            # -- the authority approves the verifier's application ---------------------------------------
            await sign_in(page, staff)
            assert page.url.endswith("/console")
            await look(page, "console-home")
            await click(page, page.locator('a[href="/console/organizations?status=pending"]'))
            await click(page, page.get_by_role("link", name=verifier_name))
            await page.locator("#f-reason-approve").fill("营业执照、资质证书与统一社会信用代码核对无误。")
            await click(page, page.get_by_role("button", name=zh("Approve")))
            assert await page.locator("h1 .badge").inner_text() == zh("Approved")
            entry = page.locator('tr.audit-entry[data-action="organization.approve"]')
            assert "营业执照、资质证书与统一社会信用代码核对无误。" in await entry.inner_text()
            await look(page, "organization-approved")

            # -- a scene's review: the panel drawn in the console, both experts' opinions in /expert --------
            await go(page, "/console/scenes?queue=applications")
            await click(page, page.get_by_role("link", name=scene["name"]))
            await look(page, "scene-submitted")
            scene_panel = await draw_panel(page, client, token, "retail", [lin, chen], form_field=True)
            await look(page, "scene-panel-drawn")
            experts = {}
            for expert, text in (
                (lin, SCENE_REASON),
                (chen, "门店已提供自带杯优惠的现场照片，材料齐全，建议通过。"),
            ):
                experts[expert.id] = await people.open(expert.username)
                assert experts[expert.id].url.endswith("/expert")
                await give_opinion(
                    experts[expert.id],
                    scene_panel,
                    scene["name"],
                    "#scene-documents",
                    text,
                    f"expert-{expert.id[:4]}",
                )
            await decide(page, DECISION_REASON, "scene-panel-decided")
            await click(page, page.get_by_role("link", name=zh("Back to the subject")))
            assert await page.locator("h1 .badge").inner_text() == zh("Approved")

            # -- a methodology version: submitted, reviewed, published --------------------------------------
            await go(page, f"/console/methodologies/{method['id']}")
            await click(page, page.get_by_role("button", name=zh("Submit for review")))
            method_panel = await draw_panel(page, client, token, "travel", [lin], form_field=True)
            await declare(client, method_panel, lin.headers)
            r = await client.post(
                f"/v1/reviews/{method_panel}/opinions",
                json={"verdict": "pass", "score": 85, "text": "排放因子引用可靠，推导过程清楚。"},
                headers=lin.headers,
            )
            assert r.status_code == 201, r.text
            await decide(page, "因子来源可靠，同意发布。", "methodology-panel-decided")
            await click(page, page.get_by_role("link", name=zh("Back to the subject")))
            await click(page, page.get_by_role("button", name=zh("Publish")))
            assert await page.locator("h1 .badge").inner_text() == zh("Published")
            await look(page, "methodology-published")

            # -- a CER project: its publicity ended by the sandbox clock ------------------------------------
            base = f"/console/cer/{project['id']}"
            await go(page, "/console/cer?stage=publicity", "cer-queue")
            await click(page, page.get_by_role("link", name=project["name"]))
            assert await page.locator("h1 [data-status]").get_attribute("data-status") == "publicity"
            await look(page, "cer-publicity")
            days = (date.fromisoformat(project["publicity_ends_on"]) - clock.today()).days + 1
            await go(page, "/console/clock")
            await page.get_by_label(zh("How far")).fill(str(days))
            await click(page, page.get_by_role("button", name=zh("Move forward"), exact=True))
            assert await page.locator("#clock-offset").inner_text() == offset(days)
            await look(page, "clock-moved")
            await clock.refresh()  # this process too, for the owner's request below
            r = await client.post(f"/v1/cer/projects/{project['id']}/submit", headers=owner.headers)
            assert r.status_code == 200, r.text

            # the verifier the authority approved is assigned
            await go(page, base)
            await page.get_by_label(zh("Third-party verifier")).select_option(verifier.id)
            await click(page, page.get_by_role("button", name=zh("Assign the verifier")))
            assert await page.locator("h1 [data-status]").get_attribute("data-status") == "verification"

            # -- the verifier looks at the records and a sample, and verifies ---------------------------------
            desk = await people.open(verifier.admin_username)
            assert desk.url.endswith("/verifier")
            await look(desk, "verifier-home")
            await click(desk, desk.get_by_role("link", name=project["name"]))
            await click(desk, desk.locator(f'.tabs a[href="/verifier/projects/{project["id"]}/records"]'))
            sent = sorted(r["record_id"] for r in owner.records)
            assert sorted(await desk.locator("#records tbody td:nth-of-type(1)").all_inner_texts()) == sent
            await look(desk, "verifier-records")
            await click(desk, desk.get_by_role("link", name=zh("Sample")))
            await desk.get_by_label(zh("Seed")).fill("2026 年度抽查 1")
            await desk.get_by_label(zh("Number of records")).fill("2")
            await click(desk, desk.get_by_role("button", name=zh("Draw"), exact=True))
            drawn = (
                await client.get(
                    f"/v1/cer/projects/{project['id']}/records/sample",
                    params={"seed": "2026 年度抽查 1", "size": 2},
                    headers=bearer(token),
                )
            ).json()
            shown = await desk.locator("#sample tbody td:nth-of-type(1)").all_inner_texts()
            assert shown == [item["record_id"] for item in drawn["items"]]
            await look(desk, "verifier-sample")
            await click(desk, desk.get_by_role("link", name=zh("Report and verification")))
            await desk.get_by_label(zh("Verified reduction (grams CO₂e)")).fill(str(project["claimed_g"]))
            await desk.get_by_label(zh("Verification statement")).fill(
                "抽查 2 条记录，与签名批次一致，核证减排量与申报一致。"
            )
            await click(desk, desk.get_by_role("button", name=zh("Record the verification")))
            assert await desk.locator("#project-status").get_attribute("data-status") == "verified"
            await look(desk, "verifier-verified")

            # -- the project's expert review, filing and issuance --------------------------------------------
            before = f"/console/dashboards?from={clock.today()}&to={clock.today()}"
            issued_before = await issued_on(clock.today())
            await go(page, base)
            cer_panel = await draw_panel(page, client, token, "verification", [lin], form_field=False)
            await give_opinion(
                experts[lin.id],
                cer_panel,
                project["name"],
                "#cer-documents",
                "核证报告完整，抽样方法可复现，同意签发。",
                "expert-cer",
                again=True,
            )
            # the other expert sees only their own panels, and not this one even by its address
            assert await panel_ids(experts[chen.id]) == {scene_panel}
            await go(experts[chen.id], f"/expert/panels/{cer_panel}", status=404)
            await look(experts[chen.id], "expert-not-theirs")
            assert await panel_ids(experts[lin.id]) == {scene_panel, method_panel, cer_panel}
            await decide(page, "专家组一致同意，予以备案。", "cer-panel-decided")
            await go(page, base)
            await page.get_by_label(zh("Filing decision")).select_option("filed")
            await page.get_by_label(zh("Reason")).fill("核证与专家评审均已通过，准予备案。")
            await click(page, page.get_by_role("button", name=zh("Record the filing decision")))
            await click(page, page.get_by_role("button", name=zh("Issue the certified reductions")))
            assert await page.locator("h1 [data-status]").get_attribute("data-status") == "issued"
            await look(page, "cer-issued")

            # -- each step on the dashboards and in the audit log -----------------------------------------
            await go(page, before, "dashboards-issued")
            issued = page.locator(".dash-totals div", has_text=zh("CER issued (t)")).locator("dd")
            assert number(await issued.inner_text()) == issued_before + 1
            assert await audit_actions(page, project["id"], form=True) == [
                "cer.issued",
                "cer.project_filed",
                "cer.review_opened",
                "cer.project_verified",
                "cer.verifier_assigned",
                "cer.project_submitted",
                "cer.project_created",
            ]
            await look(page, "audit-by-subject")
            assert await audit_actions(page, scene["id"]) == [
                "scene.approved",
                "scene.review_opened",
                "scene.submitted",
                "scene.created",
            ]
            assert await audit_actions(page, scene_panel) == [
                "review.decided",
                *["review.opinion_submitted", "review.no_conflict_declared"] * 2,
                "review.panel_opened",
            ]
            assert await audit_actions(page, method["id"]) == [
                "methodology.publish",
                "methodology.submit",
                "methodology.create",
            ]
            assert await audit_actions(page, verifier.id) == ["organization.approve", "organization.applied"]

            # -- a merchant's session opening the console ---------------------------------------------------
            merchant = await make_org(client, "merchant", authority=token)
            till = await people.open(merchant.admin_username)
            await go(till, "/console", status=403)
            assert await till.locator("h1").inner_text() == zh("Not allowed")
            await look(till, "merchant-403")

            # -- the clock back to the real time ------------------------------------------------------------
            await go(page, "/console/clock")
            await click(page, page.get_by_role("button", name=zh("Reset the clock")))
            assert await page.locator("#clock-offset").inner_text() == offset(0)

            for language, switch in LANGUAGES[1:]:  # the same pages in English (CARBON_SHOTS=1)
                for tab, pages in (
                    (page, {"console-home": "/console", "scene": f"/console/scenes/{scene['id']}", "cer": base,
                            "scene-panel": f"/console/panels/{scene_panel}", "dashboards": before,
                            "audit": f"/console/audit?subject_id={project['id']}"}),
                    (experts[lin.id], {"expert-home": "/expert", "expert-cer": f"/expert/panels/{cer_panel}"}),
                    (desk, {"verifier-project": f"/verifier/projects/{project['id']}",
                            "verifier-sample": f"/verifier/projects/{project['id']}/sample?seed=2026&size=2"}),
                ):  # fmt: skip
                    await click(tab, tab.get_by_role("button", name=switch))
                    for name, path in pages.items():
                        await go(tab, path, f"{name}-{language}")
        finally:
            await people.close()
