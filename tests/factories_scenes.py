"""Factories for experts, review panels and scenes (over HTTP)."""

import asyncio
import random
import weakref
from dataclasses import dataclass

import httpx

from tests.factories import PASSWORD, Org, bearer, login, unique

# every expert these factories made, by id: the tests know their logins
EXPERTS: dict[str, "ExpertLogin"] = {}


@dataclass
class ExpertLogin:
    id: str
    username: str
    token: str
    body: dict

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


_draw_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = (
    weakref.WeakKeyDictionary()
)


def draw_lock() -> asyncio.Lock:
    """Held from listing the experts to drawing a panel: requests side by side in one test must not
    draw an expert another of them is still creating (and has not yet logged in as)."""
    loop = asyncio.get_running_loop()
    return _draw_locks.setdefault(loop, asyncio.Lock())


async def make_expert(
    client: httpx.AsyncClient,
    authority: str,
    *,
    fields: list[str] | None = None,
    affiliation: str | None = None,
    org_id: str | None = None,
    name: str | None = None,
) -> ExpertLogin:
    username = unique("expert")
    body = {
        "name": name or unique("Expert"),
        "fields": fields or ["retail"],
        "affiliation": {"name": affiliation or unique("Institute"), "org_id": org_id},
        "account": {"username": username, "password": PASSWORD},
    }
    r = await client.post("/v1/experts", json=body, headers=bearer(authority))
    assert r.status_code == 201, r.text
    expert = ExpertLogin(r.json()["id"], username, await login(client, username), r.json())
    EXPERTS[expert.id] = expert
    return expert


