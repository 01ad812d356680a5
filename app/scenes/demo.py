"""Demo data of this domain: a scene operator, a few experts, two scenes reviewed and approved.

Everything goes through the services (the same rules as the HTTP routes): the scenes are applied
for, submitted, reviewed by a panel drawn with a fixed seed, and approved by the authority.
"""

from datetime import timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock, security
from app.core.config import get_settings
from app.demo import approved_org
from app.demo import authority as demo_authority
from app.experts import service as experts_service
from app.experts.schemas import Affiliation, ExpertAccount, ExpertCreate
from app.organizations import service as org_service
from app.points import ingestion
from app.points.demo import OPERATOR as POINTS_OPERATOR_LOGIN
from app.points.demo import PEOPLE as POINTS_PEOPLE_PHONES
from app.reviews import service as reviews_service
from app.scenes import service
from app.scenes.schemas import SceneCreate, SceneRead, SceneReview

OPERATOR = ("scene-demo", "scene-demo-pw")
OPERATOR_CREDIT_CODE = "91440300MA5DEM001X"
EXPERT_PASSWORD = "expert-demo-pw"
POINTS_OPERATOR = POINTS_OPERATOR_LOGIN[0]
POINTS_PEOPLE = [person for person, _ in POINTS_PEOPLE_PHONES]
EXPERTS = [
    ("expert-chen", "Chen Jing", ["retail", "waste"], "Shenzhen Consumer Council"),
    ("expert-wang", "Wang Lei", ["retail", "verification"], "South China University of Technology"),
    ("expert-zhao", "Zhao Min", ["retail", "buildings"], "Shenzhen Institute of Building Research"),
    ("expert-liu", "Liu Yang", ["travel", "energy"], "Shenzhen Transport Research Center"),
]


def _scenes(behaviour_type: str) -> list[SceneCreate]:
    return [
        SceneCreate(
            name="Green Bean Café (Science Park)",
            category="business_premises",
            address="Science and Technology Park, Yuehai Subdistrict, Nanshan District, Shenzhen",
            city_code="440300",
            district_code="440305",
            lat=22.54093,
            lng=113.95281,
            opening_hours={
                "mon": "07:30-21:00",
                "tue": "07:30-21:00",
                "wed": "07:30-21:00",
                "thu": "07:30-21:00",
                "fri": "07:30-22:00",
                "sat": "09:00-22:00",
                "sun": "09:00-20:00",
            },
            behaviour_types=["own_cup"],
            description="Bring your own cup: each drink served in it is recorded as a low-carbon behaviour.",
            evidence_links=["https://example.org/green-bean/photos"],
        ),
        SceneCreate(
            name="Futian Civic Center Staff Canteen",
            category="public_institution",
            address="Civic Center, Fuzhong 3rd Road, Futian District, Shenzhen",
            city_code="440300",
            district_code="440304",
            lat=22.54311,
            lng=114.05956,
            opening_hours="weekdays 11:30-13:30",
            behaviour_types=[behaviour_type],
            description="A public institution's canteen recording reusable cups at its drinks counter.",
            evidence_links=["https://example.org/civic-canteen"],
        ),
    ]


async def load(session: AsyncSession) -> list[str]:
    if await org_service.registered(session, "scene_operator", OPERATOR_CREDIT_CODE):
        return ["scenes: demo scenes already there — GET /v1/public/scenes"]
    authority = await demo_authority(session)
    org, operator = await approved_org(
        session,
        kind="scene_operator",
        name="Shenzhen Green Venues Co., Ltd",
        credit_code=OPERATOR_CREDIT_CODE,
        admin=OPERATOR,
    )

    experts: dict[str, Principal] = {}
    for username, name, fields, affiliation in EXPERTS:
        created = await experts_service.create(
            session,
            authority,
            ExpertCreate(
                name=name,
                fields=fields,
                affiliation=Affiliation(name=affiliation),
                account=ExpertAccount(username=username, password=EXPERT_PASSWORD),
            ),
        )
        expert = await experts_service.get(session, created.id)
        experts[str(expert.id)] = Principal("staff", "expert", expert.staff_user_id)

    accepted = (await service.accepted_behaviour_types(session)).behaviour_types
    lines = [
        f"scene operator login: {OPERATOR[0]} / {OPERATOR[1]}",
        f"expert logins: {', '.join(e[0] for e in EXPERTS)} (password {EXPERT_PASSWORD})",
    ]
    for i, data in enumerate(_scenes("own_cup" if "own_cup" in accepted else accepted[0])):
        scene = await service.create(session, operator, data)
        await service.submit(session, operator, scene.id)
        # only the demo's experts (whose logins it prints) are drawn, from the retail field
        others = [
            e.id for e in await experts_service.active_in_field(session, "retail") if str(e.id) not in experts
        ]
        panel = await service.open_review(
            session,
            authority,
            scene.id,
            SceneReview(size=2, field="retail", seed=f"demo-scene-seed-{i + 1}", exclude_experts=others),
        )
        for member in panel.members:
            await reviews_service.declare(
                session, experts[str(member.expert_id)], panel.id, conflict=False, note=""
            )
            await reviews_service.submit_opinion(
                session,
                experts[str(member.expert_id)],
                panel.id,
                verdict="pass",
                score=88,
                text="Meets the scene creation guidelines; evidence checked.",
            )
        await reviews_service.decide(
            session,
            authority,
            panel.id,
            outcome="pass",
            reason="Approved on the panel's unanimous opinion.",
        )
        approved = await service.read(session, authority, scene.id)
        lines.append(f"scene {approved.label_code}: {approved.name} ({', '.join(approved.behaviour_types)})")
    lines.append(await _scene_in_review(session, authority, operator, experts))
    approved_scenes = (await service.list_(session, operator, status="approved", limit=10, cursor=None)).items
    cafe = next((s for s in reversed(approved_scenes) if "own_cup" in s.behaviour_types), None)  # the first
    if cafe is not None:
        lines.append(await _cups_at(session, cafe))
    lines.append(
        "near me: GET /v1/public/scenes?lat=22.541&lng=113.953&radius_m=3000 · experts: GET /v1/public/experts"
    )
    lines.append(f"scene operator's portal: /scene-operator (sign in as {OPERATOR[0]})")
    return lines


