"""The person's own page (``/me``, issue 14) over HTTP: sign-in with phone and one-time code, the page,
withdrawing an entrustment, the export, deleting the account; and the two JSON routes only such a
session may call (``GET /v1/me/export``, ``DELETE /v1/me``)."""

import random
import re
import uuid
from datetime import timedelta
from html import unescape

import httpx
import pytest
import sqlalchemy as sa

from app.core import clock, db
from tests.factories import bearer, person_session
from tests.factories_points import enrol, phone
from tests.oauth_flow import (
    authorize_params,
    consent_to,
    exchange,
    oauth_operator,
    outbox_code,
    query_of,
    refresh,
)
from tests.web.helpers import HTML, csrf_token


@pytest.fixture
def browser(app):
    """A browser of its own address (the per-address budget of one-time codes is its own)."""
    ip = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML, timeout=60)


async def _rows(sql: str, **params):
    async with db.session_scope() as session:
        return (await session.execute(sa.text(sql), params)).all()


async def _entrusted(client, browser, number: str, scope: str = "behaviours:submit account:read"):
    """The person of ``number`` confirms an operator at /oauth/authorize; the operator and its tokens."""
    op = await oauth_operator(client)
    started = authorize_params(op, scope=scope)
    location = await consent_to(browser, started, number)
    r = await exchange(client, op, query_of(location)["code"], started.verifier)
    assert r.status_code == 200, r.text
    return op, r.json()


async def _entrustment_id(op_id: str, user_id: str) -> int:
    rows = await _rows(
        "SELECT id FROM entrustments WHERE operator_id = :op AND user_id = :u", op=op_id, u=uuid.UUID(user_id)
    )
    return rows[0].id


async def _send_phone(browser, number: str) -> httpx.Response:
    r = await browser.get("/me/sign-in")
    assert r.status_code == 200
    return await browser.post("/me/sign-in", data={"csrf_token": csrf_token(r.text), "phone": number})


async def _type_code(browser, code: str) -> httpx.Response:
    r = await browser.get("/me/sign-in/code")
    return await browser.post("/me/sign-in/code", data={"csrf_token": csrf_token(r.text), "code": code})


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


