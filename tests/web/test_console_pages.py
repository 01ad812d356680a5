"""The authority's console (/console) over HTTP: queues, decisions with their audit entries, refusals, roles."""

import re
import uuid
from datetime import timedelta
from html import unescape

import pytest

from app.core import clock
from tests.factories import make_org
from tests.web.helpers import HTML, csrf_token, make_authority_account, sign_in


@pytest.fixture
async def console(browser_client):
    browser_client.username = await make_authority_account()
    r = await sign_in(browser_client, browser_client.username)
    assert r.status_code == 303 and r.headers["location"] == "/console"
    return browser_client


async def after_publicity(console, project: dict) -> None:
    """The platform's clock past the publicity; the console's session has lapsed meanwhile: sign in again."""
    from tests.factories_cer import after_publicity

    after_publicity(project)
    r = await sign_in(console, console.username)
    assert r.status_code == 303


async def post(client, path: str, data: dict, page: str | None = None):
    token = csrf_token((await client.get(page or path, headers=HTML)).text)
    return await client.post(path, data={"csrf_token": token, **data}, headers=HTML)


def error_of(html: str, field: str) -> str:
    marker = f'id="f-{field}-error">'
    assert marker in html, f"no error beside {field}"
    return unescape(html.split(marker, 1)[1].split("<", 1)[0])


def count_of(html: str, href: str) -> int:
    match = re.search(rf'<a href="{re.escape(href)}"><span class="queue-count[^"]*">([\d,]+)</span>', html)
    assert match, href
    return int(match.group(1).replace(",", ""))


class TestRoles:
    async def test_anonymous_is_sent_to_sign_in(self, browser_client):
        for path in ("/console", "/console/organizations", "/console/cer", "/console/prices"):
            r = await browser_client.get(path, headers=HTML)
            assert r.status_code == 303 and r.headers["location"].startswith("/sign-in?next=")

    async def test_a_merchant_gets_the_403_page(self, client, browser_client):
        org = await make_org(client, "merchant")
        await sign_in(browser_client, org.admin_username)
        for path in ("/console", "/console/organizations", "/console/experts/new"):
            r = await browser_client.get(path, headers=HTML)
            assert r.status_code == 403 and "text/html" in r.headers["content-type"]
        r = await browser_client.post(f"/console/organizations/{org.id}/approve", data={}, headers=HTML)
        assert r.status_code == 403


class TestOrganizations:
    async def test_approve_shows_the_decision_and_its_audit_entry(self, client, console):
        home = (await console.get("/console", headers=HTML)).text
        before = count_of(home, "/console/organizations?status=pending")
        org = await make_org(client, "verifier", approve=False)
        home = (await console.get("/console", headers=HTML)).text
        assert count_of(home, "/console/organizations?status=pending") == before + 1
        listing = await console.get("/console/organizations?status=pending", headers=HTML)
        assert f"/console/organizations/{org.id}" in listing.text
        page = f"/console/organizations/{org.id}"
        r = await post(console, f"{page}/approve", {"reason": "Documents in order"}, page)
        assert r.status_code == 303 and r.headers["location"] == page
        shown = (await console.get(page, headers=HTML)).text
        assert 'badge--good">已批准' in shown
        assert 'data-action="organization.approve"' in shown and "Documents in order" in shown
        # Who acted, in words: the applicant who was not signed in, the authority's account by its name.
        assert '申请人（未登录） <span class="muted actor-id">public</span>' in shown
        assert f'{console.username} <span class="muted actor-id">authority:' in shown

    async def test_reject_needs_a_reason_and_suspend_needs_approval(self, client, console):
        org = await make_org(client, "buyer", approve=False)
        page = f"/console/organizations/{org.id}"
        r = await post(console, f"{page}/reject", {"reason": "  "}, page)
        assert r.status_code == 400
        assert "理由" in error_of(r.text, "reason-reject")
        r = await post(console, f"{page}/suspend", {"reason": "fraud"}, page)
        assert r.status_code == 409 and 'class="alert alert--error"' in r.text
        r = await post(console, f"{page}/reject", {"reason": "Credit code does not match"}, page)
        assert r.status_code == 303
        assert "Credit code does not match" in (await console.get(page, headers=HTML)).text

    async def test_an_unknown_organisation_is_404(self, console):
        r = await console.get(f"/console/organizations/{uuid.uuid4()}", headers=HTML)
        assert r.status_code == 404


