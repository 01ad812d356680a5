"""Helpers of the authorization code flow tests: an operator with a redirect URI, PKCE, the outbox code."""

import base64
import hashlib
import html
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from app.core import sms
from tests.factories import Org, bearer, make_operator
from tests.web.helpers import HTML, csrf_token

REDIRECT = "https://app.example.cn/oauth/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def oauth_operator(client: httpx.AsyncClient, redirect: str = REDIRECT, **operator) -> Org:
    """An operator with ``redirect`` registered (``operator``: ``make_operator``'s ``trusted``, ``scopes``)."""
    op = await make_operator(client, **operator)
    r = await client.post(
        f"/v1/organizations/{op.id}/redirect-uris",
        json={"uri": redirect},
        headers=bearer(op.extra["admin_token"]),
    )
    assert r.status_code == 201, r.text
    op.extra["redirect"] = redirect
    return op


@dataclass
class Started:
    op: Org
    verifier: str
    challenge: str
    state: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        return "/oauth/authorize?" + urlencode(self.params)


def authorize_params(op: Org, **overrides) -> Started:
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": op.id,
        "redirect_uri": op.extra["redirect"],
        "scope": "behaviours:submit account:read",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return Started(op, verifier, challenge, state, {k: v for k, v in params.items() if v is not None})


def masked(phone: str) -> str:
    return sms.mask(phone)


async def outbox_code(client: httpx.AsyncClient, phone: str) -> str:
    """The newest code sent to ``phone``, read from the development outbox page."""
    r = await client.get("/dev/outbox", headers=HTML)
    assert r.status_code == 200, r.text
    page = html.unescape(r.text)
    for row in re.findall(r'<li data-recipient="(.*?)">.*?<p class="outbox-body">(.*?)</p>', page, re.S):
        if row[0] == masked(phone):
            return re.search(r"\d{6}", row[1]).group(0)
    raise AssertionError(f"no message to {masked(phone)} in the outbox")


async def send_phone(client: httpx.AsyncClient, started: Started, phone: str) -> httpx.Response:
    r = await client.get(started.url, headers=HTML)
    assert r.status_code == 200, r.text
    data = {"csrf_token": csrf_token(r.text), **started.params, "phone": phone}
    return await client.post("/oauth/authorize", data=data, headers=HTML)


async def post_form(client: httpx.AsyncClient, path: str, form_page: str, **data) -> httpx.Response:
    r = await client.get(form_page, headers=HTML)
    assert r.status_code == 200, r.text
    return await client.post(path, data={"csrf_token": csrf_token(r.text), **data}, headers=HTML)


async def consent_to(
    client: httpx.AsyncClient, started: Started, phone: str, decision: str = "approve"
) -> str:
    """Walk phone → code → consent; the Location the browser is sent to."""
    r = await send_phone(client, started, phone)
    assert r.status_code == 303, r.text
    code_page = r.headers["location"]
    request_path = code_page.rsplit("/", 1)[0]
    code = await outbox_code(client, phone)
    r = await post_form(client, code_page, code_page, code=code)
    assert r.status_code == 303 and r.headers["location"] == f"{request_path}/consent", r.text
    r = await post_form(client, f"{request_path}/consent", f"{request_path}/consent", decision=decision)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def assertion_of(op: Org) -> dict[str, str]:
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": op.assertion(jti=uuid.uuid4().hex, iat=int(time.time())),
    }


async def exchange(
    client: httpx.AsyncClient, op: Org, code: str, verifier: str, redirect: str | None = None, **extra
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect or op.extra["redirect"],
        "code_verifier": verifier,
        **assertion_of(op),
        **extra,
    }
    return await client.post("/v1/auth/token", data=data)


async def refresh(client: httpx.AsyncClient, op: Org, token: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token, **assertion_of(op)}
    )
