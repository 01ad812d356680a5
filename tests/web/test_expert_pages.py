"""The experts' workspace over HTTP: my panels, the declaration of interests before the documents,
the subject's documents (a scene, a CER project), my one opinion, and the boundaries."""

from datetime import timedelta
from html import unescape

import pytest
from markupsafe import escape

from app.core import clock
from tests.factories import bearer, make_org
from tests.factories_cer import add_records, create_project, make_owner, to_verified
from tests.factories_scenes import make_expert, make_scene, strangers
from tests.web.helpers import HTML, page_token, sign_in

ADDRESS = "1 Science Park Rd, Nanshan"
REASONS = "The evidence matches the address; the behaviours fit the kind of place."


@pytest.fixture(autouse=True)
def clock_back():
    yield
    clock.set_offset(timedelta(0))


async def scene_panel(client, authority, expert, *, size: int = 1, others=()) -> tuple[dict, dict, object]:
    """A scene application under review by ``expert`` (and ``others``): (scene, panel, scene operator)."""
    operator = await make_org(client, "scene_operator")
    scene = await make_scene(client, operator, submit=True, address=ADDRESS)
    keep = [expert.id, *(o.id for o in others)]
    r = await client.post(
        f"/v1/scenes/{scene['id']}/review",
        json={
            "size": size,
            "field": "retail",
            "exclude_experts": await strangers(client, authority, "retail", keep),
        },
        headers=bearer(authority),
    )
    assert r.status_code == 201, r.text
    return scene, r.json(), operator


@pytest.fixture
async def expert(client, authority, browser_client):
    expert = await make_expert(client, authority, fields=["retail"])
    r = await sign_in(browser_client, expert.username)
    assert (r.status_code, r.headers["location"]) == (303, "/expert")
    return expert


async def post(browser_client, path: str, data: dict, token_from: str | None = None):
    token = await page_token(browser_client, token_from or path)
    return await browser_client.post(path, data={"csrf_token": token, **data}, headers=HTML)


async def declare(browser_client, panel_id: str, answer: str = "no_conflict", **extra):
    path = f"/expert/panels/{panel_id}/declaration"
    return await post(browser_client, path, {"answer": answer, "confirm": "yes", **extra})


def blocked_reason(html: str) -> str:
    return html.split('data-reason="', 1)[1].split('"', 1)[0]


class TestAccess:
    async def test_sign_in_first(self, browser_client):
        r = await browser_client.get("/expert")
        assert (r.status_code, r.headers["location"]) == (303, "/sign-in?next=%2Fexpert")

    async def test_other_roles_are_refused(self, client, browser_client):
        merchant = await make_org(client, "merchant")
        await sign_in(browser_client, merchant.admin_username)
        assert (await browser_client.get("/expert")).status_code == 403

    async def test_another_experts_panel_is_not_found(self, client, authority, browser_client, expert):
        outsider = await make_expert(client, authority, fields=["retail"])
        _, panel, _ = await scene_panel(client, authority, outsider)
        for path in ("", "/declaration", "/opinion"):
            r = await browser_client.get(f"/expert/panels/{panel['id']}{path}")
            assert r.status_code == 404, path
        r = await browser_client.post(
            f"/expert/panels/{panel['id']}/declaration",
            data={"csrf_token": await page_token(browser_client, "/expert"), "answer": "no_conflict"},
        )
        assert r.status_code == 404


class TestHome:
    async def test_open_panels_then_decided_ones(self, client, authority, browser_client, expert):
        scene, panel, operator = await scene_panel(client, authority, expert)
        html = (await browser_client.get("/expert")).text
        assert 'id="decided-panels"' not in html
        card = html.split(f'data-panel="{panel["id"]}"', 1)[1].split("</li>", 1)[0]
        assert scene["name"] in card and f'href="/expert/panels/{panel["id"]}/declaration"' in card
        assert "Scene application" in unescape(card) or "场景认定申请" in card
        assert "待作利益冲突声明" in card  # Chinese first: declaration needed

        await declare(browser_client, panel["id"])
        await post(
            browser_client,
            f"/expert/panels/{panel['id']}/opinion",
            {"verdict": "pass", "score": "90", "reasoning": REASONS, "step": "send"},
        )
        r = await client.post(
            f"/v1/reviews/{panel['id']}/decision",
            json={"outcome": "pass", "reason": "Approved on the panel's opinion."},
            headers=bearer(authority),
        )
        assert r.status_code == 200, r.text
        html = (await browser_client.get("/expert")).text
        decided = html.split('id="decided-panels"', 1)[1]
        assert f'data-panel="{panel["id"]}"' in decided and 'data-outcome="pass"' in decided
        assert "已提交评审意见" in decided  # my opinion is given
        assert "暂无待您评审的事项" in html  # no open panel left


