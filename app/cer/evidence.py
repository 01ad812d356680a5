"""The evidence behind a project, for its verifier to check what it certifies (JX 15), its owner and the
authority: the records the project counts (pseudonymous), a reproducible random sample of them, and the
signed batches they came in with their signatures verified again now.

- Pseudonymous: a record shows no user id, phone or external user id. ``person`` is the first 16 hex
  digits of HMAC-SHA256(key, project id ‖ account id) under a key derived from the platform's secret:
  the same for one person's records within a project (a verifier sees repeats), unrelated across
  projects, and not reversible by trying account ids without the secret.
- The sample: the ``size`` records whose SHA-256 of ``"{seed}:{id}"`` (UTF-8, lowercase hex; ``id`` the
  platform's record number) sorts first. The same seed always gives the same records, and anyone with
  the project's record list (the CSV) can recompute the draw.
- Batches: the records and batches belong to the points domain; the registry knows which records the
  project counts and asks :func:`app.points.service.check_batches` to verify each batch's signature.
"""

import csv
import hashlib
import hmac
import io
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.cer import repository
from app.cer.schemas import BatchRead, ProjectRecord, RecordSample, SampledRecord
from app.cer.service import get
from app.core import db
from app.core.config import get_settings
from app.core.pagination import Page, decode_cursor, encode_cursor, page
from app.methodologies import service as methodologies_service
from app.organizations import service as org_service
from app.points import service as points_service

SAMPLE_METHOD = (
    'The records whose SHA-256 of "{seed}:{id}" (UTF-8, lowercase hex; id: the platform\'s record number) '
    "sorts first, in that order."
)
CSV_COLUMNS = (
    "id",
    "record_id",
    "operator_id",
    "operator_name",
    "batch_id",
    "person",
    "behaviour_type",
    "started_at",
    "ended_at",
    "quantity",
    "counted_quantity",
    "unit",
    "reduction_g",
    "methodology_code",
    "methodology_version",
    "methodology_version_id",
    "status",
    "cap_code",
    "scene_id",
)
CSV_CHUNK = 2000


@lru_cache(maxsize=4)
def _pseudonym_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"carbon-points cer record pseudonym", hashlib.sha256).digest()


def pseudonym(project_id: uuid.UUID, user_id: uuid.UUID) -> str:
    key = _pseudonym_key(get_settings().identity_hash_key)
    return hmac.new(key, project_id.bytes + user_id.bytes, hashlib.sha256).hexdigest()[:16]


class _Labels:
    """Operator names and methodology versions, looked up once per list."""

    def __init__(self) -> None:
        self.operators: dict[uuid.UUID, str] = {}
        self.versions: dict[uuid.UUID, tuple[str, int]] = {}

    async def load(self, session: AsyncSession, rows: Sequence[Any]) -> None:
        operators = {r["operator_id"] for r in rows} - set(self.operators)
        versions = {r["methodology_version_id"] for r in rows} - set(self.versions)
        if operators:
            self.operators.update(await org_service.names(session, list(operators)))
        for v in await methodologies_service.versions_by_id(session, versions):
            self.versions[v.id] = (v.code, int(v.version))

    def record(self, project_id: uuid.UUID, r: Any) -> dict[str, Any]:
        code, version = self.versions.get(r["methodology_version_id"], ("", 0))
        return {
            "id": r["id"],
            "record_id": r["record_id"],
            "operator_id": r["operator_id"],
            "operator_name": self.operators.get(r["operator_id"], ""),
            "batch_id": r["batch_id"],
            "person": pseudonym(project_id, r["user_id"]),
            "behaviour_type": r["behaviour_type"],
            "started_at": r["started_at"],
            "ended_at": r["ended_at"],
            "quantity": format(r["quantity"], "f"),
            "counted_quantity": format(r["counted_quantity"], "f"),
            "unit": r["unit"],
            "reduction_g": r["reduction_g"],
            "methodology_version_id": r["methodology_version_id"],
            "methodology_code": code,
            "methodology_version": version,
            "status": "accepted",
            "cap_code": r["code"],
            "scene_id": r["scene_id"],
        }


