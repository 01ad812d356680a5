"""A person's own page in a real browser (Chromium): they confirm an operator's app at /oauth/authorize, sign in
at /me with a one-time code, see the app, withdraw it — and the operator's user token is refused at once and
its next refresh answers ``entrustment_withdrawn``. Axe on every page; screenshots at 375 and 1280 px in both
languages (/tmp/shots/me-*.png)."""

import re
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.factories import authority_token, bearer, make_operator
from tests.factories_mall import Person, fund, make_item, make_merchant, place
from tests.factories_points import enrol, ensure_rule, make_methodology, phone, user_headers
from tests.oauth_flow import exchange, pkce, refresh
from tests.web.helpers import LANGUAGES
from tests.web.test_oauth_browser import _operator, _outbox_code
from tests.web.test_web_browser import axe_violations

pytestmark = pytest.mark.commits

LABELS = {
    "zh": {
        "phone": "手机号码",
        "send": "发送验证码",
        "code": "验证码",
        "continue": "继续",
        "agree": "同意并继续",
        "withdraw": "撤回委托",
        "delete": "注销我的账户",
    },
    "en": {
        "phone": "Mobile phone number",
        "send": "Send me a code",
        "code": "One-time code",
        "continue": "Continue",
        "agree": "Agree and continue",
        "withdraw": "Withdraw the entrustment",
        "delete": "Delete my account",
    },
}


async def _check(page, shots, name: str, language: str) -> None:
    for width, height in ((375, 812), (1280, 800)):
        await page.set_viewport_size({"width": width, "height": height})
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} ({language}) scrolls sideways at {width} px"
        assert await axe_violations(page) == [], f"{name} ({language}, {width})"
        await page.screenshot(path=str(shots / f"me-{name}-{language}-{width}.png"), full_page=True)


async def _code(page, label: dict, number: str) -> None:
    from app.core import sms

    await page.wait_for_url(re.compile(r"/code$"))
    await page.get_by_label(label["code"]).fill(await _outbox_code(page, sms.mask(number)))
    await page.get_by_role("button", name=label["continue"]).click()


@pytest.mark.parametrize("language", [code for code, _ in LANGUAGES])
async def test_a_person_withdraws_an_app_on_their_own_page(app, page, live_server, shots, language):
    label = LABELS[language]
    op = await _operator(live_server)
    verifier, challenge = pkce()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": op.id,
            "redirect_uri": op.extra["redirect"],
            "scope": "behaviours:submit account:read",
            "state": uuid.uuid4().hex,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    if language == "en":
        await page.goto("/")
        await page.get_by_role("button", name="English").click()
        await page.wait_for_load_state()
    number = phone()
    # the person confirms the app at /oauth/authorize; the operator exchanges the code
    assert (await page.goto(f"/oauth/authorize?{query}")).status == 200
    await page.get_by_label(label["phone"]).fill(number)
    await page.get_by_role("button", name=label["send"]).click()
    await _code(page, label, number)
    await page.wait_for_url(re.compile(r"/consent$"))
    assert await page.locator('main a[href="/me"]').count() == 1  # the consent screen says where to withdraw
    page.record.error_status_expected = True  # the app's callback is not served here (a 404 the test expects)
    await page.get_by_role("button", name=label["agree"]).click()
    await page.wait_for_url(re.compile(r"/app-callback\?"))
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as api:
        r = await exchange(api, op, parse_qs(urlsplit(page.url).query)["code"][0], verifier)
        assert r.status_code == 200, r.text
        tokens = r.json()
        name = (await api.get(f"/v1/organizations/{op.id}", headers=bearer(op.extra["admin_token"]))).json()[
            "name"
        ]
    # the person signs in at /me from the home page
    await page.goto("/")
    await page.locator('main a[href="/me"]').click()
    await page.wait_for_url(re.compile(r"/me/sign-in$"))
    await page.set_viewport_size({"width": 375, "height": 812})
    await _check(page, shots, "sign-in", language)
    await page.get_by_label(label["phone"]).fill(number)
    await page.get_by_role("button", name=label["send"]).click()
    await _code(page, label, number)
    await page.wait_for_url(re.compile(r"/me$"))
    entrustment = page.locator("li.me-entrustment")
    assert await entrustment.count() == 1
    assert await entrustment.locator("h3").inner_text() == name
    assert "2026-11" in await entrustment.inner_text()
    await _check(page, shots, "page", language)
    # withdraw: a confirmation first
    await entrustment.locator('a[href$="/withdraw"]').click()
    await page.wait_for_url(re.compile(r"/me/entrustments/\d+/withdraw$"))
    await _check(page, shots, "withdraw", language)
    await page.get_by_role("button", name=label["withdraw"]).click()
    await page.wait_for_url(re.compile(r"/me\?withdrawn=\d+$"))
    assert await page.locator("#withdrawn-notice").is_visible()
    assert await page.locator("li.me-entrustment").count() == 0
    assert await page.locator("ul.me-withdrawn li").count() == 1
    await _check(page, shots, "withdrawn", language)
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as api:
        r = await api.get("/v1/me/account", headers=bearer(tokens["access_token"]))
        assert (r.status_code, r.json()["code"]) == (401, "entrustment_withdrawn")
        r = await refresh(api, op, tokens["refresh_token"])
        assert (r.status_code, r.json()["code"]) == (400, "entrustment_withdrawn")
    # the delete page (the account itself stays: deleting is tested over HTTP)
    await page.goto("/me/delete")
    assert await page.get_by_role("button", name=label["delete"]).is_visible()
    await _check(page, shots, "delete", language)


