"""Demo data of the registry: the demo operator's account, prices, a project carried through the whole
lifecycle to a retirement certificate, and a project of a week of green trips in publicity.

The issued project aggregates the last month of electric-car commutes of fifty drivers, sent today as
signed batches of 1,000 records through the ingestion service, a few tonnes in all, and is created
today. Its publicity lasts 7 working days, so the demo then does what the authority would do outside
production: it moves the **sandbox clock** forward to the day after the publicity (``clock.advance``,
as ``/console/clock`` and ``carbon-points clock advance`` do: kept in ``platform_clock``, audited as
``clock.advance`` by the demo authority). On that day come verification by a demo verifier, an
expert review, filing, issuance of the whole tonnes, a transfer to a demo buyer and a retirement with
its certificate, and the week project (the demo people's trips of the week before the first day,
without the electric cars) goes into its own publicity. Daily closing prices are recorded for every
trading day from the ten before the first day up to the new one, so the reference price exists on
both. What the other demos made before stays where it was in time (points expire 730 days after
crediting; Alice's voucher keeps its 30 days from its order, fewer of them left).

Loaded again (the demo buyer exists), nothing moves: the clock advances once per demo database. In
production the sandbox clock does not exist and no project is carried past its publicity.
"""

import uuid
from datetime import date, datetime, timedelta

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
"""The closes of the ten trading days before the demo's first day, oldest first; later days go on from the last."""

NEV_CODE = "nev-driving"  # the shipped catalogue's battery-electric car methodology
DRIVERS = 50
PERIOD_DAYS = 30
BATCH = 1000
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
    authority = await demo_authority(session)
    await registry.ensure_account(session, org_id)
    lines = [f"CER: registry account for the demo operator {org_id}"]
    first_day = clock.today()  # the day the demo starts, before the sandbox clock moves
    buyer_id = await org_service.staff_org_id(session, BUYER[0])
    if buyer_id is not None:  # loaded before, the week project too: nothing moves again
        await _prices(session, authority, first_day)
        return [
            *lines,
            f"CER: reference price GET /v1/cer/reference-price?on={clock.today()}",
            *await _certificate_lines(session, buyer_id, "CER: demo certificate already there"),
        ]
    try:
        issued = await _issued_and_retired(session, operator, authority)
        await _prices(session, authority, first_day)
        lines.append(f"CER: reference price GET /v1/cer/reference-price?on={clock.today()}")
        lines += issued
        lines += await _week_project(session, operator, org_id, first_day)
    finally:
        # This process saw the moved clock before the demo's transaction commits; once it has,
        # every process (this one included) reads the offset from platform_clock.
        clock.set_offset(timedelta(0))
    return lines


async def _prices(session: AsyncSession, authority: Principal, first_day: date) -> None:
    """Daily closes of every trading day from the ten before ``first_day`` up to yesterday, where none
    was recorded yet (a demo loaded again on a later day fills the days since)."""
    today = clock.today()
    overrides = await repository.calendar_overrides(session, *calendar.span_before(first_day))
    start = calendar.trading_days_before(first_day, len(PRICES_FEN), overrides)[-1]
    overrides = await repository.calendar_overrides(session, start, today)
    days = [
        start + timedelta(days=n)
        for n in range((today - start).days)
        if calendar.is_trading_day(start + timedelta(days=n), overrides)
    ]
    recorded = {p.date for p in await prices.list_prices(session, start, today)}
    for n, day in enumerate(days):
        if day in recorded:
            continue
        fen = PRICES_FEN[n] if n < len(PRICES_FEN) else PRICES_FEN[-1] + 17 * (n - 9) - 45 * (n % 3)
        await prices.record_price(session, authority, PriceIn(date=day, price_fen=fen))


async def _week_project(
    session: AsyncSession, operator: Principal, org_id: uuid.UUID, first_day: date
) -> list[str]:
    """The demo people's green trips of the week before the first day, in publicity from today."""
    used = await points_service.methodology_versions_used(session, org_id)
    versions = await methodologies_service.versions_by_id(session, used)
    codes = sorted({v.code for v in versions} - {NEV_CODE})  # the electric cars are in the issued project
    if not codes:
        return []
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
                    period_start=first_day - timedelta(days=8),
                    period_end=first_day - timedelta(days=1),
                ),
            )
    except DomainError as exc:  # loaded before: the week is in a project already
        return [f"CER: no new demo project ({exc.code})"]
    return [
        f"CER: project {project.id} in publicity until {project.publicity_ends_on} "
        f"({project.record_count} records, {project.claimed_g} g) — GET /v1/public/cer/projects"
    ]


async def _issued_and_retired(session: AsyncSession, operator: Principal, authority: Principal) -> list[str]:
    """The demo operator's month of electric-car commutes, from publicity to a retirement certificate."""
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
    if not clock.sandbox_allowed():
        return ["CER: no issued demo project (there is no sandbox clock in production to end its publicity)"]

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
    # The authority moves the sandbox clock to the day after the publicity, as on /console/clock.
    by = timedelta(days=(project.publicity_ends_on - created_on).days + 1)
    try:
        moved = await clock.advance(session, by, authority.actor)
    except clock.InvalidAdvance as exc:  # the clock was moved nearly ten years already
        return [
            f"CER: demo project {project.id} in publicity until {project.publicity_ends_on} ({exc.detail})"
        ]
    clock.set_offset(by)  # this process sees it at once; load() puts it back, platform_clock keeps it
    lines = [
        f"CER: project {project.id} created on {created_on}, in publicity until {project.publicity_ends_on}; "
        f"the sandbox clock moved {by.days} days forward to {clock.today()} (now {moved.offset.days} days ahead "
        "in all): see /console/clock or `carbon-points clock show`; `carbon-points clock reset` puts it back"
    ]

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
    lines += [
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
