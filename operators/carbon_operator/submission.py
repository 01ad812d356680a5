"""Whole files against the platform: resumable batch submission and enrolment.

The command line is a thin face over these coroutines; tests (and an operator's own jobs) can
await them directly with any :class:`AsyncPlatformClient`, on their own event loop.

Resumption: ``FILE.progress.json`` records, per chunk, the idempotency key it was sent with and
the platform's answer, written as soon as the platform acknowledged the chunk. A re-run rebuilds
the chunks, skips those whose key is recorded, and sends the rest. Keys are derived from the
chunk bodies, so a chunk that was sent but not recorded is answered from the platform's
idempotency store, and a changed file simply sends its changed chunks.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import MAX_BATCH_RECORDS, AsyncPlatformClient, Chunk, chunk_records
from .errors import AuthenticationError, ClientError, PermissionDeniedError
from .models import BatchResult, OutcomeStatus
from .records import (
    INVALID_ROW,
    USER_COLUMNS,
    Row,
    file_format,
    progress_path,
    read_rows,
    read_users,
    rejected_path,
    write_rejected,
)

STATE_VERSION = 1


@dataclass
class FileSubmission:
    """What became of a file's records, over every run that sent part of it."""

    file: Path
    batches: int
    resumed: int
    sent: int
    invalid: list[Row]
    rejected: list[tuple[Row, str]]
    totals: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_file(self) -> Path | None:
        path = rejected_path(self.file)
        return path if self.rejected else None


def _fresh_state(source: Path) -> dict[str, Any]:
    return {"version": STATE_VERSION, "file": source.name, "chunks": {}}


def load_state(source: Path) -> dict[str, Any]:
    try:
        state = json.loads(progress_path(source).read_text())
    except (OSError, ValueError):
        return _fresh_state(source)
    if (
        not isinstance(state, dict)
        or state.get("version") != STATE_VERSION
        or state.get("file") != source.name
    ):
        return _fresh_state(source)
    return state


def _save_state(source: Path, state: dict[str, Any]) -> None:
    path = progress_path(source)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def _chunk_state(chunk: Chunk, result: BatchResult) -> dict[str, Any]:
    accepted = [o for o in result.results if o.status == OutcomeStatus.accepted]
    return {
        "key": chunk.idempotency_key,
        "batch_id": result.batch_id,
        "records": len(chunk),
        "summary": result.summary.model_dump(include={"accepted", "duplicate", "rejected"}),
        "codes": dict(Counter(f"{o.status.value}:{o.code}" for o in result.results if o.code)),
        "rejected": [
            [i, o.code or "unknown"]
            for i, o in enumerate(result.results)
            if o.status == OutcomeStatus.rejected
        ],
        "points": sum(o.points or 0 for o in accepted),
        "reduction_g": sum(o.reduction_g or 0 for o in accepted),
    }


async def submit_file(
    client: AsyncPlatformClient,
    file: Path,
    *,
    chunk_size: int = MAX_BATCH_RECORDS,
    on_start: Callable[[int, int], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> FileSubmission:
    """Submit a CSV/JSONL file of records, resuming where an earlier run stopped.

    ``on_start(total_records, records_already_acknowledged)`` is called before anything is sent,
    ``on_chunk(records)`` after each acknowledged chunk. Rows that cannot be records are not sent;
    they and the rejected records are written to ``FILE.rejected.*`` with their code.
    """
    file_format(file)
    rows = read_rows(file)
    good = [r for r in rows if r.record is not None]
    invalid = [r for r in rows if r.record is None]
    chunks = list(chunk_records((r.record for r in good if r.record is not None), chunk_size))
    state = load_state(file)

    def acknowledged(chunk: Chunk) -> bool:
        return bool(state["chunks"].get(str(chunk.index), {}).get("key") == chunk.idempotency_key)

    pending = [c for c in chunks if not acknowledged(c)]
    if on_start is not None:
        on_start(len(good), sum(len(c) for c in chunks if acknowledged(c)))
    for chunk in pending:
        result = await client.submit_chunk(chunk)
        state["chunks"][str(chunk.index)] = _chunk_state(chunk, result)
        _save_state(file, state)
        if on_chunk is not None:
            on_chunk(len(chunk))

    outcome = FileSubmission(
        file=file,
        batches=len(chunks),
        resumed=len(chunks) - len(pending),
        sent=len(pending),
        invalid=invalid,
        rejected=[(r, INVALID_ROW) for r in invalid],
    )
    for chunk in chunks:
        entry = state["chunks"][str(chunk.index)]
        start = chunk.index * chunk_size
        outcome.rejected.extend((good[start + position], code) for position, code in entry["rejected"])
        outcome.totals.update(entry["summary"])
        outcome.totals["points"] += entry["points"]
        outcome.totals["reduction_g"] += entry["reduction_g"]
        outcome.codes.update(entry["codes"])
    outcome.rejected.sort(key=lambda pair: pair[0].line)
    target = rejected_path(file)
    if outcome.rejected:
        write_rejected(target, outcome.rejected)
    elif target.exists():
        target.unlink()
    return outcome


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


@dataclass
class FileEnrolment:
    file: Path
    enrolled: int
    failed: list[tuple[dict[str, str], str]]

    @property
    def rejected_file(self) -> Path | None:
        return rejected_path(self.file) if self.failed else None


async def enrol_file(
    client: AsyncPlatformClient,
    file: Path,
    *,
    concurrency: int = 4,
    on_start: Callable[[int], None] | None = None,
    on_user: Callable[[], None] | None = None,
) -> FileEnrolment:
    """Enrol every user of a CSV file, ``concurrency`` at a time.

    A user the platform refuses (4xx) is listed with its code in ``FILE.rejected.csv``; an
    authentication or permission failure stops the whole run, as it would fail every user.
    """
    users = read_users(file)
    failures: dict[int, str] = {}
    gate = asyncio.Semaphore(concurrency)
    if on_start is not None:
        on_start(len(users))

    async def one(index: int, user: dict[str, str]) -> None:
        async with gate:
            try:
                await client.enrol_user(
                    user["external_user_id"], user["phone"], user["agreement_version"], user["accepted_at"]
                )
            except (AuthenticationError, PermissionDeniedError):
                raise
            except ClientError as exc:
                failures[index] = exc.code
            if on_user is not None:
                on_user()

    try:
        async with asyncio.TaskGroup() as tasks:
            for index, user in enumerate(users):
                tasks.create_task(one(index, user))
    except ExceptionGroup as group:
        raise _first_leaf(group) from None

    failed = [(users[i], failures[i]) for i in sorted(failures)]
    target = rejected_path(file)
    if failed:
        write_rejected(target, ((Row(0, user), code) for user, code in failed), columns=USER_COLUMNS)
    elif target.exists():
        target.unlink()
    return FileEnrolment(file=file, enrolled=len(users) - len(failed), failed=failed)
