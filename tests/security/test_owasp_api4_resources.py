"""OWASP API4:2023 Unrestricted Resource Consumption.

Every request is bounded: the body (declared or chunked; ``max_body_bytes``), a behaviour batch
(1,000 records), a page (``limit`` 1–200 on every list of the OpenAPI document), strings and
lists in bodies, nesting depth; and callers are rate limited (429 with ``Retry-After``) per
organisation, per person, per client IP and per login name.
"""

import re
import uuid

import pytest

from tests.factories import (
    assert_problem,
    authority_token,
    bearer,
    make_operator,
    make_org,
    random_ip,
    signed,
    staff_token,
    unique,
)
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit, user_headers
from tests.factories_security import hold_the_rate_window, make_cast
from tests.security.access import ACCESS

MAX_PAGE = 200


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


def _fill(path: str) -> str:
    return re.sub(r"{([^}]+)}", lambda m: str(uuid.uuid4()) if m.group(1).endswith("id") else "x-1", path)


class TestBodies:
    async def test_declared_body_over_the_limit_is_refused_before_anything_runs(self, client, settings):
        op = await make_operator(client)
        body = b'{"records": [' + b" " * (settings.max_body_bytes) + b"]}"
        r = await client.post(
            "/v1/operator/behaviour-batches",
            content=body,
            headers={**op.headers, "Idempotency-Key": "k", "X-Content-Signature": op.sign(body)},
        )
        assert_problem(r, 413, "payload_too_large")
        r = await client.post("/v1/organizations", content=body, headers={"Content-Type": "application/json"})
        assert_problem(r, 413, "payload_too_large")

    async def test_a_batch_holds_at_most_1000_records(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        ext = (await enrol(client, op))["external_user_id"]
        rec = record(ext, "no-such-type")
        r = await submit(client, op, [{**rec, "record_id": f"r{i}"} for i in range(1001)])
        assert_problem(r, 413, "batch_too_large")
        r = await submit(client, op, [{**rec, "record_id": f"r{i}"} for i in range(1000)])
        assert r.status_code == 200
        assert r.json()["summary"] == {"accepted": 0, "duplicate": 0, "rejected": 1000}
        r = await submit(client, op, [])
        assert_problem(r, 422, "empty_batch")
        assert btype

    async def test_strings_in_a_record_are_bounded(self, client):
        btype = await make_methodology()
        op = await make_operator(client)
        ext = (await enrol(client, op))["external_user_id"]
        long = "x" * 5000
        bad = [
            {**record(ext, btype), "record_id": long},
            {**record(ext, btype), "external_user_id": long},
            {**record(ext, btype), "evidence": {"source": long, "ref": "r"}},
            {**record(ext, btype), "evidence": {"source": "s", "ref": long}},
            {**record(ext, btype), "type": long},
            {**record(ext, btype), "unit": long},
        ]
        r = await submit(client, op, bad)
        assert [(x["status"], x["code"]) for x in r.json()["results"]] == [("rejected", "invalid_record")] * 6

    async def test_deeply_nested_json_is_a_client_error(self, client):
        op = await make_operator(client)
        for payload in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
            r = await client.post(
                "/v1/organizations", content=payload, headers={"Content-Type": "application/json"}
            )
            assert r.status_code in (400, 422), r.text
            body, headers = (
                payload,
                {
                    **op.headers,
                    "Content-Type": "application/json",
                    "X-Content-Signature": op.sign(payload),
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            )
            r = await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)
            assert r.status_code in (400, 422), r.text

    async def test_idempotency_keys_are_bounded(self, client):
        op = await make_operator(client)
        body, headers = signed(op, {"records": [record("u", "t")]})
        r = await client.post(
            "/v1/operator/behaviour-batches", content=body, headers={**headers, "Idempotency-Key": "k" * 201}
        )
        assert_problem(r, 400, "idempotency_key_invalid")


class TestPages:
    async def test_every_list_caps_its_page_at_200(self, app, client):
        cast = await make_cast(client)
        lists = []
        for path, operations in app.openapi()["paths"].items():
            get = operations.get("get")
            params = {p["name"]: p for p in (get or {}).get("parameters", []) if p["in"] == "query"}
            if "limit" not in params:
                continue
            schema = params["limit"]["schema"]
            assert (schema.get("minimum"), schema.get("maximum")) == (1, MAX_PAGE), path
            assert "cursor" in params, path
            role = (
                sorted(ACCESS[("GET", path)] - {"anonymous"})[0]
                if ACCESS[("GET", path)] != {"anonymous"}
                else "anonymous"
            )
            headers = cast.headers[role]
            url = _fill(path)
            for bad in (MAX_PAGE + 1, 0, -1, 10**12, "many"):
                r = await client.get(url, params={"limit": bad}, headers=headers)
                assert_problem(r, 422, "validation_error")
            r = await client.get(url, params={"limit": MAX_PAGE}, headers=headers)
            assert r.status_code in (200, 404), (path, r.text)
            lists.append(path)
        assert len(lists) >= 10

    async def test_a_forged_cursor_is_a_client_error(self, client):
        authority = await authority_token(client)
        for cursor in ("garbage", "eyJ4IjoxfQ", "A" * 5000, "W10", "WyJ4Il0"):
            r = await client.get("/v1/organizations", params={"cursor": cursor}, headers=bearer(authority))
            assert r.status_code in (400, 422), r.text


@pytest.fixture
def mid_window(monkeypatch):
    """The platform clock held in the middle of a minute: no rate window ends during a test."""
    return hold_the_rate_window(monkeypatch)


class TestRateLimits:
    async def test_an_organisation_over_its_budget(self, client, settings, monkeypatch, mid_window):
        merchant = await make_org(client, "merchant")
        staff = bearer(await staff_token(client, merchant))
        other = await make_org(client, "merchant")
        monkeypatch.setattr(settings, "rate_limit_per_minute", 3)
        codes = [
            (await client.get(f"/v1/organizations/{merchant.id}", headers=merchant.headers)).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 200]
        # the budget is the organisation's, whichever of its accounts calls
        r = await client.get(f"/v1/organizations/{merchant.id}", headers=staff)
        body = assert_problem(r, 429, "rate_limited")
        assert r.headers["retry-after"] == "31"
        assert body["detail"] == "more than 3 requests in 60 s; retry after 31 s"
        assert (await client.get(f"/v1/organizations/{other.id}", headers=other.headers)).status_code == 200

    async def test_each_person_has_a_budget(self, client, settings, monkeypatch, mid_window):
        op = await make_operator(client)
        first, second = await enrol(client, op), await enrol(client, op)
        h1 = await user_headers(client, op, first["external_user_id"])
        h2 = await user_headers(client, op, second["external_user_id"])
        monkeypatch.setattr(settings, "rate_limit_per_minute", 2)
        codes = [(await client.get("/v1/me/account", headers=h1)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert (await client.get("/v1/me/account", headers=h2)).status_code == 200

    async def test_anonymous_callers_per_ip(self, client_at, settings, monkeypatch, mid_window):
        monkeypatch.setattr(settings, "rate_limit_per_minute", 2)
        async with client_at(random_ip()) as c, client_at(random_ip()) as other:
            codes = [(await c.get("/v1/public/experts")).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
            assert (await c.get("/v1/public/experts")).headers["retry-after"] == "31"
            assert (await other.get("/v1/public/experts")).status_code == 200

    async def test_password_guessing(self, client_at, settings, monkeypatch, mid_window):
        monkeypatch.setattr(settings, "login_rate_limit_per_minute", 3)
        username = unique("admin")
        async with client_at(random_ip()) as c:
            codes = []
            for _ in range(5):
                r = await c.post(
                    "/v1/auth/token",
                    data={"grant_type": "password", "username": username, "password": "guess"},
                )
                codes.append(r.status_code)
            assert codes == [400, 400, 400, 429, 429]
            assert r.headers["retry-after"] == "31"
