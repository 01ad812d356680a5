"""The scene operator's portal over HTTP: apply, follow the review, the label, a change, what was recorded."""

import re
import uuid
from html import unescape

import pytest

from app.core import db
from app.points import service as points_service
from tests.factories import authority_token, make_org
from tests.factories_scenes import decide_panel, ensure_experts, open_scene_review
from tests.web.helpers import HTML, page_token, sign_in


async def accepted_type(client) -> str:
    types = (await client.get("/v1/public/scenes/behaviour-types")).json()["behaviour_types"]
    return "own_cup" if "own_cup" in types else types[0]


def scene_form(behaviour_type: str, **overrides) -> dict:
    body = {
        "name": f"Green Bean Café {uuid.uuid4().hex[:6]}",
        "category": "business_premises",
        "address": "Science Park, Nanshan District, Shenzhen",
        "city_code": "440300",
        "district_code": "440305",
        "lat": "22.54093",
        "lng": "113.95281",
        "opening_hours": "daily 07:30-21:00",
        "behaviour_types": [behaviour_type],
        "description": "Bring your own cup.",
        "evidence_links": "https://example.org/photos\nhttps://example.org/licence",
    }
    body.update(overrides)
    return body


def error_of(html: str, field: str) -> str:
    marker = f'id="f-{field}-error">'
    assert marker in html, f"no error beside {field}"
    return unescape(html.split(marker, 1)[1].split("<", 1)[0])


@pytest.fixture
async def operator(client, browser_client):
    org = await make_org(client, "scene_operator")
    r = await sign_in(browser_client, org.admin_username)
    assert r.status_code == 303
    return org


async def apply(browser_client, body: dict, path: str = "/scene-operator/scenes/new"):
    token = await page_token(browser_client, path)
    return await browser_client.post(path, data={"csrf_token": token, **body}, headers=HTML)


class TestAccess:
    async def test_sign_in_first(self, browser_client):
        r = await browser_client.get("/scene-operator")
        assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=%2Fscene-operator"

    async def test_other_roles_are_refused(self, client, browser_client):
        merchant = await make_org(client, "merchant")
        await sign_in(browser_client, merchant.admin_username)
        assert (await browser_client.get("/scene-operator")).status_code == 403

    async def test_another_operators_scene_is_not_found(self, client, browser_client, operator):
        r = await apply(browser_client, scene_form(await accepted_type(client)))
        scene_path = r.headers["location"].split("?")[0]
        other = await make_org(client, "scene_operator")
        browser_client.cookies.clear()
        await sign_in(browser_client, other.admin_username)
        assert (await browser_client.get(scene_path)).status_code == 404
        assert (await browser_client.get(scene_path + "/change")).status_code == 404