class TestMethodologies:
    async def test_draft_submit_publish(self, console):
        code = f"console-{uuid.uuid4().hex[:8]}"
        form = {
            "code": code,
            "name": "Console walk",
            "behaviour_type": f"walk_{uuid.uuid4().hex[:6]}",
            "category": "travel",
            "unit": "km",
            "net_factor_g": "12.5",
            "max_quantity_per_record": "50",
            "effective_from": "2026-01-01T00:00",
        }
        r = await post(console, "/console/methodologies/new", {**form, "net_factor_g": "twelve", "code": ""})
        assert r.status_code == 400
        assert error_of(r.text, "code") and error_of(r.text, "net_factor_g")
        r = await post(console, "/console/methodologies/new", form)
        assert r.status_code == 303
        page = r.headers["location"]
        r = await post(console, f"{page}/publish", {}, page)
        assert r.status_code == 409 and "alert--error" in r.text
        assert (await post(console, f"{page}/submit", {}, page)).status_code == 303
        r = await post(console, f"{page}/publish", {}, page)
        assert r.status_code == 409 and "专家评审尚未通过" in r.text
        r = await post(console, f"{page}/review", {"field": "", "size": "3"}, page)
        assert r.status_code == 400 and error_of(r.text, "field")
        shown = (await console.get(page, headers=HTML)).text
        assert 'data-action="methodology.submit"' in shown and "审核中" in shown


@pytest.fixture(scope="module")
async def scene_types(app, tmp_path_factory):
    from tests.factories_scenes import publish_scene_types

    await publish_scene_types(tmp_path_factory.mktemp("console-scene-types"))


class TestWordsNotCodes:
    async def test_a_behaviour_type_reads_as_a_word_with_its_code(self, console):
        form = {
            "code": f"console-{uuid.uuid4().hex[:8]}",
            "name": "Console cycling",
            "behaviour_type": "cycling",
            "category": "travel",
            "unit": "km",
            "net_factor_g": "80",
            "max_quantity_per_record": "30",
            "effective_from": "2027-01-01T00:00",
        }
        r = await post(console, "/console/methodologies/new", form)
        assert r.status_code == 303
        listing = (await console.get("/console/methodologies?status=draft", headers=HTML)).text
        assert '<td data-label="行为类型">骑行 <code class="muted">cycling</code></td>' in listing
        shown = (await console.get(r.headers["location"], headers=HTML)).text
        assert "<dd>骑行 (cycling)</dd>" in shown
        console.cookies.set("lang", "en")
        listing = (await console.get("/console/methodologies?status=draft", headers=HTML)).text
        assert '<td data-label="Behaviour type">Cycling <code class="muted">cycling</code></td>' in listing


