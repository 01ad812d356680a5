"""Demo data of the registry: the demo operator's account, prices, a project carried through the whole
lifecycle to a retirement certificate, and a project of its last week in publicity.

The issued project aggregates a month of electric-car commutes of fifty drivers, sent as signed batches
of 1,000 records through the ingestion service, a few tonnes in all. Its publicity (7 working days from
its creation) must be over by today, so its drivers, their trips and the project itself are made with
the platform clock set back four weeks and the period is the month before that; the clock is put back
at once, and the rest — publicity over, verification by a demo verifier, an expert review, filing,
issuance of the whole tonnes, a transfer to a demo buyer and a retirement with its certificate —
happens today. The week project stays in publicity (7 working days) like a real one would.
"""

import uuid
from datetime import datetime, timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.cer import calendar, prices, registry, repository, service
from app.cer.schemas import (
    Beneficiary,
    PriceIn,
    ProjectCreate,
    RetirementCreate,
    ReviewOpen,
    TransferCreate,
    VerificationIn,
)
from app.core import clock, security
from app.core.config import get_settings
from app.core.errors import DomainError
from app.demo import approved_org
from app.demo import authority as demo_authority
from app.experts import service as experts_service
from app.methodologies import service as methodologies_service
from app.organizations import service as org_service
from app.points import ingestion
from app.points import service as points_service
from app.reviews import service as reviews_service
from app.users import service as users_service
from app.users.schemas import Consent, EnrolUser, Identifier

OPERATOR_USERNAME = "demo-operator"  # made by app/points/demo.py
PRICES_FEN = [9012, 9105, 8987, 9230, 9318, 9264, 9401, 9377, 9452, 9510]

NEV_CODE = "nev-driving"  # the shipped catalogue's battery-electric car methodology
DRIVERS = 50
PERIOD_DAYS = 30
BATCH = 1000
BACK = timedelta(days=28)
"""How far the clock is set back while the issued project's trips are sent and the project is created."""
VERIFIER = ("verifier-demo", "verifier-demo-pw")
VERIFIER_CREDIT_CODE = "91440300MA5DEMKF0H"
BUYER = ("buyer-demo", "buyer-demo-pw")
BUYER_CREDIT_CODE = "91440300MA5DEMBY0K"
REVIEW_EXPERT = "expert-wang"  # made by app/scenes/demo.py, of the field "verification"
BENEFICIARY = Beneficiary(kind="event", name="深圳国际马拉松 2026 (demo)")
PURPOSE = "Carbon neutrality of the 2026 Shenzhen International Marathon's shuttle buses (demo)"


async def load(session: AsyncSession) -> list[str]:
    org_id = await org_service.staff_org_id(session, OPERATOR_USERNAME)
    if org_id is None:
        return []
    operator = Principal("client", "operator", org_id, org_id)
    authority = Principal("staff", "authority", uuid.UUID(int=0))
    await registry.ensure_account(session, org_id)
    lines = [f"CER: registry account for the demo operator {org_id}"]

    today = clock.today()
    overrides = await repository.calendar_overrides(session, *calendar.span_before(today))
    for day, fen in zip(
        reversed(calendar.trading_days_before(today, 10, overrides)), PRICES_FEN, strict=False
    ):
        await prices.record_price(session, authority, PriceIn(date=day, price_fen=fen))
    lines.append(f"CER: reference price GET /v1/cer/reference-price?on={today}")
    lines += await _issued_and_retired(session, operator)

    used = await points_service.methodology_versions_used(session, org_id)
    codes = sorted({v.code for v in await methodologies_service.versions_by_id(session, used)})
    if codes:
        try:
            async with session.begin_nested():
                project = await service.create(
                    session,
                    operator,
                    ProjectCreate(
                        name="深圳低碳出行 demo: a week of green trips",
                        description="Metro, bus, cycling and walking of the demo operator's users.",
                        benefit_sharing="Points to the users; the operator owns the project.",
                        methodology_codes=codes,
                        period_start=today - timedelta(days=8),
                        period_end=today - timedelta(days=1),
                    ),
                )
        except DomainError as exc:  # loaded before: the week is in a project already
            lines.append(f"CER: no new demo project ({exc.code})")
        else:
            lines.append(
                f"CER: project {project.id} in publicity until {project.publicity_ends_on} "
                f"({project.record_count} records, {project.claimed_g} g) — GET /v1/public/cer/projects"
            )
    return lines


