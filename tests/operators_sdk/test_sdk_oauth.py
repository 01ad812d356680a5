"""The SDK's and the command line's half of the authorization code flow, against the fake platform:
the authorize URL with PKCE and state, the code exchange, the kept and rotated refresh token, user
tokens from it, redirect URIs, and the refusals with their codes."""

import json
import stat
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from carbon_operator import (
    AsyncPlatformClient,
    AuthorizationRequest,
    ConfigurationError,
    GrantError,
    MemoryTokenStore,
    NotAuthorizedError,
    PlatformClient,
    RetryPolicy,
    StateMismatchError,
    TokenSet,
    code_challenge,
)
from carbon_operator.cli import app
from jose import jwt
from typer.testing import CliRunner

from tests.operators_sdk.conftest import ADMIN, BASE_URL

CALLBACK = "https://app.example.cn/oauth/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def platform(fake, client_id, operator_key, no_sleep):
    fake.redirect_uris[1] = CALLBACK
    client = PlatformClient(
        BASE_URL, client_id=client_id, key=operator_key, transport=fake.transport, sleep=no_sleep
    )
    yield client
    client.close()


def approve(fake, request: AuthorizationRequest, user_id: str | None = None) -> tuple[str, str]:
    returned = query(fake.authorize(request.url, user_id))
    return returned["code"], returned["state"]


class TestAuthorizeUrl:
    def test_carries_pkce_s256_a_random_state_and_the_exact_redirect_uri(self, platform, client_id):
        request = platform.authorization_request(CALLBACK)
        assert request.url.startswith(f"{BASE_URL}/oauth/authorize?")
        assert query(request.url) == {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": "behaviours:submit account:read",
            "state": request.state,
            "code_challenge": code_challenge(request.code_verifier),
            "code_challenge_method": "S256",
        }
        assert 43 <= len(request.code_verifier) <= 128 and len(request.state) >= 32
        again = platform.authorization_request(CALLBACK)
        assert again.state != request.state and again.code_verifier != request.code_verifier

    def test_the_s256_challenge_of_rfc_7636_appendix_b(self):
        assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        )

    def test_scopes_are_checked_and_kept_in_order(self, platform):
        assert query(platform.authorization_request(CALLBACK, ["mall", "account:read"]).url)["scope"] == (
            "mall account:read"
        )
        with pytest.raises(ValueError, match="scope may name only"):
            platform.authorization_request(CALLBACK, "behaviours:submit points:transfer")

    def test_needs_the_client_id(self, fake):
        with (
            PlatformClient(BASE_URL, transport=fake.transport) as client,
            pytest.raises(ConfigurationError),
        ):
            client.authorization_request(CALLBACK)

    def test_state_check(self, platform):
        request = platform.authorization_request(CALLBACK, state="s-1")
        assert request.check_state("s-1")
        assert not request.check_state("s-2") and not request.check_state(None)


