"""Factories for the points engine: methodologies, rules, people, signed batches."""

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import sqlalchemy as sa

from app.core import clock, db
from app.methodologies import catalogue
from tests.factories import Org, signed, unique

EPOCH = datetime.fromisoformat("2020-01-01T00:00:00+08:00")


async def ensure_rule() -> None:
    """The shipped catalogue (its exchange rule: 1 point per 10 g, 200 a day, 2-year lots), once."""
    async with db.session_scope() as session:
        await catalogue.load(session)


async def make_methodology(
    *,
    factor: str = "46.7",
    unit: str = "km",
    max_record: str = "60",
    max_day: str | None = "200",
    category: str = "travel",
    behaviour_type: str | None = None,
    effective_from: datetime = EPOCH,
    effective_to: datetime | None = None,
    version: int = 1,
    code: str | None = None,
) -> str:
    """A published methodology version of a behaviour type of its own; returns the type."""
    btype = behaviour_type or unique("metro")
    async with db.session_scope() as session:
        await session.execute(
            sa.text(
                "INSERT INTO methodology_versions (id, code, version, behaviour_type, category, name, description,"
                " unit, net_factor_g, max_quantity_per_record, max_quantity_per_day, citation, derivation,"
                " illustrative, status, effective_from, effective_to, created_at, published_at)"
                " VALUES (:id, :code, :v, :t, :cat, 'test', '', :unit, :f, :mr, :md, '', '', false, 'published',"
                " :ef, :et, now(), now())"
            ),
            {
                "id": uuid.uuid4(),
                "code": code or btype,
                "v": version,
                "t": btype,
                "cat": category,
                "unit": unit,
                "f": Decimal(factor),
                "mr": Decimal(max_record),
                "md": Decimal(max_day) if max_day else None,
                "ef": effective_from,
                "et": effective_to,
            },
        )
    return btype


def phone() -> str:
    return f"+86138{random.randint(0, 99_999_999):08d}"


async def enrol(
    client: httpx.AsyncClient,
    op: Org,
    *,
    external_user_id: str | None = None,
    number: str | None = None,
    accepted_at: datetime | None = None,
) -> dict:
    ext = external_user_id or unique("u")
    r = await client.post(
        "/v1/operator/users",
        json={
            "external_user_id": ext,
            "identifier": {"type": "phone", "value": number or phone()},
            "consent": {
                "agreement_version": "v1",
                "accepted_at": (accepted_at or clock.now() - timedelta(days=30)).isoformat(),
            },
        },
        headers=op.headers,
    )
    assert r.status_code in (200, 201), r.text
    return {**r.json(), "external_user_id": ext}


def record(
    ext: str,
    btype: str,
    *,
    quantity=10.0,
    start: datetime | None = None,
    minutes: int = 20,
    unit: str = "km",
    evidence: str | None = None,
    record_id: str | None = None,
    scene_id=None,
) -> dict:
    start = start or clock.now() - timedelta(hours=2)
    return {
        "record_id": record_id or unique("rec"),
        "external_user_id": ext,
        "type": btype,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
        "quantity": quantity,
        "unit": unit,
        "scene_id": scene_id,
        "evidence": {"source": "test-card", "ref": evidence or unique("txn")},
    }


async def submit(
    client: httpx.AsyncClient, op: Org, records: list[dict], *, key: str | None = None
) -> httpx.Response:
    body, headers = signed(op, {"records": records})
    headers["Idempotency-Key"] = key or unique("batch")
    return await client.post("/v1/operator/behaviour-batches", content=body, headers=headers)


async def user_headers(client: httpx.AsyncClient, op: Org, ext: str) -> dict[str, str]:
    r = await client.post(f"/v1/operator/users/{ext}/tokens", headers=op.headers)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
