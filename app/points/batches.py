"""An operator's own batches: what it sent, and what became of each record (``GET /v1/operator/behaviour-batches``).

A batch is kept as its signed body with the counts of each outcome and each rejected record's outcome
exactly as the submission answered it (``rejections``: index, record_id, code, message); the accepted
records are kept apart (``behaviour_records``). Each record's outcome is read back from them: rejected
as answered, accepted in this batch, or a duplicate of one accepted before it. Nothing is checked
again: a rejection stays what it was at receipt whatever changed since.

Batches received before the outcomes were kept (``rejections`` empty while ``rejected`` counts some)
show their rejected records without a code: ``rejections_recorded`` is false.
"""

import csv
import io
import logging
import uuid
from collections import Counter
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import db
from app.core.pagination import Page, decode_cursor, page
from app.points import bodies, ingestion
from app.points import repository as repo
from app.points.exceptions import BatchBodyUnreadable, BatchNotFound, InvalidPeriod
from app.points.models import RecordStatus
from app.points.schemas import BatchDetail, BatchRead, BatchRecordRead, RejectCount

log = logging.getLogger(__name__)

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


def rejections_recorded(row) -> bool:
    """Whether the batch ``row`` kept its rejected records' outcomes (every batch since they are kept)."""
    return not row["rejected"] or bool(row["rejections"])


async def _records(session: AsyncSession, operator_id: uuid.UUID, row) -> list[BatchRecordRead]:
    """Every record of the stored batch ``row`` with its outcome, in the order sent."""
    body = bodies.original(row["body"], row["body_encoding"])
    if body is None:
        log.error("a batch's kept body can no longer be read", extra={"batch_id": str(row["id"])})
        raise BatchBodyUnreadable()
    raw_records = orjson.loads(body)["records"]
    rejected = {r["index"]: r for r in row["rejections"]}
    recorded = rejections_recorded(row)
    ids = [_str(raw, "record_id", 100) for raw in raw_records]
    wanted = list({record_id for i, record_id in enumerate(ids) if record_id and i not in rejected})
    accepted = {
        r["record_id"]: r
        for r in await repo.accepted_under(await db.raw_connection(session), operator_id, wanted)
    }
    seen: set[str] = set()
    out = []
    for i, (raw, record_id) in enumerate(zip(raw_records, ids, strict=True)):
        status, code, message, grams, points = RecordStatus.rejected, None, None, 0, 0
        kept = accepted.get(record_id) if record_id else None
        if i in rejected:
            code, message = rejected[i]["code"], rejected[i]["message"]
        elif kept is not None:  # the first in this batch was accepted, any other one a duplicate
            first_here = kept["batch_id"] == row["id"] and record_id not in seen
            status = RecordStatus.accepted if first_here else RecordStatus.duplicate
            code, grams, points = kept["code"], kept["reduction_g"], kept["points"]
        elif recorded:  # not rejected, yet no accepted record under its id: its first one's outcome
            status = RecordStatus.duplicate
        if record_id:
            seen.add(record_id)
        out.append(
            BatchRecordRead(
                index=i,
                record_id=record_id,
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
        rejections_recorded=rejections_recorded(row),
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