class TestExchange:
    def test_the_code_with_the_client_assertion_redirect_uri_and_verifier(
        self, platform, fake, client_id, operator_key
    ):
        request = platform.authorization_request(CALLBACK)
        code, state = approve(fake, request, "u-1")
        tokens = platform.complete_authorization(request, code, state, external_user_id="rider-1")
        assert isinstance(tokens, TokenSet)
        assert (tokens.access_token, tokens.user_id, tokens.external_user_id) == (
            "user-tok-1",
            "u-1",
            "rider-1",
        )
        assert tokens.scopes == ["behaviours:submit", "account:read"] and tokens.expires_in == 900
        (form,) = fake.person_grants
        assert {k: v for k, v in form.items() if k != "client_assertion"} == {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": request.code_verifier,
            "external_user_id": "rider-1",
            "client_assertion_type": ASSERTION_TYPE,
        }
        claims = jwt.decode(
            form["client_assertion"],
            operator_key.public_jwk(),
            algorithms=["ES256"],
            audience=f"{BASE_URL}/v1/auth/token",
        )
        assert claims["iss"] == claims["sub"] == client_id
        assert platform.tokens.load("rider-1") == tokens

    def test_a_wrong_state_is_refused_before_anything_is_sent(self, platform, fake):
        request = platform.authorization_request(CALLBACK)
        code, _ = approve(fake, request)
        with pytest.raises(StateMismatchError):
            platform.complete_authorization(request, code, "forged")
        assert fake.person_grants == [] and not fake.codes[code].used

    def test_a_reused_code_is_refused_with_its_code(self, platform, fake):
        request = platform.authorization_request(CALLBACK)
        code, _ = approve(fake, request)
        first = platform.exchange_code(code, CALLBACK, request.code_verifier)
        with pytest.raises(GrantError) as refused:
            platform.exchange_code(code, CALLBACK, request.code_verifier)
        assert (refused.value.status, refused.value.code, refused.value.reauthorize) == (
            400,
            "code_reused",
            True,
        )
        with pytest.raises(GrantError) as revoked:  # what the first exchange issued is revoked
            platform.refresh(first.refresh_token)
        assert revoked.value.code == "token_revoked"

    def test_a_wrong_verifier_or_redirect_uri(self, platform, fake):
        request = platform.authorization_request(CALLBACK)
        code, _ = approve(fake, request)
        with pytest.raises(GrantError) as wrong:
            platform.exchange_code(code, CALLBACK, "x" * 64)
        assert (wrong.value.code, wrong.value.reauthorize) == ("invalid_code_verifier", False)
        with pytest.raises(GrantError) as other:
            platform.exchange_code(code, CALLBACK + "/", request.code_verifier)
        assert other.value.code == "redirect_uri_mismatch"
        assert platform.exchange_code(code, CALLBACK, request.code_verifier).access_token

    def test_no_answer_is_not_retried_a_code_works_once(self, client_id, operator_key, no_sleep):
        calls = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            raise httpx.ConnectError("reset")

        with (
            PlatformClient(
                BASE_URL,
                client_id=client_id,
                key=operator_key,
                transport=httpx.MockTransport(handler),
                sleep=no_sleep,
                retry=RetryPolicy(attempts=5),
            ) as client,
            pytest.raises(Exception, match="connection_error"),
        ):
            client.exchange_code("c", CALLBACK, "v" * 43)
        assert len(calls) == 1


class TestRefresh:
    def test_rotates_and_the_old_refresh_token_is_refused_with_its_code(self, platform, fake):
        request = platform.authorization_request(CALLBACK)
        code, _ = approve(fake, request, "u-2")
        first = platform.exchange_code(code, CALLBACK, request.code_verifier)
        second = platform.refresh(first.refresh_token)
        assert second.refresh_token != first.refresh_token and second.access_token != first.access_token
        assert (second.user_id, second.external_user_id) == ("u-2", "u-2")
        assert platform.tokens.load("u-2") == second
        with pytest.raises(GrantError) as reused:
            platform.refresh(first.refresh_token)
        assert (reused.value.status, reused.value.code) == (400, "refresh_token_reused")
        with pytest.raises(GrantError) as family:  # the whole family is revoked
            platform.refresh(second.refresh_token)
        assert family.value.code == "token_revoked"

    async def test_user_tokens_come_from_the_kept_refresh_token(
        self, fake, client_id, operator_key, no_sleep
    ):
        fake.redirect_uris[1] = CALLBACK
        now = [time.time()]  # the fake checks the assertions' expiry against the real clock
        store = MemoryTokenStore()
        async with AsyncPlatformClient(
            BASE_URL,
            client_id=client_id,
            key=operator_key,
            transport=fake.transport,
            sleep=no_sleep,
            clock=lambda: now[0],
            token_store=store,
        ) as client:
            request = client.authorization_request(CALLBACK)
            code, state = approve(fake, request, "u-3")
            first = await client.complete_authorization(request, code, state)
            assert first.obtained_at == now[0] and first.expires_at == now[0] + 900
            assert await client.user_access_token("u-3") == first.access_token  # still fresh
            now[0] += 850  # less than a minute left
            renewed = await client.user_access_token("u-3")
            kept = store.load("u-3")
            assert kept is not None and renewed == kept.access_token != first.access_token
            assert kept.refresh_token != first.refresh_token
            assert [f["grant_type"] for f in fake.person_grants] == ["authorization_code", "refresh_token"]
            assert fake.person_grants[1]["refresh_token"] == first.refresh_token

            fake.withdrawn.add("u-3")
            now[0] += 900
            with pytest.raises(GrantError) as withdrawn:
                await client.user_access_token("u-3")
            assert (withdrawn.value.code, withdrawn.value.reauthorize) == ("entrustment_withdrawn", True)
            assert store.load("u-3") is None and len(store) == 0
            with pytest.raises(NotAuthorizedError):
                await client.user_access_token("u-3")