class TestSignIn:
    async def test_phone_then_code_opens_a_session(self, client, browser):
        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        browser.cookies.clear()
        r = await browser.get("/me")
        assert (r.status_code, r.headers["location"]) == (303, "/me/sign-in")
        r = await _send_phone(browser, number)
        assert (r.status_code, r.headers["location"]) == (303, "/me/sign-in/code")
        r = await _type_code(browser, await outbox_code(browser, number))
        assert (r.status_code, r.headers["location"]) == (303, "/me")
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("carbon_me="))
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=7200" in cookie
        rows = await _rows(
            "SELECT user_id, token_sha256 FROM person_sessions WHERE user_id = :u",
            u=uuid.UUID(tokens["user_id"]),
        )
        token = browser.cookies["carbon_me"]
        assert len(rows) == 1 and bytes(rows[0].token_sha256) != token.encode()  # only its digest is kept
        assert (await browser.get("/me")).status_code == 200
        assert (await browser.get("/me/sign-in")).headers["location"] == "/me"

    async def test_a_number_without_an_account_is_told_so_and_nothing_is_created(self, browser):
        number = phone()
        users = (await _rows("SELECT count(*) AS n FROM users"))[0].n
        r = await _send_phone(browser, number)
        assert r.status_code == 303
        r = await _type_code(browser, await outbox_code(browser, number))
        assert r.status_code == 200
        assert 'id="no-account"' in r.text and "carbon_me" not in browser.cookies
        assert (await _rows("SELECT count(*) AS n FROM users"))[0].n == users
        assert (await browser.get("/me")).headers["location"] == "/me/sign-in"

    @pytest.mark.parametrize(
        ("number", "status", "message"),
        [
            ("", 400, "Enter your mobile phone number."),
            ("12345", 400, "This is not a valid mobile phone number."),
        ],
    )
    async def test_a_bad_phone_number_is_refused_beside_the_field(self, browser, number, status, message):
        browser.cookies.set("lang", "en")
        r = await _send_phone(browser, number)
        assert r.status_code == status
        assert f'<p class="field__error" id="f-phone-error">{message}</p>' in r.text
        assert "carbon_me_code" not in browser.cookies

    async def test_a_wrong_code_then_too_many(self, client, browser):
        number = phone()
        await _entrusted(client, browser, number)
        browser.cookies.clear()
        browser.cookies.set("lang", "en")
        await _send_phone(browser, number)
        code = await outbox_code(browser, number)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        r = await _type_code(browser, wrong)
        assert r.status_code == 400 and "The code is wrong. Tries left: 4." in r.text
        for _ in range(4):
            r = await _type_code(browser, wrong)
        assert r.status_code == 400 and "Too many wrong codes. Ask for a new one." in r.text
        assert 'href="/me/sign-in"' in r.text
        r = await browser.get("/me/sign-in/code")  # the right code no longer opens anything
        assert r.status_code == 410 and "This code can no longer be used." in r.text
        assert "carbon_me" not in browser.cookies

    async def test_an_expired_code(self, client, browser, settings):
        number = phone()
        await _entrusted(client, browser, number)
        browser.cookies.clear()
        browser.cookies.set("lang", "en")
        await _send_phone(browser, number)
        code = await outbox_code(browser, number)
        clock.set_offset(timedelta(seconds=settings.otp_ttl_seconds))
        try:
            r = await _type_code(browser, code)
        finally:
            clock.set_offset(timedelta(0))
        assert r.status_code == 400 and "The code has expired. Ask for a new one." in r.text

    async def test_the_code_page_needs_this_browsers_pending_code(self, client, browser):
        assert (await browser.get("/me/sign-in/code")).headers["location"] == "/me/sign-in"
        number = phone()
        await _send_phone(browser, number)
        value = browser.cookies["carbon_me_code"]
        code_id, _, mac = value.partition(".")
        browser.cookies.set(
            "carbon_me_code", f"{uuid.uuid4()}.{mac}"
        )  # another code under this browser's mac
        assert (await browser.get("/me/sign-in/code")).headers["location"] == "/me/sign-in"
        async with httpx.AsyncClient(
            transport=browser._transport, base_url="http://test", headers=HTML
        ) as other:
            other.cookies.set("carbon_me_code", value)  # another browser (its own CSRF seed)
            assert (await other.get("/me/sign-in/code")).headers["location"] == "/me/sign-in"

    async def test_a_form_without_its_csrf_token_is_refused(self, client, browser):
        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        await person_session(browser, number)
        entrustment = await _entrustment_id(op.id, tokens["user_id"])
        for path, data in (
            ("/me/sign-in", {"phone": number}),
            (f"/me/entrustments/{entrustment}/withdraw", {}),
            ("/me/delete", {"confirm": "yes"}),
        ):
            r = await browser.post(path, data=data)
            assert r.status_code == 403, path
        assert (await _rows("SELECT withdrawn_at FROM entrustments WHERE id = :id", id=entrustment))[0][
            0
        ] is None


class TestSessionLifetime:
    async def test_idle_and_absolute_expiry(self, client, browser, settings, monkeypatch):
        number = phone()
        await _entrusted(client, browser, number)
        await person_session(browser, number)
        clock.set_offset(timedelta(minutes=settings.person_session_idle_minutes))
        try:
            r = await browser.get("/me")
        finally:
            clock.set_offset(timedelta(0))
        assert (r.status_code, r.headers["location"]) == (303, "/me/sign-in"), r.headers
        assert any(
            h.startswith("carbon_me=;") or h.startswith('carbon_me="";')
            for h in r.headers.get_list("set-cookie")
        ), (r.headers.get_list("set-cookie"), r.request.headers)
        monkeypatch.setattr(settings, "person_session_idle_minutes", 24 * 60)
        browser.cookies.delete("carbon_me")
        await person_session(browser, number)
        clock.set_offset(timedelta(hours=settings.person_session_max_hours, minutes=-1))
        try:
            assert (await browser.get("/me")).status_code == 200
            clock.set_offset(timedelta(hours=settings.person_session_max_hours))
            assert (await browser.get("/me")).status_code == 303
        finally:
            clock.set_offset(timedelta(0))

    async def test_sign_out_ends_the_session(self, client, browser):
        number = phone()
        await _entrusted(client, browser, number)
        token = await person_session(browser, number)
        r = await browser.post("/me/sign-out", data={"csrf_token": token})
        assert (r.status_code, r.headers["location"]) == (303, "/")
        assert (await browser.get("/me")).headers["location"] == "/me/sign-in"


