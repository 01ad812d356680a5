"""Organisation registration (/register) and the account page (/organization) over HTTP."""

import random
from html import unescape

import pytest

from app.organizations import service as org_service
from tests.factories import PASSWORD, authority_token, bearer, make_org, unique
from tests.web.helpers import HTML, page_token, sign_in

ALPHABET = org_service.CREDIT_CODE_ALPHABET


def valid_credit_code() -> str:
    """A unified social credit code whose check character is right."""
    head = "91" + f"{random.randint(0, 999999):06d}" + "".join(random.choices(ALPHABET, k=9))
    return next(head + c for c in ALPHABET if org_service.credit_code_check_digit_ok(head + c))


def wrong_check_digit(code: str) -> str:
    return code[:17] + next(c for c in ALPHABET if c != code[17])


def form(**overrides) -> dict:
    body = {
        "kind": "scene_operator",
        "name": unique("Green Venues"),
        "credit_code": valid_credit_code(),
        "username": unique("venue-admin"),
        "password": PASSWORD,
        "password_again": PASSWORD,
    }
    body.update(overrides)
    return body


async def post(client, body: dict):
    token = await page_token(client, "/register")
    return await client.post("/register", data={"csrf_token": token, **body}, headers=HTML)


def error_of(html: str, field: str) -> str:
    marker = f'id="f-{field}-error">'
    assert marker in html, f"no error beside {field}"
    return unescape(html.split(marker, 1)[1].split("<", 1)[0])


class TestCheckDigit:
    def test_a_real_code_passes_and_a_changed_last_character_fails(self):
        assert org_service.credit_code_check_digit_ok("91350100M000100Y43")
        assert org_service.credit_code_check_digit_ok("91350100m000100y43 ")
        assert not org_service.credit_code_check_digit_ok("91350100M000100Y44")
        assert not org_service.credit_code_check_digit_ok("91350100M000100Y4")
        assert not org_service.credit_code_check_digit_ok("91350100M000100YI3")


