"""Factories for the CER registry: an owner with records, projects taken through each step, holders."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import httpx

from app.core import clock
from tests.factories import Org, bearer, make_operator, make_org, unique
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit
from tests.factories_scenes import decide_panel, draw_lock, ensure_experts, strangers


@dataclass
class Owner:
    """An operator (project owner) with one entrusted user and a methodology code of its own."""

    org: Org
    ext: str
    code: str
    records: list[dict] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return self.org.headers


def days_ago(n: int, hour: int = 10) -> datetime:
    """``hour`` o'clock (platform time) ``n`` local days before today."""
    day = clock.today() - timedelta(days=n)
    return datetime(day.year, day.month, day.day, hour, tzinfo=clock.zone())


async def make_owner(
    client: httpx.AsyncClient,
    authority: str,
    *,
    factor: str = "50000",
    code: str | None = None,
    category: str = "travel",
) -> Owner:
    """An operator whose records of its own methodology give ``factor`` grams per km (50 kg: fast tonnes)."""
    await ensure_rule()
    btype = await make_methodology(
        factor=factor, max_record="100", max_day=None, code=code, category=category
    )
    op = await make_operator(client, authority)
    user = await enrol(client, op)
    return Owner(op, user["external_user_id"], btype)


async def add_records(
    client: httpx.AsyncClient, owner: Owner, spec: list[tuple[int, float]], **kw
) -> list[dict]:
    """Records of ``quantity`` km started ``n`` days ago, for each ``(n, quantity)``; all accepted."""
    records = [
        record(owner.ext, owner.code, quantity=q, start=days_ago(n, 9 + i % 8), **kw)
        for i, (n, q) in enumerate(spec)
    ]
    r = await submit(client, owner.org, records)
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["accepted"] == len(records), r.text
    owner.records += records
    return records


def project_body(owner: Owner, start: date, end: date, **overrides) -> dict:
    body = {
        "name": unique("Metro riders"),
        "description": "Metro rides of our users",
        "benefit_sharing": "70% to the users as points, 30% to the operator",
        "methodology_codes": [owner.code],
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
    }
    body.update(overrides)
    return body


async def create_project(
    client: httpx.AsyncClient, owner: Owner, start: date, end: date, **overrides
) -> dict:
    r = await client.post(
        "/v1/cer/projects", json=project_body(owner, start, end, **overrides), headers=owner.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def after_publicity(project: dict) -> None:
    """Move the platform clock to the day after the publicity (the test's fixture puts it back)."""
    ends = date.fromisoformat(project["publicity_ends_on"])
    clock.set_offset(timedelta(0))
    clock.set_offset(timedelta(days=(ends - clock.today()).days + 1))


async def verifier(client: httpx.AsyncClient, authority: str) -> Org:
    return await make_org(client, "verifier", authority=authority)


async def to_verified(
    client: httpx.AsyncClient,
    authority: str,
    owner: Owner,
    project: dict,
    *,
    verified_g: int | None = None,
    verifier_org: Org | None = None,
) -> dict:
    """Publicity over, submitted, verifier assigned, verification recorded."""
    verifier_org = verifier_org or await verifier(client, authority)
    after_publicity(project)
    pid = project["id"]
    r = await client.post(f"/v1/cer/projects/{pid}/submit", headers=owner.headers)
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/v1/cer/projects/{pid}/verifier",
        json={"verifier_org_id": verifier_org.id},
        headers=bearer(authority),
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/v1/cer/projects/{pid}/verification",
        json={
            "verified_g": project["claimed_g"] if verified_g is None else verified_g,
            "statement": "Records sampled and checked against the signed batches.",
            "documents": ["https://verifier.example/reports/1.pdf"],
        },
        headers=verifier_org.headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


async def review(client: httpx.AsyncClient, authority: str, project_id: str, outcome: str = "pass") -> dict:
    """Open the expert review (one verification expert these tests can log in as) and decide it."""
    async with draw_lock():
        await ensure_experts(client, authority, "verification", 1)
        r = await client.post(
            f"/v1/cer/projects/{project_id}/review",
            json={"size": 1, "exclude_experts": await strangers(client, authority, "verification")},
            headers=bearer(authority),
        )
    assert r.status_code == 201, r.text
    return await decide_panel(client, authority, r.json(), outcome, "checked")


async def to_issued(client: httpx.AsyncClient, authority: str, owner: Owner, project: dict, **kw) -> dict:
    """All the way: verified, reviewed, filed, issued. Returns the issuance."""
    await to_verified(client, authority, owner, project, **kw)
    await review(client, authority, project["id"])
    r = await client.post(
        f"/v1/cer/projects/{project['id']}/filing",
        json={"outcome": "filed", "reason": "ok"},
        headers=bearer(authority),
    )
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/cer/projects/{project['id']}/issue", headers=bearer(authority))
    assert r.status_code == 201, r.text
    return r.json()


async def issued_units(
    client: httpx.AsyncClient, authority: str, tonnes: int, *, grams_extra: int = 0
) -> tuple[Owner, dict]:
    """An owner holding ``tonnes`` freshly issued units (50 kg per km: 20 km a tonne)."""
    owner = await make_owner(client, authority)
    km = tonnes * 20
    spec, left = [], km
    while left > 0:  # at most 100 km a record
        spec.append((2, float(min(100, left))))
        left -= min(100, left)
    await add_records(client, owner, spec)
    project = await create_project(
        client, owner, clock.today() - timedelta(days=5), clock.today() - timedelta(days=1)
    )
    issuance = await to_issued(client, authority, owner, project)
    assert issuance["tonnes"] == tonnes
    return owner, issuance


async def account(client: httpx.AsyncClient, headers: dict) -> dict:
    r = await client.get("/v1/cer/accounts/me", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()
