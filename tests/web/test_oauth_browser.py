"""A person confirms their entrustment of an operator's app in a real browser (Chromium), as they would:
phone number, the one-time code (read here from the development outbox), the consent screen, and
back to the app with a code the operator exchanges. Axe on every page, screenshots at 375 and
1280 px in both languages (/tmp/shots/oauth-*.png)."""

import re
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.factories import bearer, make_operator
from tests.factories_points import phone
from tests.oauth_flow import exchange, pkce
from tests.web.helpers import LANGUAGES
from tests.web.test_web_browser import axe_violations

pytestmark = pytest.mark.commits


async def _operator(live_server: str):
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as api:
        op = await make_operator(api)
        redirect = f"{live_server}/app-callback"  # loopback http: allowed outside production
        r = await api.post(
            f"/v1/organizations/{op.id}/redirect-uris",
            json={"uri": redirect},
            headers=bearer(op.extra["admin_token"]),
        )
        assert r.status_code == 201, r.text
    op.extra["redirect"] = redirect
    return op


async def _check(page, shots, name: str, language: str) -> None:
    for width, height in ((375, 812), (1280, 800)):
        await page.set_viewport_size({"width": width, "height": height})
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} ({language}) scrolls sideways at {width} px"
        assert await axe_violations(page) == [], f"{name} ({language}, {width})"
        await page.screenshot(path=str(shots / f"oauth-{name}-{language}-{width}.png"), full_page=True)


async def _outbox_code(page, number_masked: str) -> str:
    reader = await page.context.new_page()
    await reader.goto("/dev/outbox")
    row = reader.locator(f'li[data-recipient="{number_masked}"]').first
    text = await row.inner_text()
    await reader.close()
    return re.search(r"\b(\d{6})\b", text).group(1)


@pytest.mark.parametrize("language", [code for code, _ in LANGUAGES])
async def test_a_person_confirms_their_entrustment(app, page, live_server, shots, language):
    from app.core import sms

    op = await _operator(live_server)
    verifier, challenge = pkce()
    state = uuid.uuid4().hex
    query = urlencode(
        {
            "response_type": "code",
            "client_id": op.id,
            "redirect_uri": op.extra["redirect"],
            "scope": "behaviours:submit account:read mall",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    await page.set_viewport_size({"width": 375, "height": 812})
    assert (await page.goto(f"/oauth/authorize?{query}")).status == 200
    labels = {
        "zh": ("手机号码", "发送验证码", "验证码", "继续", "同意并继续"),
        "en": ("Mobile phone number", "Send me a code", "One-time code", "Continue", "Agree and continue"),
    }[language]
    if language == "en":
        await page.get_by_role("button", name="English").click()
        await page.wait_for_load_state()
    await _check(page, shots, "phone", language)
    number = phone()
    # a wrong number first: refused beside the field, what was typed kept
    await page.get_by_label(labels[0]).fill("12345")
    await page.get_by_role("button", name=labels[1]).click()
    await page.wait_for_load_state()
    page.record.error_status_expected = True
    assert await page.locator("#f-phone-error").is_visible()
    assert await page.get_by_label(labels[0]).input_value() == "12345"
    await _check(page, shots, "phone-refused", language)
    await page.get_by_label(labels[0]).fill(number)
    await page.get_by_role("button", name=labels[1]).click()
    await page.wait_for_url(re.compile(r"/oauth/authorize/[0-9a-f-]+/code$"))
    await _check(page, shots, "code", language)
    code = await _outbox_code(page, sms.mask(number))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    await page.get_by_label(labels[2]).fill(wrong)
    await page.get_by_role("button", name=labels[3]).click()
    await page.wait_for_load_state()
    assert await page.locator("#f-code-error").is_visible()
    await _check(page, shots, "code-wrong", language)
    await page.get_by_label(labels[2]).fill(code)
    await page.get_by_role("button", name=labels[3]).click()
    await page.wait_for_url(re.compile(r"/consent$"))
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert urlsplit(op.extra["redirect"]).netloc in await page.locator("main").inner_text()
    assert heading  # names the operator
    await _check(page, shots, "consent", language)
    await page.get_by_role("button", name=labels[4]).click()
    await page.wait_for_url(re.compile(r"/app-callback\?"))
    back = parse_qs(urlsplit(page.url).query)
    assert back["state"] == [state]
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as api:
        r = await exchange(api, op, back["code"][0], verifier)
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == "behaviours:submit account:read mall"


@pytest.mark.parametrize("language", [code for code, _ in LANGUAGES])
async def test_an_unregistered_redirect_uri_is_a_page(app, page, live_server, shots, language):
    op = await _operator(live_server)
    _, challenge = pkce()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": op.id,
            "redirect_uri": op.extra["redirect"] + "/evil",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    if language == "en":
        await page.goto("/")
        await page.get_by_role("button", name="English").click()
        await page.wait_for_load_state()
    page.record.error_status_expected = True
    assert (await page.goto(f"/oauth/authorize?{query}")).status == 400
    assert "/oauth/authorize" in page.url
    await _check(page, shots, "refused", language)
    assert (await page.goto("/dev/outbox")).status == 200
    await _check(page, shots, "outbox", language)
