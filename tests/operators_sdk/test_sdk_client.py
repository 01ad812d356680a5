import json
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest
from carbon_operator import (
    AsyncPlatformClient,
    AuthenticationError,
    BehaviourRecord,
    ConfigurationError,
    InvalidRequestError,
    OutcomeStatus,
    PlatformClient,
    PlatformConnectionError,
    RetryPolicy,
    ServerError,
    chunk_records,
    verify_detached,
)
from carbon_operator.client import Chunk
from jose import jwt

BASE = "http://platform.test"
BATCH_URL = f"{BASE}/v1/operator/behaviour-batches"


def token_response(n: int = 1, expires_in: int = 900) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": f"tok-{n}", "token_type": "bearer", "expires_in": expires_in}
    )


def batch_response(request: httpx.Request) -> httpx.Response:
    records = json.loads(request.content)["records"]
    results = [
        {"record_id": r["record_id"], "status": "accepted", "code": None, "reduction_g": 620, "points": 62,
         "methodology_version": "metro@1", "rule_version": 3}
        for r in records
    ]  # fmt: skip
    summary = {"accepted": len(records), "duplicate": 0, "rejected": 0}
    return httpx.Response(200, json={"batch_id": "b-1", "results": results, "summary": summary})


def problem(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": f"{code}!", "code": code}
    return httpx.Response(
        status, json=body, headers={"content-type": "application/problem+json", **(headers or {})}
    )


class Scripted:
    """A transport answering token requests itself and the rest from a script, recording all."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.token_requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token":
            self.token_requests.append(request)
            return token_response(len(self.token_requests))
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(client_id, operator_key, sleeps):
    def make(handler, **options) -> AsyncPlatformClient:
        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        options.setdefault("sleep", sleep)
        return AsyncPlatformClient(
            BASE, client_id=client_id, key=operator_key, transport=httpx.MockTransport(handler), **options
        )

    return make


class TestChunking:
    def test_2500_records_make_1000_1000_500(self, make_record):
        chunks = list(chunk_records(make_record(i) for i in range(2500)))
        assert [len(c) for c in chunks] == [1000, 1000, 500]
        assert [c.index for c in chunks] == [0, 1, 2]
        assert chunks[2].record_ids[-1] == "op-0002499"

    def test_keys_are_stable_and_distinct(self, make_record):
        first = [c.idempotency_key for c in chunk_records(make_record(i) for i in range(2500))]
        again = [
            c.idempotency_key for c in chunk_records([BehaviourRecord(**make_record(i)) for i in range(2500)])
        ]
        assert first == again
        assert len(set(first)) == 3
        assert all(k.startswith("bb-") and len(k) == 35 for k in first)

    def test_body_is_compact_json_of_the_records(self, make_record):
        chunk = Chunk.build(0, [make_record(1)])
        assert b" " not in chunk.body
        assert json.loads(chunk.body) == {"records": [make_record(1)]}

    def test_another_body_gets_another_key(self, make_record):
        a = Chunk.build(0, [make_record(1)])
        b = Chunk.build(0, [make_record(1, quantity=12.5)])
        assert a.idempotency_key != b.idempotency_key

    def test_sizes_are_bounded(self, make_record):
        with pytest.raises(ValueError):
            list(chunk_records([make_record(1)], 1001))
        with pytest.raises(ValueError):
            Chunk.build(0, [])

    def test_bad_shapes_are_refused_before_sending(self, make_record):
        with pytest.raises(ValueError):
            Chunk.build(0, [make_record(1, started_at="2026-11-20T08:00:00")])  # no offset
        with pytest.raises(ValueError):
            Chunk.build(0, [make_record(1, quantity=float("nan"))])


class TestSubmit:
    async def test_sends_signed_keyed_batches_and_types_the_outcomes(
        self, make_client, make_record, operator_key
    ):
        transport = Scripted(batch_response, batch_response, batch_response)
        async with make_client(transport) as client:
            report = await client.submit(make_record(i) for i in range(2500))
        assert [len(json.loads(r.content)["records"]) for r in transport.requests] == [1000, 1000, 500]
        for request in transport.requests:
            assert str(request.url) == BATCH_URL
            assert request.headers["content-type"] == "application/json"
            assert request.headers["authorization"] == "Bearer tok-1"
            assert request.headers["idempotency-key"].startswith("bb-")
            assert verify_detached(
                request.headers["x-content-signature"], request.content, operator_key.public_jwk()
            )
        assert len(transport.token_requests) == 1
        assert report.summary.accepted == 2500
        assert report.points == 2500 * 62
        outcome = report.outcomes[0]
        assert outcome.status is OutcomeStatus.accepted
        assert (outcome.record_id, outcome.reduction_g, outcome.methodology_version, outcome.rule_version) == (
            "op-0000000", 620, "metro@1", 3,
        )  # fmt: skip

    async def test_5xx_then_200_sends_the_same_key_and_body_twice(self, make_client, make_record, sleeps):
        transport = Scripted(problem(503, "unavailable"), batch_response)
        async with make_client(transport) as client:
            report = await client.submit([make_record(i) for i in range(3)])
        first, second = transport.requests
        assert first.content == second.content
        assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
        assert first.headers["x-content-signature"] == second.headers["x-content-signature"]
        assert report.summary.accepted == 3
        assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5

    async def test_429_waits_as_long_as_retry_after_says(self, make_client, make_record, sleeps):
        transport = Scripted(problem(429, "rate_limited", {"Retry-After": "7"}), batch_response)
        async with make_client(transport) as client:
            await client.submit([make_record(1)])
        assert sleeps == [7.0]
        assert len(transport.requests) == 2

    async def test_409_key_in_use_is_retried(self, make_client, make_record, sleeps):
        transport = Scripted(problem(409, "idempotency_key_in_use", {"Retry-After": "1"}), batch_response)
        async with make_client(transport) as client:
            await client.submit([make_record(1)])
        assert sleeps == [1.0]
        assert transport.requests[0].content == transport.requests[1].content

    async def test_network_errors_are_retried_with_growing_delays(self, make_client, make_record, sleeps):
        transport = Scripted(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), batch_response)
        async with make_client(transport) as client:
            await client.submit([make_record(1)])
        assert len(transport.requests) == 3
        assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0

    async def test_422_is_not_retried_and_carries_the_code(self, make_client, make_record, sleeps):
        transport = Scripted(problem(422, "validation_error"))
        async with make_client(transport) as client:
            with pytest.raises(InvalidRequestError) as caught:
                await client.submit([make_record(1)])
        assert (caught.value.status, caught.value.code, caught.value.detail) == (
            422,
            "validation_error",
            "validation_error!",
        )
        assert caught.value.problem["title"] == "validation_error"
        assert len(transport.requests) == 1 and sleeps == []

    async def test_other_conflicts_are_not_retried(self, make_client, make_record):
        transport = Scripted(problem(409, "conflict"))
        async with make_client(transport) as client:
            with pytest.raises(Exception) as caught:
                await client.submit([make_record(1)])
        assert caught.value.code == "conflict" and len(transport.requests) == 1

    async def test_retries_end(self, make_client, make_record, sleeps):
        transport = Scripted(*[problem(500, "internal_error")] * 3)
        async with make_client(transport, retry=RetryPolicy(attempts=3)) as client:
            with pytest.raises(ServerError) as caught:
                await client.submit([make_record(1)])
        assert caught.value.code == "internal_error" and len(transport.requests) == 3 and len(sleeps) == 2

    async def test_no_answer_at_all(self, make_client, make_record):
        transport = Scripted(*[httpx.ConnectError("refused")] * 2)
        async with make_client(transport, retry=RetryPolicy(attempts=2)) as client:
            with pytest.raises(PlatformConnectionError) as caught:
                await client.submit([make_record(1)])
        assert caught.value.status is None

    async def test_a_non_json_error_page_still_raises(self, make_client, make_record):
        transport = Scripted(httpx.Response(400, text="<html>bad gateway config</html>"))
        async with make_client(transport) as client:
            with pytest.raises(Exception) as caught:
                await client.submit([make_record(1)])
        assert (caught.value.status, caught.value.code) == (400, "http_400")

    async def test_on_batch_reports_each_chunk(self, make_client, make_record):
        seen = []
        async with make_client(Scripted(batch_response, batch_response)) as client:
            await client.submit((make_record(i) for i in range(15)), chunk_size=10, on_batch=lambda c, r: seen.append(
                (c.index, len(r.results))
            ))  # fmt: skip
        assert seen == [(0, 10), (1, 5)]


class TestToken:
    async def test_assertion_form_and_caching(self, make_client, client_id, operator_key):
        answers = [httpx.Response(200, json={"balance": 5}), httpx.Response(200, json={"balance": 6})]
        transport = Scripted(*answers)
        async with make_client(transport) as client:
            assert (await client.get_account("u-1")).balance == 5
            assert (await client.get_account("u-1")).balance == 6
        (request,) = transport.token_requests
        assert str(request.url) == f"{BASE}/v1/auth/token"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert form["grant_type"] == "client_credentials"
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        claims = jwt.decode(
            form["client_assertion"],
            operator_key.public_jwk(),
            algorithms=["ES256"],
            audience=f"{BASE}/v1/auth/token",
        )
        assert claims["iss"] == claims["sub"] == client_id

    async def test_renewed_a_minute_before_expiry(self, make_client):
        now = [1_000.0]
        answers = [httpx.Response(200, json={"balance": 1})] * 3
        transport = Scripted(*answers)
        async with make_client(transport, clock=lambda: now[0]) as client:
            await client.get_account("u")
            now[0] += 900 - 61
            await client.get_account("u")
            assert len(transport.token_requests) == 1
            now[0] += 2
            await client.get_account("u")
        assert len(transport.token_requests) == 2
        assert [r.headers["authorization"] for r in transport.requests] == [
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-2",
        ]

    async def test_a_401_renews_the_token_once(self, make_client):
        transport = Scripted(problem(401, "invalid_token"), httpx.Response(200, json={"balance": 1}))
        async with make_client(transport) as client:
            assert (await client.get_account("u")).balance == 1
        assert [r.headers["authorization"] for r in transport.requests] == ["Bearer tok-1", "Bearer tok-2"]

    async def test_a_second_401_raises(self, make_client):
        transport = Scripted(problem(401, "invalid_token"), problem(401, "invalid_token"))
        async with make_client(transport) as client:
            with pytest.raises(AuthenticationError):
                await client.get_account("u")
        assert len(transport.requests) == 2

    async def test_each_token_request_signs_a_fresh_assertion(self, make_client, sleeps):
        assertions = []

        def handler(request: httpx.Request) -> httpx.Response:
            assertions.append(parse_qs(request.content.decode())["client_assertion"][0])
            return problem(503, "unavailable") if len(assertions) == 1 else token_response()

        async with make_client(handler) as client:
            assert await client.access_token() == "tok-1"
        jtis = {jwt.get_unverified_claims(a)["jti"] for a in assertions}
        assert len(jtis) == 2

    async def test_operator_calls_need_an_identity(self):
        async with AsyncPlatformClient(
            BASE, transport=httpx.MockTransport(lambda r: token_response())
        ) as client:
            with pytest.raises(ConfigurationError):
                await client.get_account("u")


class TestOtherCalls:
    async def test_enrol_user(self, make_client):
        transport = Scripted(httpx.Response(201, json={"user_id": "7f0c", "status": "active"}))
        async with make_client(transport) as client:
            user = await client.enrol_user("u-5512", "+8613800138000", "2026-01", "2026-11-01T09:00:00+08:00")
        assert user.user_id == "7f0c"
        (request,) = transport.requests
        assert (request.method, request.url.path) == ("POST", "/v1/operator/users")
        assert json.loads(request.content) == {
            "external_user_id": "u-5512",
            "identifier": {"type": "phone", "value": "+8613800138000"},
            "consent": {"agreement_version": "2026-01", "accepted_at": "2026-11-01T09:00:00+08:00"},
        }
        assert request.headers["idempotency-key"].startswith("enrol-")

    async def test_withdraw_user_escapes_the_id(self, make_client):
        transport = Scripted(httpx.Response(204))
        async with make_client(transport) as client:
            await client.withdraw_user("u/55 12")
        (request,) = transport.requests
        assert request.method == "DELETE"
        assert request.url.raw_path == b"/v1/operator/users/u%2F55%2012"

    async def test_issue_user_token_and_report_redemption(self, make_client):
        transport = Scripted(token_response(99), httpx.Response(201, json={"id": "r-1", "points": 300}))
        async with make_client(transport) as client:
            user_token = await client.issue_user_token("u-1")
            redemption = await client.report_redemption(user_token.access_token, "ord-1", 300, "coffee")
        issue, report = transport.requests
        assert (issue.method, issue.url.path) == ("POST", "/v1/operator/users/u-1/tokens")
        assert issue.headers["authorization"] == "Bearer tok-1"
        assert report.url.path == "/v1/me/operator-redemptions"
        assert report.headers["authorization"] == "Bearer tok-99"
        assert json.loads(report.content) == {
            "operator_order_id": "ord-1",
            "points": 300,
            "description": "coffee",
        }
        assert redemption.id == "r-1"

    async def test_register_key_as_the_admin(self, client_id, operator_key):
        requests = []

        def handler(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            if request.url.path == "/v1/auth/token":
                return token_response(7)
            return httpx.Response(201, json={"kid": operator_key.kid, "algorithm": "ES256"})

        async with AsyncPlatformClient(
            BASE, client_id=client_id, key=operator_key, transport=httpx.MockTransport(handler)
        ) as client:
            registered = await client.register_key(username="admin", password="s3cret-pass")
        login, register = requests
        assert parse_qs(login.content.decode()) == {
            "grant_type": ["password"], "username": ["admin"], "password": ["s3cret-pass"]
        }  # fmt: skip
        assert register.url.path == f"/v1/organizations/{client_id}/keys"
        assert register.headers["authorization"] == "Bearer tok-7"
        assert json.loads(register.content) == {"jwk": operator_key.public_jwk()}
        assert registered.kid == operator_key.kid

    async def test_apply_organization_needs_no_credentials(self):
        requests = []

        def handler(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            return httpx.Response(201, json={"id": "5d1e", "status": "pending", "kind": "operator"})

        async with AsyncPlatformClient(BASE, transport=httpx.MockTransport(handler)) as client:
            org = await client.apply_organization("Metro Go", "91440300MA5XXXXX1A", "admin", "s3cret-pass")
        assert (org.id, org.status) == ("5d1e", "pending")
        assert "authorization" not in requests[0].headers
        assert json.loads(requests[0].content)["admin"] == {"username": "admin", "password": "s3cret-pass"}


class TestSyncClient:
    def test_same_calls_without_an_event_loop(self, client_id, operator_key, make_record):
        transport = Scripted(batch_response, httpx.Response(200, json={"balance": 62}))
        with PlatformClient(
            BASE, client_id=client_id, key=operator_key, transport=httpx.MockTransport(transport)
        ) as client:
            report = client.submit([make_record(1), make_record(2)])
            account = client.get_account("u-1")
        assert report.summary.accepted == 2
        assert account.balance == 62
        assert len(transport.token_requests) == 1
