"""Demo data of this domain: a scene operator, a few experts, two scenes reviewed and approved.

Everything goes through the services (the same rules as the HTTP routes): the scenes are applied
for, submitted, reviewed by a panel drawn with a fixed seed, and approved by the authority.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.demo import approved_org
from app.demo import authority as demo_authority
from app.experts import service as experts_service
from app.experts.schemas import Affiliation, ExpertAccount, ExpertCreate
from app.organizations import service as org_service
from app.reviews import service as reviews_service
from app.scenes import service
from app.scenes.schemas import SceneCreate, SceneReview

OPERATOR = ("scene-demo", "scene-demo-pw")
OPERATOR_CREDIT_CODE = "91440300MA5DEM001X"
EXPERT_PASSWORD = "expert-demo-pw"
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
        session, kind="scene_operator", name="Shenzhen Green Venues Co., Ltd", credit_code=OPERATOR_CREDIT_CODE,
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
    lines.append(
        "near me: GET /v1/public/scenes?lat=22.541&lng=113.953&radius_m=3000 · experts: GET /v1/public/experts"
    )
    return lines