class TestScenePanels:
    async def test_open_a_panel_rerun_the_draw_and_refuse_an_early_decision(
        self, client, console, authority, scene_types
    ):
        from tests.factories_scenes import ensure_experts, make_scene

        operator = await make_org(client, "scene_operator")
        scene = await make_scene(client, operator, submit=True)
        await ensure_experts(client, authority, "retail", 2)
        page = f"/console/scenes/{scene['id']}"
        listing = (await console.get("/console/scenes?queue=applications", headers=HTML)).text
        assert scene["name"] in listing
        assert '<td data-label="区">南山区</td>' in listing  # the district by its name, not 440305
        r = await post(console, f"{page}/review", {"field": "retail", "size": "0", "seed": "short"}, page)
        assert r.status_code == 400
        assert error_of(r.text, "size") and error_of(r.text, "seed")
        r = await post(console, f"{page}/review", {"field": "retail", "size": "500"}, page)
        assert r.status_code == 400
        r = await post(console, f"{page}/review", {"field": "retail", "size": "25"}, page)
        assert r.status_code == 409 and "专家不足" in r.text
        r = await post(
            console, f"{page}/review", {"field": "retail", "size": "2", "seed": "console-seed-1"}, page
        )
        assert r.status_code == 303
        panel = r.headers["location"]
        shown = (await console.get(panel, headers=HTML)).text
        assert "console-seed-1" in shown and "hmac-sha256-rank/v1" in shown
        assert f"场景认定申请 · {scene['id']}" in shown and f" · {console.username}</dd>" in shown
        checked = (await console.get(panel.replace("?", "?check=1&"), headers=HTML)).text
        assert 'data-rerun="same"' in checked
        panel_path = panel.split("?")[0]
        r = await post(console, f"{panel_path}/decision", {"outcome": "pass", "reason": "ok"}, panel_path)
        assert r.status_code == 409 and "尚未全部提交" in r.text
        r = await post(console, f"{panel_path}/decision", {"outcome": "maybe", "reason": ""}, panel_path)
        assert r.status_code == 400 and error_of(r.text, "outcome") and error_of(r.text, "reason")
        assert 'data-action="scene.review_opened"' in (await console.get(page, headers=HTML)).text


class TestExperts:
    async def test_add_edit_and_deactivate(self, console):
        username = f"exp-{uuid.uuid4().hex[:8]}"
        body = {
            "name": "王工",
            "fields": ["retail", "waste"],
            "affiliation": "深圳大学",
            "username": username,
        }
        r = await post(console, "/console/experts/new", {**body, "password": "short"})
        assert r.status_code == 400 and error_of(r.text, "password")
        r = await post(console, "/console/experts/new", {**body, "fields": [], "password": "a-long-password"})
        assert r.status_code == 400 and error_of(r.text, "fields")
        r = await post(console, "/console/experts/new", {**body, "password": "a-long-password"})
        assert r.status_code == 303
        page = r.headers["location"]
        r = await post(
            console, page, {"name": "王工", "fields": ["retail"], "affiliation": "南方科技大学"}, page
        )
        assert r.status_code == 303
        r = await post(console, f"{page}/active", {"active": "false"}, page)
        assert r.status_code == 303
        shown = (await console.get(page, headers=HTML)).text
        assert "南方科技大学" in shown and "已停用" in shown
        assert shown.count('data-action="expert.updated"') == 2 and 'data-action="expert.created"' in shown
        r = await post(console, "/console/experts/new", {**body, "password": "a-long-password"})
        assert r.status_code == 409 and "该用户名已被使用" in error_of(r.text, "username")


class TestPricesAndClawback:
    async def test_a_price_on_a_weekend_is_refused_beside_its_field(self, console):
        r = await post(console, "/console/prices", {"day": "2026-11-28", "price": "78.45"})
        assert r.status_code == 422 and "周末" in error_of(r.text, "day")
        r = await post(console, "/console/prices", {"day": "2026-11-27", "price": "abc"})
        assert r.status_code == 400 and error_of(r.text, "price")
        r = await post(console, "/console/prices", {"day": "2026-11-27", "price": "78.45"})
        assert r.status_code == 303
        shown = (await console.get("/console/prices", headers=HTML)).text
        assert "¥78.45" in shown and 'data-action="cer.price_recorded"' in shown

    async def test_points_clawback_of_an_unknown_account(self, console):
        data = {"user_id": str(uuid.uuid4()), "points": "10", "reason": "fraud"}
        r = await post(console, "/console/clawback/preview", data, "/console/clawback")
        assert r.status_code == 404 and "没有该编号的积分账户" in error_of(r.text, "user_id")
        r = await post(
            console, "/console/clawback/preview", {**data, "points": "0", "user_id": "x"}, "/console/clawback"
        )
        assert r.status_code == 400 and error_of(r.text, "points") and error_of(r.text, "user_id")
        r = await post(console, "/console/clawback", data, "/console/clawback")
        assert r.status_code == 404 and "alert--error" in r.text


