"""An operator's own batches: what it sent, and what became of each record (``GET /v1/operator/behaviour-batches``).

A batch is kept as its signed body with the counts of each outcome; the accepted records are kept
apart (``behaviour_records``). Each record's outcome is read back from them: accepted in this batch,
a duplicate of one accepted before it, or rejected. The reason of a rejection is found again: the
checks of the record alone (shape, times, quantity) run exactly as they ran at receipt; the checks
against the platform's data (entrustment, methodology, unit, scene) run again on today's data; a
record that passes both was refused by the checks against earlier records (claimed evidence,
overlapping behaviour, the daily limit), named in the submission's own response.
"""

import csv
import io
import uuid
from collections import Counter
from datetime import datetime, timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import db
from app.core.config import get_settings
from app.core.pagination import Page, decode_cursor, page
from app.points import ingestion
from app.points import repository as repo
from app.points.exceptions import BatchNotFound, InvalidPeriod
from app.points.models import RecordStatus, RejectCode
from app.points.schemas import BatchDetail, BatchRead, BatchRecordRead, RejectCount

RECHECK_MESSAGES = {
    RejectCode.unknown_type: "no published methodology has this behaviour type",
    RejectCode.not_entrusted: "the person had no live entrustment with you when the behaviour began",
    RejectCode.out_of_effective_period: "no methodology or exchange rule version was in force at that time",
    RejectCode.unit_mismatch: "the unit is not the methodology's unit",
    RejectCode.implausible_quantity: "the quantity is above the methodology's bound for one record",
    RejectCode.scene_not_approved: "the scene is not approved for this behaviour type",
    RejectCode.scene_required: "this behaviour type is recorded at an approved scene: give its scene_id",
}
HISTORY_MESSAGE = (
    "refused by a check against earlier records: evidence already claimed, an overlapping behaviour "
    "or the daily limit (the submission's response named which)"
)
Outcome = tuple[RecordStatus, str | None, str | None, int, int]
"""status, code, message, grams, points"""
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = ("record_id", "external_user_id", "behaviour_type", "occurred_at", "code", "message")


def _operator(principal: Principal) -> uuid.UUID:
    assert principal.org_id is not None  # an operator's token names its organisation
    return principal.org_id


def _read(row) -> BatchRead:
    return BatchRead(**{k: row[k] for k in BatchRead.model_fields})


async def list_batches(
    session: AsyncSession,
    operator: Principal,
    *,
    received_from: datetime | None,
    received_to: datetime | None,
    has_rejections: bool | None,
    limit: int,
    cursor: str | None,
) -> dict:
    """The operator's batches, newest first."""
    if received_from is not None and received_to is not None and received_from >= received_to:
        raise InvalidPeriod("received_from must be before received_to")
    after = decode_cursor(cursor, datetime, uuid.UUID)
    rows = await repo.operator_batches(
        await db.raw_connection(session),
        _operator(operator),
        received_from=received_from,
        received_to=received_to,
        has_rejections=has_rejections,
        after=(after[0], after[1]) if after else None,
        limit=limit,
    )
    return page([_read(r) for r in rows], limit, lambda b: [b.received_at, b.id])


def _str(raw: object, name: str, max_length: int) -> str | None:
    value = raw.get(name) if isinstance(raw, dict) else None
    return value[:max_length] if isinstance(value, str) else None


