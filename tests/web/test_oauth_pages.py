"""The authorization code flow over HTTP (issue 14): a person confirms their own entrustment.

Each bad input of the issue has its test: a clear error (a page, a redirect with an error to a
registered URI, or problem+json) and nothing recorded.
"""

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from app.core import clock, db
from tests.factories import bearer
from tests.factories_points import phone
from tests.oauth_flow import (
    REDIRECT,
    authorize_params,
    consent_to,
    exchange,
    oauth_operator,
    outbox_code,
    post_form,
    query_of,
    refresh,
    send_phone,
)
from tests.web.helpers import HTML


async def _count(sql: str, **params) -> int:
    async with db.session_scope() as session:
        return (await session.execute(sa.text(sql), params)).scalar_one()


async def _entrustments(op_id: str) -> int:
    return await _count("SELECT count(*) FROM entrustments WHERE operator_id = :op", op=op_id)


async def _approved_code(client, op, number: str | None = None):
    started = authorize_params(op)
    location = await consent_to(client, started, number or phone())
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == started.state
    return started, query["code"]


async def test_the_whole_flow(browser_client, client):
    op = await oauth_operator(client)
    number = phone()
    started, code = await _approved_code(browser_client, op, number)
    r = await exchange(client, op, code, started.verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["scope"] == "behaviours:submit account:read"
    assert body["external_user_id"] == body["user_id"]
    row = (
        await _rows(
            "SELECT confirmed_by, agreement_version, confirmed_at IS NOT NULL AS at FROM entrustments WHERE operator_id = :op",
            op=op.id,
        )
    )[0]
    assert tuple(row) == ("person_otp", "2026-11", True)
    r = await client.get("/v1/me/account", headers=bearer(body["access_token"]))
    assert r.status_code == 200, r.text  # a working user token
    # refresh rotates
    r2 = await refresh(client, op, body["refresh_token"])
    assert r2.status_code == 200, r2.text
    assert r2.json()["refresh_token"] != body["refresh_token"] and r2.json()["user_id"] == body["user_id"]
    # the phone number is nowhere in the database
    digits = number[1:]
    assert (
        await _count(
            "SELECT count(*) FROM sms_outbox WHERE recipient LIKE :d OR body LIKE :d", d=f"%{digits}%"
        )
        == 0
    )


async def _rows(sql: str, **params):
    async with db.session_scope() as session:
        return (await session.execute(sa.text(sql), params)).all()


async def test_an_entrustment_asserted_by_the_operator_becomes_confirmed(browser_client, client):
    from tests.factories_points import enrol

    op = await oauth_operator(client)
    number = phone()
    enrolled = await enrol(client, op, number=number)
    started, code = await _approved_code(browser_client, op, number)
    r = await exchange(client, op, code, started.verifier)
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == enrolled["user_id"]
    assert r.json()["external_user_id"] == enrolled["external_user_id"]
    assert await _entrustments(op.id) == 1
    rows = await _rows("SELECT confirmed_by FROM entrustments WHERE operator_id = :op", op=op.id)
    assert rows[0][0] == "person_otp"


@pytest.mark.parametrize(
    "redirect",
    [
        "https://evil.example/cb",  # unregistered
        REDIRECT + "/",  # slightly different
        REDIRECT.upper(),
        REDIRECT + "?next=https://evil.example",
        "https://app.example.cn/oauth/callback/../../evil",
        "https://app.example.cn.evil.example/oauth/callback",
        "https://evil.example#@app.example.cn/oauth/callback",
        "https://app.example.cn@evil.example/oauth/callback",
        "//evil.example/oauth/callback",
        "",
    ],
)
async def test_an_unregistered_redirect_uri_shows_a_page_and_never_redirects(
    browser_client, client, redirect
):
    op = await oauth_operator(client)
    started = authorize_params(op, redirect_uri=redirect)
    r = await browser_client.get(started.url, headers=HTML)
    assert r.status_code == 400
    assert "location" not in r.headers
    assert 'id="authorize-error"' in r.text


async def test_an_unknown_or_unapproved_client_shows_a_page(browser_client, client):
    op = await oauth_operator(client)
    for client_id in ("nope", "00000000-0000-0000-0000-000000000000", None):
        r = await browser_client.get(authorize_params(op, client_id=client_id).url, headers=HTML)
        assert r.status_code == 400 and "location" not in r.headers


async def test_a_duplicated_redirect_uri_shows_a_page(browser_client, client):
    op = await oauth_operator(client)
    url = authorize_params(op).url + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"
    r = await browser_client.get(url, headers=HTML)
    assert r.status_code == 400 and "location" not in r.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "behaviours:submit points:transfer"}, "invalid_scope"),
        ({"scope": "admin"}, "invalid_scope"),
    ],
)
async def test_bad_requests_go_back_to_the_client_with_an_error(browser_client, client, overrides, error):
    op = await oauth_operator(client)
    started = authorize_params(op, **overrides)
    r = await browser_client.get(started.url, headers=HTML)
    assert r.status_code == 303
    assert r.headers["location"].startswith(REDIRECT + "?")
    query = query_of(r.headers["location"])
    assert query["error"] == error and query["state"] == started.state and "code" not in query
    assert (
        await _count("SELECT count(*) FROM oauth_authorization_requests WHERE client_id = :c", c=op.id) == 0
    )


