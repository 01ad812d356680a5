"""The registry of issued units (SZ 14, 17–19, JX 18–21 and 26): issuance, holdings, transfers,
retirement with certificates, clawback, trace and the public lists.

Every movement runs under the registry lock (:func:`app.cer.repository.lock_registry`) and cuts
blocks with the pure functions of :mod:`app.cer.blocks`; the database's exclusion constraint
guarantees no serial is ever in two blocks.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
    CerBlock,
    CerIssuance,
    CerRetirement,
    CerTransfer,
    ProjectStatus,
)
from app.cer.schemas import (
    AccountRead,
    BlockRead,
    CertificatePublic,
    ClawbackRead,
    IssuanceRead,
    ProjectRead,
    RetirementCreate,
    RetirementRead,
    Totals,
    TraceBatch,
    TraceRead,
    TraceRecord,
    TraceVersion,
    TransferCreate,
    TransferRead,
)
from app.core import audit, clock, db
from app.core.config import get_settings
from app.core.pagination import Page, decode_cursor, page
from app.methodologies import service as methodologies_service
from app.organizations import service as org_service
from app.organizations.exceptions import OrganizationNotFound
from app.points import service as points_service
from app.webhooks import service as webhooks_service

TONNE_G = 1_000_000
ACCOUNT_KINDS = ("operator", "buyer")


def prefix() -> str:
    return get_settings().cer_serial_prefix


def block_serial(block: CerBlock) -> str:
    return blocks.format_block(prefix(), block.vintage, Range(block.serial_start, block.serial_end))


def certificate_url(number: str) -> str:
    """The certificate as JSON, for API clients."""
    return f"{get_settings().public_base_url.rstrip('/')}/v1/public/certificates/{number}"


def verification_page_url(number: str) -> str:
    """The certificate's public page (HTML), where its QR code points."""
    return f"{get_settings().public_base_url.rstrip('/')}/certificates/{number}"


async def ensure_account(session: AsyncSession, org_id: uuid.UUID) -> None:
    await repository.ensure_account(session, org_id, clock.now())


# --- issuance -------------------------------------------------------------------------------


async def issue(session: AsyncSession, principal: Principal, project_id: uuid.UUID) -> IssuanceRead:
    """floor((verified + carried in) / 1 t) units to the owner's account, serials continuing the sequence."""
    await repository.lock_registry(session)
    project = await projects.project_to_issue(session, project_id)
    assert project.verified_g is not None
    carry = await repository.carry(session, project.owner_org_id, clock.now())
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
    first = await repository.take_counter(session, "serial", tonnes) if tonnes else 0
    if tonnes:
        issuance.serial_start, issuance.serial_end = first, first + tonnes - 1
    carry.grams, carry.updated_at = remainder, now
    project.status, project.issued_at, project.updated_at = ProjectStatus.issued, now, now
    await repository.add(session, issuance)
    await projects.stage_changed(session, project, ProjectStatus.filed)
    if tonnes:
        await ensure_account(session, project.owner_org_id)
        await repository.add(
            session,
            CerBlock(
                project_id=project.id,
                issuance_id=issuance.id,
                vintage=vintage,
                serial_start=first,
                serial_end=first + tonnes - 1,
                holder_org_id=project.owner_org_id,
                updated_at=now,
            ),
        )
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


async def _issuance_views(session: AsyncSession, issuances: Sequence[CerIssuance]) -> list[IssuanceRead]:
    names = await org_service.names(session, [i.owner_org_id for i in issuances])
    titles = await repository.project_names(session, [i.project_id for i in issuances])
    return [
        IssuanceRead.model_validate(
            {
                **i.model_dump(),
                "project_name": titles.get(i.project_id, ""),
                "owner_name": names.get(i.owner_org_id, ""),
                "serials": _issuance_serial(i),
            }
        )
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
                    raise InvalidSerial(
                        f"units {r.start}-{r.end} are of vintage {by_id[bid].vintage}, not {vintage}"
                    )
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
            rows.append(
                {**base, "serial_start": r.start, "serial_end": r.end, "updated_at": block.updated_at}
            )
        for r in moving:
            rows.append({**base, **moved, "serial_start": r.start, "serial_end": r.end, "updated_at": now})
            moving_out.append((block, r))
    await repository.replace_blocks(session, list(plan), rows)
    moving_out.sort(key=lambda br: br[1])
    return moving_out


def _serials(pieces: Sequence[tuple[CerBlock, Range]]) -> list[str]:
    return [blocks.format_block(prefix(), b.vintage, r) for b, r in pieces]


async def transfer(session: AsyncSession, principal: Principal, data: TransferCreate) -> TransferRead:
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
            {"serial": s, "project_id": str(b.project_id)}
            for s, (b, _) in zip(_serials(moved), moved, strict=True)
        ],
        exchange=data.exchange,
        trade_ref=data.trade_ref,
        memo=data.memo,
        created_by=principal.actor,
        created_at=clock.now(),
    )
    await repository.add(session, record)
    audit.record(
        session,
        actor=principal.actor,
        action="cer.transferred",
        subject_type="cer_account",
        subject_id=holder_id,
        data={
            "transfer_id": str(record.id),
            "to": str(recipient.id),
            "tonnes": record.tonnes,
            "serials": [r["serial"] for r in record.ranges],
            "trade_ref": data.trade_ref,
        },
    )
    await webhooks_service.emit(
        session,
        org_id=recipient.id,
        type="cer.units_received",
        subject_type="cer_transfer",
        subject_id=record.id,
        payload={
            "transfer_id": record.id,
            "from_org_id": holder_id,
            "tonnes": record.tonnes,
            "ranges": record.ranges,
            "exchange": record.exchange,
            "trade_ref": record.trade_ref,
            "created_at": record.created_at,
        },
    )
    return _transfer_view(record)


