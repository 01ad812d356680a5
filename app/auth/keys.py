"""The platform's own signing keys: created on first start, rotated without logging anyone out."""

import logging
import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.models import PlatformSigningKey
from app.core import clock, db, security
from app.core.config import get_settings

log = logging.getLogger(__name__)
ALGORITHM = "ES256"
_ROTATE_LOCK = 0x0A0D17_1000
RELOAD_SECONDS = 60
"""Another process may have rotated: re-read the keys this often (and on an unknown ``kid``)."""

_keys: dict[str, security.SigningKey] = {}
_active: str | None = None
_loaded_at = 0.0


async def load(session: AsyncSession) -> None:
    """Read the verification keys (and the active signing key) into memory."""
    global _active, _loaded_at
    _loaded_at = time.monotonic()
    grace = timedelta(seconds=max(get_settings().token_ttl_seconds, get_settings().user_token_ttl_seconds))
    rows = await repository.verification_keys(await db.raw_connection(session), clock.now() - grace)
    _keys.clear()
    _active = None
    for row in rows:
        _keys[row["kid"]] = security.SigningKey(
            row["kid"], row["algorithm"], row["private_pem"], row["public_jwk"]
        )
        if row["retired_at"] is None:
            _active = row["kid"]


async def ensure(session: AsyncSession) -> None:
    """Create a signing key if there is none (once, whichever process gets here first)."""
    await db.advisory_xact_lock(session, _ROTATE_LOCK)
    if not await repository.has_active_key(session):
        await _insert_new(session)
    await load(session)


async def rotate(session: AsyncSession) -> str:
    """Retire the active key (it still verifies until its tokens expire) and sign with a new one."""
    await db.advisory_xact_lock(session, _ROTATE_LOCK)
    await repository.retire_active_keys(session, clock.now())
    kid = await _insert_new(session)
    await load(session)
    return kid


async def _insert_new(session: AsyncSession) -> str:
    pem = security.generate_es256_pem()
    jwk = security.public_jwk_from_pem(pem)
    kid = security.thumbprint(jwk)
    await repository.insert_key(
        session,
        PlatformSigningKey(
            kid=kid, algorithm=ALGORITHM, private_pem=pem, public_jwk=jwk, created_at=clock.now()
        ),
    )
    return kid


def active() -> security.SigningKey:
    if _active is None:
        raise RuntimeError("no platform signing key loaded")
    return _keys[_active]


async def for_kid(session: AsyncSession, kid: str) -> security.SigningKey | None:
    """The verification key ``kid``; re-reads the keys if another process may have rotated them."""
    age = time.monotonic() - _loaded_at
    if age > RELOAD_SECONDS or (kid not in _keys and age > 2):
        await load(session)
    return _keys.get(kid)


def jwks() -> dict:
    return {
        "keys": [{**k.public_jwk, "kid": k.kid, "alg": k.algorithm, "use": "sig"} for k in _keys.values()]
    }