class TestDeclaration:
    async def test_the_page_names_the_subject_and_its_owner_only(
        self, client, authority, browser_client, expert
    ):
        scene, panel, operator = await scene_panel(client, authority, expert)
        owner = (await client.get(f"/v1/organizations/{operator.id}", headers=bearer(authority))).json()
        r = await browser_client.get(f"/expert/panels/{panel['id']}/declaration")
        assert r.status_code == 200
        assert scene["name"] in r.text and owner["name"] in unescape(r.text)
        assert f'<dt>申请单位</dt><dd id="subject-owner">{escape(owner["name"])}</dd>' in r.text  # not 业主
        assert ADDRESS not in r.text and "example.org/photos" not in r.text

    async def test_before_declaring_the_documents_and_the_form_point_to_the_declaration(
        self, client, authority, browser_client, expert
    ):
        _, panel, _ = await scene_panel(client, authority, expert)
        for path in ("", "/opinion"):
            r = await browser_client.get(f"/expert/panels/{panel['id']}{path}")
            assert r.status_code == 409 and blocked_reason(r.text) == "declare"
            assert f'href="/expert/panels/{panel["id"]}/declaration"' in r.text and ADDRESS not in r.text
        r = await post(
            browser_client,
            f"/expert/panels/{panel['id']}/opinion",
            {"verdict": "pass", "score": "90", "reasoning": REASONS, "step": "send"},
            token_from="/expert",
        )
        assert r.status_code == 409 and blocked_reason(r.text) == "declare"
        view = (await client.get(f"/v1/reviews/{panel['id']}", headers=bearer(authority))).json()
        assert view["opinions_in"] == 0

    async def test_the_box_must_be_ticked(self, client, authority, browser_client, expert):
        _, panel, _ = await scene_panel(client, authority, expert)
        path = f"/expert/panels/{panel['id']}/declaration"
        r = await post(browser_client, path, {"answer": "no_conflict", "note": "fine"})
        assert r.status_code == 400 and 'id="f-confirm-error"' in r.text and ">fine</textarea>" in r.text
        r = await browser_client.get(f"/expert/panels/{panel['id']}")
        assert r.status_code == 409

    async def test_without_the_form_token_nothing_is_declared(
        self, client, authority, browser_client, expert
    ):
        _, panel, _ = await scene_panel(client, authority, expert)
        r = await browser_client.post(
            f"/expert/panels/{panel['id']}/declaration", data={"answer": "no_conflict", "confirm": "yes"}
        )
        assert r.status_code == 403
        assert (await browser_client.get(f"/expert/panels/{panel['id']}")).status_code == 409

    async def test_no_conflict_opens_the_scenes_documents(self, client, authority, browser_client, expert):
        scene, panel, _ = await scene_panel(client, authority, expert)
        r = await declare(browser_client, panel["id"])
        assert (r.status_code, r.headers["location"]) == (303, f"/expert/panels/{panel['id']}")
        html = (await browser_client.get(f"/expert/panels/{panel['id']}")).text
        documents = unescape(html.split('id="scene-documents"', 1)[1].split("</dl>", 1)[0])
        assert ADDRESS in documents and "22.5431, 113.9436" in documents
        assert 'href="https://example.org/photos/1"' in documents
        assert "Bring your own cup and get points." in documents
        assert "自带杯" in documents  # the behaviour, by its name
        assert '<span id="scene-district">南山区</span>' in html  # the district by its name, beside its code
        # a declared page is not asked again
        r = await browser_client.get(f"/expert/panels/{panel['id']}/declaration")
        assert (r.status_code, r.headers["location"]) == (303, f"/expert/panels/{panel['id']}")

    async def test_a_conflict_stands_the_expert_aside_and_the_authority_sees_it(
        self, client, authority, browser_client, expert
    ):
        _, panel, _ = await scene_panel(client, authority, expert)
        r = await declare(
            browser_client, panel["id"], "conflict", confirm="", note="I advised the café in 2025."
        )
        assert (r.status_code, r.headers["location"]) == (303, f"/expert/panels/{panel['id']}/declaration")
        html = (await browser_client.get(r.headers["location"])).text
        assert 'id="declared-conflict"' in html and "I advised the café in 2025." in unescape(html)
        for path in ("", "/opinion"):
            r = await browser_client.get(f"/expert/panels/{panel['id']}{path}")
            assert r.status_code == 409 and blocked_reason(r.text) == "conflict" and ADDRESS not in r.text
        view = (await client.get(f"/v1/reviews/{panel['id']}", headers=bearer(authority))).json()
        (member,) = view["members"]
        assert (member["conflict_declared"], member["declaration_note"]) == (
            True,
            "I advised the café in 2025.",
        )