class TestThePage:
    async def test_it_shows_points_and_every_entrustment(self, client, browser):
        number = phone()
        confirmed, tokens = await _entrusted(client, browser, number, "behaviours:submit account:read mall")
        asserted = await oauth_operator(client)
        person = await enrol(client, asserted, number=number)
        gone = await oauth_operator(client)
        gone_person = await enrol(client, gone, number=number)
        r = await client.delete(f"/v1/operator/users/{gone_person['external_user_id']}", headers=gone.headers)
        assert r.status_code == 200 and person["user_id"] == tokens["user_id"]
        await person_session(browser, number)
        browser.cookies.set("lang", "en")
        r = await browser.get("/me")
        assert r.status_code == 200
        names = {
            org.id: (
                await client.get(f"/v1/organizations/{org.id}", headers=bearer(org.extra["admin_token"]))
            ).json()["name"]
            for org in (confirmed, asserted, gone)
        }
        text = _text(r.text)
        first = await _entrustment_id(confirmed.id, tokens["user_id"])
        second = await _entrustment_id(asserted.id, tokens["user_id"])
        live = re.findall(r'<li class="me-entrustment" id="entrustment-(\d+)">\s*<h3>(.*?)</h3>', r.text)
        assert live == [(str(second), names[asserted.id]), (str(first), names[confirmed.id])]
        assert 'id="balance">0<' in r.text
        assert "You, with a code sent to your phone" in text
        assert "The app's word (you did not confirm it on the platform)" in text
        assert "Order in the platform's points mall for you" in text
        assert "Not recorded: the app enrolled you on its own word" in text
        assert text.count("Agreement version 2026-11") == 1 and text.count("Agreement version v1") == 1
        withdrawn = re.findall(r'<li id="withdrawn-\d+"><strong>(.*?)</strong>', r.text)
        assert withdrawn == [names[gone.id]]
        r = await browser.get("/me", headers={"Accept-Language": "zh-CN"}, cookies={"lang": "zh-CN"})
        assert "我的碳账户" in r.text


