"""The registry of issued units (SZ 14, 17–19, JX 18–21 and 26): issuance, holdings, transfers,
retirement with certificates, clawback, trace and the public lists.

Every movement runs under the registry lock (:func:`app.cer.repository.lock_registry`) and cuts
blocks with the pure functions of :mod:`app.cer.blocks`; the database's exclusion constraint
guarantees no serial is ever in two blocks.
"""

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.auth.principal import Principal
from app.cer import blocks, certificates, repository
from app.cer import service as projects
from app.cer.blocks import Range
from app.cer.exceptions import (
    BeneficiaryRequired,
    CertificateNotFound,
    InsufficientUnits,
    InvalidProjectState,
    InvalidRecipient,
    InvalidSelection,
    InvalidSerial,
    SerialNotFound,
    UnitsNotHeld,
    UnitsRetired,
    UnitsRevoked,
)
from app.cer.models import (
    BlockStatus,
    CerAccount,
    CerBlock,
    CerCarryForward,
    CerIssuance,
    CerProject,
    CerRetirement,
    CerTransfer,
    ProjectStatus,
)
from app.cer.schemas import RetirementCreate, TransferCreate
from app.core import audit, clock
from app.core.config import get_settings
from app.core.pagination import keyset, page
from app.organizations import service as org_service
from app.organizations.exceptions import OrganizationNotFound

TONNE_G = 1_000_000
ACCOUNT_KINDS = ("operator", "buyer")


def prefix() -> str:
    return get_settings().cer_serial_prefix


def block_serial(block: CerBlock) -> str:
    return blocks.format_block(prefix(), block.vintage, Range(block.serial_start, block.serial_end))