async def _records(session: AsyncSession, operator_id: uuid.UUID, row) -> list[BatchRecordRead]:
    """Every record of the stored batch ``row`` with its outcome, in the order sent."""
    raw_records = orjson.loads(row["body"])["records"]
    received_at: datetime = row["received_at"]
    oldest = received_at - timedelta(days=get_settings().record_max_age_days)
    parsed = [ingestion.parse_record(i, raw, received_at, oldest) for i, raw in enumerate(raw_records)]
    candidates = [p for p in parsed if isinstance(p, ingestion.Candidate)]
    accepted = {
        r["record_id"]: r
        for r in await repo.accepted_under(
            await db.raw_connection(session), operator_id, list({c.record_id for c in candidates})
        )
    }
    outcomes: dict[int, Outcome] = {}
    first: dict[str, int] = {}
    to_check: list[ingestion.Candidate] = []
    repeats: list[tuple[int, int]] = []
    for c in candidates:
        if c.record_id in first:
            repeats.append((c.index, first[c.record_id]))
            continue
        first[c.record_id] = c.index
        kept = accepted.get(c.record_id)
        if kept is not None and kept["batch_id"] == row["id"]:
            outcomes[c.index] = (
                RecordStatus.accepted,
                kept["code"],
                None,
                kept["reduction_g"],
                kept["points"],
            )
        elif kept is not None and kept["created_at"] < received_at:
            outcomes[c.index] = (
                RecordStatus.duplicate,
                kept["code"],
                None,
                kept["reduction_g"],
                kept["points"],
            )
        else:
            to_check.append(c)
    if to_check:
        codes = await ingestion.recheck(session, operator_id, to_check, len(raw_records))
        for c in to_check:
            found = codes.get(c.index)
            said = RECHECK_MESSAGES.get(found, HISTORY_MESSAGE) if found else HISTORY_MESSAGE
            outcomes[c.index] = (RecordStatus.rejected, str(found) if found else None, said, 0, 0)
    for index, of in repeats:  # the same record twice in one batch: the first one's outcome
        status, *rest = outcomes[of]
        again = RecordStatus.duplicate if status == RecordStatus.accepted else status
        outcomes[index] = (again, *rest)  # type: ignore[assignment]
    out = []
    for i, (raw, p) in enumerate(zip(raw_records, parsed, strict=True)):
        outcome: Outcome = (
            (RecordStatus.rejected, str(p.code), p.message, 0, 0)
            if isinstance(p, ingestion.Explained)
            else outcomes[i]
        )
        status, code, message, grams, points = outcome
        out.append(
            BatchRecordRead(
                index=i,
                record_id=_str(raw, "record_id", 100),
                external_user_id=_str(raw, "external_user_id", 100),
                behaviour_type=_str(raw, "type", 50),
                occurred_at=ingestion._time(raw.get("started_at")) if isinstance(raw, dict) else None,
                status=status,
                code=code,
                message=message,
                reduction_g=grams,
                points=points,
            )
        )
    return out


async def _batch(session: AsyncSession, operator: Principal, batch_id: uuid.UUID):
    row = await repo.operator_batch(await db.raw_connection(session), _operator(operator), batch_id)
    if row is None:
        raise BatchNotFound()
    return row


async def batch_detail(
    session: AsyncSession,
    operator: Principal,
    batch_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> BatchDetail:
    """One of the operator's batches: counts, reject codes with counts, a page of its records."""
    after = decode_cursor(cursor, int)
    row = await _batch(session, operator, batch_id)
    records = await _records(session, _operator(operator), row)
    codes = Counter(r.code for r in records if r.status == RecordStatus.rejected)
    wanted = [
        r for r in records if (status is None or r.status == status) and (after is None or r.index > after[0])
    ]
    result = page(wanted[: limit + 1], limit, lambda r: [r.index])
    return BatchDetail(
        **_read(row).model_dump(),
        reject_codes=[
            RejectCount(code=code, count=n)
            for code, n in sorted(codes.items(), key=lambda item: (-item[1], item[0] or "~"))
        ],
        results=Page[BatchRecordRead](items=result["items"], next_cursor=result["next_cursor"]),
    )


async def rejected_records(
    session: AsyncSession, operator: Principal, batch_id: uuid.UUID
) -> list[BatchRecordRead]:
    """The rejected records of one of the operator's batches, in the order sent."""
    row = await _batch(session, operator, batch_id)
    return [r for r in await _records(session, _operator(operator), row) if r.status == RecordStatus.rejected]


def _cell(value: str | None) -> str:
    """A cell a spreadsheet will not run as a formula (a leading ``=`` ``+`` ``-`` ``@`` gets a quote)."""
    return "" if value is None else "'" + value if value.startswith(_FORMULA) else value


def rejected_csv(records: list[BatchRecordRead]) -> str:
    """The rejected records as CSV (UTF-8 with a byte-order mark, for spreadsheets): record_id,
    external_user_id, behaviour_type, occurred_at, code, message."""
    out = io.StringIO("\ufeff")
    out.seek(1)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in records:
        writer.writerow(
            [
                _cell(r.record_id),
                _cell(r.external_user_id),
                _cell(r.behaviour_type),
                r.occurred_at.isoformat() if r.occurred_at else "",
                r.code or "",
                _cell(r.message),
            ]
        )
    return out.getvalue()
