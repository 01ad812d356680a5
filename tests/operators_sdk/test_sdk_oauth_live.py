"""The SDK's authorization code flow against a real server process, as an operator's app lives it:
register the redirect URI, build the authorize URL, the person walks the pages over HTTP (phone,
the one-time code from the development outbox, consent), exchange the code, refresh (rotation),
and the old refresh token used again is refused with its code."""

from urllib.parse import parse_qs, urlsplit

import httpx
from carbon_operator import AsyncPlatformClient, GrantError, OperatorKey, TokenSet

from tests.factories import PASSWORD, make_operator
from tests.factories_points import phone
from tests.oauth_flow import REDIRECT, Started, consent_to
from tests.operators_sdk.test_sdk_cli_live import live_server  # noqa: F401 (the server fixture)


async def test_register_authorize_exchange_refresh_and_reuse(client, live_server):  # noqa: F811
    op = await make_operator(client)
    key = OperatorKey.from_pem(op.private_pem)
    async with (
        AsyncPlatformClient(live_server, client_id=op.id, key=key) as sdk,
        httpx.AsyncClient(base_url=live_server) as browser,
    ):
        added = await sdk.add_redirect_uri(REDIRECT, username=op.admin_username, password=PASSWORD)
        assert added.uri == REDIRECT
        listed = await sdk.list_redirect_uris(username=op.admin_username, password=PASSWORD)
        assert [(u.id, u.uri) for u in listed] == [(added.id, REDIRECT)]

        request = sdk.authorization_request(REDIRECT)
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        started = Started(op, request.code_verifier, request.code_challenge, request.state, params)
        assert request.url == live_server + started.url  # the person opens exactly the SDK's URL

        location = await consent_to(browser, started, phone())
        assert location.startswith(REDIRECT + "?")
        returned = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert set(returned) == {"code", "state"} and returned["state"] == request.state

        first = await sdk.complete_authorization(request, returned["code"], returned["state"])
        assert isinstance(first, TokenSet)
        assert first.token_type == "bearer" and first.scope == "behaviours:submit account:read"
        assert first.external_user_id == first.user_id and first.expires_in > 0
        assert sdk.tokens.load(first.user_id) == first
        me = await browser.get("/v1/me/account", headers={"Authorization": f"Bearer {first.access_token}"})
        assert me.status_code == 200, me.text

        second = await sdk.refresh(first.refresh_token)
        assert second.refresh_token != first.refresh_token
        assert (second.user_id, second.external_user_id, second.scope) == (
            first.user_id,
            first.external_user_id,
            first.scope,
        )
        assert sdk.tokens.load(first.user_id) == second

        try:
            await sdk.refresh(first.refresh_token)
        except GrantError as exc:
            assert (exc.status, exc.code, exc.reauthorize) == (400, "refresh_token_reused", True)
        else:
            raise AssertionError("the old refresh token was accepted again")
        try:  # its whole family is revoked, the newest refresh token too
            await sdk.refresh(second.refresh_token)
        except GrantError as exc:
            assert (exc.status, exc.code) == (400, "token_revoked")
        else:
            raise AssertionError("the family of a reused refresh token still works")
