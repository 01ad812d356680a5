"""Fixtures for the operators' SDK: a key, records, and a fake platform over ``httpx.MockTransport``.

The fake is the platform seen from outside (HTTP only): it checks the client assertion and the
batch signature with python-jose, replays idempotent requests, and tells duplicates apart. It
stands in for the server until the SDK is run against the real one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from carbon_operator.keys import OperatorKey, b64url
from jose import JWTError, jws, jwt

BASE_URL = "http://platform.test"
ADMIN = ("metrogo-admin", "correct-horse-battery")
KNOWN_TYPES = {"metro", "bus", "cycling", "walking", "nev"}


class Killed(Exception):
    """The operator's process dies (after the platform committed the batch)."""


@dataclass
class FakeCode:
    redirect_uri: str
    challenge: str
    scope: str
    user_id: str
    used: bool = False
    family: str | None = None


@dataclass
class FakeRefresh:
    family: str
    user_id: str
    external_user_id: str
    scope: str
    rotated: bool = False
    revoked: bool = False


class FakePlatform:
    def __init__(self, client_id: str, jwk: dict[str, Any]) -> None:
        self.client_id = client_id
        self.jwk = jwk
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.batch_calls = 0
        self.kill_after_batches: int | None = None
        self.now = datetime.now(UTC)
        self.registered_jwks: list[dict[str, Any]] = []
        self.enrol_refusals: dict[str, tuple[int, str]] = {}  # external_user_id → status, code
        self.credited: Counter[str] = Counter()
        self._jtis: set[str] = set()
        self._tokens: set[str] = set()
        self._replies: dict[str, tuple[bytes, int, bytes]] = {}
        self._seen: set[str] = set()
        # the authorization code flow: registered redirect URIs, codes, refresh tokens, withdrawals
        self.redirect_uris: dict[int, str] = {}
        self.codes: dict[str, FakeCode] = {}
        self.refresh_tokens: dict[str, FakeRefresh] = {}
        self.withdrawn: set[str] = set()  # user ids who withdrew the entrustment
        self.person_grants: list[dict[str, str]] = []  # the forms of authorization_code/refresh_token
        # the next codes and refresh tokens to issue (random ones once these are used up)
        self.next_codes: list[str] = []
        self.next_refresh_tokens: list[str] = []

    def authorize(self, url: str, user_id: str | None = None) -> str:
        """A person approves the authorize URL: the Location they are sent back to (code, state)."""
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == BASE_URL and parts.path == "/oauth/authorize"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["client_id"] == self.client_id and query["response_type"] == "code"
        assert query["redirect_uri"] in self.redirect_uris.values(), "not a registered redirect URI"
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["state"]
        code = self.next_codes.pop(0) if self.next_codes else secrets.token_urlsafe(32)
        self.codes[code] = FakeCode(
            query["redirect_uri"], query["code_challenge"], query["scope"], user_id or str(uuid.uuid4())
        )
        return f"{query['redirect_uri']}?" + urlencode({"code": code, "state": query["state"]})

    def _person_tokens(self, refresh: FakeRefresh) -> httpx.Response:
        self.tokens_issued += 1
        token = f"user-tok-{self.tokens_issued}"
        new_refresh = (
            self.next_refresh_tokens.pop(0) if self.next_refresh_tokens else secrets.token_urlsafe(32)
        )
        self._tokens.add(token)
        self.refresh_tokens[new_refresh] = refresh
        return httpx.Response(200, json={
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 900,
            "refresh_token": new_refresh,
            "scope": refresh.scope,
            "user_id": refresh.user_id,
            "external_user_id": refresh.external_user_id,
        })  # fmt: skip

    def _code_grant(self, form: dict[str, str]) -> httpx.Response:
        row = self.codes.get(form.get("code", ""))
        if row is None:
            return _problem(400, "invalid_grant")
        if row.used:
            for refresh in self.refresh_tokens.values():
                refresh.revoked |= refresh.family == row.family
            return _problem(400, "code_reused")
        if form.get("redirect_uri") != row.redirect_uri:
            return _problem(400, "redirect_uri_mismatch")
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if challenge.decode() != row.challenge:
            return _problem(400, "invalid_code_verifier")
        row.used, row.family = True, str(uuid.uuid4())
        external = form.get("external_user_id") or row.user_id
        return self._person_tokens(FakeRefresh(row.family, row.user_id, external, row.scope))

    def _refresh_grant(self, form: dict[str, str]) -> httpx.Response:
        row = self.refresh_tokens.get(form.get("refresh_token", ""))
        if row is None:
            return _problem(400, "invalid_grant")
        if row.revoked:
            return _problem(400, "token_revoked")
        if row.rotated:
            for other in self.refresh_tokens.values():
                other.revoked |= other.family == row.family
            return _problem(400, "refresh_token_reused")
        if row.user_id in self.withdrawn:
            return _problem(400, "entrustment_withdrawn")
        row.rotated = True
        return self._person_tokens(FakeRefresh(row.family, row.user_id, row.external_user_id, row.scope))

    def _redirect_uris(self, request: httpx.Request) -> httpx.Response:
        base = f"/v1/organizations/{self.client_id}/redirect-uris"
        created = "2026-11-30T07:00:00+00:00"
        if request.method == "POST" and request.url.path == base:
            uri = json.loads(request.content)["uri"]
            if uri in self.redirect_uris.values():
                return _problem(409, "redirect_uri_exists")
            uri_id = max(self.redirect_uris, default=0) + 1
            self.redirect_uris[uri_id] = uri
            return httpx.Response(201, json={"id": uri_id, "uri": uri, "created_at": created})
        if request.method == "GET" and request.url.path == base:
            items = [
                {"id": i, "uri": u, "created_at": created} for i, u in sorted(self.redirect_uris.items())
            ]
            return httpx.Response(200, json=items)
        if request.method == "DELETE":
            uri_id = int(request.url.path.rsplit("/", 1)[1])
            if uri_id not in self.redirect_uris:
                return _problem(404, "redirect_uri_not_found")
            uri = self.redirect_uris.pop(uri_id)
            return httpx.Response(200, json={"id": uri_id, "uri": uri, "created_at": created})
        return _problem(404, "not_found")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/auth/token":
            return self._token(request)
        if path == "/v1/organizations" and request.method == "POST":
            return httpx.Response(201, json={"id": self.client_id, "status": "pending", "kind": "operator"})
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self._tokens:
            return _problem(401, "invalid_token")
        key = request.headers.get("idempotency-key")
        if key is not None and key in self._replies:
            body, status, reply = self._replies[key]
            if body != request.content:
                return _problem(422, "idempotency_key_reused")
            return httpx.Response(status, content=reply, headers={"Idempotent-Replayed": "true"})
        if path == "/v1/operator/behaviour-batches":
            response = self._batch(request)
        elif path == "/v1/operator/users" and request.method == "POST":
            refusal = self.enrol_refusals.get(json.loads(request.content)["external_user_id"])
            if refusal is not None:
                return _problem(*refusal)
            response = httpx.Response(201, json={"user_id": str(uuid.uuid4())})
        elif path == f"/v1/organizations/{self.client_id}/keys" and request.method == "POST":
            self.registered_jwks.append(json.loads(request.content)["jwk"])
            response = httpx.Response(
                201, json={"kid": self.registered_jwks[-1]["kid"], "algorithm": "ES256"}
            )
        elif "/redirect-uris" in path:
            return self._redirect_uris(request)
        elif path.endswith("/account"):
            response = httpx.Response(200, json={"balance": 120, "lifetime_points": 150, "expiring": []})
        else:
            return _problem(404, "not_found")
        if key is not None and response.is_success:
            self._replies[key] = (request.content, response.status_code, response.content)
        if path == "/v1/operator/behaviour-batches" and self.kill_after_batches is not None:
            if self.batch_calls > self.kill_after_batches:
                raise Killed(f"killed after batch {self.batch_calls}")
        return response

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form["grant_type"] == "password":
            if (form["username"], form["password"]) != ADMIN:
                return _problem(400, "invalid_grant")
        else:
            try:
                claims = jwt.decode(
                    form["client_assertion"],
                    self.jwk,
                    algorithms=["ES256"],
                    audience=f"{BASE_URL}/v1/auth/token",
                )
            except JWTError:
                return _problem(401, "invalid_client")
            assert claims["iss"] == claims["sub"] == self.client_id
            if claims["jti"] in self._jtis:
                return _problem(401, "assertion_replayed")
            self._jtis.add(claims["jti"])
            if form["grant_type"] in ("authorization_code", "refresh_token"):
                self.person_grants.append(form)
                if form["grant_type"] == "authorization_code":
                    return self._code_grant(form)
                return self._refresh_grant(form)
        self.tokens_issued += 1
        token = f"tok-{self.tokens_issued}"
        self._tokens.add(token)
        return httpx.Response(200, json={"access_token": token, "token_type": "bearer", "expires_in": 900})

    def _batch(self, request: httpx.Request) -> httpx.Response:
        self.batch_calls += 1
        head, _, sig = request.headers["x-content-signature"].split(".")
        try:
            jws.verify(f"{head}.{b64url(request.content)}.{sig}", self.jwk, algorithms=["ES256"])
        except Exception:
            return _problem(401, "invalid_signature")
        results = []
        for record in json.loads(request.content)["records"]:
            rid = record["record_id"]
            outcome: dict[str, Any] = {
                "record_id": rid,
                "status": "rejected",
                "code": None,
                "reduction_g": 0,
                "points": 0,
                "methodology_version": None,
                "rule_version": None,
            }
            if rid in self._seen:
                outcome.update(status="duplicate")
            elif record["type"] not in KNOWN_TYPES:
                outcome.update(code="unknown_type")
            elif record["quantity"] <= 0:
                outcome.update(code="implausible_quantity")
            elif datetime.fromisoformat(record["started_at"]) > self.now:
                outcome.update(code="future_time")
            else:
                self._seen.add(rid)
                self.credited[rid] += 1
                grams = int(record["quantity"] * 50)
                outcome.update(
                    status="accepted",
                    reduction_g=grams,
                    points=grams // 10,
                    methodology_version="1",
                    rule_version="1",
                )
            results.append(outcome)
        summary = Counter(r["status"] for r in results)
        return httpx.Response(200, json={
            "batch_id": str(uuid.uuid4()),
            "results": results,
            "summary": {s: summary.get(s, 0) for s in ("accepted", "duplicate", "rejected")},
        })  # fmt: skip


