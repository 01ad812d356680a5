"""The tamper-evident audit log: hash-chained entries.

Services call :func:`record`; entries are buffered on the session and written by
:func:`flush` right before the request's commit, so the chain lock is held for a moment only.
The log is split into ``CHAINS`` independent chains (by subject) so concurrent requests don't
queue on one lock; all entries of one transaction go to one chain (so it takes one lock); each
entry's hash covers the previous hash of its chain and its own content.
``audit_chain_heads`` holds each chain's newest sequence number and hash: appending locks that row
(one statement a transaction), and verification compares the chain's end with it, so deleting the newest
entries is caught too.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import clock, db, idempotency, sqljson
from app.core.models import AuditEntry
from app.core.pagination import keyset, page

CHAINS = 16
GENESIS = "0" * 64


def _chain_of(subject_type: str, subject_id: str) -> int:
    digest = hashlib.blake2b(f"{subject_type}:{subject_id}".encode(), digest_size=2).digest()
    return int.from_bytes(digest, "big") % CHAINS


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: Any,
    data: dict[str, Any] | None = None,
) -> None:
    """Queue an audit entry; it is written in the same transaction, just before commit."""
    session.info.setdefault("audit", []).append(
        _pending_entry(actor, action, subject_type, subject_id, data or {})
    )


def _pending_entry(
    actor: str, action: str, subject_type: str, subject_id: Any, data: dict[str, Any]
) -> tuple[str, str, str, str, Any]:
    """An entry as :func:`_rows` takes it: the subject's id as text, ``data`` as JSON has it (ids as text)."""
    return (actor, action, subject_type, str(subject_id), json.loads(json.dumps(data, default=str)))


