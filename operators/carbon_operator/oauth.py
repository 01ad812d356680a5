"""People confirm their own entrustment: the operator's half of the authorization code flow.

The platform is the authorization server (RFC 6749 §4.1, PKCE with ``S256`` only, RFC 7636,
RFC 9700). The operator's app:

1. builds the authorize URL with :func:`authorization_request` (a fresh PKCE verifier and a random
   ``state``), keeps the returned :class:`AuthorizationRequest` (the verifier and the state) for the
   person's browser session, and sends the person to its ``url``;
2. on its redirect URI, checks that ``state`` is the one it kept and exchanges the ``code``
   (``AsyncPlatformClient.exchange_code``) for a :class:`TokenSet`;
3. keeps the token set in a :class:`TokenStore` (one per person, keyed by the operator's id of the
   person) and gets short-lived user tokens from its refresh token, which rotates on every use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

AUTHORIZE_PATH = "/oauth/authorize"
SCOPES = ("behaviours:submit", "account:read", "mall")
DEFAULT_SCOPE = "behaviours:submit account:read"


def code_verifier() -> str:
    """A fresh PKCE verifier: 64 characters of base64url (RFC 7636 §4.1 asks 43 to 128)."""
    return secrets.token_urlsafe(48)


def code_challenge(verifier: str) -> str:
    """The ``S256`` challenge of ``verifier``: base64url of its SHA-256, unpadded (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _scope(scope: str | Iterable[str]) -> str:
    scopes = scope.split() if isinstance(scope, str) else list(scope)
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise ValueError(f"scope may name only {', '.join(SCOPES)} (not {' '.join(unknown) or 'nothing'})")
    return " ".join(scopes)


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorize URL and what the app keeps until the person comes back: ``state`` to check
    against the redirect's, ``code_verifier`` to send with the code. Keep both server-side."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str
    scope: str

    @property
    def code_challenge(self) -> str:
        return code_challenge(self.code_verifier)

    def check_state(self, returned: str | None) -> bool:
        """Whether the ``state`` the redirect carried is this request's (compared in constant time)."""
        return returned is not None and hmac.compare_digest(returned.encode(), self.state.encode())


def authorization_request(
    base_url: str,
    client_id: str,
    redirect_uri: str,
    scope: str | Iterable[str] = DEFAULT_SCOPE,
    *,
    state: str | None = None,
    verifier: str | None = None,
) -> AuthorizationRequest:
    """The authorize URL for one person's sign-in, with a fresh PKCE verifier and a random state."""
    verifier = verifier or code_verifier()
    state = state or secrets.token_urlsafe(24)
    scope = _scope(scope)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    url = f"{base_url.rstrip('/')}{AUTHORIZE_PATH}?{query}"
    return AuthorizationRequest(url, state, verifier, redirect_uri, scope)


class TokenSet(BaseModel):
    """What the platform answers the ``authorization_code`` and ``refresh_token`` grants: a
    short-lived user token and the refresh token for the next one (it works once)."""

    model_config = ConfigDict(extra="allow")

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    scope: str
    user_id: str
    external_user_id: str
    obtained_at: float = Field(default_factory=time.time, description="When it was received (epoch seconds)")

    @property
    def expires_at(self) -> float:
        return self.obtained_at + self.expires_in

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

    def fresh(self, now: float, margin: float = 60.0) -> bool:
        """Whether the user token has more than ``margin`` seconds (at most half its life) left."""
        return now < self.expires_at - min(margin, self.expires_in / 2)


class RedirectUri(BaseModel):
    """A registered redirect URI of the operator's app."""

    model_config = ConfigDict(extra="allow")

    id: int
    uri: str
    created_at: datetime


class TokenStore(Protocol):
    """Where token sets are kept, one per person (keyed by the operator's id of the person).

    Persist them (a database row, encrypted at rest) in production: a refresh token works once,
    and the one saved last is the only one the platform still honours.
    """

    def load(self, external_user_id: str) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...

    def delete(self, external_user_id: str) -> None: ...


class MemoryTokenStore:
    """The default :class:`TokenStore`: a dictionary, gone with the process."""

    def __init__(self) -> None:
        self._sets: dict[str, TokenSet] = {}

    def load(self, external_user_id: str) -> TokenSet | None:
        return self._sets.get(external_user_id)

    def save(self, tokens: TokenSet) -> None:
        self._sets[tokens.external_user_id] = tokens

    def delete(self, external_user_id: str) -> None:
        self._sets.pop(external_user_id, None)

    def __len__(self) -> int:
        return len(self._sets)