def text_of(html: str) -> str:
    """The page's text, tags dropped and spaces folded, to assert what a reader sees."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def actions_of(html: str) -> list[str]:
    """The audit record's actions, newest first, as the subject's page lists them."""
    return re.findall(r'<tr class="audit-entry" data-action="([^"]+)">', html)


async def org_name(client, authority: str, org) -> str:
    from tests.factories import bearer

    r = await client.get(f"/v1/organizations/{org.id}", headers=bearer(authority))
    assert r.status_code == 200, r.text
    return r.json()["name"]


@pytest.fixture
def clock_back():
    """The CER tests move the clock past publicity periods; put it back after each."""
    yield
    clock.set_offset(timedelta(0))


@pytest.mark.usefixtures("clock_back")
class TestCerProjects:
    async def test_publicity_verifier_and_the_expert_review(self, client, console, authority):
        from tests.factories_cer import add_records, create_project, make_owner, verifier
        from tests.factories_scenes import ensure_experts

        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 20.0), (2, 20.0)])
        today = clock.today()
        project = await create_project(client, owner, today - timedelta(days=5), today - timedelta(days=1))
        page = f"/console/cer/{project['id']}"
        listing = (await console.get("/console/cer?stage=publicity", headers=HTML)).text
        assert f'href="{page}">{project["name"]}</a>' in listing
        shown = text_of((await console.get(page, headers=HTML)).text)
        assert "申报减排量 2.000 吨" in shown and "项目公示至" in shown
        checker = await verifier(client, authority)
        r = await post(console, f"{page}/verifier", {"verifier_org_id": checker.id}, page)
        assert r.status_code == 409 and "项目当前不在此环节" in r.text

        await after_publicity(console, project)
        r = await client.post(f"/v1/cer/projects/{project['id']}/submit", headers=owner.headers)
        assert r.status_code == 200, r.text
        r = await post(console, f"{page}/verifier", {"verifier_org_id": ""}, page)
        assert r.status_code == 400 and error_of(r.text, "verifier_org_id") == "请选择核查机构。"
        r = await post(console, f"{page}/verifier", {"verifier_org_id": owner.org.id}, page)
        assert r.status_code == 422 and "该机构不是已批准的核查机构" in r.text
        r = await post(console, f"{page}/verifier", {"verifier_org_id": checker.id}, page)
        assert r.status_code == 303 and r.headers["location"] == page
        shown = (await console.get(page, headers=HTML)).text
        assert await org_name(client, authority, checker) in shown and "核查中" in shown
        assert actions_of(shown)[0] == "cer.verifier_assigned"

        r = await client.post(
            f"/v1/cer/projects/{project['id']}/verification",
            json={"verified_g": 2_000_000, "statement": "Forty km checked against the signed batches."},
            headers=checker.headers,
        )
        assert r.status_code == 200, r.text
        shown = (await console.get(page, headers=HTML)).text
        assert "Forty km checked against the signed batches." in shown
        r = await post(console, f"{page}/review", {"size": "0", "quorum": "2", "seed": "x"}, page)
        assert r.status_code == 400
        assert error_of(r.text, "size") and error_of(r.text, "seed")
        r = await post(console, f"{page}/review", {"size": "25"}, page)
        assert r.status_code == 409 and "专家不足" in r.text
        await ensure_experts(client, authority, "verification", 1)
        r = await post(console, f"{page}/review", {"size": "1", "seed": "cer-console-seed"}, page)
        assert r.status_code == 303 and r.headers["location"] == page
        shown = (await console.get(page, headers=HTML)).text
        assert "专家评审中" in shown and "0 / 1" not in shown
        link = re.search(r'href="(/console/panels/[0-9a-f-]{36})"', shown)
        assert link
        panel = (await console.get(link.group(1), headers=HTML)).text
        assert "cer-console-seed" in panel and f'<a href="{page}">' in panel
        assert actions_of(shown)[:3] == ["cer.review_opened", "cer.project_verified", "cer.verifier_assigned"]
        r = await post(console, f"{page}/review", {"size": "1"}, page)
        assert r.status_code == 409 and "项目当前不在此环节" in r.text

    async def test_filing_and_issuance(self, client, console, authority):
        from tests.factories_cer import add_records, create_project, make_owner, review, to_verified

        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 50.0), (2, 20.0)])  # 70 km: 3.5 t
        today = clock.today()
        project = await create_project(client, owner, today - timedelta(days=5), today - timedelta(days=1))
        await to_verified(client, authority, owner, project)
        await sign_in(console, console.username)
        await review(client, authority, project["id"])
        page = f"/console/cer/{project['id']}"
        r = await post(console, f"{page}/issue", {}, page)
        assert r.status_code == 409 and "项目尚未备案，不能签发。" in r.text
        r = await post(console, f"{page}/filing", {"outcome": "maybe", "reason": " "}, page)
        assert r.status_code == 400
        assert error_of(r.text, "outcome") and error_of(r.text, "reason")
        r = await post(console, f"{page}/filing", {"outcome": "filed", "reason": "材料齐全，予以备案"}, page)
        assert r.status_code == 303 and r.headers["location"] == page
        shown = (await console.get(page, headers=HTML)).text
        assert "材料齐全，予以备案" in shown and actions_of(shown)[0] == "cer.project_filed"
        r = await post(console, f"{page}/filing", {"outcome": "rejected", "reason": "again"}, page)
        assert r.status_code == 409 and "项目当前不在此环节" in r.text
        r = await post(console, f"{page}/issue", {}, page)
        assert r.status_code == 303 and r.headers["location"] == page
        shown = (await console.get(page, headers=HTML)).text
        assert "已签发" in shown and actions_of(shown)[0] == "cer.issued"
        assert "已签发 3 吨" in text_of(shown)
        r = await post(console, f"{page}/issue", {}, page)
        assert r.status_code == 409 and "项目当前不在此环节" in r.text

    async def test_a_rejected_filing_and_an_unknown_project(self, client, console, authority):
        from tests.factories_cer import add_records, create_project, make_owner, review, to_verified

        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 20.0)])
        today = clock.today()
        project = await create_project(client, owner, today - timedelta(days=5), today - timedelta(days=1))
        await to_verified(client, authority, owner, project)
        await sign_in(console, console.username)
        await review(client, authority, project["id"])
        page = f"/console/cer/{project['id']}"
        r = await post(console, f"{page}/filing", {"outcome": "rejected", "reason": "基线数据不可靠"}, page)
        assert r.status_code == 303
        shown = (await console.get(page, headers=HTML)).text
        assert "基线数据不可靠" in shown and actions_of(shown)[0] == "cer.project_rejected"
        assert "/filing" not in shown and "/issue" not in shown
        r = await console.get(f"/console/cer/{uuid.uuid4()}", headers=HTML)
        assert r.status_code == 404


@pytest.mark.usefixtures("clock_back")
class TestCerClawback:
    async def test_reason_preview_confirm_result(self, client, console, authority):
        from tests.factories_cer import account, add_records, create_project, make_owner, to_issued

        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 100.0), (2, 25.0)])  # 125 km: 6.25 t
        today = clock.today()
        project = await create_project(client, owner, today - timedelta(days=5), today - timedelta(days=1))
        issuance = await to_issued(client, authority, owner, project)
        assert issuance["tonnes"] == 6
        await sign_in(console, console.username)
        buyer = await make_org(client, "buyer", authority=authority)
        r = await client.post(
            "/v1/cer/transfers", json={"to_org_id": buyer.id, "tonnes": 4}, headers=owner.headers
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/v1/cer/retirements",
            json={
                "tonnes": 1,
                "beneficiary": {"kind": "organization", "name": "Green Co"},
                "purpose": "2026",
            },
            headers=buyer.headers,
        )
        assert r.status_code == 201, r.text
        held = {b["serial"]: b["tonnes"] for b in (await account(client, owner.headers))["blocks"]}
        held_by_buyer = {
            b["serial"]: b["tonnes"]
            for b in (await account(client, buyer.headers))["blocks"]
            if b["status"] == "held"
        }
        page = f"/console/cer/{project['id']}"
        form = f"{page}/clawback"
        r = await post(console, f"{form}/preview", {"reason": "  "}, form)
        assert r.status_code == 400 and "理由" in error_of(r.text, "reason")
        r = await post(console, form, {"reason": ""}, form)
        assert r.status_code == 400 and "理由" in error_of(r.text, "reason")
        r = await post(console, f"{form}/preview", {"reason": "核查报告数据造假"}, form)
        assert r.status_code == 200
        shown = text_of(r.text)
        assert "撤销的减排量（仍被持有） 5 吨" in shown
        assert "标记为欺诈的已注销减排量 1 吨" in shown
        assert "没收的结转余量 250 千克" in shown
        rows = re.findall(
            r'<tr><th scope="row" data-label="持有方">([^<]+)</th><td data-label="序列号"><code>([^<]+)</code></td>'
            r'<td data-label="吨">([\d,]+)</td></tr>',
            r.text,
        )
        assert sorted(rows) == sorted(
            [(await org_name(client, authority, owner.org), s, str(t)) for s, t in held.items()]
            + [(await org_name(client, authority, buyer), s, str(t)) for s, t in held_by_buyer.items()]
        )
        assert (await client.get(f"/v1/public/cer/projects/{project['id']}")).json()["status"] == "issued"
        r = await post(console, form, {"reason": "核查报告数据造假"}, form)
        assert r.status_code == 303 and r.headers["location"] == page
        shown = (await console.get(page, headers=HTML)).text
        assert actions_of(shown)[0] == "cer.clawback" and "冻结" in shown
        result = text_of(shown)
        serials = ", ".join(sorted([*held, *held_by_buyer]))
        assert f"已撤销的减排量 5 吨 已撤销的序列号 {serials} 标记为欺诈的已注销减排量 1 吨" in result
        assert "没收的结转余量 250 千克 理由 核查报告数据造假" in result
        assert f"{form}" not in shown
        assert (await account(client, buyer.headers))["held_tonnes"] == 0
        r = await console.get(form, headers=HTML)
        assert r.status_code == 303 and r.headers["location"] == page
        r = await post(console, form, {"reason": "again"}, page)
        assert r.status_code == 409 and "项目当前不在此环节" in r.text


class TestExchangeRules:
    async def test_draft_submit_publish_retire(self, console):
        from tests.factories_methodologies import rule_years

        year = rule_years()
        form = {
            "name": "2050 年兑换规则",
            "points_per_gram": "0.1",
            "daily_cap_points": "200",
            "lot_lifetime_days": "730",
            "effective_from": f"{year}-01-01T00:00",
            "effective_to": f"{year + 1}-01-01T00:00",
        }
        bad = {
            **form,
            "name": "",
            "points_per_gram": "a tenth",
            "daily_cap_points": "-5",
            "lot_lifetime_days": "",
            "effective_from": "next year",
        }
        r = await post(console, "/console/exchange-rules/new", bad)
        assert r.status_code == 400
        for name in ("name", "points_per_gram", "lot_lifetime_days", "effective_from"):
            assert error_of(r.text, name), name
        assert 'value="a tenth"' in r.text
        r = await post(console, "/console/exchange-rules/new", {**form, "lot_lifetime_days": "4000"})
        assert r.status_code == 400 and "3,650" in error_of(r.text, "lot_lifetime_days")
        r = await post(console, "/console/exchange-rules/new", {**form, "daily_cap_points": "-5"})
        assert r.status_code == 400 and error_of(r.text, "daily_cap_points")
        r = await post(console, "/console/exchange-rules/new", form)
        assert r.status_code == 303
        page = r.headers["location"]
        assert re.fullmatch(r"/console/exchange-rules/[0-9a-f-]{36}", page)
        shown = (await console.get(page, headers=HTML)).text
        assert "草稿" in shown and "730" in shown
        r = await post(console, f"{page}/publish", {}, page)
        assert r.status_code == 409 and "alert--error" in r.text
        r = await post(console, f"{page}/approve", {}, page)
        assert r.status_code == 404
        assert (await post(console, f"{page}/submit", {}, page)).status_code == 303
        r = await post(console, f"{page}/retire", {}, page)
        assert r.status_code == 409
        assert (await post(console, f"{page}/publish", {}, page)).status_code == 303
        listing = (await console.get("/console/exchange-rules?status=published", headers=HTML)).text
        assert f'href="{page}"' in listing

        r = await post(console, "/console/exchange-rules/new", {**form, "name": "重叠的版本"})
        second = r.headers["location"]
        assert (await post(console, f"{second}/submit", {}, second)).status_code == 303
        r = await post(console, f"{second}/publish", {}, second)
        assert r.status_code == 409 and "有效期与另一已发布版本重叠" in r.text

        assert (await post(console, f"{page}/retire", {}, page)).status_code == 303
        shown = (await console.get(page, headers=HTML)).text
        assert 'badge--neutral">已废止<' in shown  # a retired version: 废止, not a CER unit's 注销
        assert actions_of(shown)[:4] == [
            "exchange_rule.retire",
            "exchange_rule.publish",
            "exchange_rule.submit",
            "exchange_rule.create",
        ]


class TestSceneDecisions:
    async def test_suspend_reinstate_revoke_an_approved_scene(self, client, console, authority, scene_types):
        from tests.factories_scenes import approved_scene

        operator = await make_org(client, "scene_operator")
        scene = await approved_scene(client, authority, operator)
        page = f"/console/scenes/{scene['id']}"
        shown = (await console.get(page, headers=HTML)).text
        assert f'action="{page}/suspend"' in shown and f'action="{page}/revoke"' in shown
        assert f'action="{page}/reinstate"' not in shown
        r = await post(console, f"{page}/suspend", {"reason": " "}, page)
        assert r.status_code == 400 and "理由" in error_of(r.text, "reason-suspend")
        r = await post(console, f"{page}/reinstate", {"reason": "整改完成"}, page)
        assert r.status_code == 409 and "当前状态下无法办理。" in r.text
        r = await post(console, f"{page}/approve", {"reason": "x"}, page)
        assert r.status_code == 404
        r = await post(console, f"{page}/suspend", {"reason": "现场核查发现未按要求记录"}, page)
        assert r.status_code == 303 and r.headers["location"] == page
        shown = (await console.get(page, headers=HTML)).text
        assert "现场核查发现未按要求记录" in shown and actions_of(shown)[0] == "scene.suspend"
        assert f'action="{page}/reinstate"' in shown and f'action="{page}/suspend"' not in shown
        r = await client.get(f"/v1/scenes/{scene['id']}", headers=operator.headers)
        assert r.json()["status"] == "suspended"
        r = await post(console, f"{page}/reinstate", {"reason": "整改完成"}, page)
        assert r.status_code == 303
        r = await post(console, f"{page}/revoke", {"reason": "多次违规，撤销认定"}, page)
        assert r.status_code == 303
        shown = (await console.get(page, headers=HTML)).text
        assert actions_of(shown)[:3] == ["scene.revoke", "scene.reinstate", "scene.suspend"]
        assert "/revoke" not in shown and "/suspend" not in shown and "/reinstate" not in shown
        r = await post(console, f"{page}/revoke", {"reason": "again"}, page)
        assert r.status_code == 409


class TestLayout:
    async def test_standing_counts_are_not_amber_and_methodology_panels_name_their_field(self, console):
        home = (await console.get("/console", headers=HTML)).text
        approved = re.search(
            r'<a href="/console/organizations\?status=approved"><span class="([^"]+)">', home
        )
        assert approved and approved.group(1) == "queue-count"
        code = f"console-{uuid.uuid4().hex[:8]}"
        form = {
            "code": code,
            "name": "Console bus",
            "behaviour_type": f"bus_{uuid.uuid4().hex[:6]}",
            "category": "travel",
            "unit": "km",
            "net_factor_g": "30",
            "max_quantity_per_record": "80",
            "effective_from": "2026-01-01T00:00",
        }
        page = (await post(console, "/console/methodologies/new", form)).headers["location"]
        await post(console, f"{page}/submit", {}, page)
        shown = (await console.get(page, headers=HTML)).text
        assert 'action="' + page + '/review"' in shown
        assert "按场景类别" not in shown and '<option value="">' not in shown
        assert 'class="action-code">methodology.<wbr>submit</code>' in shown


class TestPerson:
    async def test_the_authority_reviews_an_account_then_claws_back(self, client, console, monkeypatch):
        from app.console import pages as console_pages
        from tests.factories import make_operator
        from tests.factories_mall import Person, fund
        from tests.factories_points import enrol, ensure_rule, make_methodology, user_headers

        await ensure_rule()
        op = await make_operator(client)
        u = await enrol(client, op)
        person = Person(
            u["external_user_id"], u["user_id"], await user_headers(client, op, u["external_user_id"]), op
        )
        btype = await make_methodology(factor="1000")
        await fund(client, op, btype, [person], 400)  # one batch of two records, on two days
        data = {"user_id": person.user_id, "points": "30", "reason": "the same ride reported twice"}
        r = await post(console, "/console/clawback/preview", data, "/console/clawback")
        assert r.status_code == 200
        assert f'href="/console/people/{person.user_id}"' in r.text
        r = await post(console, "/console/clawback", data, "/console/clawback")
        assert (r.status_code, r.headers["location"]) == (303, f"/console/people/{person.user_id}")
        r = await console.get(r.headers["location"], headers=HTML)
        assert r.status_code == 200
        history = re.findall(
            r'<tr><th scope="row"[^>]*>.*?</th>(.*?)</tr>',
            r.text.split('id="history"')[1].split("</table>")[0],
            re.S,
        )
        assert [text_of(row) for row in history] == [
            "主管部门追回 the same ride reported twice −30 370",
            f"低碳行为 由 {await _org_name(client, op)} 记录 +400 400",  # one batch: one entry
        ]
        assert (
            len(re.findall(r'<tr><th scope="row"', r.text.split('id="behaviours"')[1].split("</table>")[0]))
            == 2
        )

        # each list pages by its own cursor, keeping the other's place
        monkeypatch.setattr(console_pages, "PERSON_PAGE_SIZE", 1)
        r = await console.get(f"/console/people/{person.user_id}", headers=HTML)
        nxt = unescape(re.search(r'href="([^"]+)" rel="next"', r.text.split('id="history"')[1]).group(1))
        assert nxt.startswith(f"/console/people/{person.user_id}?history=")
        r = await console.get(nxt, headers=HTML)
        behaviours_next = unescape(
            re.search(r'href="([^"]+)" rel="next"', r.text.split('id="behaviours"')[1]).group(1)
        )
        assert "history=" in behaviours_next and "behaviours=" in behaviours_next
        r = await console.get(f"/console/people/{person.user_id}?history=not-a-cursor", headers=HTML)
        assert r.status_code == 400 and "text/html" in r.headers["content-type"]

    async def test_a_merchant_may_not_see_a_persons_account(self, client, browser_client):
        org = await make_org(client, "merchant")
        await sign_in(browser_client, org.admin_username)
        r = await browser_client.get(f"/console/people/{uuid.uuid4()}", headers=HTML)
        assert r.status_code == 403


async def _org_name(client, org) -> str:
    return (await client.get(f"/v1/organizations/{org.id}", headers=org.headers)).json()["name"]
