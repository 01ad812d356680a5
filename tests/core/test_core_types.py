"""The boundary types hold everywhere: no request field or parameter takes a bare ``str``, ``int``,
``datetime`` or ``date`` (``app/core/types.py``), and cursors are opaque and authenticated.

The walk reads the types as declared: every field of every request model (bodies, nested models,
list items, dict keys and values, the raw-body models of ``request_body``) and every path, query,
header, cookie and form parameter of every route. A new field declared ``str`` fails here.
"""

import base64
import json
import types
import typing
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum

import annotated_types
import pytest
from fastapi.routing import APIRoute
from pydantic import AfterValidator, AwareDatetime, BaseModel, HttpUrl

from app.core import openapi, pagination
from app.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.core.types import Fits, Patch, in_platform_years, no_nul

OPAQUE = {
    ("query", "cursor")
}  # read by decode_cursor only: whatever a client sends there is 400 invalid_cursor
SAFE = (
    bool,
    uuid.UUID,
    Decimal,
    float,
    HttpUrl,
    type(None),
)  # parsed by pydantic into values PostgreSQL takes


def _validators(metadata: list) -> set:
    return {m.func for m in metadata if isinstance(m, AfterValidator)}


def _problems(tp, metadata: list, where: str, seen: set) -> list[str]:
    """Why ``tp`` (with the constraints in ``metadata``) is not one of the boundary types."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _problems(args[0], [*metadata, *tp.__metadata__], where, seen)
    if origin in (typing.Union, types.UnionType):
        return [p for arg in args for p in _problems(arg, metadata, where, seen)]
    if origin is typing.Literal:
        return []
    if origin in (list, tuple, set, frozenset):
        return [p for arg in args if arg is not Ellipsis for p in _problems(arg, [], f"{where}[]", seen)]
    if origin is dict or tp is dict:
        if no_nul in _validators(metadata):  # JsonObject: every key and string inside is checked
            return []
        key, value = args or (typing.Any, typing.Any)
        return _problems(key, [], f"{where}{{key}}", seen) + _problems(value, [], f"{where}{{}}", seen)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model_problems(tp, seen)
    if tp is str:
        return (
            [] if no_nul in _validators(metadata) else [f"{where}: str without the no-NUL check (use Text)"]
        )
    if tp in (datetime, date, AwareDatetime):
        return (
            []
            if in_platform_years in _validators(metadata)
            else [f"{where}: {tp.__name__} (use Moment or Day)"]
        )
    if tp is int:
        return _int_problems(metadata, where)
    if isinstance(tp, type) and (issubclass(tp, SAFE) or issubclass(tp, Enum)):
        return []
    return [f"{where}: {tp!r} is not a known boundary type"]


def _int_problems(metadata: list, where: str) -> list[str]:
    fits = [m for m in metadata if isinstance(m, Fits)]
    if not fits:
        return [f"{where}: int without a column's bounds (use Int32 or Int64)"]
    low, high = fits[-1].low, fits[-1].high
    for m in metadata:
        bound = next((getattr(m, a) for a in ("ge", "gt", "le", "lt") if hasattr(m, a)), None)
        if isinstance(m, annotated_types.Ge | annotated_types.Gt) and bound < low - 1:
            return [f"{where}: a lower bound {bound} below the column's {low}"]
        if isinstance(m, annotated_types.Le | annotated_types.Lt) and bound > high + 1:
            return [f"{where}: an upper bound {bound} beyond the column's {high}"]
    return []


def _model_problems(model: type[BaseModel], seen: set) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    return [
        p
        for name, field in model.model_fields.items()
        for p in _problems(field.annotation, list(field.metadata), f"{model.__name__}.{name}", seen)
    ]


def _routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)


def _parameters(dependant):
    for kind in ("path", "query", "header", "cookie", "body"):
        for field in getattr(dependant, f"{kind}_params"):
            yield kind, field
    for sub in dependant.dependencies:
        yield from _parameters(sub)


class TestEveryRequestTypeIsABoundaryType:
    def test_every_route_parameter_and_request_model(self, app):
        problems, seen, checked = [], set(), 0
        for route in _routes(app.routes):
            for kind, field in _parameters(route.dependant):
                if (kind, field.name) in OPAQUE:
                    continue
                checked += 1
                where = f"{sorted(route.methods)[0]} {route.path} {kind} {field.name}"
                info = field.field_info
                problems += _problems(info.annotation, list(info.metadata), where, seen)
        for model in openapi._models:  # bodies read raw (signed batches), documented by request_body
            problems += _model_problems(model, seen)
        assert checked > 150 and len(seen) > 30
        assert not problems, "\n".join(problems)

    @pytest.mark.parametrize(
        ("annotation", "problem"),
        [
            (str, "str without the no-NUL check"),
            (int, "int without a column's bounds"),
            (datetime, "datetime (use Moment or Day)"),
            (date | None, "date (use Moment or Day)"),
            (list[str], "x[]: str"),
            (dict[str, int], "x{key}: str"),
        ],
    )
    def test_the_walk_finds_a_bare_type(self, annotation, problem):
        assert problem in "".join(_problems(annotation, [], "x", set()))

    def test_the_walk_finds_a_bound_wider_than_the_column(self):
        from typing import Annotated

        from pydantic import Field

        from app.core.types import Int32, Int64, Moment, Text

        class Wide(BaseModel):
            fine: Int32 = Field(ge=1, le=100)
            wide: Int32 | None = Field(default=None, le=2**40)
            text: Annotated[Text, Field(max_length=3)]
            moment: Moment
            total: Int64

        assert _model_problems(Wide, set()) == [
            "Wide.wide: an upper bound 1099511627776 beyond the column's 2147483647"
        ]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestCursors:
    def test_a_cursor_gives_back_its_values_typed(self):
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8)))
        key = uuid.uuid4()
        cursor = encode_cursor([at, key, 7, "名字", 12.5])
        assert cursor.startswith("v1.")
        assert decode_cursor(cursor, datetime, uuid.UUID, int, str, float) == (at, key, 7, "名字", 12.5)
        assert decode_cursor(None, int) is None
        assert decode_cursor("", int) is None

    @pytest.mark.parametrize(
        "forged",
        [
            "garbage",
            "WyJ4Iiwibm90LWEtdXVpZCJd",  # the old format: base64 JSON, no version, no tag
            _b64(json.dumps([2**70]).encode()),
            "v1." + _b64(json.dumps([1]).encode()) + ".AAAAAAAAAAAAAAAAAAAAAA",  # a tag not ours
            "v2." + _b64(b"[1]") + ".x",
            "v1..",
            "\x00",
            "v1.\x00.\x00",
            "x" * 5000,
            ".".join(["v1"] * 400),
        ],
    )
    def test_a_cursor_not_given_out_is_refused(self, forged):
        with pytest.raises(InvalidCursor):
            decode_cursor(forged, int)

    def test_a_tampered_cursor_is_refused(self):
        cursor = encode_cursor([41])
        head, payload, tag = cursor.split(".")
        for changed in (
            f"{head}.{_b64(b'[42]')}.{tag}",
            f"{head}.{payload}.{tag[:-1]}A",
            cursor + "x",
            cursor[:-2],
        ):
            with pytest.raises(InvalidCursor):
                decode_cursor(changed, int)

    @pytest.mark.parametrize(
        ("values", "types_"),
        [
            (["2026-01-01T00:00:00+08:00"], (int,)),  # another list's cursor
            ([1, 2], (int,)),
            ([2**70], (int,)),
            ([True], (int,)),
            ([1.5], (int,)),
            (["a\x00b"], (str,)),
            (["0001-01-01T00:00:00+14:00"], (datetime,)),
            (["9999-12-31T23:59:59-14:00"], (datetime,)),
            (["2026-01-01T00:00:00"], (datetime,)),  # no offset
            (["not-a-uuid"], (uuid.UUID,)),
            ([10**400], (float,)),
            ([{"a": 1}], (str,)),
        ],
    )
    def test_a_genuine_cursor_with_values_of_another_type_is_refused(self, values, types_):
        with pytest.raises(InvalidCursor):
            decode_cursor(encode_cursor(values), *types_)

    def test_the_tag_depends_on_the_platform_secret(self, settings, monkeypatch):
        cursor = encode_cursor([datetime(2026, 1, 1, tzinfo=UTC)])
        monkeypatch.setattr(settings, "identity_hash_key", "another-secret-of-another-platform")
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, datetime)

    def test_invalid_cursor_is_a_400(self):
        assert (InvalidCursor.status, InvalidCursor.code) == (400, "invalid_cursor")
        assert pagination.MAX_CURSOR_LENGTH >= len(encode_cursor(["x" * 200, uuid.uuid4()]))


class TestPatch:
    class Change(Patch):
        nullable = frozenset({"note"})
        name: str | None = None
        note: str | None = None
        size: int | None = None

    def test_a_field_left_out_keeps_its_value_and_null_clears_only_a_nullable_one(self):
        assert self.Change().model_fields_set == set()
        assert self.Change(note=None).model_dump(exclude_unset=True) == {"note": None}
        assert self.Change(name="x", size=2).model_dump(exclude_unset=True) == {"name": "x", "size": 2}

    def test_every_cleared_field_that_may_not_be_is_named(self):
        with pytest.raises(ValueError, match=r"name, size cannot be null: leave a field out to keep it"):
            self.Change(size=None, note=None, name=None)
