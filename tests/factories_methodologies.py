"""Factories for methodology and exchange-rule versions over HTTP.

Every methodology test uses a behaviour type of its own (``new_type()``), so the overlap rule of
one test never meets another's. The exchange rule is one per platform: tests take their periods
from ``rule_years()``, far in the future (within the platform's years, up to 2200) and increasing,
so they never touch the rule in force now and never overlap one another.
"""

import itertools
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from app.core import security
from tests.factories import bearer

CST = timezone(timedelta(hours=8))
_years = itertools.count(2050, 10)


def new_type() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def at(year: int, month: int = 1, day: int = 1) -> str:
    return datetime(year, month, day, tzinfo=CST).isoformat()


def rule_years() -> int:
    """The start of a 10-year window of the far future no other test uses."""
    return next(_years)


def methodology_body(**overrides: Any) -> dict[str, Any]:
    behaviour_type = overrides.pop("behaviour_type", None) or new_type()
    body = {
        "code": overrides.pop("code", None) or f"m-{uuid.uuid4().hex[:12]}",
        "behaviour_type": behaviour_type,
        "category": "travel",
        "name": "Test travel",
        "description": "for tests",
        "unit": "km",
        "baseline_factor_g": 100,
        "project_factor_g": 40,
        "max_quantity_per_record": 50,
        "max_quantity_per_day": 150,
        "citation": "a test source",
        "derivation": "100 − 40 = 60",
        "illustrative": True,
        "effective_from": at(2030),
        "effective_to": None,
    }
    body.update(overrides)
    return body


def rule_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Test rule",
        "points_per_gram": 0.1,
        "daily_cap_points": 200,
        "type_daily_caps": {"walking": 50},
        "lot_lifetime_days": 730,
        "effective_from": at(2050),
        "effective_to": None,
    }
    body.update(overrides)
    return body


async def create(
    client: httpx.AsyncClient, token: str, kind: str = "methodologies", **overrides: Any
) -> dict:
    body = methodology_body(**overrides) if kind == "methodologies" else rule_body(**overrides)
    r = await client.post(f"/v1/{kind}", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()


async def act(
    client: httpx.AsyncClient, token: str, kind: str, version_id: str, action: str
) -> httpx.Response:
    """A lifecycle action; an authority's methodology publish first gets its expert panel passed."""
    if (
        kind == "methodologies"
        and action == "publish"
        and security.unverified_claims(token)["role"] == "authority"
    ):
        from tests.factories_scenes import pass_review

        await pass_review(client, token, "methodology_version", version_id)
    return await client.post(f"/v1/{kind}/{version_id}/{action}", headers=bearer(token))


async def submitted(
    client: httpx.AsyncClient, token: str, kind: str = "methodologies", **overrides: Any
) -> dict:
    version = await create(client, token, kind, **overrides)
    r = await act(client, token, kind, version["id"], "submit")
    assert r.status_code == 200, r.text
    return r.json()


async def published(
    client: httpx.AsyncClient, token: str, kind: str = "methodologies", **overrides: Any
) -> dict:
    version = await submitted(client, token, kind, **overrides)
    r = await act(client, token, kind, version["id"], "publish")
    assert r.status_code == 200, r.text
    return r.json()