class TestWithdraw:
    async def test_the_operator_stops_at_once_and_is_told_at_its_next_refresh(self, client, browser):
        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        user = bearer(tokens["access_token"])
        assert (await client.get("/v1/me/account", headers=user)).status_code == 200
        await person_session(browser, number)
        entrustment = await _entrustment_id(op.id, tokens["user_id"])
        r = await browser.get(f"/me/entrustments/{entrustment}/withdraw")
        assert r.status_code == 200 and f'action="/me/entrustments/{entrustment}/withdraw"' in r.text
        r = await browser.post(
            f"/me/entrustments/{entrustment}/withdraw", data={"csrf_token": csrf_token(r.text)}
        )
        assert (r.status_code, r.headers["location"]) == (303, f"/me?withdrawn={entrustment}")
        page = await browser.get(r.headers["location"])
        assert 'id="withdrawn-notice"' in page.text and f'id="withdrawn-{entrustment}"' in page.text
        assert 'class="me-entrustment"' not in page.text
        r = await client.get("/v1/me/account", headers=user)
        assert (r.status_code, r.json()["code"]) == (401, "entrustment_withdrawn")
        r = await refresh(client, op, tokens["refresh_token"])
        assert (r.status_code, r.json()["code"]) == (400, "entrustment_withdrawn")
        rows = await _rows(
            "SELECT revoked_at IS NOT NULL AS revoked FROM oauth_refresh_tokens WHERE user_id = :u",
            u=uuid.UUID(tokens["user_id"]),
        )
        assert [r.revoked for r in rows] == [True]
        audit = await _rows(
            "SELECT actor, data->>'operator_id' AS op FROM audit_entries WHERE action = 'entrustment.withdrawn'"
            " AND subject_id = :u",
            u=tokens["user_id"],
        )
        assert [(a.actor, a.op) for a in audit] == [(f"user:{tokens['user_id']}", op.id)]
        # withdrawn already: the form goes back to the page, nothing changes
        r = await browser.get(f"/me/entrustments/{entrustment}/withdraw")
        assert (r.status_code, r.headers["location"]) == (303, "/me")

    async def test_another_persons_entrustment_is_a_404_page(self, client, browser):
        mine, theirs = phone(), phone()
        await _entrusted(client, browser, mine)
        op, tokens = await _entrusted(client, browser, theirs)
        other = await _entrustment_id(op.id, tokens["user_id"])
        token = await person_session(browser, mine)
        assert (await browser.get(f"/me/entrustments/{other}/withdraw")).status_code == 404
        r = await browser.post(f"/me/entrustments/{other}/withdraw", data={"csrf_token": token})
        assert r.status_code == 404 and "text/html" in r.headers["content-type"]
        assert (await browser.get("/me/entrustments/99999999999/withdraw")).status_code == 404
        assert (await browser.get("/me/entrustments/nope/withdraw")).status_code == 400
        assert (await _rows("SELECT withdrawn_at FROM entrustments WHERE id = :id", id=other))[0][0] is None
        assert (await client.get("/v1/me/account", headers=bearer(tokens["access_token"]))).status_code == 200


class TestExportAndDelete:
    async def test_the_export_is_exact_and_the_same_on_the_page_and_the_api(self, client, browser):
        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        await person_session(browser, number)
        r = await browser.get("/me/export")
        assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
        row = (
            await _rows(
                "SELECT external_user_id, agreement_version, accepted_at, confirmed_at, scope FROM entrustments"
                " WHERE user_id = :u",
                u=uuid.UUID(tokens["user_id"]),
            )
        )[0]
        assert r.json() == {
            "user_id": tokens["user_id"],
            "entrustments": [
                {
                    "operator_id": op.id,
                    "external_user_id": row.external_user_id,
                    "agreement_version": "2026-11",
                    "accepted_at": row.accepted_at.isoformat().replace("+00:00", "Z"),
                    "withdrawn_at": None,
                    "confirmed_by": "person_otp",
                    "confirmed_at": row.confirmed_at.isoformat().replace("+00:00", "Z"),
                    "scope": "behaviours:submit account:read",
                }
            ],
            "account": {
                "user_id": tokens["user_id"],
                "balance": 0,
                "lifetime_points": 0,
                "lifetime_reduction_g": 0,
                "expiring": [],
            },
            "ledger": [],
            "behaviours": [],
            "orders": [],
            "operator_redemptions": [],
        }
        api = await browser.get("/v1/me/export", headers={"Accept": "application/json"})
        assert api.status_code == 200 and api.json() == r.json()
        audit = await _rows(
            "SELECT actor FROM audit_entries WHERE action = 'user.exported' AND subject_id = :u",
            u=tokens["user_id"],
        )
        assert [a.actor for a in audit] == [f"user:{tokens['user_id']}"] * 2

    async def test_delete_with_a_warning_then_everything_stops(self, client, browser):
        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        await person_session(browser, number)
        browser.cookies.set("lang", "en")
        r = await browser.get("/me/delete")
        assert r.status_code == 200 and "This cannot be undone." in r.text
        token = csrf_token(r.text)
        r = await browser.post("/me/delete", data={"csrf_token": token})
        assert r.status_code == 400 and 'id="f-confirm-error"' in r.text
        assert (await _rows("SELECT deleted_at FROM users WHERE id = :u", u=uuid.UUID(tokens["user_id"])))[0][
            0
        ] is None
        r = await browser.post("/me/delete", data={"csrf_token": token, "confirm": "yes"})
        assert (r.status_code, r.headers["location"]) == (303, "/me/deleted")
        assert (await browser.get("/me/deleted")).status_code == 200
        row = (
            await _rows(
                "SELECT identity_hash, deleted_at FROM users WHERE id = :u", u=uuid.UUID(tokens["user_id"])
            )
        )[0]
        assert row.identity_hash is None and row.deleted_at is not None
        assert (
            await _rows("SELECT id FROM person_sessions WHERE user_id = :u", u=uuid.UUID(tokens["user_id"]))
            == []
        )
        r = await client.get("/v1/me/account", headers=bearer(tokens["access_token"]))
        assert r.status_code == 401
        r = await refresh(client, op, tokens["refresh_token"])
        assert (r.status_code, r.json()["code"]) == (400, "entrustment_withdrawn")
        # deleting twice: the session is gone, the browser is sent to sign in
        r = await browser.post("/me/delete", data={"csrf_token": token, "confirm": "yes"})
        assert (r.status_code, r.headers["location"]) == (303, "/me/sign-in")
        audit = await _rows(
            "SELECT actor FROM audit_entries WHERE action = 'user.deleted' AND subject_id = :u",
            u=tokens["user_id"],
        )
        assert [a.actor for a in audit] == [f"user:{tokens['user_id']}"]