async def records(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[ProjectRecord]:
    """The project's records by record number (authority, its owner, its verifier)."""
    after = decode_cursor(cursor, int)  # a forged cursor is the client's error whoever asks
    project = await get(session, project_id, principal=principal)
    rows = await repository.project_records(
        await db.raw_connection(session), project.id, after[0] if after else None, limit + 1
    )
    result = page(list(rows), limit, lambda r: [r["id"]])
    labels = _Labels()
    await labels.load(session, result["items"])
    return Page[ProjectRecord](
        items=[ProjectRecord.model_validate(labels.record(project.id, r)) for r in result["items"]],
        next_cursor=result["next_cursor"],
    )


async def sample(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, *, seed: str, size: int
) -> RecordSample:
    """A reproducible random sample of the project's records (see the module's docstring)."""
    project = await get(session, project_id, principal=principal)
    rows = await repository.sample_records(await db.raw_connection(session), project.id, seed, size)
    labels = _Labels()
    await labels.load(session, rows)
    return RecordSample(
        seed=seed,
        size=size,
        population=project.record_count,
        method=SAMPLE_METHOD,
        items=[
            SampledRecord.model_validate({**labels.record(project.id, r), "draw_key": r["draw_key"]})
            for r in rows
        ],
    )


async def csv_source(session: AsyncSession, principal: Principal, project_id: uuid.UUID) -> uuid.UUID:
    """Check the caller may download the project's records; the id to give :func:`records_csv`."""
    return (await get(session, project_id, principal=principal)).id


def _csv_line(values: Sequence[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        ["" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in values]
    )
    return buffer.getvalue().encode()


async def records_csv(project_id: uuid.UUID) -> AsyncIterator[bytes]:
    """Every record of the project as CSV (a header row, then one row per record by record number), read in
    chunks on a session of its own: the response streams after the request's transaction has ended.
    Call :func:`csv_source` first (the access check)."""
    yield _csv_line(CSV_COLUMNS)
    labels = _Labels()
    after: int | None = None
    async with db.session_scope() as session:
        while True:
            rows = await repository.project_records(
                await db.raw_connection(session), project_id, after, CSV_CHUNK
            )
            if not rows:
                return
            await labels.load(session, rows)
            yield b"".join(_csv_line([labels.record(project_id, r)[c] for c in CSV_COLUMNS]) for r in rows)
            after = rows[-1]["id"]


async def batches(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[BatchRead]:
    """The signed batches the project's records came in, by receipt, each signature verified now."""
    after = decode_cursor(cursor, datetime, uuid.UUID)  # a forged cursor is the client's error whoever asks
    project = await get(session, project_id, principal=principal)
    per_batch = await repository.by_batch(await db.raw_connection(session), project.id)
    checks = await points_service.check_batches(
        session, list(per_batch), after=(after[0], after[1]) if after else None, limit=limit + 1
    )
    more = len(checks) > limit
    checks = checks[:limit]
    names = await org_service.names(session, [c.operator_id for c in checks])
    return Page[BatchRead](
        items=[
            BatchRead(
                batch_id=c.id,
                operator_id=c.operator_id,
                operator_name=names.get(c.operator_id, ""),
                received_at=c.received_at,
                kid=c.kid,
                algorithm=c.algorithm,
                key_revoked_at=c.key_revoked_at,
                body_sha256=c.body_sha256,
                body_hash_ok=c.body_hash_ok,
                verified=c.verified,
                reason=c.outcome.value,
                records=c.records,
                accepted=c.accepted,
                duplicate=c.duplicate,
                rejected=c.rejected,
                records_in_project=per_batch[c.id],
            )
            for c in checks
        ],
        next_cursor=encode_cursor([checks[-1].received_at, checks[-1].id]) if more and checks else None,
    )