async def _scene_in_review(
    session: AsyncSession, authority: Principal, operator: Principal, experts: dict[str, Principal]
) -> str:
    """A third application, its panel drawn and one of two opinions in: the portal shows a review under way."""
    accepted = (await service.accepted_behaviour_types(session)).behaviour_types
    scene = await service.apply(
        session,
        operator,
        SceneCreate(
            name="Nanshan Library Water Refill Station",
            category="public_institution",
            address="Nanshan Library, 7 Nanshan Avenue, Nanshan District, Shenzhen",
            city_code="440300",
            district_code="440305",
            lat=22.52942,
            lng=113.93098,
            opening_hours="Tue-Sun 09:00-21:00",
            behaviour_types=["own_cup" if "own_cup" in accepted else accepted[0]],
            description="Readers refill their own bottles and cups at the station instead of buying bottled water.",
            evidence_links=["https://example.org/nanshan-library/refill"],
        ),
    )
    others = [
        e.id for e in await experts_service.active_in_field(session, "retail") if str(e.id) not in experts
    ]
    panel = await service.open_review(
        session,
        authority,
        scene.id,
        SceneReview(size=2, field="retail", seed="demo-scene-seed-3", exclude_experts=others),
    )
    first = panel.members[0]
    await reviews_service.declare(session, experts[str(first.expert_id)], panel.id, conflict=False, note="")
    await reviews_service.submit_opinion(
        session,
        experts[str(first.expert_id)],
        panel.id,
        verdict="pass",
        score=82,
        text="The station is in place; the counting method is sound.",
    )
    return f"scene in review: {scene.name} (1 of 2 opinions in)"


async def _cups_at(session: AsyncSession, scene: SceneRead) -> str:
    """Own-cup drinks at the café over the last four weeks, sent by the points demo's operator."""
    org_id = await org_service.staff_org_id(session, POINTS_OPERATOR)
    key_path = get_settings().data_dir.resolve() / "demo-operator-key.pem"
    if org_id is None or not key_path.exists() or "own_cup" not in scene.behaviour_types:
        return "scene records: none (the points demo's operator is missing)"
    operator = Principal("client", "operator", org_id, org_id)
    keys = [k for k in await org_service.list_keys(session, operator, org_id) if k.revoked_at is None]
    pem = key_path.read_text()
    now = clock.now()
    records = []
    for day in range(1, 29):  # the people entrusted the operator 30 days ago
        for n, person in enumerate(POINTS_PEOPLE):
            if (day + n) % 3 == 0:
                continue
            start = (now - timedelta(days=day)).replace(hour=1 + n, minute=15, second=0, microsecond=0)
            ref = f"demo-cup-{person}-{day}"
            records.append({
                "record_id": ref, "external_user_id": person, "type": "own_cup",
                "started_at": start.isoformat(), "ended_at": (start + timedelta(minutes=5)).isoformat(),
                "quantity": 1, "unit": "item", "scene_id": str(scene.id),
                "evidence": {"source": "demo-cafe-till", "ref": ref},
            })  # fmt: skip
    body = orjson.dumps({"records": records})
    result = await ingestion.ingest(
        session, operator, body, security.sign_detached(body, pem, "ES256", keys[-1].kid)
    )
    return f"scene records: {result.summary.accepted} own-cup drinks at {scene.name}"
