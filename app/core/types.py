"""The types of everything a request carries: the one check at the boundary.

Every field of a request model and every path, query, header and form parameter is declared
with one of these (``tests/core/test_core_types.py`` walks them all), so input that PostgreSQL or
Python cannot take is answered 422 ``validation_error`` before any code runs:

* ``Text``: a string without the NUL character (PostgreSQL text cannot hold it). Lengths and
  patterns are added where it is used: ``name: Text = Field(min_length=1, max_length=200)``.
* ``Moment``: an RFC 3339 time with an offset, ``Day``: a calendar day, both within the years
  ``MIN_YEAR``–``MAX_YEAR`` (as written, before any conversion). Outside them a time cannot be
  a behaviour, a sale or a period of this platform, and near year 1 or 9999 converting it to
  UTC or to the platform's zone overflows. ``AnyMoment``: the same range, the offset left for
  the domain to require with its own code (methodologies: ``naive_datetime``).
* ``Int32``, ``Int64``: integers that fit the PostgreSQL ``integer`` and ``bigint`` they end in;
  a field adds its own bounds (``Field(ge=1, le=1000)``).
* ``JsonObject``: a JSON object (e.g. a JWK) with no NUL in any key or string inside.
* ``Patch``: the base of a body that changes some fields of a thing (a field left out keeps its value,
  ``null`` clears it where ``nullable`` allows).
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Self, cast

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, GetCoreSchemaHandler, model_validator
from pydantic_core import CoreSchema

MIN_YEAR, MAX_YEAR = 2000, 2200


def holds_nul(value: Any) -> bool:
    """Whether ``value`` (a string, or JSON data) has the NUL character in any string or key."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(v) for v in value)
    return False


def no_nul(value: Any) -> Any:
    if holds_nul(value):
        raise ValueError("text may not contain the NUL character")
    return value


def in_platform_years(value: date) -> date:
    """``value`` (a day or a time, as written) when its year is within ``MIN_YEAR``–``MAX_YEAR``."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"the year must be within {MIN_YEAR}–{MAX_YEAR}")
    return value


@dataclass(frozen=True)
class Fits:
    """Bounds an integer to a column's range (``ge``/``le`` in its schema, so the OpenAPI shows them).

    A field's own bounds narrow it whichever order pydantic applies the two in; a bound wider than
    the column would win, and the test that walks every request type refuses one.
    """

    low: int
    high: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        bounds = cast(dict[str, Any], schema)  # an int schema, whose ge/le this narrows
        bounds["ge"] = max(bounds.get("ge", self.low), self.low)
        bounds["le"] = min(bounds.get("le", self.high), self.high)
        return schema


Text = Annotated[str, AfterValidator(no_nul)]
Moment = Annotated[
    AwareDatetime,
    AfterValidator(in_platform_years),
    Field(description=f"RFC 3339 with an offset, years {MIN_YEAR}–{MAX_YEAR}"),
]
AnyMoment = Annotated[datetime, AfterValidator(in_platform_years)]
Day = Annotated[
    date, AfterValidator(in_platform_years), Field(description=f"A day, years {MIN_YEAR}–{MAX_YEAR}")
]
Int32 = Annotated[int, Fits(-(2**31), 2**31 - 1)]
Int64 = Annotated[int, Fits(-(2**63), 2**63 - 1)]
JsonObject = Annotated[dict[str, Any], AfterValidator(no_nul)]


class Patch(BaseModel):
    """A body that changes some of a thing's fields: a field left out keeps its value, ``null`` clears it, and
    only the fields named in ``nullable`` may be cleared (a field added later cannot be cleared by default)."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _cleared_only_where_allowed(self) -> Self:
        cleared = sorted(f for f in self.model_fields_set - self.nullable if getattr(self, f) is None)
        if cleared:
            raise ValueError(f"{', '.join(cleared)} cannot be null: leave a field out to keep it")
        return self