async def active_expert_ids(client: httpx.AsyncClient, authority: str, field: str) -> list[str]:
    ids, cursor = [], None
    while True:
        params = {"field": field, "active": "true", "limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/experts", params=params, headers=bearer(authority))
        assert r.status_code == 200, r.text
        ids += [e["id"] for e in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return ids


async def strangers(
    client: httpx.AsyncClient, authority: str, field: str, keep: list[str] | None = None
) -> list[str]:
    """Active experts of ``field`` these tests can't log in as (or not in ``keep``): to exclude from draws."""
    allowed = set(keep) if keep is not None else set(EXPERTS)
    return [e for e in await active_expert_ids(client, authority, field) if e not in allowed]


def random_city() -> tuple[str, str]:
    """A city code no other test uses (so filters see only this test's scenes) and a district in it."""
    city = f"{random.randint(10, 99)}{random.randint(10, 99)}00"
    return city, city[:4] + f"{random.randint(1, 99):02d}"


def scene_body(**overrides) -> dict:
    body = {
        "name": unique("Green Cafe"),
        "category": "business_premises",
        "address": "1 Science Park Rd, Nanshan",
        "city_code": "440300",
        "district_code": "440305",
        "lat": 22.5431,
        "lng": 113.9436,
        "opening_hours": {"mon": "07:00-22:00", "sat": "09:00-23:00"},
        "behaviour_types": ["own_cup"],
        "description": "Bring your own cup and get points.",
        "evidence_links": ["https://example.org/photos/1"],
    }
    body.update(overrides)
    return body


async def make_scene(client: httpx.AsyncClient, operator: Org, *, submit: bool = False, **overrides) -> dict:
    r = await client.post("/v1/scenes", json=scene_body(**overrides), headers=operator.headers)
    assert r.status_code == 201, r.text
    scene = r.json()
    if submit:
        r = await client.post(f"/v1/scenes/{scene['id']}/submit", headers=operator.headers)
        assert r.status_code == 200, r.text
        scene = r.json()
    return scene


async def open_scene_review(
    client: httpx.AsyncClient, authority: str, scene_id: str, *, size: int = 1, field: str = "retail", **extra
) -> dict:
    """Open the scene's review, drawing only from experts these tests can log in as."""
    async with draw_lock():
        body = {
            "size": size,
            "field": field,
            "exclude_experts": await strangers(client, authority, field),
            **extra,
        }
        r = await client.post(f"/v1/scenes/{scene_id}/review", json=body, headers=bearer(authority))
    assert r.status_code == 201, r.text
    return r.json()


async def decide_panel(
    client: httpx.AsyncClient, authority: str, panel: dict, outcome: str, reason: str
) -> dict:
    for member in panel["members"]:
        expert = EXPERTS[str(member["expert_id"])]
        await declare(client, panel["id"], expert.headers)
        r = await client.post(
            f"/v1/reviews/{panel['id']}/opinions",
            json={"verdict": outcome, "score": 80 if outcome == "pass" else 30, "text": reason},
            headers=expert.headers,
        )
        assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/reviews/{panel['id']}/decision",
        json={"outcome": outcome, "reason": reason},
        headers=bearer(authority),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def declare(client: httpx.AsyncClient, panel_id: str, headers: dict[str, str]) -> None:
    """The member declares no conflict of interest, as they must before giving an opinion."""
    r = await client.post(f"/v1/reviews/{panel_id}/declaration", json={"conflict": False}, headers=headers)
    assert r.status_code == 201, r.text


async def ensure_experts(
    client: httpx.AsyncClient, authority: str, field: str = "retail", n: int = 1
) -> None:
    known = [e for e in await active_expert_ids(client, authority, field) if e in EXPERTS]
    for _ in range(n - len(known)):
        await make_expert(client, authority, fields=[field])


async def approved_scene(client: httpx.AsyncClient, authority: str, operator: Org, **overrides) -> dict:
    """A scene taken through the whole application: submitted, reviewed by one expert, approved."""
    await ensure_experts(client, authority)
    scene = await make_scene(client, operator, submit=True, **overrides)
    panel = await open_scene_review(client, authority, scene["id"])
    await decide_panel(client, authority, panel, "pass", "meets the scene guidelines")
    r = await client.get(f"/v1/scenes/{scene['id']}", headers=operator.headers)
    assert r.json()["status"] == "approved", r.text
    return r.json()


# Scene behaviour types besides own_cup that the scene tests use. Once any scene methodology is
# published (the shipped catalogue publishes own_cup), only published types are accepted: the
# scene tests' conftest publishes these (and the shipped catalogue) first.
PLATE, BAG, RECEIPT = "test_clean_plate", "test_reusable_bag", "test_paperless_receipt"


async def publish_scene_types(tmp_dir) -> None:
    import json
    from pathlib import Path

    from app.core import db
    from app.methodologies import catalogue

    shipped = catalogue.read()
    own_cup = next(m for m in shipped["methodologies"] if m["behaviour_type"] == "own_cup")
    extra = [
        {**own_cup, "code": t.replace("_", "-"), "behaviour_type": t, "name": f"Test scene behaviour {t}"}
        for t in (PLATE, BAG, RECEIPT)
    ]
    path = Path(tmp_dir) / "scene-types.json"
    path.write_text(json.dumps({"methodologies": extra}), encoding="utf-8")
    async with db.session_scope() as session:
        await catalogue.load(session)
    async with db.session_scope() as session:
        await catalogue.load(session, path)


async def pass_review(
    client: httpx.AsyncClient,
    authority: str,
    subject_type: str,
    subject_id: str,
    *,
    field: str = "travel",
    outcome: str = "pass",
) -> dict:
    """A one-expert panel on any subject (e.g. ``"methodology_version"``), decided ``outcome``."""
    async with draw_lock():
        await ensure_experts(client, authority, field)
        body = {
            "subject_type": subject_type,
            "subject_id": subject_id,
            "field": field,
            "size": 1,
            "exclude_experts": await strangers(client, authority, field),
        }
        r = await client.post("/v1/reviews", json=body, headers=bearer(authority))
    assert r.status_code == 201, r.text
    return await decide_panel(client, authority, r.json(), outcome, f"review {outcome}")
