"""The platform client: one async core (:class:`AsyncPlatformClient`), one sync face
(:class:`PlatformClient`) that runs the core on a private event loop.

The right thing is the default: operator calls authenticate with a client assertion signed by the
operator's key (the token is cached and renewed), behaviour batches are chunked to at most 1,000
records, signed (``X-Content-Signature``), carry an ``Idempotency-Key`` derived from their body,
and are retried with the same key and the same bytes on network errors, 5xx, 429 and on 409
``idempotency_key_in_use`` (the first attempt is still running on the platform).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from . import __version__
from .errors import GrantError, PlatformConnectionError, PlatformError, error_from_response
from .keys import OperatorKey
from .models import (
    Account,
    BatchDetail,
    BatchPage,
    BatchResult,
    BehaviourRecord,
    EnrolledUser,
    Organization,
    Redemption,
    RegisteredKey,
    SubmitReport,
    Token,
)
from .oauth import (
    DEFAULT_SCOPE,
    AuthorizationRequest,
    MemoryTokenStore,
    RedirectUri,
    TokenSet,
    TokenStore,
    authorization_request,
)
from .signing import CLIENT_ASSERTION_TYPE, client_assertion, sign_detached

log = logging.getLogger("carbon_operator")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
TOKEN_PATH = "/v1/auth/token"
BATCH_PATH = "/v1/operator/behaviour-batches"
MAX_BATCH_RECORDS = 1000
RENEW_MARGIN = 60.0
KEY_IN_USE = "idempotency_key_in_use"  # 409: the first request with this key is still running

RecordLike = BehaviourRecord | Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ConfigurationError(Exception):
    """The client lacks what the call needs (a client id, a key)."""


class StateMismatchError(Exception):
    """The ``state`` the person's browser came back with is not the one the app kept: a forged or
    stale redirect (RFC 9700 §4.7). The code is not exchanged."""


class NotAuthorizedError(LookupError):
    """No token set is kept for this person: send them through ``/oauth/authorize``."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry: ``attempts`` tries in all, exponential backoff with
    jitter between them (half fixed, half random), ``Retry-After`` honoured up to a ceiling."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay after failed try number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


# ---------------------------------------------------------------- chunks