def _transfer_view(t: CerTransfer) -> TransferRead:
    return TransferRead.model_validate({**t.model_dump(), "serials": [r["serial"] for r in t.ranges]})


async def list_transfers(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> Page[TransferRead]:
    rows = await repository.transfers_page(
        session,
        party=principal.org_id if principal.role != "authority" else None,
        after=decode_cursor(cursor, datetime, uuid.UUID),
        limit=limit,
    )
    result = page(rows, limit, lambda t: [t.created_at, t.id])
    return Page[TransferRead](
        items=[_transfer_view(t) for t in result["items"]], next_cursor=result["next_cursor"]
    )


# --- retirement and certificates ------------------------------------------------------------


async def retire(session: AsyncSession, principal: Principal, data: RetirementCreate) -> RetirementRead:
    holder_id = principal.org_id
    assert holder_id is not None
    if data.beneficiary is None or not data.beneficiary.name.strip():
        raise BeneficiaryRequired("name the event, organisation or person made carbon neutral")
    await repository.lock_registry(session)
    by_id, plan = await _cut(session, holder_id, data.tonnes, data.serials)
    pieces = sorted(
        ((by_id[bid], r) for bid, (moving, _) in plan.items() for r in moving), key=lambda br: br[1]
    )
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
    await repository.add(session, retirement)
    await _apply(session, by_id, plan, {"status": BlockStatus.retired, "retirement_id": retirement.id})
    audit.record(
        session,
        actor=principal.actor,
        action="cer.retired",
        subject_type="cer_account",
        subject_id=holder_id,
        data={
            "certificate": number,
            "tonnes": retirement.tonnes,
            "serials": content["serials"],
            "beneficiary": content["beneficiary"],
            "content_sha256": content_sha256,
        },
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
    assert data.beneficiary is not None and principal.org_id is not None
    project_ids = sorted({b.project_id for b, _ in pieces})
    rows = await repository.projects_by_ids(session, project_ids)
    owners = await org_service.names(session, [p.owner_org_id for p in rows] + [principal.org_id])
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
        "verification_url": verification_page_url(number),
    }


def _retirement_view(r: CerRetirement, *, flagged: bool) -> RetirementRead:
    return RetirementRead.model_validate(
        {
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
    )


async def list_retirements(
    session: AsyncSession, principal: Principal | None, *, limit: int, cursor: str | None
) -> Page[RetirementRead]:
    rows = await repository.retirements_page(
        session,
        holder=principal.org_id if principal is not None and principal.role != "authority" else None,
        after=decode_cursor(cursor, datetime, uuid.UUID),
        limit=limit,
    )
    result = page(rows, limit, lambda r: [r.retired_at, r.id])
    flagged = await repository.flagged_retirements(session, [r.id for r in result["items"]])
    return Page[RetirementRead](
        items=[_retirement_view(r, flagged=r.id in flagged) for r in result["items"]],
        next_cursor=result["next_cursor"],
    )


CERTIFICATE_NUMBER = re.compile(r"^CERT-\d{4}-\d{6,12}$")


async def certificate(session: AsyncSession, number: str) -> CerRetirement:
    if not CERTIFICATE_NUMBER.match(number):
        raise CertificateNotFound(f"no certificate {number}")
    row = await repository.retirement_by_number(session, number)
    if row is None:
        raise CertificateNotFound(f"no certificate {number}")
    return row


async def public_certificate(session: AsyncSession, number: str) -> CertificatePublic:
    row = await certificate(session, number)
    flagged = await repository.flagged_retirements(session, [row.id])
    return CertificatePublic(
        number=row.certificate_number,
        content=row.content,
        content_sha256=row.content_sha256,
        pdf_sha256=row.pdf_sha256,
        pdf_url=certificate_url(row.certificate_number) + ".pdf",
        fraud_flagged=row.id in flagged,
    )


# --- accounts -------------------------------------------------------------------------------


ACCOUNT_BLOCKS = 1000  # the blocks an account view lists, lowest serials first


async def account(session: AsyncSession, org_id: uuid.UUID, *, status: str | None) -> AccountRead:
    org = await org_service.get(session, org_id)
    opened_at = await repository.account_opened_at(session, org_id)
    rows = await repository.blocks_of(session, org_id, status, ACCOUNT_BLOCKS)
    numbers = await _certificate_numbers(session, [b.retirement_id for b in rows if b.retirement_id])
    tonnes = await repository.account_tonnes(session, org_id)
    return AccountRead(
        org_id=org.id,
        org_name=org.name,
        opened_at=opened_at,
        held_tonnes=tonnes[BlockStatus.held],
        retired_tonnes=tonnes[BlockStatus.retired],
        revoked_tonnes=tonnes[BlockStatus.revoked],
        carry_forward_g=await repository.carried_grams(session, org_id),
        blocks=[_block_view(b, numbers) for b in rows],
    )


async def _certificate_numbers(
    session: AsyncSession, ids: Sequence[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    return await repository.certificate_numbers(session, sorted({i for i in ids if i}))


def _block_view(b: CerBlock, numbers: dict[uuid.UUID, str]) -> BlockRead:
    return BlockRead.model_validate(
        {
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
    )


async def open_account(session: AsyncSession, principal: Principal) -> AccountRead:
    assert principal.org_id is not None
    await ensure_account(session, principal.org_id)
    return await account(session, principal.org_id, status=None)


# --- clawback -------------------------------------------------------------------------------


async def clawback(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, reason: str
) -> ClawbackRead:
    """Revoke the project's units still held, flag its retired ones, freeze the project (JX 26).

    The owner's carried-forward remainder (under a tonne) is forfeited with it.
    """
    await repository.lock_registry(session)
    project = await projects.get(session, project_id, lock=True)
    if project.status == ProjectStatus.frozen:
        raise InvalidProjectState("the project is frozen already", status_now=project.status)
    now = clock.now()
    revoked = await repository.revoke_held(session, project.id, now)
    flagged = await repository.flag_retired(session, project.id, now)
    forfeited = 0
    if project.status == ProjectStatus.issued:
        carry = await repository.carry(session, project.owner_org_id, clock.now())
        forfeited, carry.grams, carry.updated_at = carry.grams, 0, now
    previous = project.status
    project.status, project.frozen_at, project.decision_reason, project.updated_at = (
        ProjectStatus.frozen,
        now,
        reason,
        now,
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
    return ClawbackRead.model_validate(result)


@dataclass(frozen=True)
class HeldBlock:
    serial: str
    holder_org_id: uuid.UUID
    holder_name: str
    tonnes: int


@dataclass(frozen=True)
class ClawbackPreview:
    """What :func:`clawback` would do now, computed without doing it (for the confirmation)."""

    project: ProjectRead
    held: list[HeldBlock]
    revoked_tonnes: int
    retired_tonnes: int
    already_revoked_tonnes: int
    forfeited_carry_g: int


async def clawback_preview(session: AsyncSession, project_id: uuid.UUID) -> ClawbackPreview:
    """The units a clawback would revoke (by holder), the retired ones it would flag, the carry forfeited."""
    project = await projects.get(session, project_id)
    if project.status == ProjectStatus.frozen:
        raise InvalidProjectState("the project is frozen already", status_now=project.status)
    found = await repository.project_blocks(session, project.id)
    held = [b for b in found if b.status == BlockStatus.held]
    names = await org_service.names(session, [b.holder_org_id for b in held])
    size = {status: 0 for status in BlockStatus}
    for b in found:
        size[BlockStatus(b.status)] += b.serial_end - b.serial_start + 1
    carry = (
        await repository.carried_grams(session, project.owner_org_id)
        if project.status == ProjectStatus.issued
        else 0
    )
    return ClawbackPreview(
        project=await projects.view(session, project),
        held=[
            HeldBlock(
                block_serial(b),
                b.holder_org_id,
                names.get(b.holder_org_id, ""),
                b.serial_end - b.serial_start + 1,
            )
            for b in held
        ],
        revoked_tonnes=size[BlockStatus.held],
        retired_tonnes=size[BlockStatus.retired],
        already_revoked_tonnes=size[BlockStatus.revoked],
        forfeited_carry_g=carry,
    )


# --- trace ----------------------------------------------------------------------------------


async def trace(
    session: AsyncSession, serial: str, *, records_limit: int = 100, batches_limit: int = 500
) -> TraceRead:
    """Re-derive a unit: its block, issuance, project, records, methodology versions and signed batches.

    The records, their methodology versions and the signed batches come from the domains that own
    them (points, methodologies); the registry knows which records the project counted.
    """
    try:
        vintage, unit = blocks.parse(prefix(), serial)
    except ValueError as exc:
        raise InvalidSerial(f"{serial!r}: {exc}") from exc
    block = await repository.block_at(session, unit.start)
    if block is None or block.vintage != vintage:
        raise SerialNotFound(f"no unit {serial}")
    issuance = await repository.issuance(session, block.issuance_id)
    project = await projects.get(session, block.project_id)
    assert issuance is not None
    numbers = await _certificate_numbers(session, [block.retirement_id])
    conn = await db.raw_connection(session)
    counts = {v.methodology_version_id: v for v in await repository.by_version(conn, project.id)}
    versions = [
        TraceVersion(
            methodology_version_id=m.id,
            code=m.code,
            version=m.version,
            behaviour_type=m.behaviour_type,
            net_factor_g=format(m.net_factor_g, "f"),
            status=m.status,
            records=counts[m.id].records,
            reduction_g=counts[m.id].reduction_g,
        )
        for m in await methodologies_service.versions_by_id(session, list(counts))  # by code, version
    ]
    per_batch = await repository.by_batch(conn, project.id)
    batches = [
        TraceBatch(
            batch_id=b.id,
            operator_id=b.operator_id,
            kid=b.kid,
            body_sha256=b.body_sha256,
            body_hash_ok=b.body_hash_ok,
            signature=b.signature,
            received_at=b.received_at,
            records_in_project=per_batch[b.id],
        )
        for b in await points_service.batches(session, list(per_batch), limit=batches_limit)  # oldest first
    ]
    record_ids = await repository.first_record_ids(session, project.id, records_limit)
    records = [
        TraceRecord(
            id=r.id,
            record_id=r.record_id,
            batch_id=r.batch_id,
            behaviour_type=r.behaviour_type,
            started_at=r.started_at,
            reduction_g=r.reduction_g,
            methodology_version_id=r.methodology_version_id,
        )
        for r in (await points_service.records_by_id(session, record_ids) if record_ids else [])  # by id
    ]
    return TraceRead.model_validate(
        {
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
            "batches_total": len(per_batch),
            "batches": batches,
            "records": records,
        }
    )


# --- disclosure -----------------------------------------------------------------------------


async def list_issuances(session: AsyncSession, *, limit: int, cursor: str | None) -> Page[IssuanceRead]:
    rows = await repository.issuances_page(
        session, after=decode_cursor(cursor, datetime, uuid.UUID), limit=limit
    )
    result = page(rows, limit, lambda i: [i.issued_at, i.id])
    return Page[IssuanceRead](
        items=await _issuance_views(session, result["items"]), next_cursor=result["next_cursor"]
    )


async def daily_tonnes(session: AsyncSession, first: date, last: date) -> list[tuple[date, int, int]]:
    """(day, tonnes issued, tonnes retired) for every day from ``first`` to ``last``, in the platform's time zone."""
    rows = await repository.daily_tonnes(
        await db.raw_connection(session), first, last, get_settings().timezone
    )
    return [(r["day"], r["issued"], r["retired"]) for r in rows]


async def totals(session: AsyncSession) -> Totals:
    return Totals.model_validate(await repository.totals(await db.raw_connection(session), clock.today()))


@dataclass(frozen=True)
class FlowDay:
    """Tonnes of certified reductions issued, transferred between accounts and retired on one local day."""

    day: date
    issued: int
    transferred: int
    retired: int


async def flow_days(session: AsyncSession, first: date, last: date) -> list[FlowDay]:
    """Every local day from ``first`` to ``last``, zeros included (the authority's dashboard)."""
    rows = await repository.flow_days(await db.raw_connection(session), first, last, get_settings().timezone)
    return [FlowDay(r["day"], r["issued"], r["transferred"], r["retired"]) for r in rows]
