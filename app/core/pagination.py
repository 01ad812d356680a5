"""Cursor pages: ``?limit=&cursor=`` → ``{"items": [...], "next_cursor": "..." | null}``."""

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from app.core.errors import InvalidInput

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class InvalidCursor(InvalidInput):
    code, title = "invalid_cursor", "Invalid cursor"


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise InvalidCursor("the cursor is not one this API gave out") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidCursor("the cursor is not one this API gave out")
    return values


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1–200)")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")]


def page(items: list[Any], limit: int, key) -> dict[str, Any]:
    """Build a page from ``limit + 1`` fetched rows; ``key(row)`` gives the cursor values."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode_cursor(key(items[-1])) if more and items else None}