async def _issued_and_retired(session: AsyncSession, operator: Principal) -> list[str]:
    """The demo operator's month of electric-car commutes, from publicity to a retirement certificate."""
    buyer_id = await org_service.staff_org_id(session, BUYER[0])
    if buyer_id is not None:  # loaded before
        return await _certificate_lines(session, buyer_id, "CER: demo certificate already there")
    key_path = get_settings().data_dir.resolve() / "demo-operator-key.pem"
    versions = await methodologies_service.versions_by_code(session, [NEV_CODE])
    expert_staff_id = await org_service.staff_id(session, REVIEW_EXPERT)
    pool = await experts_service.active_in_field(session, "verification")
    if not any(v.status in methodologies_service.PUBLIC_STATUSES for v in versions):
        return [f"CER: no issued demo project (the methodology {NEV_CODE} is not published)"]
    if (
        not key_path.exists()
        or expert_staff_id is None
        or not any(e.staff_user_id == expert_staff_id for e in pool)
    ):
        return [
            "CER: no issued demo project (the points demo's key or the scenes demo's experts are missing)"
        ]

    clock.set_offset(-BACK)  # the trips are sent and the project created four weeks ago
    try:
        created_on = clock.today()
        trips = await _send_trips(session, operator, key_path.read_text())
        project = await service.create(
            session,
            operator,
            ProjectCreate(
                name="深圳电动车通勤 demo: a month of electric-car commutes",
                description=f"Commutes of {DRIVERS} of the demo operator's users in battery-electric cars instead of "
                "petrol cars, from the charging operator's data.",
                benefit_sharing="Points to the drivers; the operator owns the project and sells its units.",
                methodology_codes=[NEV_CODE],
                period_start=created_on - timedelta(days=PERIOD_DAYS),
                period_end=created_on - timedelta(days=1),
            ),
        )
    finally:
        clock.set_offset(timedelta(0))
    if project.publicity_ends_on >= clock.today():
        return [f"CER: demo project {project.id} in publicity until {project.publicity_ends_on}"]

    authority = await demo_authority(session)
    verifier_org, verifier = await approved_org(
        session,
        kind="verifier",
        name="Shenzhen Low-Carbon Verification Co. (demo verifier)",
        credit_code=VERIFIER_CREDIT_CODE,
        admin=VERIFIER,
    )
    await service.submit(session, operator, project.id)
    await service.assign_verifier(session, authority, project.id, verifier_org.id)
    await service.record_verification(
        session,
        verifier,
        project.id,
        VerificationIn(
            verified_g=project.claimed_g,
            statement="A sample of the records checked against the signed batches and the charging data; "
            "the reductions are confirmed as claimed.",
            documents=["https://example.org/verifier-demo/reports/nev-commutes.pdf"],
        ),
    )
    others = [e.id for e in pool if e.staff_user_id != expert_staff_id]  # only the demo's expert is drawn
    panel = await service.open_review(
        session,
        authority,
        project.id,
        ReviewOpen(size=1, seed="demo-cer-review-seed", exclude_experts=others),
    )
    await reviews_service.declare(
        session, Principal("staff", "expert", expert_staff_id), panel.id, conflict=False, note=""
    )
    await reviews_service.submit_opinion(
        session,
        Principal("staff", "expert", expert_staff_id),
        panel.id,
        verdict="pass",
        score=90,
        text="The methodology applies; the verification is sound and its figure matches the records.",
    )
    await reviews_service.decide(session, authority, panel.id, outcome="pass", reason="The panel's opinion.")
    await service.file(session, authority, project.id, "filed", "Reviewed and filed.")
    issuance = await registry.issue(session, authority, project.id)

    buyer_org, buyer = await approved_org(
        session,
        kind="buyer",
        name="Pengcheng Events Co. (demo buyer)",
        credit_code=BUYER_CREDIT_CODE,
        admin=BUYER,
    )
    await registry.transfer(
        session,
        operator,
        TransferCreate(
            to_org_id=buyer_org.id, tonnes=2, exchange="Shenzhen demo exchange", trade_ref="DEMO-T-1"
        ),
    )
    await registry.retire(
        session, buyer, RetirementCreate(tonnes=1, beneficiary=BENEFICIARY, purpose=PURPOSE)
    )
    lines = [
        f"CER: project '{project.name}': {trips} electric-car trips of {DRIVERS} drivers, "
        f"{project.claimed_g / 1e6:.2f} t; verified by {verifier_org.name} (login {VERIFIER[0]} / {VERIFIER[1]}), "
        f"reviewed, filed, issued {issuance.tonnes} t ({issuance.serials})",
        f"CER: 2 t transferred to {buyer_org.name} (login {BUYER[0]} / {BUYER[1]}), which retired 1 t",
    ]
    return lines + await _certificate_lines(session, buyer_org.id, "CER: demo certificate")