TABS = {
    "zh": {
        "history": "积分明细",
        "behaviours": "我的低碳行为",
        "orders": "订单与券码",
        "cancel": "取消订单…",
        "confirm": "取消订单",
    },
    "en": {
        "history": "Points history",
        "behaviours": "My behaviours",
        "orders": "Orders and vouchers",
        "cancel": "Cancel this order…",
        "confirm": "Cancel the order",
    },
}


@pytest.mark.parametrize("language", [code for code, _ in LANGUAGES])
async def test_a_person_reads_their_points_history_and_shows_a_voucher(
    app, page, live_server, shots, language
):
    label, tab = LABELS[language], TABS[language]
    number = phone()
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as api:
        await ensure_rule()
        authority = await authority_token(api)
        op = await make_operator(api, authority)
        btype = await make_methodology(factor="1000")
        u = await enrol(api, op, number=number)
        person = Person(
            u["external_user_id"], u["user_id"], await user_headers(api, op, u["external_user_id"]), op
        )
        await fund(api, op, btype, [person], 200)
        item = await make_item(api, await make_merchant(api, authority), points_price=50)
        order = (await place(api, person, item["id"])).json()
        other = await make_operator(api, authority)  # a second app, that has recorded nothing yet
        await enrol(api, other, number=number)
    if language == "en":
        await page.goto("/")
        await page.get_by_role("button", name="English").click()
        await page.wait_for_load_state()
    await page.goto("/me/sign-in")
    await page.get_by_label(label["phone"]).fill(number)
    await page.get_by_role("button", name=label["send"]).click()
    await _code(page, label, number)
    await page.wait_for_url(re.compile(r"/me$"))
    await _check(page, shots, "overview", language)

    await page.get_by_role("link", name=tab["history"], exact=True).click()
    await page.wait_for_url(re.compile(r"/me/history$"))
    rows = page.locator("#history tbody tr")
    assert await rows.count() == 2  # the order's spend, then the earning
    assert (await rows.nth(0).locator("td").nth(1).inner_text()).strip() == "−50"
    assert (await rows.nth(1).locator("td").nth(1).inner_text()).strip() == "+200"
    await _check(page, shots, "history", language)
    # the second app's share: nothing yet
    await page.locator("#f-app").select_option(other.id)
    await page.locator("form.filters button").click()
    await page.wait_for_url(re.compile(rf"/me/history\?app={other.id}$"))
    assert (
        await page.locator("#history tbody tr td.muted").inner_text()
        == {"zh": "该应用还没有相关记录。", "en": "Nothing from this app yet."}[language]
    )
    await _check(page, shots, "history-one-app", language)

    await page.get_by_role("link", name=tab["behaviours"], exact=True).click()
    await page.wait_for_url(re.compile(r"/me/behaviours$"))
    assert await page.locator("#behaviours tbody tr").count() == 1
    await _check(page, shots, "behaviours", language)

    await page.get_by_role("link", name=tab["orders"], exact=True).click()
    await page.wait_for_url(re.compile(r"/me/orders$"))
    await _check(page, shots, "orders", language)
    await page.locator(f'#orders a[href="/me/orders/{order["id"]}"]').click()
    await page.wait_for_url(re.compile(rf"/me/orders/{order['id']}$"))
    assert await page.locator("#voucher-code").inner_text() == order["voucher"]["code"]
    assert await page.locator("img.me-voucher__qr").evaluate("img => img.complete && img.naturalWidth > 0")
    await _check(page, shots, "voucher", language)
    # the person changes their mind: a confirmation, then the points back
    await page.get_by_role("link", name=tab["cancel"], exact=True).click()
    await page.wait_for_url(re.compile(rf"/me/orders/{order['id']}/cancel$"))
    await _check(page, shots, "cancel", language)
    await page.get_by_role("button", name=tab["confirm"], exact=True).click()
    await page.wait_for_url(re.compile(rf"/me/orders/{order['id']}\?cancelled=1$"))
    assert await page.locator("#cancelled-notice").is_visible()
    assert await page.locator("#voucher-code").count() == 0
    await _check(page, shots, "cancelled", language)
    # the voucher's image, from a tab kept open or a bookmark, is gone with it: a page that says so
    page.record.error_status_expected = True  # the page answers 409
    response = await page.goto(f"/me/orders/{order['id']}/voucher.svg")
    assert response is not None and response.status == 409
    heading = {"zh": "此操作已无法进行", "en": "This can no longer be done"}[language]
    assert await page.get_by_role("heading", level=1).inner_text() == heading
    await _check(page, shots, "voucher-closed", language)