class TestApplication:
    async def test_apply_follow_the_review_and_see_the_label(self, client, browser_client, operator):
        behaviour = await accepted_type(client)
        home = await browser_client.get("/scene-operator")
        assert home.status_code == 200 and "您还没有申请过场景。" in home.text
        form = await browser_client.get("/scene-operator/scenes/new")
        assert "WGS-84" in form.text and "GCJ-02" in form.text
        assert f'value="{behaviour}"' in form.text
        body = scene_form(behaviour)
        r = await apply(browser_client, body)
        assert r.status_code == 303
        location = r.headers["location"]
        assert re.fullmatch(r"/scene-operator/scenes/[0-9a-f-]{36}\?applied=1", location)
        scene_id = location.split("/")[-1].split("?")[0]
        page = await browser_client.get(location)
        assert "您的申请已提交主管部门。" in page.text
        assert 'data-status="submitted"' in page.text and body["name"] in page.text
        api = (await client.get(f"/v1/scenes/{scene_id}", headers=operator.headers)).json()
        assert api["status"] == "submitted" and api["lat"] == 22.54093 and api["lng"] == 113.95281
        assert api["evidence_links"] == ["https://example.org/photos", "https://example.org/licence"]
        assert api["opening_hours"] == "daily 07:30-21:00"
        # the authority draws a panel: the operator sees it, without the experts' names
        authority = await authority_token(client)
        await ensure_experts(client, authority)
        panel = await open_scene_review(client, authority, scene_id)
        page = await browser_client.get(f"/scene-operator/scenes/{scene_id}")
        assert 'data-status="under_review"' in page.text
        assert "已提交意见：0 / 1（作出决定需要 1 份）。" in page.text
        for member in panel["members"]:
            assert member["name"] not in page.text and member["expert_id"] not in page.text
        # opinions in, decision: approved with its label and reasons
        await decide_panel(client, authority, panel, "pass", "Meets the guidelines <ok>")
        page = await browser_client.get(f"/scene-operator/scenes/{scene_id}")
        label = (await client.get(f"/v1/scenes/{scene_id}", headers=operator.headers)).json()["label_code"]
        assert 'data-status="approved"' in page.text
        assert f'id="label-code">{label}<' in page.text
        assert "Meets the guidelines &lt;ok&gt;" in page.text
        assert "已提交意见：1 / 1" in page.text
        home = await browser_client.get("/scene-operator")
        assert body["name"] in home.text and label in home.text

    async def test_a_rejected_application_is_corrected_and_sent_again(self, client, browser_client, operator):
        r = await apply(browser_client, scene_form(await accepted_type(client)))
        scene_id = r.headers["location"].split("/")[-1].split("?")[0]
        authority = await authority_token(client)
        await ensure_experts(client, authority)
        panel = await open_scene_review(client, authority, scene_id)
        await decide_panel(client, authority, panel, "fail", "The photos do not show the counter.")
        page = await browser_client.get(f"/scene-operator/scenes/{scene_id}")
        assert 'data-status="rejected"' in page.text and "The photos do not show the counter." in page.text
        assert f'href="/scene-operator/scenes/{scene_id}/change"' in page.text
        form = await browser_client.get(f"/scene-operator/scenes/{scene_id}/change")
        assert 'value="22.54093"' in form.text and "重新提交申请" in form.text
        r = await apply(browser_client, scene_form(await accepted_type(client), name="Renamed café"),
                        f"/scene-operator/scenes/{scene_id}/change")  # fmt: skip
        assert r.status_code == 303 and r.headers["location"].endswith("?changed=1")
        api = (await client.get(f"/v1/scenes/{scene_id}", headers=operator.headers)).json()
        assert (api["status"], api["name"]) == ("submitted", "Renamed café")

    async def test_a_change_to_an_approved_scene_is_proposed_for_review(
        self, client, browser_client, operator
    ):
        behaviour = await accepted_type(client)
        body = scene_form(behaviour)
        r = await apply(browser_client, body)
        scene_id = r.headers["location"].split("/")[-1].split("?")[0]
        authority = await authority_token(client)
        await ensure_experts(client, authority)
        await decide_panel(
            client, authority, await open_scene_review(client, authority, scene_id), "pass", "ok"
        )
        path = f"/scene-operator/scenes/{scene_id}/change"
        r = await apply(
            browser_client, {**body, "address": "2 New Road, Futian", "district_code": "440304"}, path
        )
        assert r.status_code == 303
        page = await browser_client.get(f"/scene-operator/scenes/{scene_id}?changed=1")
        assert "您的变更申请已提交评审。" in page.text
        assert 'id="change-status"' in page.text and "变更的字段： 地址, 区代码" in page.text
        api = (await client.get(f"/v1/scenes/{scene_id}", headers=operator.headers)).json()
        assert (
            api["address"] != "2 New Road, Futian"
            and api["change"]["proposed"]["address"] == "2 New Road, Futian"
        )
        # while the change is under review, another is refused with a clear message
        await open_scene_review(client, authority, scene_id)
        r = await apply(browser_client, scene_form(behaviour), path)
        assert r.status_code == 409
        assert "此场景的一项变更正在专家评审中：请等评审决定后再提出新的变更。" in r.text


