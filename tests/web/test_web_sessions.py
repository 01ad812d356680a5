"""Browser sessions: sign-in with the password grant's accounts, cookies, expiry, sign-out, suspension."""

import hashlib
from datetime import timedelta

import sqlalchemy as sa

from app.core import clock, db
from tests.factories import authority_token, bearer, invoke_cli, make_org
from tests.web.helpers import HTML, csrf_token, make_authority_account, make_org_staff, page_token, sign_in

SESSION = "cp_session"


async def _rows(username: str) -> list:
    async with db.session_scope() as session:
        result = await session.execute(
            sa.text(
                "SELECT w.* FROM web_sessions w JOIN staff_users s ON s.id = w.staff_user_id WHERE s.username = :u"
            ),
            {"u": username},
        )
        return list(result.mappings())


def _set_cookie(response, name: str) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return value
    raise AssertionError(f"no Set-Cookie for {name}")


async def _signed_in_as(client) -> bool:
    r = await client.get("/", headers=HTML)
    return 'action="/sign-out"' in r.text


class TestSignIn:
    async def test_a_staff_account_signs_in_and_the_token_is_stored_hashed(self, browser_client):
        username = await make_authority_account()
        r = await sign_in(browser_client, username, next="/?from=sign-in")
        assert r.status_code == 303
        assert r.headers["location"] == "/?from=sign-in"
        cookie = _set_cookie(r, SESSION)
        token = cookie.split(";")[0].split("=", 1)[1]
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=lax", "max-age=43200"} <= attributes
        assert "secure" not in attributes  # plain HTTP here
        rows = await _rows(username)
        assert len(rows) == 1
        assert rows[0]["token_sha256"] == hashlib.sha256(token.encode()).digest()
        assert rows[0]["expires_at"] - rows[0]["created_at"] == timedelta(hours=12)
        page = await browser_client.get("/", headers=HTML)
        assert username in page.text

    async def test_the_cookie_is_secure_over_https(self, app):
        import httpx

        username = await make_authority_account()
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://test", headers=HTML) as client:
            form = await client.get("/sign-in")
            r = await client.post(
                "/sign-in",
                data={
                    "csrf_token": csrf_token(form.text),
                    "username": username,
                    "password": "correct-horse-battery",
                },
            )
        assert r.status_code == 303
        assert "secure" in {a.strip().lower() for a in _set_cookie(r, SESSION).split(";")}
        assert "secure" in {a.strip().lower() for a in _set_cookie(form, "cp_csrf").split(";")}

    async def test_a_wrong_password_re_renders_the_form_with_the_username(self, browser_client):
        username = await make_authority_account()
        r = await sign_in(browser_client, username, password="not-the-password")
        assert r.status_code == 400
        assert "用户名或密码错误。" in r.text
        assert f'value="{username}"' in r.text
        assert SESSION not in r.headers.get("set-cookie", "")
        assert await _rows(username) == []

    async def test_empty_fields_are_named_beside_them(self, browser_client):
        token = await page_token(browser_client, "/sign-in")
        r = await browser_client.post("/sign-in", data={"csrf_token": token, "username": "", "password": ""})
        assert r.status_code == 400
        assert 'id="f-username-error"' in r.text and "请输入用户名。" in r.text
        assert 'aria-describedby="f-password-error"' in r.text

    async def test_the_return_address_must_be_on_this_site(self, browser_client):
        username = await make_authority_account()
        r = await sign_in(browser_client, username, next="//evil.example/steal")
        assert r.headers["location"] == "/console"  # the authority's own landing, never the other host

    async def test_an_organisation_not_yet_approved_cannot_sign_in(self, client, browser_client):
        org = await make_org(client, "merchant", approve=False)
        r = await sign_in(browser_client, org.admin_username)
        assert r.status_code == 403
        assert "您的机构目前未处于已批准状态" in r.text

    async def test_sign_in_shares_the_password_grants_rate_limit(
        self, client, browser_client, settings, monkeypatch
    ):
        monkeypatch.setattr(settings, "login_rate_limit_per_minute", 2)
        username = await make_authority_account()
        for _ in range(2):
            r = await client.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": username, "password": "wrong-pw"},
            )
            assert r.status_code == 400
        r = await sign_in(browser_client, username)
        assert r.status_code == 429
        assert "登录尝试次数过多" in r.text
        assert int(r.headers["retry-after"]) >= 1
        assert await _rows(username) == []