class TestRegistration:
    async def test_the_form_lists_every_kind_and_preselects_one(self, browser_client):
        r = await browser_client.get("/register?kind=merchant")
        assert r.status_code == 200
        for kind in ("operator", "merchant", "scene_operator", "verifier", "buyer"):
            assert f'value="{kind}"' in r.text
        assert 'value="merchant" checked' in r.text
        assert "统一社会信用代码" in r.text

    async def test_an_application_is_pending_and_the_admin_sees_where_it_stands(self, client, browser_client):
        body = form()
        r = await post(browser_client, body)
        assert r.status_code == 303 and r.headers["location"] == "/register/done?kind=scene_operator"
        done = await browser_client.get(r.headers["location"])
        assert "申请已收到" in done.text and "场景运营机构" in done.text
        # the admin signs in before the decision: the sign-in page says it is pending
        r = await sign_in(browser_client, body["username"])
        assert r.status_code == 403
        assert 'data-status="pending"' in r.text and body["name"] in r.text
        # rejected with a reason: the reason is shown
        authority = await authority_token(client)
        orgs = (await client.get("/v1/organizations?status=pending&kind=scene_operator&limit=200",
                                 headers=bearer(authority))).json()["items"]  # fmt: skip
        org = next(o for o in orgs if o["name"] == body["name"])
        assert org["credit_code"] == body["credit_code"]
        reason = "<b>Licence</b> unreadable"
        r = await client.post(
            f"/v1/organizations/{org['id']}/reject", json={"reason": reason}, headers=bearer(authority)
        )
        assert r.status_code == 200
        r = await sign_in(browser_client, body["username"])
        assert 'data-status="rejected"' in r.text
        assert "&lt;b&gt;Licence&lt;/b&gt; unreadable" in r.text and "<b>Licence" not in r.text
        assert 'href="/register"' in r.text

    async def test_approved_the_admin_signs_in_and_sees_the_account(self, client, browser_client):
        body = form(kind="verifier")
        assert (await post(browser_client, body)).status_code == 303
        authority = await authority_token(client)
        orgs = (await client.get("/v1/organizations?status=pending&kind=verifier&limit=200",
                                 headers=bearer(authority))).json()["items"]  # fmt: skip
        org = next(o for o in orgs if o["name"] == body["name"])
        await client.post(f"/v1/organizations/{org['id']}/approve", headers=bearer(authority))
        r = await sign_in(browser_client, body["username"], next="/organization")
        assert r.status_code == 303 and r.headers["location"] == "/organization"
        page = await browser_client.get("/organization")
        assert page.status_code == 200
        assert body["name"] in page.text and body["credit_code"] in page.text
        assert 'data-status="approved"' in page.text
        assert 'href="/docs"' in page.text  # no portal of its own yet

    async def test_a_scene_operator_is_shown_the_way_to_its_portal(self, client, browser_client):
        org = await make_org(client, "scene_operator")
        await sign_in(browser_client, org.admin_username)
        page = await browser_client.get("/organization")
        assert 'href="/scene-operator"' in page.text

    async def test_the_account_page_needs_a_sign_in(self, browser_client):
        r = await browser_client.get("/organization")
        assert r.status_code == 303 and r.headers["location"] == "/sign-in?next=%2Forganization"

    @pytest.mark.parametrize(
        ("overrides", "field", "message"),
        [
            ({"kind": ""}, "kind", "请选择机构类型。"),
            ({"kind": "bank"}, "kind", "请选择机构类型。"),
            ({"name": "  "}, "name", "请输入机构的注册名称（最多 200 个字符）。"),
            (
                {"credit_code": "12345"},
                "credit_code",
                "请输入 18 位统一社会信用代码（数字和大写字母，不含 I、O、S、V、Z）。",
            ),
            (
                {"username": "ab"},
                "username",
                "请设置 3 至 100 个字符的用户名：只能使用字母、数字和 . _ @ -。",
            ),
            ({"password": "short", "password_again": "short"}, "password", "请设置至少 8 个字符的密码。"),
            ({"password_again": "another-password"}, "password_again", "两次输入的密码不一致。"),
        ],
    )
    async def test_bad_input_is_shown_beside_its_field(self, browser_client, overrides, field, message):
        body = form(**overrides)
        r = await post(browser_client, body)
        assert r.status_code == 400
        assert error_of(r.text, field) == message
        assert 'aria-invalid="true"' in r.text or field == "kind"
        if field != "name":
            assert f'value="{body["name"]}"' in r.text  # the input is kept
        assert "请更正下面标出的字段。" in r.text

    async def test_a_credit_code_failing_its_check_digit(self, browser_client):
        code = wrong_check_digit(valid_credit_code())
        r = await post(browser_client, form(credit_code=code.lower()))
        assert r.status_code == 400
        assert error_of(r.text, "credit_code") == "信用代码的最后一位与前面的字符不符：请对照营业执照核对。"
        assert f'value="{code}"' in r.text

    async def test_the_same_credit_code_twice_and_a_taken_username(self, browser_client):
        first = form()
        assert (await post(browser_client, first)).status_code == 303
        r = await post(browser_client, form(credit_code=first["credit_code"]))
        assert r.status_code == 400
        assert error_of(r.text, "credit_code") == "该类型下使用此信用代码的机构已申请或已注册。"
        r = await post(browser_client, form(username=first["username"]))
        assert r.status_code == 400
        assert error_of(r.text, "username") == "该用户名已被使用，请另选一个。"

    async def test_markup_in_the_name_is_kept_as_text(self, browser_client):
        r = await post(browser_client, form(name="<script>alert(1)</script>", password_again="x"))
        assert r.status_code == 400
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>alert" not in r.text

    async def test_english(self, browser_client):
        browser_client.cookies.set("lang", "en")
        r = await post(browser_client, form(credit_code="91350100M000100Y44"))
        assert error_of(r.text, "credit_code") == (
            "This credit code's last character does not match the others: check it against the business licence."
        )


class TestLanding:
    @pytest.mark.parametrize(
        ("kind", "landing"),
        [("scene_operator", "/scene-operator"), ("verifier", "/verifier"), ("merchant", "/merchant")],
    )
    async def test_staff_of_an_organisation_land_on_their_portal_or_account(
        self, client, browser_client, kind, landing
    ):
        org = await make_org(client, kind)
        r = await sign_in(browser_client, org.admin_username)
        assert r.status_code == 303 and r.headers["location"] == landing
        page = await browser_client.get(landing)
        assert page.status_code == 200 and f'href="{landing}" aria-current="page"' in page.text
        assert 'href="/me" aria-current' not in page.text  # "/merchant" is not the person's "/me"

    async def test_a_page_to_return_to_wins(self, client, browser_client):
        org = await make_org(client, "scene_operator")
        r = await sign_in(browser_client, org.admin_username, next="/open-data")
        assert r.headers["location"] == "/open-data"
