"""Cursor pages: ``?limit=&cursor=`` → ``{"items": [...], "next_cursor": "..." | null}``.

A cursor is opaque to clients: ``v1.<values>.<tag>``, the values of the page's last row as base64url
JSON, authenticated by an HMAC-SHA256 tag under a key derived from the platform's secret. Every
list reads its cursor with :func:`decode_cursor` (ORM lists through :func:`keyset`): a cursor the
API did not give out — another format, one changed byte, an older version — is 400
``invalid_cursor``; the values of a genuine one are still checked against the types asked for.
"""

import base64
import hashlib
import hmac
import json
import math
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel

from app.core.config import get_settings
from app.core.errors import InvalidInput
from app.core.types import MAX_YEAR, MIN_YEAR, Int32, holds_nul

T = TypeVar("T")
S = TypeVar("S", bound=sa.Select[*tuple[Any, ...]])
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 1000
VERSION = "v1"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class InvalidCursor(InvalidInput):
    status, code, title = 400, "invalid_cursor", "Invalid cursor"


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"carbon-points pagination cursor", hashlib.sha256).digest()


def _tag(signed: str) -> str:
    mac = hmac.new(_key(get_settings().identity_hash_key), signed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode_cursor(values: list[Any]) -> str:
    payload = json.dumps([_plain(v) for v in values], separators=(",", ":")).encode()
    signed = f"{VERSION}.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}"
    return f"{signed}.{_tag(signed)}"


def decode_cursor(cursor: str | None, *types: type) -> tuple[Any, ...] | None:
    """The values of a cursor this API gave out, one of each of ``types``; None for the first page."""
    if not cursor:
        return None
    signed, _, tag = cursor.rpartition(".")
    if (
        len(cursor) > MAX_CURSOR_LENGTH
        or not signed.startswith(VERSION + ".")
        or not hmac.compare_digest(tag.encode(), _tag(signed).encode())
    ):
        raise InvalidCursor("the cursor is not one this API gave out")
    payload = signed.removeprefix(VERSION + ".")
    try:
        values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("not a list of the values asked for")
        return tuple(_typed(value, kind) for value, kind in zip(values, types, strict=True))
    except ValueError as exc:  # a secret shared with an older build, or a list's keys changed since
        raise InvalidCursor("the cursor does not fit this list") from exc


def _typed(value: Any, kind: type) -> Any:
    if kind is int and type(value) is int and -(2**63) <= value < 2**63:
        return value
    if kind is float and type(value) is float and math.isfinite(value):
        return value
    if kind is str and isinstance(value, str) and not holds_nul(value):
        return value
    if kind is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if kind is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None and MIN_YEAR <= moment.year <= MAX_YEAR:
            return moment
    raise ValueError(f"a cursor value is not a {kind.__name__}")


def keyset(query: S, cursor: str | None, *order: tuple[Any, type], descending: bool = False) -> S:
    """An ORM ``query`` in ``order`` — ``(column, type of its cursor value)`` pairs — after the cursor's row."""
    columns = [column for column, _ in order]
    after = decode_cursor(cursor, *(kind for _, kind in order))
    if after is not None:
        key = sa.tuple_(*columns)
        query = query.where(key < after if descending else key > after)
    return query.order_by(*(column.desc() if descending else column.asc() for column in columns))


Limit = Annotated[Int32, Query(ge=1, le=MAX_LIMIT, description="Page size (1–200)")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page (opaque)")]


def page(items: list[Any], limit: int, key: Callable[[Any], list[Any]]) -> dict[str, Any]:
    """Build a page from ``limit + 1`` fetched rows; ``key(row)`` gives the cursor values."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode_cursor(key(items[-1])) if more and items else None}