def _problem(status: int, code: str) -> httpx.Response:
    body = {"type": f"about:blank#{code}", "title": code, "status": status, "detail": code, "code": code}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


@pytest.fixture(scope="session")
def operator_key() -> OperatorKey:
    return OperatorKey.generate()


@pytest.fixture
def client_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def fake(client_id: str, operator_key: OperatorKey) -> FakePlatform:
    return FakePlatform(client_id, operator_key.public_jwk())


@pytest.fixture
def make_record() -> Callable[..., dict[str, Any]]:
    """A valid record in the API shape; ``n`` makes its ids unique, keywords override fields."""
    start = datetime(2026, 11, 19, 8, 1, tzinfo=timezone(timedelta(hours=8)))

    def make(n: int = 0, **overrides: Any) -> dict[str, Any]:
        record = {
            "record_id": f"op-{n:07d}",
            "external_user_id": f"u-{n % 50}",
            "type": "metro",
            "started_at": (start + timedelta(minutes=n)).isoformat(),
            "ended_at": (start + timedelta(minutes=n + 30)).isoformat(),
            "quantity": 12.4,
            "unit": "km",
            "scene_id": None,
            "evidence": {"source": "metro-card", "ref": f"TXN{n:08d}"},
        }
        record.update(overrides)
        return record

    return make


@pytest.fixture
def no_sleep() -> Callable[[float], Any]:
    async def sleep(_: float) -> None:
        return None

    return sleep