def dumps(payload: Any) -> bytes:
    """Compact, deterministic JSON bytes: what is hashed and signed is what is sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def body_key(body: bytes, prefix: str) -> str:
    """A deterministic ``Idempotency-Key``: the same body always gets the same key."""
    return f"{prefix}-{hashlib.sha256(body).hexdigest()[:32]}"


def record_to_wire(record: RecordLike) -> dict[str, Any]:
    """A record as the API wants it (validated for shape, times in RFC 3339)."""
    model = record if isinstance(record, BehaviourRecord) else BehaviourRecord.model_validate(record)
    return model.model_dump(mode="json")


@dataclass(frozen=True)
class Chunk:
    """One batch, ready to send: the exact body bytes and their idempotency key."""

    index: int
    records: tuple[dict[str, Any], ...]
    body: bytes = field(repr=False)
    idempotency_key: str

    @classmethod
    def build(cls, index: int, records: Iterable[RecordLike]) -> Chunk:
        wire = tuple(record_to_wire(r) for r in records)
        if not 0 < len(wire) <= MAX_BATCH_RECORDS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_RECORDS} records, not {len(wire)}")
        body = dumps({"records": list(wire)})
        return cls(index=index, records=wire, body=body, idempotency_key=body_key(body, "bb"))

    def __len__(self) -> int:
        return len(self.records)

    @property
    def record_ids(self) -> list[str]:
        return [r["record_id"] for r in self.records]


def chunk_records(records: Iterable[RecordLike], size: int = MAX_BATCH_RECORDS) -> Iterator[Chunk]:
    """Cut a stream of records into batches of at most ``size`` (≤ 1,000), in order."""
    if not 0 < size <= MAX_BATCH_RECORDS:
        raise ValueError(f"chunk size must be between 1 and {MAX_BATCH_RECORDS}")
    pending: list[RecordLike] = []
    index = 0
    for record in records:
        pending.append(record)
        if len(pending) == size:
            yield Chunk.build(index, pending)
            pending, index = [], index + 1
    if pending:
        yield Chunk.build(index, pending)


# ---------------------------------------------------------------- the async core


_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("times must carry an offset (an aware datetime)")
    return value.isoformat()


def _seg(value: str) -> str:
    return quote(value, safe="")


class AsyncPlatformClient:
    """The platform, for an app operator's server.

    ``client_id`` is the operator organisation's id and ``key`` its registered ES256 key; both
    are needed for operator calls, neither for :meth:`apply_organization` or :meth:`password_token`.
    ``transport`` lets tests point the client at ``httpx.MockTransport`` or ``httpx.ASGITransport``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        client_id: str | None = None,
        key: OperatorKey | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        token_audience: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens: TokenStore = token_store if token_store is not None else MemoryTokenStore()
        self._person_locks: dict[str, asyncio.Lock] = {}
        self.client_id = client_id
        self.key = key
        self.retry = retry or RetryPolicy()
        self.token_url = token_audience or f"{self.base_url}{TOKEN_PATH}"
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": f"carbon-operator/{__version__}", "Accept": "application/json"},
        )
        self._token: str | None = None
        self._renew_at = 0.0
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ transport and retries

    async def _send(
        self,
        method: str,
        path: str,
        *,
        as_operator: bool = False,
        bearer: str | None = None,
        content: bytes | None = None,
        form: Callable[[], Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        replayable: bool = True,
    ) -> httpx.Response:
        """Send, retrying what may be retried with the very same key and bytes.

        ``replayable=False`` (a code or a refresh token, which work once): only a 429 is retried,
        never a request the platform may have carried out (no answer, 5xx)."""
        base_headers = dict(headers or {})
        if content is not None:
            base_headers["Content-Type"] = "application/json"
        keyed = "Idempotency-Key" in base_headers
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            request_headers = dict(base_headers)
            token = await self.access_token() if as_operator else bearer
            if token is not None:
                request_headers["Authorization"] = f"Bearer {token}"
            request = self._http.build_request(
                method, path, content=content, data=dict(form()) if form else None, headers=request_headers
            )
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                if attempt >= self.retry.attempts or not replayable:
                    raise PlatformConnectionError(f"{method} {path}: {exc!r}") from exc
                delay = self.retry.backoff(attempt, self._rng)
                log.warning("%s %s failed (%r); retry %d in %.1fs", method, path, exc, attempt, delay)
                await self._sleep(delay)
                continue
            if response.status_code == 401 and as_operator and not reauthenticated:
                reauthenticated = True
                attempt -= 1
                self.forget_token(token)
                continue
            if response.is_success:
                return response
            error = error_from_response(response)
            retryable = response.status_code in _RETRY_STATUSES or response.status_code >= 500
            retryable |= keyed and response.status_code == 409 and error.code == KEY_IN_USE
            if not replayable:
                retryable = response.status_code == 429
            if not retryable or attempt >= self.retry.attempts:
                raise error
            delay = self.retry.backoff(attempt, self._rng)
            if error.retry_after is not None:
                delay = min(error.retry_after, self.retry.max_retry_after)
            log.warning(
                "%s %s answered %d; retry %d in %.1fs", method, path, response.status_code, attempt, delay
            )
            await self._sleep(delay)

    @staticmethod
    def _parse(model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise PlatformError(
                response.status_code, "unexpected_response", f"not a {model.__name__}: {exc}"
            ) from exc

    # ------------------------------------------------------------ tokens

    def _operator(self) -> tuple[str, OperatorKey]:
        if not self.client_id or self.key is None:
            raise ConfigurationError("operator calls need a client_id (the organisation id) and a key")
        return self.client_id, self.key

    async def access_token(self) -> str:
        """The operator's bearer token, from the cache while it has more than a minute left."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._token_lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
            client_id, key = self._operator()
            requested_at = self._clock()

            def form() -> dict[str, str]:
                return {
                    "grant_type": "client_credentials",
                    "client_assertion_type": CLIENT_ASSERTION_TYPE,
                    "client_assertion": client_assertion(key, client_id, self.token_url, now=self._clock()),
                }

            token = self._parse(Token, await self._send("POST", TOKEN_PATH, form=form))
            self._token = token.access_token
            self._renew_at = requested_at + token.expires_in - min(RENEW_MARGIN, token.expires_in / 2)
            return self._token

    def forget_token(self, stale: str | None = None) -> None:
        """Drop the cached operator token (only if it is still ``stale``, when given)."""
        if stale is None or self._token == stale:
            self._token = None
            self._renew_at = 0.0

    async def password_token(self, username: str, password: str) -> Token:
        """A person's token (OAuth2 password grant), e.g. the operator organisation's admin."""
        form = {"grant_type": "password", "username": username, "password": password}
        return self._parse(Token, await self._send("POST", TOKEN_PATH, form=lambda: form))

    # ------------------------------------------------------------ people confirm their entrustment

    def authorization_request(
        self, redirect_uri: str, scope: str | Iterable[str] = DEFAULT_SCOPE, *, state: str | None = None
    ) -> AuthorizationRequest:
        """The ``/oauth/authorize`` URL to send a person to, with a fresh PKCE verifier (S256) and a
        random state; keep the returned request (its ``state`` and ``code_verifier``) until they return."""
        if not self.client_id:
            raise ConfigurationError("the authorize URL needs the client_id (the organisation id)")
        return authorization_request(self.base_url, self.client_id, redirect_uri, scope, state=state)

    async def _person_grant(self, fields: Mapping[str, str]) -> TokenSet:
        client_id, key = self._operator()
        obtained_at = self._clock()

        def form() -> dict[str, str]:
            return {
                **fields,
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": client_assertion(key, client_id, self.token_url, now=self._clock()),
            }

        response = await self._send("POST", TOKEN_PATH, form=form, replayable=False)
        tokens = self._parse(TokenSet, response).model_copy(update={"obtained_at": obtained_at})
        self.tokens.save(tokens)
        return tokens

    async def exchange_code(
        self, code: str, redirect_uri: str, code_verifier: str, *, external_user_id: str | None = None
    ) -> TokenSet:
        """Exchange the code the person came back with (``grant_type=authorization_code``); the
        token set is kept in :attr:`tokens`. ``external_user_id``: your id of the person (default
        their platform ``user_id``). Refused: :class:`GrantError` (``code_reused``, ``code_expired``,
        ``invalid_code_verifier``, ``redirect_uri_mismatch``, ...)."""
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        if external_user_id is not None:
            fields["external_user_id"] = external_user_id
        return await self._person_grant(fields)

    async def complete_authorization(
        self,
        request: AuthorizationRequest,
        code: str,
        state: str | None,
        *,
        external_user_id: str | None = None,
    ) -> TokenSet:
        """Check the returned ``state`` against the kept request, then exchange the code."""
        if not request.check_state(state):
            raise StateMismatchError("the state of the redirect is not the one of this sign-in")
        return await self.exchange_code(
            code, request.redirect_uri, request.code_verifier, external_user_id=external_user_id
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        """A new user token and a new refresh token (the old one stops working); kept in :attr:`tokens`.
        Refused: :class:`GrantError` (``refresh_token_reused``, ``entrustment_withdrawn``, ...)."""
        return await self._person_grant({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def user_access_token(self, external_user_id: str) -> str:
        """A user token for a person who authorised you: the kept one while it is fresh, else one
        from the kept refresh token (rotated, one refresh at a time per person). When the grant is
        refused for good (e.g. ``entrustment_withdrawn``) the kept set is dropped and the
        :class:`GrantError` raised; :class:`NotAuthorizedError` when nothing is kept."""
        lock = self._person_locks.setdefault(external_user_id, asyncio.Lock())
        async with lock:
            kept = self.tokens.load(external_user_id)
            if kept is None:
                raise NotAuthorizedError(
                    f"no tokens kept for {external_user_id}: send them to /oauth/authorize"
                )
            if kept.fresh(self._clock(), RENEW_MARGIN):
                return kept.access_token
            try:
                renewed = await self.refresh(kept.refresh_token)
            except GrantError as exc:
                if exc.reauthorize:
                    self.tokens.delete(external_user_id)
                raise
            if renewed.external_user_id != external_user_id:  # the store is keyed by the answer's id
                self.tokens.delete(external_user_id)
            return renewed.access_token

    # ------------------------------------------------------------ redirect URIs

    async def _admin_org(self, username: str, password: str, org_id: str | None) -> tuple[str, str]:
        org = org_id or self.client_id
        if not org:
            raise ConfigurationError("redirect URIs need the organisation id (client_id or org_id)")
        admin = await self.password_token(username, password)
        return f"/v1/organizations/{_seg(org)}/redirect-uris", admin.access_token

    async def add_redirect_uri(
        self, uri: str, *, username: str, password: str, org_id: str | None = None
    ) -> RedirectUri:
        """Register an exact redirect URI of your app (as the organisation's admin)."""
        path, token = await self._admin_org(username, password, org_id)
        response = await self._send("POST", path, bearer=token, content=dumps({"uri": uri}))
        return self._parse(RedirectUri, response)

    async def list_redirect_uris(
        self, *, username: str, password: str, org_id: str | None = None
    ) -> list[RedirectUri]:
        path, token = await self._admin_org(username, password, org_id)
        response = await self._send("GET", path, bearer=token)
        try:
            return _REDIRECT_URIS.validate_json(response.content)
        except ValidationError as exc:
            raise PlatformError(response.status_code, "unexpected_response", str(exc)) from exc

    async def remove_redirect_uri(
        self, uri_id: int, *, username: str, password: str, org_id: str | None = None
    ) -> RedirectUri:
        """Remove a redirect URI: the platform no longer sends people back to it."""
        path, token = await self._admin_org(username, password, org_id)
        response = await self._send("DELETE", f"{path}/{int(uri_id)}", bearer=token)
        return self._parse(RedirectUri, response)

    # ------------------------------------------------------------ organisation and keys

    async def apply_organization(
        self, name: str, credit_code: str, username: str, password: str, *, kind: str = "operator"
    ) -> Organization:
        """Apply to register the organisation; it is ``pending`` until the authority approves it.
        The returned ``id`` is the ``client_id``."""
        body = {
            "kind": kind,
            "name": name,
            "credit_code": credit_code,
            "admin": {"username": username, "password": password},
        }
        content = dumps(body)
        response = await self._send(
            "POST",
            "/v1/organizations",
            content=content,
            headers={"Idempotency-Key": body_key(content, "org")},
        )
        return self._parse(Organization, response)

    async def register_key(
        self,
        jwk: Mapping[str, Any] | None = None,
        *,
        username: str,
        password: str,
        org_id: str | None = None,
    ) -> RegisteredKey:
        """Register a public JWK (default: this client's key) as the organisation's admin."""
        org = org_id or self.client_id
        if not org:
            raise ConfigurationError("register_key needs the organisation id (client_id or org_id)")
        if jwk is None:
            if self.key is None:
                raise ConfigurationError("no jwk given and no key configured")
            jwk = self.key.public_jwk()
        admin = await self.password_token(username, password)
        content = dumps({"jwk": dict(jwk)})
        response = await self._send(
            "POST",
            f"/v1/organizations/{_seg(org)}/keys",
            bearer=admin.access_token,
            content=content,
            headers={"Idempotency-Key": body_key(content, "key")},
        )
        return self._parse(RegisteredKey, response)

    async def revoke_key(self, kid: str, *, username: str, password: str, org_id: str | None = None) -> None:
        """Revoke a registered key (after rotating to a new one)."""
        org = org_id or self.client_id
        if not org:
            raise ConfigurationError("revoke_key needs the organisation id (client_id or org_id)")
        admin = await self.password_token(username, password)
        await self._send(
            "DELETE", f"/v1/organizations/{_seg(org)}/keys/{_seg(kid)}", bearer=admin.access_token
        )

    # ------------------------------------------------------------ users

    async def enrol_user(
        self, external_user_id: str, phone: str, agreement_version: str, accepted_at: datetime | str
    ) -> EnrolledUser:
        """Enrol a user who entrusted the operator; the same body always carries the same key."""
        body = {
            "external_user_id": external_user_id,
            "identifier": {"type": "phone", "value": phone},
            "consent": {"agreement_version": agreement_version, "accepted_at": _iso(accepted_at)},
        }
        content = dumps(body)
        response = await self._send(
            "POST",
            "/v1/operator/users",
            as_operator=True,
            content=content,
            headers={"Idempotency-Key": body_key(content, "enrol")},
        )
        return self._parse(EnrolledUser, response)

    async def withdraw_user(self, external_user_id: str) -> None:
        """The user withdrew the entrustment: the platform takes no more records for them."""
        await self._send("DELETE", f"/v1/operator/users/{_seg(external_user_id)}", as_operator=True)

    async def list_batches(
        self,
        *,
        received_from: datetime | str | None = None,
        received_to: datetime | str | None = None,
        has_rejections: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> BatchPage:
        """The batches you sent, newest first, with the count of each outcome (one page)."""
        params: dict[str, str] = {"limit": str(limit)}
        if received_from is not None:
            params["received_from"] = _iso(received_from)
        if received_to is not None:
            params["received_to"] = _iso(received_to)
        if has_rejections is not None:
            params["has_rejections"] = "true" if has_rejections else "false"
        if cursor:
            params["cursor"] = cursor
        response = await self._send(
            "GET", f"/v1/operator/behaviour-batches?{urlencode(params)}", as_operator=True
        )
        return self._parse(BatchPage, response)

    async def get_batch(
        self, batch_id: str, *, status: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> BatchDetail:
        """One of your batches: counts, reject codes with counts, a page of its records (`status`: one)."""
        params: dict[str, str] = {"limit": str(limit)}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        response = await self._send(
            "GET", f"/v1/operator/behaviour-batches/{_seg(batch_id)}?{urlencode(params)}", as_operator=True
        )
        return self._parse(BatchDetail, response)

    async def rejected_csv(self, batch_id: str) -> str:
        """The rejected records of one of your batches as CSV (record_id, external_user_id, behaviour_type,
        occurred_at, code, message)."""
        response = await self._send(
            "GET", f"/v1/operator/behaviour-batches/{_seg(batch_id)}?format=csv", as_operator=True
        )
        return response.content.decode("utf-8-sig")

    async def get_account(self, external_user_id: str) -> Account:
        response = await self._send(
            "GET", f"/v1/operator/users/{_seg(external_user_id)}/account", as_operator=True
        )
        return self._parse(Account, response)

    async def issue_user_token(self, external_user_id: str) -> Token:
        """A short-lived token the operator's app sends as the user to ``/v1/me/...``."""
        response = await self._send(
            "POST",
            f"/v1/operator/users/{_seg(external_user_id)}/tokens",
            as_operator=True,
            headers={"Idempotency-Key": f"tok-{uuid.uuid4().hex}"},
        )
        return self._parse(Token, response)

    async def report_redemption(
        self, user_token: str, operator_order_id: str, points: int, description: str
    ) -> Redemption:
        """Points the user spent in the operator's own mall, cancelled on the platform."""
        content = dumps(
            {"operator_order_id": operator_order_id, "points": points, "description": description}
        )
        response = await self._send(
            "POST",
            "/v1/me/operator-redemptions",
            bearer=user_token,
            content=content,
            headers={"Idempotency-Key": body_key(content, "rd")},
        )
        return self._parse(Redemption, response)

    # ------------------------------------------------------------ behaviour batches

    async def submit_chunk(self, chunk: Chunk) -> BatchResult:
        """Send one prepared batch, signed, with its key; retried with the same key and bytes."""
        _, key = self._operator()
        response = await self._send(
            "POST",
            BATCH_PATH,
            as_operator=True,
            content=chunk.body,
            headers={
                "Idempotency-Key": chunk.idempotency_key,
                "X-Content-Signature": sign_detached(chunk.body, key),
            },
        )
        return self._parse(BatchResult, response)

    async def submit(
        self,
        records: Iterable[RecordLike],
        *,
        chunk_size: int = MAX_BATCH_RECORDS,
        on_batch: Callable[[Chunk, BatchResult], None] | None = None,
    ) -> SubmitReport:
        """Submit any number of records in batches of ``chunk_size``; outcomes in input order."""
        report = SubmitReport()
        for chunk in chunk_records(records, chunk_size):
            result = await self.submit_chunk(chunk)
            report.batches.append(result)
            if on_batch is not None:
                on_batch(chunk, result)
        return report


_REDIRECT_URIS = TypeAdapter(list[RedirectUri])

# ---------------------------------------------------------------- the sync face


class PlatformClient:
    """The same client for code without an event loop: each call runs the async core to
    completion on a private loop. Not for use inside a running event loop, nor across threads."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, **options: Any) -> None:
        self._runner = asyncio.Runner()
        self._async = AsyncPlatformClient(base_url, **options)

    @property
    def async_client(self) -> AsyncPlatformClient:
        return self._async

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def close(self) -> None:
        try:
            self._run(self._async.aclose())
        finally:
            self._runner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def access_token(self) -> str:
        return self._run(self._async.access_token())

    def password_token(self, username: str, password: str) -> Token:
        return self._run(self._async.password_token(username, password))

    def apply_organization(
        self, name: str, credit_code: str, username: str, password: str, *, kind: str = "operator"
    ) -> Organization:
        return self._run(self._async.apply_organization(name, credit_code, username, password, kind=kind))

    def register_key(
        self, jwk: Mapping[str, Any] | None = None, *, username: str, password: str, org_id: str | None = None
    ) -> RegisteredKey:
        return self._run(self._async.register_key(jwk, username=username, password=password, org_id=org_id))

    def revoke_key(self, kid: str, *, username: str, password: str, org_id: str | None = None) -> None:
        return self._run(self._async.revoke_key(kid, username=username, password=password, org_id=org_id))

    def enrol_user(
        self, external_user_id: str, phone: str, agreement_version: str, accepted_at: datetime | str
    ) -> EnrolledUser:
        return self._run(self._async.enrol_user(external_user_id, phone, agreement_version, accepted_at))

    def withdraw_user(self, external_user_id: str) -> None:
        return self._run(self._async.withdraw_user(external_user_id))

    def list_batches(self, **filters: Any) -> BatchPage:
        return self._run(self._async.list_batches(**filters))

    def get_batch(self, batch_id: str, **options: Any) -> BatchDetail:
        return self._run(self._async.get_batch(batch_id, **options))

    def rejected_csv(self, batch_id: str) -> str:
        return self._run(self._async.rejected_csv(batch_id))

    def get_account(self, external_user_id: str) -> Account:
        return self._run(self._async.get_account(external_user_id))

    def issue_user_token(self, external_user_id: str) -> Token:
        return self._run(self._async.issue_user_token(external_user_id))

    def report_redemption(
        self, user_token: str, operator_order_id: str, points: int, description: str
    ) -> Redemption:
        return self._run(self._async.report_redemption(user_token, operator_order_id, points, description))

    @property
    def tokens(self) -> TokenStore:
        return self._async.tokens

    def authorization_request(
        self, redirect_uri: str, scope: str | Iterable[str] = DEFAULT_SCOPE, *, state: str | None = None
    ) -> AuthorizationRequest:
        return self._async.authorization_request(redirect_uri, scope, state=state)

    def exchange_code(
        self, code: str, redirect_uri: str, code_verifier: str, *, external_user_id: str | None = None
    ) -> TokenSet:
        return self._run(
            self._async.exchange_code(code, redirect_uri, code_verifier, external_user_id=external_user_id)
        )

    def complete_authorization(
        self,
        request: AuthorizationRequest,
        code: str,
        state: str | None,
        *,
        external_user_id: str | None = None,
    ) -> TokenSet:
        return self._run(
            self._async.complete_authorization(request, code, state, external_user_id=external_user_id)
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        return self._run(self._async.refresh(refresh_token))

    def user_access_token(self, external_user_id: str) -> str:
        return self._run(self._async.user_access_token(external_user_id))

    def add_redirect_uri(
        self, uri: str, *, username: str, password: str, org_id: str | None = None
    ) -> RedirectUri:
        return self._run(
            self._async.add_redirect_uri(uri, username=username, password=password, org_id=org_id)
        )

    def list_redirect_uris(
        self, *, username: str, password: str, org_id: str | None = None
    ) -> list[RedirectUri]:
        return self._run(self._async.list_redirect_uris(username=username, password=password, org_id=org_id))

    def remove_redirect_uri(
        self, uri_id: int, *, username: str, password: str, org_id: str | None = None
    ) -> RedirectUri:
        return self._run(
            self._async.remove_redirect_uri(uri_id, username=username, password=password, org_id=org_id)
        )

    def submit_chunk(self, chunk: Chunk) -> BatchResult:
        return self._run(self._async.submit_chunk(chunk))

    def submit(
        self,
        records: Iterable[RecordLike],
        *,
        chunk_size: int = MAX_BATCH_RECORDS,
        on_batch: Callable[[Chunk, BatchResult], None] | None = None,
    ) -> SubmitReport:
        return self._run(self._async.submit(records, chunk_size=chunk_size, on_batch=on_batch))