class TestRedirectUris:
    def test_add_list_remove(self, platform, fake):
        fake.redirect_uris.clear()
        added = platform.add_redirect_uri(
            "http://127.0.0.1:8765/callback", username=ADMIN[0], password=ADMIN[1]
        )
        assert (added.id, added.uri) == (1, "http://127.0.0.1:8765/callback")
        second = platform.add_redirect_uri(CALLBACK, username=ADMIN[0], password=ADMIN[1])
        listed = platform.list_redirect_uris(username=ADMIN[0], password=ADMIN[1])
        assert [(u.id, u.uri) for u in listed] == [(1, "http://127.0.0.1:8765/callback"), (2, CALLBACK)]
        removed = platform.remove_redirect_uri(second.id, username=ADMIN[0], password=ADMIN[1])
        assert removed.uri == CALLBACK and fake.redirect_uris == {1: "http://127.0.0.1:8765/callback"}
        posts = [r for r in fake.requests if r.method == "POST" and r.url.path.endswith("/redirect-uris")]
        assert [json.loads(r.content) for r in posts] == [
            {"uri": "http://127.0.0.1:8765/callback"},
            {"uri": CALLBACK},
        ]
        assert all(r.headers["authorization"].startswith("Bearer tok-") for r in posts)


class TestCommandLine:
    @pytest.fixture
    def cli(self, tmp_path, client_id, operator_key, fake, no_sleep):
        key = operator_key.save(tmp_path / "operator-key.pem")
        runner = CliRunner(
            env={"CARBON_BASE_URL": None, "CARBON_CLIENT_ID": None, "CARBON_OPERATOR_KEY": None}
        )

        def invoke(*args: str, **kwargs):
            return runner.invoke(
                app,
                ["--base-url", BASE_URL, "--client-id", client_id, "--key", str(key), *args],
                obj={"transport": fake.transport, "sleep": no_sleep},
                **kwargs,
            )

        return invoke

    def test_authorize_exchange_refresh_and_the_reused_refresh_token(self, cli, fake, tmp_path):
        fake.redirect_uris[1] = CALLBACK
        started = cli("authorize-url", "--redirect-uri", CALLBACK, "--scope", "account:read")
        assert started.exit_code == 0, started.output
        printed = json.loads(started.stdout)
        assert set(printed) == {"url", "state", "code_verifier", "redirect_uri", "scope"}
        assert query(printed["url"])["state"] == printed["state"]
        assert query(printed["url"])["code_challenge"] == code_challenge(printed["code_verifier"])
        assert query(printed["url"])["scope"] == printed["scope"] == "account:read"
        returned = query(fake.authorize(printed["url"], "u-9"))

        tokens_file = tmp_path / "tokens.json"
        exchanged = cli(
            "exchange-code", returned["code"], "--redirect-uri", CALLBACK,
            "--verifier", printed["code_verifier"], "--tokens", str(tokens_file),
        )  # fmt: skip
        assert exchanged.exit_code == 0, exchanged.output
        first = TokenSet.model_validate_json(exchanged.stdout)
        assert first.user_id == "u-9" and first.scope == "account:read"
        assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
        assert TokenSet.model_validate_json(tokens_file.read_text()) == first

        rotated = cli("refresh", "--tokens", str(tokens_file))
        assert rotated.exit_code == 0, rotated.output
        second = TokenSet.model_validate_json(rotated.stdout)
        assert second.refresh_token != first.refresh_token
        assert TokenSet.model_validate_json(tokens_file.read_text()) == second

        reused = cli("refresh", "--", first.refresh_token)  # a token may begin with "-"
        assert reused.exit_code == 1
        assert "400 refresh_token_reused" in reused.stderr

    @pytest.mark.parametrize("value", ["-R" + "x" * 41, "--" + "y" * 41, "-_" + "z" * 41])
    def test_a_code_or_refresh_token_beginning_with_a_dash_is_the_argument(self, cli, fake, tmp_path, value):
        # the platform's codes and refresh tokens are random URL-safe text: one in 64 begins with "-"
        fake.redirect_uris[1] = CALLBACK
        printed = json.loads(
            cli("authorize-url", "--redirect-uri", CALLBACK, "--scope", "account:read").stdout
        )
        fake.next_codes.append(value)
        fake.next_refresh_tokens.extend([value + "-1", "second-refresh"])
        assert query(fake.authorize(printed["url"], "u-7"))["code"] == value
        tokens_file = tmp_path / "tokens.json"
        exchanged = cli(
            "exchange-code", value, "--redirect-uri", CALLBACK, "--verifier", printed["code_verifier"],
            "--tokens", str(tokens_file),
        )  # fmt: skip
        assert exchanged.exit_code == 0, exchanged.output
        assert TokenSet.model_validate_json(exchanged.stdout).refresh_token == value + "-1"
        assert fake.person_grants[-1]["code"] == value

        rotated = cli("refresh", value + "-1")  # without "--"
        assert rotated.exit_code == 0, rotated.output
        assert TokenSet.model_validate_json(rotated.stdout).refresh_token == "second-refresh"
        assert fake.person_grants[-1]["refresh_token"] == value + "-1"
        reused = cli("refresh", value + "-1", "--tokens", str(tokens_file))
        assert reused.exit_code == 1 and "400 refresh_token_reused" in reused.stderr

    def test_a_persons_id_beginning_with_a_dash_is_the_argument(self, cli, fake):
        result = cli("user-token", "-42")
        assert fake.requests[-1].method == "POST"
        assert fake.requests[-1].url.path == "/v1/operator/users/-42/tokens", result.output

    def test_an_unknown_option_is_still_refused(self, cli):
        # taking a value that begins with "-" must not turn a mistyped option into one
        result = cli("exchange-code", "the-code", "--redirect-uri", CALLBACK, "--verifer", "v")
        assert result.exit_code == 2 and "Missing option '--verifier'" in result.output
        for args in (
            ("exchange-code", "the-code", "--redirect-uri", CALLBACK, "--verifier", "v", "--tokns", "f"),
            ("refresh", "a-token", "--tokns", "f"),
        ):
            result = cli(*args)
            # the error box wraps at the terminal's width
            said = " ".join(result.output.replace("│", " ").split())
            assert result.exit_code == 2 and "(--tokns f)" in said, result.output

    def test_redirect_uris_add_list_remove(self, cli, fake):
        added = cli("redirect-uris", "add", CALLBACK, "--username", ADMIN[0], "--password", ADMIN[1])
        assert added.exit_code == 0, added.output
        assert f"redirect URI 1 registered: {CALLBACK}" in added.stdout
        listed = cli("redirect-uris", "list", "--username", ADMIN[0], input=f"{ADMIN[1]}\n")
        assert listed.exit_code == 0, listed.output
        assert CALLBACK in listed.stdout
        removed = cli("redirect-uris", "remove", "1", "--username", ADMIN[0], "--password", ADMIN[1])
        assert removed.exit_code == 0, removed.output
        assert f"redirect URI 1 removed: {CALLBACK}" in removed.stdout and fake.redirect_uris == {}
        missing = cli("redirect-uris", "remove", "1", "--username", ADMIN[0], "--password", ADMIN[1])
        assert missing.exit_code == 1 and "404 redirect_uri_not_found" in missing.stderr

    def test_refresh_needs_a_token(self, cli):
        result = cli("refresh")
        assert result.exit_code == 1 and "--tokens" in result.stderr