async def _send_trips(session: AsyncSession, operator: Principal, pem: str) -> int:
    """Enrol the drivers and send their commutes (two a day over the period) in signed batches."""
    assert operator.org_id is not None
    now = clock.now()
    zone = clock.zone()
    drivers = [f"demo-driver-{i:02d}" for i in range(1, DRIVERS + 1)]
    for i, driver in enumerate(drivers, start=1):
        await users_service.enrol(
            session,
            operator,
            EnrolUser(
                external_user_id=driver,
                identifier=Identifier(type="phone", value=f"+86139000100{i:02d}"),
                consent=Consent(
                    agreement_version="2026-01", accepted_at=now - timedelta(days=PERIOD_DAYS + 10)
                ),
            ),
        )
    records = []
    for day in range(1, PERIOD_DAYS + 1):
        on = clock.today() - timedelta(days=day)
        for i, driver in enumerate(drivers):
            for trip, (hour, minute) in enumerate(((7, 40), (18, 10))):
                start = datetime(on.year, on.month, on.day, hour, minute + i % 20, tzinfo=zone)
                ref = f"demo-nev-{driver}-{on.isoformat()}-{trip}"
                km = 8 + (i * 37 + day * 11 + trip * 5) % 90 / 10  # 8.0 to 16.9 km
                records.append({
                    "record_id": ref, "external_user_id": driver, "type": "nev",
                    "started_at": start.isoformat(), "ended_at": (start + timedelta(minutes=20 + int(km))).isoformat(),
                    "quantity": km, "unit": "km", "scene_id": None,
                    "evidence": {"source": "demo-charging-operator", "ref": ref},
                })  # fmt: skip
    keys = [
        k for k in await org_service.list_keys(session, operator, operator.org_id) if k.revoked_at is None
    ]
    accepted = 0
    for first in range(0, len(records), BATCH):
        body = orjson.dumps({"records": records[first : first + BATCH]})
        result = await ingestion.ingest(
            session, operator, body, security.sign_detached(body, pem, "ES256", keys[-1].kid)
        )
        accepted += result.summary.accepted
    return accepted


async def _certificate_lines(session: AsyncSession, buyer_id: uuid.UUID, label: str) -> list[str]:
    buyer = Principal("client", "buyer", buyer_id, buyer_id)
    retirements = (await registry.list_retirements(session, buyer, limit=1, cursor=None)).items
    return [
        f"{label} {r.certificate_number} ({r.tonnes} t for {r.beneficiary.name}): "
        f"{registry.verification_page_url(r.certificate_number)}"
        for r in retirements
    ]