def entry_hash(
    prev_hash: str,
    chain: int,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    data: dict[str, Any],
) -> str:
    canonical = _canonical(
        [prev_hash, chain, seq, at.isoformat(), actor, action, subject_type, subject_id, data]
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(values: list[Any]) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# One round trip a transaction: ``audit_append`` (migration 0019) locks the chain's head, chains the entries'
# hashes from it in SQL, inserts them and moves the head. Python sends each entry's canonical JSON without its
# first three members (previous hash, chain, seq: known only under the lock); SQL prefixes them exactly as
# :func:`entry_hash` writes them (hex, integers), so the hash is the same SHA-256 of the same UTF-8 text and
# :func:`verify` re-computes it in Python.
APPEND_SQL = "SELECT audit_append($1, $2::json)"

_APPEND_AND_STORE_SQL = (
    idempotency.STORE_SQL.format(*(f"${n}" for n in range(3, 11))) + ", audit_append($1, $2::json)"
)
"""APPEND_SQL that also stores the request's idempotency record ($3…$10): both functions called by one
statement."""
_STORE_SQL = idempotency.STORE_SQL.format(*(f"${n}" for n in range(1, 9)))
"""The idempotency record alone, for a write request that audited nothing."""


def _rows(pending: list[tuple[str, str, str, str, Any]]) -> tuple[int, str]:
    """The chain of the entries (one per transaction, picked by the first entry's subject: one lock) and the
    entries as ``audit_append`` takes them (JSON text)."""
    chain = _chain_of(pending[0][2], pending[0][3])
    at = clock.real_now()  # when it really happened, whatever the sandbox clock says
    rows = [
        {
            "n": n,
            "rest": _canonical([at.isoformat(), actor, action, subject_type, subject_id, data]),
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "data": data,
        }
        for n, (actor, action, subject_type, subject_id, data) in enumerate(pending, start=1)
    ]
    return chain, orjson.dumps(rows).decode()


async def flush(session: AsyncSession, *, stored: tuple[Any, ...] | None = None) -> None:
    """Write the transaction's audit entries in one statement.

    ``stored``: an idempotency record (:func:`app.core.idempotency.record`) written by the same statement,
    so a write request's end costs one round trip before its commit.
    """
    pending = session.info.pop("audit", None)
    if not pending:
        if stored is not None:
            conn = await db.raw_connection(session)
            await conn.execute(_STORE_SQL, *stored)
        return
    chain, rows = _rows(pending)
    conn = await db.raw_connection(session)  # on every write request: asyncpg directly, not the ORM
    if stored is None:
        await conn.execute(APPEND_SQL, chain, rows)
    else:
        await conn.execute(_APPEND_AND_STORE_SQL, chain, rows, *stored)


def statement_entry(
    *, actor: str, action: str, subject_type: str, subject_id: Any, data: dict[str, Any], later: Sequence[str]
) -> tuple[int, str]:
    """One entry for a statement that appends it itself (``audit_append``), with the values of ``data`` named in
    ``later`` (each given as :func:`app.core.sqljson.later`) filled in by that statement: its chain and its rows
    as a ``format()`` template whose ``%n$s`` is the JSON of ``later[n - 1]``."""
    chain, rows = _rows([_pending_entry(actor, action, subject_type, subject_id, data)])
    return chain, sqljson.template(rows, later)


@dataclass
class VerifyResult:
    entries: int
    broken: list[str]

    @property
    def ok(self) -> bool:
        return not self.broken


async def verify(session: AsyncSession) -> VerifyResult:
    """Re-hash every chain; name the first broken entry of each chain, or a chain cut short.

    The heads are read first: entries appended while we read lie beyond them and are checked too.
    """
    heads = {
        row.chain: (row.seq, row.hash)
        for row in await session.execute(sa.text("SELECT chain, seq, hash FROM audit_chain_heads"))
    }
    at_head: dict[int, str] = {}
    result = await session.stream(
        sa.text(
            "SELECT chain, seq, at, actor, action, subject_type, subject_id, data, prev_hash, hash"
            " FROM audit_entries ORDER BY chain, seq"
        )
    )
    count = 0
    broken: list[str] = []
    state: dict[int, tuple[int, str]] = {}
    bad_chains: set[int] = set()
    async for row in result:
        count += 1
        chain = row.chain
        if chain in bad_chains:
            continue
        last_seq, prev = state.get(chain, (0, GENESIS))
        expected = entry_hash(
            prev, chain, row.seq, row.at, row.actor, row.action, row.subject_type, row.subject_id, row.data
        )
        problem = None
        if row.seq != last_seq + 1:
            gone = (
                f"entry {chain}:{last_seq + 1} is missing"
                if row.seq == last_seq + 2
                else f"entries {chain}:{last_seq + 1} to {chain}:{row.seq - 1} are missing"
            )
            problem = f"{gone} (before {chain}:{row.seq})"
        elif row.prev_hash != prev:
            problem = f"entry {chain}:{row.seq} does not link to the previous entry's hash"
        elif row.hash != expected:
            problem = (
                f"entry {chain}:{row.seq} ({row.action} {row.subject_type} {row.subject_id}) was altered"
            )
        if problem:
            broken.append(problem)
            bad_chains.add(chain)
            continue
        state[chain] = (row.seq, row.hash)
        if row.seq == heads.get(chain, (0, GENESIS))[0]:
            at_head[chain] = row.hash
    for chain, (head_seq, head_hash) in sorted(heads.items()):
        if chain in bad_chains or head_seq == 0:
            continue
        last_seq = state.get(chain, (0, GENESIS))[0]
        if last_seq < head_seq:
            gone = (
                f"entry {chain}:{head_seq} is missing"
                if last_seq + 1 == head_seq
                else f"entries {chain}:{last_seq + 1} to {chain}:{head_seq} are missing"
            )
            broken.append(f"{gone} (the end of the chain)")
        elif at_head.get(chain) != head_hash:
            broken.append(f"entry {chain}:{head_seq} does not match the chain's recorded head")
    return VerifyResult(count, broken)


@dataclass(frozen=True)
class SubjectEntry:
    """One written audit entry about a subject, as its page shows it (chain position and hash included)."""

    chain: int
    seq: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    data: dict[str, Any]
    hash: str


async def entries_for(
    session: AsyncSession, subject_type: str, subject_ids: list[str], *, limit: int = 50
) -> list[SubjectEntry]:
    """The newest entries about these subjects (of one type), newest first: a decision's record."""
    if not subject_ids:
        return []
    rows = await session.execute(
        sa.text(
            "SELECT chain, seq, at, actor, action, subject_type, subject_id, data, hash FROM audit_entries"
            " WHERE subject_type = :type AND subject_id = ANY(:ids) ORDER BY at DESC, chain, seq DESC"
            " LIMIT :limit"
        ),
        {"type": subject_type, "ids": subject_ids, "limit": limit},
    )
    return [SubjectEntry(**row._mapping) for row in rows]


# ---- reading the log (the authority's audit viewer) ------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One audit entry with its place in its chain: chain number, position (``seq``) and the hashes."""

    chain: int
    seq: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Search:
    """What to look for; every field optional. ``actor`` and ``action`` match a prefix
    (``authority:`` finds every authority account; ``cer.`` every CER action), the subject exactly."""

    actor: str | None = None
    action: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _entry(row: Any) -> Entry:
    return Entry(
        row.chain,
        row.seq,
        row.at,
        row.actor,
        row.action,
        row.subject_type,
        row.subject_id,
        row.data,
        row.prev_hash,
        row.hash,
    )


async def search(session: AsyncSession, query: Search, limit: int, cursor: str | None) -> dict[str, Any]:
    """Entries matching ``query``, newest first, a keyset page (``{"items", "next_cursor"}``)."""
    t = AuditEntry.__table__.c  # type: ignore[attr-defined]
    stmt = sa.select(AuditEntry.__table__)  # type: ignore[attr-defined]
    if query.actor:
        stmt = stmt.where(t.actor.like(_like_prefix(query.actor), escape="\\"))
    if query.action:
        stmt = stmt.where(t.action.like(_like_prefix(query.action), escape="\\"))
    if query.subject_type:
        stmt = stmt.where(t.subject_type == query.subject_type)
    if query.subject_id:
        stmt = stmt.where(t.subject_id == query.subject_id)
    if query.since:
        stmt = stmt.where(t.at >= query.since)
    if query.until:
        stmt = stmt.where(t.at < query.until)
    stmt = keyset(stmt, cursor, (t.at, datetime), (t.chain, int), (t.seq, int), descending=True).limit(
        limit + 1
    )
    items = [_entry(row) for row in (await session.execute(stmt)).all()]
    return page(items, limit, lambda e: [e.at, e.chain, e.seq])


async def get_entry(session: AsyncSession, chain: int, seq: int) -> Entry | None:
    """The entry at position ``seq`` of chain ``chain``, or None."""
    t = AuditEntry.__table__.c  # type: ignore[attr-defined]
    row = (
        await session.execute(
            sa.select(AuditEntry.__table__).where(t.chain == chain, t.seq == seq)  # type: ignore[attr-defined]
        )
    ).first()
    return _entry(row) if row is not None else None