async def test_state_is_required(browser_client, client):
    op = await oauth_operator(client)
    r = await browser_client.get(authorize_params(op, state=None).url, headers=HTML)
    assert r.status_code == 303
    query = query_of(r.headers["location"])
    assert query["error"] == "invalid_request" and "state" not in query


async def test_deny_sends_access_denied_and_records_nothing(browser_client, client):
    op = await oauth_operator(client)
    started = authorize_params(op)
    location = await consent_to(browser_client, started, phone(), decision="deny")
    assert query_of(location) == {"error": "access_denied", "state": started.state}
    assert await _count("SELECT count(*) FROM oauth_authorization_codes WHERE client_id = :c", c=op.id) == 0
    assert await _entrustments(op.id) == 0


async def test_a_reused_code_revokes_what_the_first_use_issued(browser_client, client):
    op = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    first = await exchange(client, op, code, started.verifier)
    assert first.status_code == 200, first.text
    r = await client.get("/v1/me/account", headers=bearer(first.json()["access_token"]))
    assert r.status_code == 200, r.text
    again = await exchange(client, op, code, started.verifier)
    assert (again.status_code, again.json()["code"]) == (400, "code_reused")
    r = await client.get("/v1/me/account", headers=bearer(first.json()["access_token"]))
    assert (r.status_code, r.json()["code"]) == (401, "token_revoked")
    r = await refresh(client, op, first.json()["refresh_token"])
    assert (r.status_code, r.json()["code"]) == (400, "token_revoked")


async def test_an_expired_code_is_refused_and_records_nothing(browser_client, client, monkeypatch):
    op = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    monkeypatch.setattr(clock, "_frozen", clock.now() + timedelta(seconds=61))
    r = await exchange(client, op, code, started.verifier)
    assert (r.status_code, r.json()["code"]) == (400, "code_expired")
    assert await _entrustments(op.id) == 0


async def test_a_code_from_another_client_is_refused(browser_client, client):
    op = await oauth_operator(client)
    other = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    r = await exchange(client, other, code, started.verifier, redirect=REDIRECT)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_grant")
    assert await _entrustments(other.id) == 0 and await _entrustments(op.id) == 0
    r = await exchange(client, op, code, started.verifier)  # the code was not spent by the other client
    assert r.status_code == 200, r.text


async def test_a_wrong_verifier_or_redirect_uri_is_refused(browser_client, client):
    op = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    r = await exchange(client, op, code, "x" * 43)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_code_verifier")
    r = await exchange(client, op, code, started.challenge)  # the challenge is not the verifier
    assert (r.status_code, r.json()["code"]) == (400, "invalid_code_verifier")
    r = await exchange(client, op, code, started.verifier, redirect=REDIRECT + "/")
    assert (r.status_code, r.json()["code"]) == (400, "redirect_uri_mismatch")
    r = await exchange(client, op, code, "")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    assert await _entrustments(op.id) == 0


async def test_the_token_request_needs_the_client_assertion(browser_client, client):
    op = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": started.verifier,
        },
    )
    assert (r.status_code, r.json()["code"]) == (401, "malformed_assertion")
    assert await _entrustments(op.id) == 0


async def test_one_time_codes_cannot_be_brute_forced(browser_client, client):
    op = await oauth_operator(client)
    started = authorize_params(op)
    number = phone()
    r = await send_phone(browser_client, started, number)
    code_page = r.headers["location"]
    right = await outbox_code(browser_client, number)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        r = await post_form(browser_client, code_page, code_page, code=wrong)
        assert r.status_code == 400
        assert 'id="f-code-error"' in r.text
        assert f"还可以再试 {left} 次" in r.text
    r = await post_form(browser_client, code_page, code_page, code=wrong)  # the fifth: no tries left
    assert r.status_code == 400 and 'id="code-error"' in r.text
    r = await browser_client.get(code_page, headers=HTML)  # the page no longer offers the form
    assert r.status_code == 410 and 'id="code-error"' in r.text and 'name="code"' not in r.text
    token_page = await browser_client.get("/", headers=HTML)
    from tests.web.helpers import csrf_token

    r = await browser_client.post(
        code_page, data={"csrf_token": csrf_token(token_page.text), "code": right}, headers=HTML
    )
    assert r.status_code == 400  # even the right code: too late
    assert await _count("SELECT count(*) FROM oauth_authorization_codes WHERE client_id = :c", c=op.id) == 0