class TestOpinion:
    @pytest.fixture
    async def declared(self, client, authority, browser_client, expert):
        _, panel, _ = await scene_panel(client, authority, expert)
        await declare(browser_client, panel["id"])
        return panel

    async def opinion(self, browser_client, panel, **fields):
        data = {"verdict": "pass", "score": "85", "reasoning": REASONS, **fields}
        return await post(browser_client, f"/expert/panels/{panel['id']}/opinion", data, token_from="/expert")

    @pytest.mark.parametrize(
        "fields, field",
        [
            ({"score": "101"}, "score"),
            ({"score": "-1"}, "score"),
            ({"score": "eighty"}, "score"),
            ({"reasoning": ""}, "reasoning"),
            ({"reasoning": "Too short."}, "reasoning"),
            ({"verdict": "maybe"}, "verdict"),
        ],
    )
    async def test_bad_input_is_shown_beside_its_field(
        self, client, authority, browser_client, declared, fields, field
    ):
        r = await self.opinion(browser_client, declared, step="send", **fields)
        assert r.status_code == 400 and f'id="f-{field}-error"' in r.text
        view = (await client.get(f"/v1/reviews/{declared['id']}", headers=bearer(authority))).json()
        assert view["opinions_in"] == 0

    async def test_confirm_then_send_then_read_only(self, client, authority, browser_client, declared):
        r = await self.opinion(browser_client, declared, step="check")
        assert r.status_code == 200 and 'id="confirm-opinion"' in r.text and 'value="send"' in r.text
        view = (await client.get(f"/v1/reviews/{declared['id']}", headers=bearer(authority))).json()
        assert view["opinions_in"] == 0  # nothing is sent before it is confirmed
        r = await self.opinion(browser_client, declared, step="edit")
        assert r.status_code == 200 and 'id="f-score"' in r.text and 'value="85"' in r.text

        r = await self.opinion(browser_client, declared, step="send")
        assert (r.status_code, r.headers["location"]) == (303, f"/expert/panels/{declared['id']}?given=1")
        html = (await browser_client.get(r.headers["location"])).text
        mine = html.split('id="my-opinion"', 1)[1].split("</dl>", 1)[0]
        assert 'data-verdict="pass"' in mine and "85 / 100" in mine and REASONS in unescape(mine)
        assert 'id="give-opinion"' not in html
        (member,) = (await client.get(f"/v1/reviews/{declared['id']}", headers=bearer(authority))).json()[
            "members"
        ]
        assert (member["verdict"], member["score"], member["text"]) == ("pass", 85, REASONS)

        r = await browser_client.get(f"/expert/panels/{declared['id']}/opinion")
        assert (r.status_code, r.headers["location"]) == (303, f"/expert/panels/{declared['id']}")
        r = await self.opinion(browser_client, declared, step="send", score="10", verdict="fail")
        assert r.status_code == 409 and blocked_reason(r.text) == "given"
        (member,) = (await client.get(f"/v1/reviews/{declared['id']}", headers=bearer(authority))).json()[
            "members"
        ]
        assert (member["verdict"], member["score"]) == ("pass", 85)

    async def test_without_the_form_token_nothing_is_sent(self, client, authority, browser_client, declared):
        r = await browser_client.post(
            f"/expert/panels/{declared['id']}/opinion",
            data={"verdict": "pass", "score": "85", "reasoning": REASONS, "step": "send"},
        )
        assert r.status_code == 403
        view = (await client.get(f"/v1/reviews/{declared['id']}", headers=bearer(authority))).json()
        assert view["opinions_in"] == 0


class TestCerProject:
    async def test_the_panel_reads_the_report_the_verification_and_the_methodology(
        self, client, authority, browser_client
    ):
        reviewer = await make_expert(client, authority, fields=["verification"])
        owner = await make_owner(client, authority)
        await add_records(client, owner, [(3, 10.0), (2, 30.0)])
        today = clock.today()
        project = await create_project(client, owner, today - timedelta(days=6), today - timedelta(days=1))
        await to_verified(client, authority, owner, project, verified_g=1_900_000)
        r = await client.post(
            f"/v1/cer/projects/{project['id']}/review",
            json={
                "size": 1,
                "exclude_experts": await strangers(client, authority, "verification", [reviewer.id]),
            },
            headers=bearer(authority),
        )
        assert r.status_code == 201, r.text
        panel = r.json()
        await sign_in(browser_client, reviewer.username)
        r = await browser_client.get(f"/expert/panels/{panel['id']}/declaration")
        assert project["name"] in r.text and project["owner_name"] in unescape(r.text)
        assert f'<dt>项目业主</dt><dd id="subject-owner">{escape(project["owner_name"])}</dd>' in r.text
        await declare(browser_client, panel["id"])
        html = unescape((await browser_client.get(f"/expert/panels/{panel['id']}")).text)
        documents = html.split('id="cer-documents"', 1)[1]
        assert project["claimed_g"] == 2_000_000
        assert "2.000 t CO₂e" in documents.split("data-claimed>", 1)[1]
        assert "1.900 t CO₂e" in documents.split("data-verified>", 1)[1]
        assert "Records sampled and checked against the signed batches." in documents
        assert f"{owner.code} v1" in documents
        # the report's tables stack on a phone: each cell carries its column's name
        assert f'<th scope="row" class="code" data-label="方法学">{owner.code} v1</th>' in documents
        assert "· 异议 0 件" in documents  # the publicity's dates, then its objections
        assert project["report_sha256"] in documents