def certificate_url(number: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/v1/public/certificates/{number}"


async def ensure_account(session: AsyncSession, org_id: uuid.UUID) -> None:
    await session.execute(
        sa.text("INSERT INTO cer_accounts (org_id, opened_at) VALUES (:org, :now) ON CONFLICT DO NOTHING"),
        {"org": org_id, "now": clock.now()},
    )


# --- issuance -------------------------------------------------------------------------------


async def _carry(session: AsyncSession, owner_id: uuid.UUID) -> CerCarryForward:
    await session.execute(
        sa.text(
            "INSERT INTO cer_carry_forward (owner_org_id, grams, updated_at) VALUES (:o, 0, :now)"
            " ON CONFLICT DO NOTHING"
        ),
        {"o": owner_id, "now": clock.now()},
    )
    carry = (
        await session.execute(
            select(CerCarryForward)
            .where(CerCarryForward.owner_org_id == owner_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return carry


async def issue(session: AsyncSession, principal: Principal, project_id: uuid.UUID) -> dict[str, Any]:
    """floor((verified + carried in) / 1 t) units to the owner's account, serials continuing the sequence."""
    await repository.lock_registry(session)
    project = await projects.project_to_issue(session, project_id)
    assert project.verified_g is not None
    carry = await _carry(session, project.owner_org_id)
    carried_in = carry.grams
    tonnes, remainder = divmod(project.verified_g + carried_in, TONNE_G)
    now = clock.now()
    vintage = project.period_end.year
    issuance = CerIssuance(
        project_id=project.id,
        owner_org_id=project.owner_org_id,
        vintage=vintage,
        verified_g=project.verified_g,
        carried_in_g=carried_in,
        tonnes=tonnes,
        carried_out_g=remainder,
        issued_by=principal.actor,
        issued_at=now,
    )
    if tonnes:
        first = await repository.take_counter(session, "serial", tonnes)
        issuance.serial_start, issuance.serial_end = first, first + tonnes - 1
    session.add(issuance)
    carry.grams, carry.updated_at = remainder, now
    project.status, project.issued_at, project.updated_at = ProjectStatus.issued, now, now
    await session.flush()
    if tonnes:
        await ensure_account(session, project.owner_org_id)
        session.add(
            CerBlock(
                project_id=project.id,
                issuance_id=issuance.id,
                vintage=vintage,
                serial_start=issuance.serial_start,
                serial_end=issuance.serial_end,
                holder_org_id=project.owner_org_id,
                updated_at=now,
            )
        )
        await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="cer.issued",
        subject_type=projects.SUBJECT_TYPE,
        subject_id=project.id,
        data={
            "tonnes": tonnes,
            "verified_g": project.verified_g,
            "carried_in_g": carried_in,
            "carried_out_g": remainder,
            "serials": _issuance_serial(issuance),
        },
    )
    return (await _issuance_views(session, [issuance]))[0]


def _issuance_serial(issuance: CerIssuance) -> str | None:
    if not issuance.tonnes:
        return None
    assert issuance.serial_start is not None and issuance.serial_end is not None
    return blocks.format_block(prefix(), issuance.vintage, Range(issuance.serial_start, issuance.serial_end))


async def _issuance_views(session: AsyncSession, issuances: Sequence[CerIssuance]) -> list[dict[str, Any]]:
    project_ids = [i.project_id for i in issuances]
    names = await repository.org_names(session, [i.owner_org_id for i in issuances])
    titles = dict(
        (await session.execute(select(CerProject.id, CerProject.name).where(col(CerProject.id).in_(project_ids)))).all()
    ) if project_ids else {}
    return [
        {
            **i.model_dump(),
            "project_name": titles.get(i.project_id, ""),
            "owner_name": names.get(i.owner_org_id, ""),
            "serials": _issuance_serial(i),
        }
        for i in issuances
    ]


# --- moving units ---------------------------------------------------------------------------


def _parse_selection(serials: Sequence[str]) -> list[tuple[int, Range]]:
    out = []
    for s in serials:
        try:
            out.append(blocks.parse(prefix(), s))
        except ValueError as exc:
            raise InvalidSerial(f"{s!r}: {exc}", serial=s) from exc
    return out


async def _refuse_missing(session: AsyncSession, missing: Range) -> None:
    touching = await repository.blocks_touching(session, [missing])
    statuses = {b.status for b in touching}
    shown = f"{missing.start}-{missing.end}" if missing.count > 1 else str(missing.start)
    if BlockStatus.retired in statuses:
        raise UnitsRetired(f"units among {shown} are retired: a retired unit never moves again")
    if BlockStatus.revoked in statuses:
        raise UnitsRevoked(f"units among {shown} were revoked")
    raise UnitsNotHeld(f"units {shown} are not held by your account")


async def _cut(
    session: AsyncSession, holder_id: uuid.UUID, tonnes: int | None, serials: Sequence[str] | None
) -> tuple[dict[int, CerBlock], dict[int, tuple[list[Range], list[Range]]]]:
    """Lock the holder's held blocks and cut them along the units asked for (FIFO or a selection)."""
    held = await repository.held_blocks(session, holder_id)
    by_id = {b.id: b for b in held if b.id is not None}
    ranges = [(bid, Range(b.serial_start, b.serial_end)) for bid, b in by_id.items()]
    if serials:
        selection = _parse_selection(serials)
        wanted = [r for _, r in selection]
        try:
            blocks.check_selection(wanted)
        except blocks.OverlappingSelection as exc:
            raise InvalidSelection(str(exc)) from exc
        if tonnes is not None and tonnes != blocks.total(wanted):
            raise InvalidSelection(f"the serials hold {blocks.total(wanted)} units, not {tonnes}")
        try:
            plan = blocks.allocate(ranges, wanted)
        except blocks.NotCovered as exc:
            await _refuse_missing(session, exc.missing)
            raise
        for vintage, r in selection:
            for bid, (moving, _) in plan.items():
                if any(r.contains(m) for m in moving) and by_id[bid].vintage != vintage:
                    raise InvalidSerial(f"units {r.start}-{r.end} are of vintage {by_id[bid].vintage}, not {vintage}")
        return by_id, plan
    if tonnes is None:
        raise InvalidSelection("say how many units (tonnes) or which (serials)")
    try:
        wanted = blocks.fifo([r for _, r in ranges], tonnes)
    except blocks.InsufficientUnits as exc:
        raise InsufficientUnits(
            f"{tonnes} units asked for, {exc.held} held", held=exc.held, wanted=tonnes
        ) from exc
    return by_id, blocks.allocate(ranges, wanted)


async def _apply(
    session: AsyncSession,
    by_id: dict[int, CerBlock],
    plan: dict[int, tuple[list[Range], list[Range]]],
    moved: dict[str, Any],
) -> list[tuple[CerBlock, Range]]:
    """Replace the cut blocks by their pieces; the moving pieces get ``moved`` (holder or status)."""
    now = clock.now()
    rows: list[dict[str, Any]] = []
    moving_out: list[tuple[CerBlock, Range]] = []
    for bid, (moving, staying) in plan.items():
        block = by_id[bid]
        base = {
            "project_id": block.project_id,
            "issuance_id": block.issuance_id,
            "vintage": block.vintage,
            "holder_org_id": block.holder_org_id,
            "status": block.status,
            "retirement_id": block.retirement_id,
            "fraud_flagged": block.fraud_flagged,
        }
        for r in staying:
            rows.append({**base, "serial_start": r.start, "serial_end": r.end, "updated_at": block.updated_at})
        for r in moving:
            rows.append({**base, **moved, "serial_start": r.start, "serial_end": r.end, "updated_at": now})
            moving_out.append((block, r))
    await repository.replace_blocks(session, list(plan), rows)
    moving_out.sort(key=lambda br: br[1])
    return moving_out


def _serials(pieces: Sequence[tuple[CerBlock, Range]]) -> list[str]:
    return [blocks.format_block(prefix(), b.vintage, r) for b, r in pieces]


async def transfer(session: AsyncSession, principal: Principal, data: TransferCreate) -> dict[str, Any]:
    holder_id = principal.org_id
    assert holder_id is not None
    if data.to_org_id == holder_id:
        raise InvalidRecipient("a transfer goes to another account")
    try:
        recipient = await org_service.get(session, data.to_org_id)
    except OrganizationNotFound as exc:
        raise InvalidRecipient(f"no organisation {data.to_org_id}") from exc
    if recipient.status != "approved" or recipient.kind not in ACCOUNT_KINDS:
        raise InvalidRecipient(f"{recipient.name} ({recipient.status} {recipient.kind}) cannot hold CERs")
    await repository.lock_registry(session)
    by_id, plan = await _cut(session, holder_id, data.tonnes, data.serials)
    await ensure_account(session, recipient.id)
    moved = await _apply(session, by_id, plan, {"holder_org_id": recipient.id})
    record = CerTransfer(
        from_org_id=holder_id,
        to_org_id=recipient.id,
        tonnes=sum(r.count for _, r in moved),
        ranges=[
            {"serial": s, "project_id": str(b.project_id)} for s, (b, _) in zip(_serials(moved), moved, strict=True)
        ],
        exchange=data.exchange,
        trade_ref=data.trade_ref,
        memo=data.memo,
        created_by=principal.actor,
        created_at=clock.now(),
    )
    session.add(record)
    await session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="cer.transferred",
        subject_type="cer_account",
        subject_id=holder_id,
        data={"transfer_id": str(record.id), "to": str(recipient.id), "tonnes": record.tonnes,
              "serials": [r["serial"] for r in record.ranges], "trade_ref": data.trade_ref},
    )
    return _transfer_view(record)


def _transfer_view(t: CerTransfer) -> dict[str, Any]:
    return {**t.model_dump(), "serials": [r["serial"] for r in t.ranges]}


async def list_transfers(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    query = select(CerTransfer)
    if principal.role != "authority":
        query = query.where(
            sa.or_(CerTransfer.from_org_id == principal.org_id, CerTransfer.to_org_id == principal.org_id)
        )
    query = keyset(query, cursor, (CerTransfer.created_at, datetime), (CerTransfer.id, uuid.UUID), descending=True)
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    result = page(rows, limit, lambda t: [t.created_at, t.id])
    result["items"] = [_transfer_view(t) for t in result["items"]]
    return result


# --- retirement and certificates ------------------------------------------------------------


async def retire(session: AsyncSession, principal: Principal, data: RetirementCreate) -> dict[str, Any]:
    holder_id = principal.org_id
    assert holder_id is not None
    if data.beneficiary is None or not data.beneficiary.name.strip():
        raise BeneficiaryRequired("name the event, organisation or person made carbon neutral")
    await repository.lock_registry(session)
    by_id, plan = await _cut(session, holder_id, data.tonnes, data.serials)
    pieces = sorted(((by_id[bid], r) for bid, (moving, _) in plan.items() for r in moving), key=lambda br: br[1])
    now = clock.now()
    year = clock.local_day(now).year
    number = f"CERT-{year}-{await repository.take_counter(session, 'certificate', 1):06d}"
    content = await _certificate_content(session, principal, number, pieces, data, now)
    content_sha256 = projects.sha256_of(content)
    pdf = certificates.render(content, content_sha256)
    retirement = CerRetirement(
        certificate_number=number,
        holder_org_id=holder_id,
        tonnes=content["tonnes"],
        beneficiary_kind=data.beneficiary.kind,
        beneficiary_name=data.beneficiary.name.strip(),
        purpose=data.purpose,
        content=content,
        content_sha256=content_sha256,
        pdf=pdf,
        pdf_sha256=certificates.sha256(pdf),
        retired_by=principal.actor,
        retired_at=now,
    )
    session.add(retirement)
    await session.flush()
    await _apply(session, by_id, plan, {"status": BlockStatus.retired, "retirement_id": retirement.id})
    audit.record(
        session,
        actor=principal.actor,
        action="cer.retired",
        subject_type="cer_account",
        subject_id=holder_id,
        data={"certificate": number, "tonnes": retirement.tonnes, "serials": content["serials"],
              "beneficiary": content["beneficiary"], "content_sha256": content_sha256},
    )
    return _retirement_view(retirement, flagged=False)


async def _certificate_content(
    session: AsyncSession,
    principal: Principal,
    number: str,
    pieces: Sequence[tuple[CerBlock, Range]],
    data: RetirementCreate,
    now: datetime,
) -> dict[str, Any]:
    assert data.beneficiary is not None
    project_ids = sorted({b.project_id for b, _ in pieces})
    rows = list(
        (await session.execute(select(CerProject).where(col(CerProject.id).in_(project_ids)))).scalars()
    )
    owners = await repository.org_names(session, [p.owner_org_id for p in rows] + [principal.org_id])
    return {
        "certificate_number": number,
        "tonnes": sum(r.count for _, r in pieces),
        "unit": "tCO2e",
        "serials": _serials(pieces),
        "projects": [
            {
                "id": str(p.id),
                "name": p.name,
                "owner": owners.get(p.owner_org_id, ""),
                "period_start": p.period_start.isoformat(),
                "period_end": p.period_end.isoformat(),
                "methodologies": [
                    f"{v['code']}@{v['version']}" for v in p.report.get("by_methodology_version", [])
                ],
            }
            for p in sorted(rows, key=lambda p: str(p.id))
        ],
        "beneficiary": {"kind": data.beneficiary.kind, "name": data.beneficiary.name.strip()},
        "purpose": data.purpose,
        "retired_by": {"org_id": str(principal.org_id), "name": owners.get(principal.org_id, "")},
        "retired_on": clock.local_day(now).isoformat(),
        "retired_at": now.isoformat(),
        "verification_url": certificate_url(number),
    }


def _retirement_view(r: CerRetirement, *, flagged: bool) -> dict[str, Any]:
    return {
        "id": r.id,
        "certificate_number": r.certificate_number,
        "holder_org_id": r.holder_org_id,
        "tonnes": r.tonnes,
        "serials": r.content["serials"],
        "beneficiary": {"kind": r.beneficiary_kind, "name": r.beneficiary_name},
        "purpose": r.purpose,
        "retired_at": r.retired_at,
        "content_sha256": r.content_sha256,
        "certificate_url": certificate_url(r.certificate_number),
        "pdf_url": certificate_url(r.certificate_number) + ".pdf",
        "fraud_flagged": flagged,
    }


async def list_retirements(
    session: AsyncSession, principal: Principal | None, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    query = select(CerRetirement)
    if principal is not None and principal.role != "authority":
        query = query.where(CerRetirement.holder_org_id == principal.org_id)
    query = keyset(query, cursor, (CerRetirement.retired_at, datetime), (CerRetirement.id, uuid.UUID), descending=True)
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    result = page(rows, limit, lambda r: [r.retired_at, r.id])
    flagged = await repository.flagged_retirements(session, [r.id for r in result["items"]])
    result["items"] = [_retirement_view(r, flagged=r.id in flagged) for r in result["items"]]
    return result


CERTIFICATE_NUMBER = re.compile(r"^CERT-\d{4}-\d{6,12}$")


async def certificate(session: AsyncSession, number: str) -> CerRetirement:
    if not CERTIFICATE_NUMBER.match(number):
        raise CertificateNotFound(f"no certificate {number}")
    row = (
        await session.execute(select(CerRetirement).where(CerRetirement.certificate_number == number))
    ).scalar_one_or_none()
    if row is None:
        raise CertificateNotFound(f"no certificate {number}")
    return row


async def public_certificate(session: AsyncSession, number: str) -> dict[str, Any]:
    row = await certificate(session, number)
    flagged = await repository.flagged_retirements(session, [row.id])
    return {
        "number": row.certificate_number,
        "content": row.content,
        "content_sha256": row.content_sha256,
        "pdf_sha256": row.pdf_sha256,
        "pdf_url": certificate_url(row.certificate_number) + ".pdf",
        "fraud_flagged": row.id in flagged,
    }


# --- accounts -------------------------------------------------------------------------------


async def account(session: AsyncSession, org_id: uuid.UUID, *, status: str | None) -> dict[str, Any]:
    org = await org_service.get(session, org_id)
    opened = await session.get(CerAccount, org_id)
    query = select(CerBlock).where(CerBlock.holder_org_id == org_id).order_by(col(CerBlock.serial_start))
    if status:
        query = query.where(CerBlock.status == status)
    rows = list((await session.execute(query.limit(1000))).scalars())
    numbers = await _certificate_numbers(session, [b.retirement_id for b in rows if b.retirement_id])
    tonnes = await repository.account_tonnes(session, org_id)
    carry = await session.get(CerCarryForward, org_id)
    return {
        "org_id": org.id,
        "org_name": org.name,
        "opened_at": opened.opened_at if opened else None,
        "held_tonnes": tonnes["held"],
        "retired_tonnes": tonnes["retired"],
        "revoked_tonnes": tonnes["revoked"],
        "carry_forward_g": carry.grams if carry else 0,
        "blocks": [_block_view(b, numbers) for b in rows],
    }


async def _certificate_numbers(session: AsyncSession, ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = await session.execute(
        select(CerRetirement.id, CerRetirement.certificate_number).where(col(CerRetirement.id).in_(wanted))
    )
    return dict(rows.all())


def _block_view(b: CerBlock, numbers: dict[uuid.UUID, str]) -> dict[str, Any]:
    return {
        "serial": block_serial(b),
        "vintage": b.vintage,
        "start": b.serial_start,
        "end": b.serial_end,
        "tonnes": b.serial_end - b.serial_start + 1,
        "project_id": b.project_id,
        "status": b.status,
        "fraud_flagged": b.fraud_flagged,
        "certificate_number": numbers.get(b.retirement_id) if b.retirement_id else None,
    }


async def open_account(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    assert principal.org_id is not None
    await ensure_account(session, principal.org_id)
    return await account(session, principal.org_id, status=None)


# --- clawback -------------------------------------------------------------------------------


async def clawback(session: AsyncSession, principal: Principal, project_id: uuid.UUID, reason: str) -> dict[str, Any]:
    """Revoke the project's units still held, flag its retired ones, freeze the project (JX 26).

    The owner's carried-forward remainder (under a tonne) is forfeited with it.
    """
    await repository.lock_registry(session)
    project = await projects.get(session, project_id, lock=True)
    if project.status == ProjectStatus.frozen:
        raise InvalidProjectState("the project is frozen already", status_now=project.status)
    now = clock.now()
    revoked = list(
        (
            await session.execute(
                sa.update(CerBlock)
                .where(CerBlock.project_id == project.id, CerBlock.status == BlockStatus.held)
                .values(status=BlockStatus.revoked, fraud_flagged=True, updated_at=now)
                .returning(CerBlock)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )
    flagged = (
        await session.execute(
            sa.text(
                "UPDATE cer_blocks SET fraud_flagged = true, updated_at = :now"
                " WHERE project_id = :p AND status = 'retired'"
                " RETURNING serial_end - serial_start + 1"
            ),
            {"p": project.id, "now": now},
        )
    ).scalars().all()
    forfeited = 0
    if project.status == ProjectStatus.issued:
        carry = await _carry(session, project.owner_org_id)
        forfeited, carry.grams, carry.updated_at = carry.grams, 0, now
    previous = project.status
    project.status, project.frozen_at, project.decision_reason, project.updated_at = (
        ProjectStatus.frozen, now, reason, now,
    )
    await session.flush()
    revoked.sort(key=lambda b: b.serial_start)
    result = {
        "project_id": project.id,
        "status": project.status,
        "revoked_tonnes": sum(b.serial_end - b.serial_start + 1 for b in revoked),
        "revoked_serials": [block_serial(b) for b in revoked],
        "flagged_retired_tonnes": int(sum(flagged)),
        "holders": sorted({b.holder_org_id for b in revoked}, key=str),
    }
    audit.record(
        session,
        actor=principal.actor,
        action="cer.clawback",
        subject_type=projects.SUBJECT_TYPE,
        subject_id=project.id,
        data={**result, "reason": reason, "previous_status": previous, "forfeited_carry_g": forfeited},
    )
    return result


# --- trace ----------------------------------------------------------------------------------


async def trace(session: AsyncSession, serial: str, *, records_limit: int = 100, batches_limit: int = 500) -> dict[str, Any]:
    """Re-derive a unit: its block, issuance, project, records, methodology versions and signed batches."""
    try:
        vintage, unit = blocks.parse(prefix(), serial)
    except ValueError as exc:
        raise InvalidSerial(f"{serial!r}: {exc}") from exc
    block = await repository.block_at(session, unit.start)
    if block is None or block.vintage != vintage:
        raise SerialNotFound(f"no unit {serial}")
    issuance = await session.get(CerIssuance, block.issuance_id)
    project = await projects.get(session, block.project_id)
    assert issuance is not None
    numbers = await _certificate_numbers(session, [block.retirement_id])
    versions = await repository.trace_versions(session, project.id)
    batches_total, batches = await repository.trace_batches(session, project.id, batches_limit)
    return {
        "serial": blocks.format_unit(prefix(), vintage, unit.start),
        "unit": unit.start,
        "block": _block_view(block, numbers),
        "holder_org_id": block.holder_org_id,
        "issuance": (await _issuance_views(session, [issuance]))[0],
        "project": {
            "id": str(project.id),
            "name": project.name,
            "owner_org_id": str(project.owner_org_id),
            "status": project.status,
            "methodology_codes": project.methodology_codes,
            "period_start": project.period_start.isoformat(),
            "period_end": project.period_end.isoformat(),
            "claimed_g": project.claimed_g,
            "verified_g": project.verified_g,
            "verifier_org_id": str(project.verifier_org_id) if project.verifier_org_id else None,
            "review_panel_id": str(project.review_panel_id) if project.review_panel_id else None,
            "report_sha256": project.report_sha256,
        },
        "records_total": project.record_count,
        "reduction_g": project.claimed_g,
        "methodology_versions": versions,
        "batches_total": batches_total,
        "batches": batches,
        "records": await repository.trace_records(session, project.id, records_limit),
    }


# --- disclosure -----------------------------------------------------------------------------


async def list_issuances(session: AsyncSession, *, limit: int, cursor: str | None) -> dict[str, Any]:
    query = keyset(
        select(CerIssuance), cursor, (CerIssuance.issued_at, datetime), (CerIssuance.id, uuid.UUID), descending=True
    )
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    result = page(rows, limit, lambda i: [i.issued_at, i.id])
    result["items"] = await _issuance_views(session, result["items"])
    return result


async def totals(session: AsyncSession) -> dict[str, int]:
    return await repository.totals(session, clock.today())