class TestTheJsonRoutesNeedThePersonsSession:
    async def test_an_operators_user_token_is_refused(self, client, browser):
        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        user = bearer(tokens["access_token"])
        for method, path in (("GET", "/v1/me/export"), ("DELETE", "/v1/me")):
            r = await client.request(method, path, headers=user)
            assert (r.status_code, r.headers["content-type"]) == (403, "application/problem+json")
            assert r.json()["code"] == "platform_session_required" and "/me" in r.json()["detail"]
            r = await client.request(method, path)
            assert (r.status_code, r.json()["code"]) == (401, "not_authenticated")
        assert (await client.get("/v1/me/account", headers=user)).status_code == 200  # nothing was deleted

    async def test_the_session_exports_and_deletes_with_its_csrf_token(self, client, browser):
        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        token = await person_session(client, number)
        assert (await client.get("/v1/me/export")).json()["user_id"] == tokens["user_id"]
        r = await client.delete("/v1/me")
        assert (r.status_code, r.json()["code"]) == (403, "csrf_failed")
        wrong = ("x" if token[0] != "x" else "y") + token[1:]  # one character off, never the token itself
        r = await client.delete("/v1/me", headers={"X-CSRF-Token": wrong})
        assert (r.status_code, r.json()["code"]) == (403, "csrf_failed")
        r = await client.delete("/v1/me", headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json()["user_id"] == tokens["user_id"]
        r = await client.delete("/v1/me", headers={"X-CSRF-Token": token})  # twice: the session ended with it
        assert (r.status_code, r.json()["code"]) == (401, "not_authenticated")


class TestPurge:
    async def test_the_job_deletes_exactly_the_expired_rows(self, client, browser):
        from app.users import tasks

        number = phone()
        op, tokens = await _entrusted(client, browser, number)
        user_id = uuid.UUID(tokens["user_id"])
        now = clock.now()
        past, future = now - timedelta(seconds=1), now + timedelta(hours=1)
        entrustment = await _entrustment_id(op.id, tokens["user_id"])
        async with db.session_scope() as session:
            for name, expires in (("old", past), ("new", future)):
                await session.execute(
                    sa.text(
                        "INSERT INTO one_time_codes (id, identity_hash, code_hmac, created_at, expires_at, attempts)"
                        " VALUES (:id, :h, :h, :now, :exp, 0)"
                    ),
                    {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}{name}"),
                        "h": name.encode() * 8,
                        "now": now,
                        "exp": expires,
                    },
                )
                await session.execute(
                    sa.text(
                        "INSERT INTO oauth_authorization_requests (id, browser_sha256, client_id, redirect_uri, scope,"
                        " state, code_challenge, created_at, expires_at) VALUES (:id, :h, :op, 'x', 's', 's', 'c', :now, :exp)"
                    ),
                    {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}req{name}"),
                        "h": name.encode() * 8,
                        "op": uuid.UUID(op.id),
                        "now": now,
                        "exp": expires,
                    },
                )
                await session.execute(
                    sa.text(
                        "INSERT INTO oauth_authorization_codes (code_sha256, client_id, redirect_uri, code_challenge,"
                        " identity_hash, scope, agreement_version, consented_at, expires_at)"
                        " VALUES (:h, :op, 'x', 'c', :h, 's', 'v', :now, :exp)"
                    ),
                    {
                        "h": (name + str(user_id))[:32].encode().ljust(32, b"-"),
                        "op": uuid.UUID(op.id),
                        "now": now,
                        "exp": expires,
                    },
                )
                for kind in ("rotated", "revoked", "live"):
                    await session.execute(
                        sa.text(
                            "INSERT INTO oauth_refresh_tokens (token_sha256, family_id, client_id, user_id, entrustment_id,"
                            " scope, created_at, expires_at, rotated_at, revoked_at)"
                            " VALUES (:h, :fam, :op, :u, :e, 's', :now, :exp, :rot, :rev)"
                        ),
                        {
                            "h": f"{name}{kind}{user_id}"[:32].encode(),
                            "fam": uuid.uuid4(),
                            "op": uuid.UUID(op.id),
                            "u": user_id,
                            "e": entrustment,
                            "now": now - timedelta(days=1),
                            "exp": expires,
                            "rot": now if kind == "rotated" else None,
                            "rev": now if kind == "revoked" else None,
                        },
                    )
            for name, created, expires in (
                ("absolute", now - timedelta(hours=3), past),
                ("idle", now - timedelta(hours=1), future),
                ("fresh", now, future),
            ):
                await session.execute(
                    sa.text(
                        "INSERT INTO person_sessions (id, token_sha256, user_id, created_at, last_seen_at, expires_at, ip,"
                        " user_agent) VALUES (:id, :h, :u, :c, :c, :exp, 'ip', 'ua')"
                    ),
                    {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}{name}"),
                        "h": f"{name}{user_id}"[:32].encode(),
                        "u": user_id,
                        "c": created,
                        "exp": expires,
                    },
                )
        counts = await tasks.purge_expired_sign_ins()
        assert set(counts) == {
            "one_time_codes",
            "authorization_requests",
            "authorization_codes",
            "refresh_tokens",
            "person_sessions",
        }
        assert all(n >= 1 for n in counts.values())
        left = {
            "codes": await _rows(
                "SELECT id FROM one_time_codes WHERE id IN (:a, :b)",
                a=uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}old"),
                b=uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}new"),
            ),
            "requests": await _rows(
                "SELECT id FROM oauth_authorization_requests WHERE client_id = :op AND redirect_uri = 'x'",
                op=uuid.UUID(op.id),
            ),
            "auth_codes": await _rows(
                "SELECT code_sha256 FROM oauth_authorization_codes WHERE client_id = :op AND redirect_uri = 'x'",
                op=uuid.UUID(op.id),
            ),
            "refresh": await _rows(
                "SELECT token_sha256 FROM oauth_refresh_tokens WHERE user_id = :u AND scope = 's'", u=user_id
            ),
            "sessions": await _rows(
                "SELECT id FROM person_sessions WHERE user_id = :u AND ip = 'ip'", u=user_id
            ),
        }
        assert [r.id for r in left["codes"]] == [uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}new")]
        assert [r.id for r in left["requests"]] == [uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}reqnew")]
        assert [bytes(r.code_sha256) for r in left["auth_codes"]] == [
            f"new{user_id}"[:32].encode().ljust(32, b"-")
        ]
        assert {bytes(r.token_sha256) for r in left["refresh"]} == {
            f"{name}{kind}{user_id}"[:32].encode()
            for name, kind in (("new", "rotated"), ("new", "revoked"), ("new", "live"), ("old", "live"))
        }
        assert [r.id for r in left["sessions"]] == [uuid.uuid5(uuid.NAMESPACE_URL, f"{user_id}fresh")]
