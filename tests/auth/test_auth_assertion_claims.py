"""Client assertions (RFC 7523 §3): the audience, the issue time and the not-before time.

The token URL is ``CARBON_PUBLIC_BASE_URL`` + ``/v1/auth/token`` (``http://test/v1/auth/token`` in
the tests). An assertion must name it in ``aud``, carry ``iat``, and be usable now: ``nbf`` and
``iat`` may lie at most ``CLOCK_SKEW_SECONDS`` (30 s) in the future.
"""

import time

import pytest

from app.core import security
from tests.factories import Org, authority_token, make_org, register_key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PROBLEM = "application/problem+json"
TOKEN_URL = "http://test/v1/auth/token"


@pytest.fixture
async def operator(client) -> Org:
    org = await make_org(client, "operator", authority=await authority_token(client))
    await register_key(client, org, "ES256")
    return org


async def token_for(client, assertion: str):
    return await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


async def refused(client, assertion: str, code: str) -> dict:
    r = await token_for(client, assertion)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == code
    assert body["type"] == f"https://carbon-points.dev/problems/{code}"
    return body


async def accepted(client, assertion: str) -> None:
    r = await token_for(client, assertion)
    assert r.status_code == 200, r.text
    assert security.unverified_claims(r.json()["access_token"])["typ"] == "client"


class TestAudience:
    async def test_an_assertion_without_aud_is_refused(self, client, operator):
        body = await refused(client, operator.assertion(aud=None), "invalid_audience")
        assert body["detail"] == f"aud is required and must be {TOKEN_URL}"

    async def test_an_assertion_for_another_endpoint_is_refused(self, client, operator):
        for aud in (
            "https://elsewhere/v1/auth/token",
            "http://test/v1/auth/token/",
            "http://test",
            [TOKEN_URL + "x"],
        ):
            body = await refused(client, operator.assertion(aud=aud), "invalid_audience")
            assert body["detail"] == f"aud must be {TOKEN_URL}"

    async def test_aud_of_the_wrong_type_is_refused(self, client, operator):
        for aud in (123, {"url": TOKEN_URL}, [123]):
            await refused(client, operator.assertion(aud=aud), "invalid_audience")

    async def test_the_token_url_alone_or_among_others_is_accepted(self, client, operator):
        await accepted(client, operator.assertion(aud=TOKEN_URL))
        await accepted(client, operator.assertion(aud=["https://other.example/token", TOKEN_URL]))


class TestIssuedAt:
    async def test_an_assertion_without_iat_is_refused(self, client, operator):
        body = await refused(client, operator.assertion(iat=None), "invalid_claims")
        assert body["detail"] == "claim 'iat' is required"

    async def test_iat_must_be_a_number(self, client, operator):
        for iat in ("now", True, [1], float("nan"), float("inf")):
            body = await refused(client, operator.assertion(iat=iat), "invalid_claims")
            assert body["detail"] == "iat must be a NumericDate (seconds since the epoch)"

    async def test_iat_in_the_future_beyond_the_skew_is_refused(self, client, operator):
        now = int(time.time())
        body = await refused(
            client, operator.assertion(iat=now + 120, exp=now + 180), "assertion_not_yet_valid"
        )
        assert body["detail"] == "iat is in the future (30 seconds of clock skew are allowed)"

    async def test_iat_within_the_skew_is_accepted(self, client, operator):
        now = int(time.time())
        await accepted(client, operator.assertion(iat=now + 10, exp=now + 60))


class TestNotBefore:
    async def test_nbf_in_the_future_is_refused(self, client, operator):
        now = int(time.time())
        body = await refused(
            client, operator.assertion(nbf=now + 120, exp=now + 180), "assertion_not_yet_valid"
        )
        assert body["detail"] == "nbf is in the future (30 seconds of clock skew are allowed)"

    async def test_nbf_within_the_skew_or_past_is_accepted(self, client, operator):
        now = int(time.time())
        await accepted(client, operator.assertion(nbf=now + 10))
        await accepted(client, operator.assertion(nbf=now - 5))

    async def test_nbf_must_be_a_number(self, client, operator):
        for nbf in ("soon", False, float("nan"), float("-inf")):
            body = await refused(client, operator.assertion(nbf=nbf), "invalid_claims")
            assert body["detail"] == "nbf must be a NumericDate (seconds since the epoch)"


class TestExpiry:
    async def test_exp_must_be_a_finite_number(self, client, operator):
        for exp in ("tomorrow", True, float("nan"), float("inf")):
            body = await refused(client, operator.assertion(exp=exp), "invalid_claims")
            assert body["detail"] == "exp must be a NumericDate (seconds since the epoch)"

    async def test_an_expired_assertion_has_its_code(self, client, operator):
        now = int(time.time())
        await refused(client, operator.assertion(iat=now - 400, exp=now - 100), "assertion_expired")