async def test_codes_to_one_phone_are_rate_limited(browser_client, client, settings, monkeypatch):
    monkeypatch.setattr(settings, "otp_per_phone_per_hour", 2)
    op = await oauth_operator(client)
    number = phone()
    for _ in range(2):
        r = await send_phone(browser_client, authorize_params(op), number)
        assert r.status_code == 303
    r = await send_phone(browser_client, authorize_params(op), number)
    assert r.status_code == 429 and "retry-after" in r.headers
    assert 'id="f-phone-error"' in r.text


async def test_a_bad_phone_number_is_refused_beside_the_field(browser_client, client):
    op = await oauth_operator(client)
    r = await send_phone(browser_client, authorize_params(op), "12345")
    assert r.status_code == 400 and 'id="f-phone-error"' in r.text
    assert 'value="12345"' in r.text


async def test_consent_cannot_be_replayed_by_another_browser_or_operator(browser_client, client, app):
    op = await oauth_operator(client)
    other = await oauth_operator(client)
    started = authorize_params(op)
    number = phone()
    r = await send_phone(browser_client, started, number)
    code_page = r.headers["location"]
    request_path = code_page.rsplit("/", 1)[0]
    r = await post_form(browser_client, code_page, code_page, code=await outbox_code(browser_client, number))
    assert r.status_code == 303
    # another browser (another operator's page, say) cannot use the verified request
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML) as stranger:
        r = await stranger.get(f"{request_path}/consent")
        assert r.status_code == 404
        r = await post_form(stranger, f"{request_path}/consent", "/", decision="approve")
        assert r.status_code == 404 and "location" not in r.headers
    # the request is the first operator's: a code from it is refused to the other
    r = await post_form(
        browser_client, f"{request_path}/consent", f"{request_path}/consent", decision="approve"
    )
    code = query_of(r.headers["location"])["code"]
    r = await exchange(client, other, code, started.verifier, redirect=REDIRECT)
    assert r.status_code == 400
    # and the decided request cannot be decided again
    r = await post_form(browser_client, f"{request_path}/consent", "/", decision="approve")
    assert r.status_code == 404
    assert await _entrustments(other.id) == 0


async def test_refresh_token_reuse_revokes_the_family(browser_client, client):
    op = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    first = (await exchange(client, op, code, started.verifier)).json()
    second = await refresh(client, op, first["refresh_token"])
    assert second.status_code == 200
    r = await refresh(client, op, first["refresh_token"])
    assert (r.status_code, r.json()["code"]) == (400, "refresh_token_reused")
    r = await refresh(client, op, second.json()["refresh_token"])
    assert (r.status_code, r.json()["code"]) == (400, "token_revoked")


async def test_withdrawal_stops_the_refresh_tokens(browser_client, client):
    op = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    tokens = (await exchange(client, op, code, started.verifier)).json()
    r = await client.delete(f"/v1/operator/users/{tokens['external_user_id']}", headers=op.headers)
    assert r.status_code == 200, r.text
    for _ in range(2):  # the operator is told why, every time it tries
        r = await refresh(client, op, tokens["refresh_token"])
        assert (r.status_code, r.json()["code"]) == (400, "entrustment_withdrawn")


async def test_another_operators_refresh_token_is_refused(browser_client, client):
    op = await oauth_operator(client)
    other = await oauth_operator(client)
    started, code = await _approved_code(browser_client, op)
    tokens = (await exchange(client, op, code, started.verifier)).json()
    r = await refresh(client, other, tokens["refresh_token"])
    assert (r.status_code, r.json()["code"]) == (400, "invalid_grant")
    assert (await refresh(client, op, tokens["refresh_token"])).status_code == 200


async def test_the_outbox_does_not_exist_in_production(browser_client, settings, monkeypatch):
    assert (await browser_client.get("/dev/outbox", headers=HTML)).status_code == 200
    monkeypatch.setattr(settings, "environment", "production")
    r = await browser_client.get("/dev/outbox", headers=HTML)
    assert r.status_code == 404


async def test_the_outbox_cli_refuses_production(settings, monkeypatch, app):
    from typer.testing import CliRunner

    from app.cli import cli

    monkeypatch.setattr(settings, "environment", "production")
    result = CliRunner().invoke(cli, ["sms", "outbox"])
    assert result.exit_code == 1 and "production" in result.output
