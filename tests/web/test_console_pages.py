"""The authority's console (/console) over HTTP: queues, decisions with their audit entries, refusals, roles."""

import re
import uuid
from html import unescape

import pytest

from tests.factories import make_org
from tests.web.helpers import HTML, csrf_token, make_authority_account, sign_in


@pytest.fixture
async def console(browser_client):
    r = await sign_in(browser_client, await make_authority_account())
    assert r.status_code == 303 and r.headers["location"] == "/console"
    return browser_client


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


class TestScenePanels:
    async def test_open_a_panel_rerun_the_draw_and_refuse_an_early_decision(
        self, client, console, authority, scene_types
    ):
        from tests.factories_scenes import ensure_experts, make_scene

        operator = await make_org(client, "scene_operator")
        scene = await make_scene(client, operator, submit=True)
        await ensure_experts(client, authority, "retail", 2)
        page = f"/console/scenes/{scene['id']}"
        assert scene["name"] in (await console.get("/console/scenes?queue=applications", headers=HTML)).text
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