class TestBadInput:
    @pytest.mark.parametrize(
        ("overrides", "field", "message"),
        [
            ({"name": ""}, "name", "请输入场景名称（最多 200 个字符）。"),
            ({"category": "casino"}, "category", "请选择场所类型。"),
            ({"address": " "}, "address", "请输入地址（最多 500 个字符）。"),
            ({"city_code": ""}, "city_code", "请输入 6 位城市代码，如深圳市为 440300。"),
            ({"district_code": "44030"}, "district_code", "请输入 6 位区代码，如南山区为 440305。"),
            (
                {"city_code": "440305"},
                "city_code",
                "不是有效的城市代码：应为以 00 结尾的 6 位数字，如深圳市 440300。",
            ),
            (
                {"district_code": "110105"},
                "district_code",
                "不是该城市下的区：应为与城市代码前四位相同的 6 位数字，如南山区 440305。",
            ),
            ({"lat": "91"}, "lat", "纬度须在 -90 到 90 之间。"),
            ({"lng": "-180.5"}, "lng", "经度须在 -180 到 180 之间。"),
            ({"lat": "north"}, "lat", "请输入十进制度数，如 22.54093。"),
            ({"lng": "nan"}, "lng", "经度须在 -180 到 180 之间。"),
            ({"behaviour_types": []}, "behaviour_types", "请至少选择一种在此记录的行为（最多 20 种）。"),
            ({"behaviour_types": ["teleporting"]}, "behaviour_types", "请只从列表中选择行为。"),
            (
                {"evidence_links": "javascript:alert(1)"},
                "evidence_links",
                "每行须是以 http:// 或 https:// 开头的网址。",
            ),
            ({"description": "x" * 5001}, "description", "最多 5,000 个字符。"),
        ],
    )
    async def test_each_refusal_beside_its_field(
        self, client, browser_client, operator, overrides, field, message
    ):
        body = scene_form(await accepted_type(client), **overrides)
        r = await apply(browser_client, body)
        assert r.status_code == 400
        assert error_of(r.text, field) == message
        assert "请更正下面标出的字段。" in r.text
        if field != "name":
            assert f'value="{body["name"]}"' in r.text  # the input is kept

    async def test_markup_is_text(self, client, browser_client, operator):
        r = await apply(
            browser_client, scene_form(await accepted_type(client), name="<script>x()</script>", lat="x")
        )
        assert r.status_code == 400
        assert "&lt;script&gt;x()&lt;/script&gt;" in r.text and "<script>x()" not in r.text


class TestActivity:
    async def test_aggregates_by_behaviour_and_month(self, client, browser_client, operator):
        r = await apply(browser_client, scene_form(await accepted_type(client)))
        scene_id = uuid.UUID(r.headers["location"].split("/")[-1].split("?")[0])
        async with db.session_scope() as session:
            empty = await points_service.scene_activity(session, scene_id)
        assert (empty.records, empty.reduction_g, empty.rows) == (0, 0, [])
        page = await browser_client.get(f"/scene-operator/scenes/{scene_id}")
        assert "此处尚无记录。" in page.text and 'data-total="records">0<' in page.text


class TestOpeningHours:
    async def test_hours_by_weekday_are_shown_in_order_and_kept_through_the_change_form(
        self, client, browser_client, operator
    ):
        from tests.factories_scenes import make_scene

        scene = await make_scene(client, operator, opening_hours={"sat": "09:00-23:00", "mon": "07:00-22:00"})
        page = await browser_client.get(f"/scene-operator/scenes/{scene['id']}")
        assert "<dd>周一 07:00-22:00; 周六 09:00-23:00</dd>" in page.text
        form = await browser_client.get(f"/scene-operator/scenes/{scene['id']}/change")
        assert 'value="mon 07:00-22:00; sat 09:00-23:00"' in form.text
        body = {
            **scene_form(scene["behaviour_types"][0]),
            "name": scene["name"],
            "opening_hours": "mon 07:00-22:00; sat 09:00-23:00; sun 10:00-18:00",
        }
        r = await apply(browser_client, body, f"/scene-operator/scenes/{scene['id']}/change")
        assert r.status_code == 303
        api = (await client.get(f"/v1/scenes/{scene['id']}", headers=operator.headers)).json()
        assert api["opening_hours"] == {"mon": "07:00-22:00", "sat": "09:00-23:00", "sun": "10:00-18:00"}
        assert api["status"] == "submitted"