class TestSessionEnds:
    async def test_sign_out_deletes_the_session(self, browser_client):
        username = await make_authority_account()
        await sign_in(browser_client, username)
        assert len(await _rows(username)) == 1
        page = await browser_client.get("/", headers=HTML)
        r = await browser_client.post("/sign-out", data={"csrf_token": csrf_token(page.text)})
        assert r.status_code == 303
        assert "max-age=0" in _set_cookie(r, SESSION).lower()
        assert await _rows(username) == []
        assert not await _signed_in_as(browser_client)

    async def test_suspending_the_organisation_ends_its_sessions(self, client, browser_client):
        authority = await authority_token(client)
        org = await make_org(client, "merchant", authority=authority)
        username = await make_org_staff(org.id)
        await sign_in(browser_client, username)
        assert await _signed_in_as(browser_client)
        r = await client.post(
            f"/v1/organizations/{org.id}/suspend", json={"reason": "test"}, headers=bearer(authority)
        )
        assert r.status_code == 200, r.text
        r = await browser_client.get("/", headers=HTML)
        assert 'action="/sign-out"' not in r.text
        assert "max-age=0" in _set_cookie(r, SESSION).lower()
        assert await _rows(username) == []

    async def test_a_disabled_account_is_signed_out(self, browser_client):
        username = await make_authority_account()
        await sign_in(browser_client, username)
        async with db.session_scope() as session:
            await session.execute(
                sa.text("UPDATE staff_users SET disabled_at = now() WHERE username = :u"), {"u": username}
            )
        assert not await _signed_in_as(browser_client)
        assert await _rows(username) == []

    async def test_an_idle_session_expires(self, browser_client, settings):
        username = await make_authority_account()
        await sign_in(browser_client, username)
        try:
            clock.set_offset(timedelta(minutes=settings.web_session_idle_minutes - 1))
            assert await _signed_in_as(browser_client)  # a request keeps it alive
            clock.set_offset(timedelta(minutes=2 * settings.web_session_idle_minutes - 2))
            assert await _signed_in_as(browser_client)
            clock.set_offset(timedelta(minutes=3 * settings.web_session_idle_minutes))
            assert not await _signed_in_as(browser_client)
        finally:
            clock.set_offset(timedelta(0))
        assert await _rows(username) == []

    async def test_a_session_ends_at_its_absolute_lifetime_however_busy(
        self, browser_client, settings, monkeypatch
    ):
        monkeypatch.setattr(settings, "web_session_idle_minutes", 24 * 60)
        username = await make_authority_account()
        await sign_in(browser_client, username)
        try:
            clock.set_offset(timedelta(hours=settings.web_session_max_hours, minutes=-1))
            assert await _signed_in_as(browser_client)
            clock.set_offset(timedelta(hours=settings.web_session_max_hours))
            assert not await _signed_in_as(browser_client)
        finally:
            clock.set_offset(timedelta(0))

    async def test_the_job_purges_expired_sessions(self, browser_client, settings):
        from app.web import tasks

        username = await make_authority_account()
        await sign_in(browser_client, username)
        await tasks.purge_expired_web_sessions()  # other tests' sessions may be purged too: count not checked
        assert len(await _rows(username)) == 1
        try:
            clock.set_offset(timedelta(hours=settings.web_session_max_hours))
            await tasks.purge_expired_web_sessions()
        finally:
            clock.set_offset(timedelta(0))
        assert await _rows(username) == []

    async def test_signing_in_again_replaces_the_browsers_session(self, browser_client):
        first = await make_authority_account()
        second = await make_authority_account()
        await sign_in(browser_client, first)
        page = await browser_client.get("/sign-in?next=/", headers=HTML)
        assert page.status_code == 303  # already signed in: nothing to do there
        token = csrf_token((await browser_client.get("/", headers=HTML)).text)
        r = await browser_client.post(
            "/sign-in", data={"csrf_token": token, "username": second, "password": "correct-horse-battery"}
        )
        assert r.status_code == 303
        assert await _rows(first) == []
        assert len(await _rows(second)) == 1

    async def test_the_command_line_ends_every_session_of_an_account(self, browser_client, app, run_sync):
        username = await make_authority_account()
        await sign_in(browser_client, username)
        result = await invoke_cli(run_sync, "web", "sign-out", username)
        assert result.exit_code == 0, result.output
        assert f"ended 1 browser sessions of {username}" in result.output
        assert await _rows(username) == []
        assert not await _signed_in_as(browser_client)
