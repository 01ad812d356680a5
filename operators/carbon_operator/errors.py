"""Errors the platform answers with, as exceptions.

Every non-2xx answer of the platform is an RFC 9457 ``application/problem+json`` body carrying a
stable machine ``code``; :func:`error_from_response` turns it into the matching subclass of
:class:`PlatformError` so callers can ``except`` by family and switch on ``code``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class PlatformError(Exception):
    """The platform said no (or could not be reached).

    ``status`` is the HTTP status (``None`` when no answer came back), ``code`` the stable
    problem code, ``detail`` the human explanation, ``problem`` the whole problem+json body.
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        detail: str,
        *,
        problem: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status or 'no response'} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem: dict[str, Any] = problem or {}
        self.retry_after = retry_after

    @property
    def title(self) -> str | None:
        return self.problem.get("title")

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Validation errors ``[{loc, msg}]``, empty when the problem has none."""
        return list(self.problem.get("errors") or [])


class ClientError(PlatformError):
    """4xx: the request must be changed before it can succeed."""


class GrantError(ClientError):
    """400: the authorization code or refresh token was refused (``code`` says why: ``code_reused``,
    ``code_expired``, ``invalid_code_verifier``, ``redirect_uri_mismatch``, ``refresh_token_reused``,
    ``refresh_token_expired``, ``token_revoked``, ``entrustment_withdrawn``, ``invalid_grant``).

    Nothing the SDK retries. When :attr:`reauthorize` is true (all but a wrong verifier or redirect
    URI, which are the caller's mistakes) only sending the person through ``/oauth/authorize`` again
    gets new tokens."""

    @property
    def reauthorize(self) -> bool:
        return self.code not in ("invalid_code_verifier", "redirect_uri_mismatch")


GRANT_CODES = frozenset(
    {
        "invalid_grant",
        "code_expired",
        "code_reused",
        "invalid_code_verifier",
        "redirect_uri_mismatch",
        "refresh_token_expired",
        "refresh_token_reused",
        "token_revoked",
        "entrustment_withdrawn",
    }
)
"""The ``code`` of a refused grant (400): the code or refresh token cannot be used again."""


class AuthenticationError(ClientError):
    """401: no valid token, or the client assertion was refused."""


class PermissionDeniedError(ClientError):
    """403: authenticated, but not allowed (e.g. a suspended operator, a user not entrusted)."""


class NotFoundError(ClientError):
    """404."""


class ConflictError(ClientError):
    """409: the state of the platform does not allow it (or the same key is still running)."""


class InvalidRequestError(ClientError):
    """422: the body does not validate (``errors`` says where) or a rule refused it."""


class RateLimitedError(ClientError):
    """429: too many requests; ``retry_after`` says how long to wait."""


class ServerError(PlatformError):
    """5xx: the platform failed; the same request may succeed later."""


class PlatformConnectionError(PlatformError):
    """No answer: connection refused, reset, or timed out (after the retries)."""

    def __init__(self, detail: str) -> None:
        super().__init__(None, "connection_error", detail)


_BY_STATUS: dict[int, type[PlatformError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or ``None``."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    date = response.headers.get("date")
    try:
        now = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        now = None
    if now is None:
        now = datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def error_from_response(response: httpx.Response) -> PlatformError:
    """The exception for a non-2xx response; tolerant of bodies that are not problem+json."""
    status = response.status_code
    problem: dict[str, Any] = {}
    try:
        parsed = json.loads(response.content) if response.content else {}
        if isinstance(parsed, dict):
            problem = parsed
    except (ValueError, UnicodeDecodeError):
        pass
    code = str(problem.get("code") or f"http_{status}")
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase or "error")
    if not problem and response.content:
        detail = response.text[:200]
    cls: type[PlatformError]
    if status == 400 and code in GRANT_CODES:
        cls = GrantError
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = ServerError
    elif status >= 400:
        cls = ClientError
    else:
        cls = PlatformError
    return cls(status, code, detail, problem=problem, retry_after=retry_after_seconds(response))
