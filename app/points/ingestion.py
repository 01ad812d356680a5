"""Signed batch ingestion: behaviours → reductions (grams) → points, in one transaction.

The hot path. Per batch: verify the detached JWS over the exact body, parse, check each record
(cheap checks in Python first), then a fixed sequence of set-based statements on the raw asyncpg
connection of the request's transaction — about twenty round trips whatever the batch size:

1. live entrustments, methodology and exchange-rule versions, scenes of the batch (asked of the
   users, methodologies and scenes services, on the same connection);
2. lock the people's accounts in one sorted order (concurrent batches never deadlock, and a
   retried batch waits for its twin, then sees its records as duplicates);
3. earlier records with the same ids (duplicates), the same evidence, overlapping times;
   today's totals for the daily limits;
4. store the signed batch (its body compressed: :mod:`app.points.bodies`) with its counts and each
   rejected record's outcome as answered (one statement), insert records, upsert lots, append one
   ledger entry per person, allocate, update accounts and daily totals.

Any server error rolls the whole batch back, so a retry with the same ``Idempotency-Key`` is safe.
"""

import hashlib
import math
import uuid
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Generic, TypeVar

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, db, ids, security
from app.core.config import get_settings
from app.methodologies import service as methodologies_service
from app.methodologies.service import MethodologyTerms, RuleTerms, VersionLabels
from app.organizations import service as org_service
from app.points import bodies
from app.points import repository as repo
from app.points.exceptions import (
    BatchTooLarge,
    ConcurrentConflict,
    InvalidBatch,
    InvalidSignature,
    SignatureRequired,
)
from app.points.models import CapCode, RecordStatus, RejectCode
from app.scenes import service as scenes_service
from app.users import service as users_service

MAX_RECORDS = 1000
MAX_DURATION = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)
QUANTUM = Decimal("0.0001")
MAX_QUANTITY = 1e9


@dataclass(slots=True)
class Candidate:
    index: int
    record_id: str
    external_user_id: str
    type: str
    started_at: datetime
    ended_at: datetime
    quantity: Decimal
    unit: str
    scene_id: uuid.UUID | None
    evidence_source: str
    evidence_ref: str
    user_id: uuid.UUID | None = None
    methodology: MethodologyTerms | None = None
    rule: RuleTerms | None = None
    day: date | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one record (``RecordOutcome`` in the API)."""

    record_id: str | None
    status: RecordStatus
    code: RejectCode | CapCode | None = None
    reduction_g: int = 0
    points: int = 0
    methodology_version: str | None = None
    rule_version: int | None = None


@dataclass(frozen=True, slots=True)
class Explained(Outcome):
    """A rejection found before the database is asked, with what to fix in words."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class Summary:
    accepted: int
    duplicate: int
    rejected: int


@dataclass(frozen=True)
class BatchResult:
    """The answer to a batch (``BatchOut`` in the API): one outcome per record, in request order."""

    batch_id: uuid.UUID
    results: list[Outcome]
    summary: Summary


@dataclass(frozen=True, slots=True)
class Credit:
    """An accepted record as it is written: what it earned, the quantity counted, why it was capped."""

    candidate: Candidate
    points: int
    reduction_g: int
    counted: Decimal
    code: CapCode | None


def _rejected(record_id: str | None, code: RejectCode, message: str) -> Explained:
    return Explained(record_id, RecordStatus.rejected, code, message=message)


def _text(raw: dict, name: str, max_length: int) -> str | None:
    """The field as ``Text`` of 1 to ``max_length`` characters (no NUL), or None."""
    value = raw.get(name)
    if isinstance(value, str) and 0 < len(value) <= max_length and "\x00" not in value:
        return value
    return None


def _time(value) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_record(index: int, raw, latest: datetime, oldest: datetime) -> Candidate | Explained:
    """Checks that need no database: shape, times, quantity. An :class:`Explained` is a rejection. A behaviour
    must end by ``latest`` (now and the clock skew allowed) and start at ``oldest`` or later."""
    if not isinstance(raw, dict):
        return _rejected(None, RejectCode.invalid_record, "a record is a JSON object")
    record_id = _text(raw, "record_id", 100)
    if record_id is None:
        return _rejected(
            raw.get("record_id") if isinstance(raw.get("record_id"), str) else None,
            RejectCode.invalid_record,
            "record_id: 1–100 characters",
        )
    external_user_id = _text(raw, "external_user_id", 100)
    btype = _text(raw, "type", 50)
    unit = _text(raw, "unit", 20)
    if external_user_id is None or btype is None or unit is None:
        return _rejected(
            record_id, RejectCode.invalid_record, "external_user_id, type and unit are required strings"
        )
    evidence = raw.get("evidence")
    if not isinstance(evidence, dict):
        return _rejected(record_id, RejectCode.invalid_record, "evidence {source, ref} is required")
    source, ref = _text(evidence, "source", 100), _text(evidence, "ref", 200)
    if source is None or ref is None:
        return _rejected(
            record_id,
            RejectCode.invalid_record,
            "evidence.source (≤ 100) and evidence.ref (≤ 200) are required",
        )
    scene_id = None
    if raw.get("scene_id") is not None:
        try:
            scene_id = uuid.UUID(str(raw["scene_id"]))
        except ValueError:
            return _rejected(record_id, RejectCode.invalid_record, "scene_id must be a UUID or null")
    started_at, ended_at = _time(raw.get("started_at")), _time(raw.get("ended_at"))
    if started_at is None or ended_at is None:
        return _rejected(
            record_id, RejectCode.invalid_time, "started_at and ended_at are RFC 3339 times with an offset"
        )
    if ended_at < started_at or ended_at - started_at > MAX_DURATION:
        return _rejected(
            record_id, RejectCode.invalid_time, "ended_at must follow started_at within 24 hours"
        )
    if ended_at > latest:
        return _rejected(record_id, RejectCode.future_time, "the behaviour ends in the future")
    if started_at < oldest:
        return _rejected(record_id, RejectCode.too_old, "the behaviour is older than the submission window")
    quantity = raw.get("quantity")
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int | float)
        or not math.isfinite(quantity)
        or quantity <= 0
        or quantity > MAX_QUANTITY
    ):
        return _rejected(
            record_id, RejectCode.implausible_quantity, "quantity must be a positive finite number"
        )
    q = Decimal(repr(quantity) if isinstance(quantity, float) else quantity).quantize(QUANTUM, ROUND_DOWN)
    if q <= 0:
        return _rejected(record_id, RejectCode.implausible_quantity, "quantity rounds down to zero")
    return Candidate(
        index, record_id, external_user_id, btype, started_at, ended_at, q, unit, scene_id, source, ref
    )


V = TypeVar("V", MethodologyTerms, RuleTerms)


class Timeline(Generic[V]):
    """Versions sorted by ``effective_from``: which one is in force at a moment."""

    __slots__ = ("starts", "versions")
    versions: list[V]
    starts: list[datetime]

    def __init__(self, versions: list[V]):
        self.versions = versions
        self.starts = [v.effective_from for v in versions]

    def at(self, moment: datetime) -> V | None:
        i = bisect_right(self.starts, moment) - 1
        if i < 0:
            return None
        v = self.versions[i]
        return v if v.effective_to is None or moment < v.effective_to else None


async def verify_signature(session: AsyncSession, operator_id: uuid.UUID, body: bytes, signature: str | None):
    if not signature:
        raise SignatureRequired("sign the exact body with your registered key (detached JWS)")
    try:
        header = security.detached_header(signature)
    except security.JoseError as exc:
        raise InvalidSignature(exc.detail, code=exc.code) from exc
    key = await org_service.public_key(session, operator_id, str(header.get("kid")))
    if key is None:
        raise InvalidSignature(
            "no live key with this kid is registered for your organisation", code="unknown_kid"
        )
    try:
        security.verify_detached(signature, body, key.jwk, key.algorithm)
    except security.JoseError as exc:
        raise InvalidSignature(exc.detail) from exc
    await org_service.touch_key(session, operator_id, key.kid)
    return key.kid


def parse_body(body: bytes) -> list:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBatch("the body is not valid JSON", code="malformed_json") from exc
    records = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        raise InvalidBatch('the body must be {"records": [...]}')
    if not records:
        raise InvalidBatch("the batch holds no records", code="empty_batch")
    if len(records) > MAX_RECORDS:
        raise BatchTooLarge(f"{len(records)} records; split them into batches of at most {MAX_RECORDS}")
    return records


async def ingest(
    session: AsyncSession, operator: Principal, body: bytes, signature: str | None
) -> BatchResult:
    operator_id = operator.org_id
    assert operator_id is not None  # an operator's client token names its organisation
    kid = await verify_signature(session, operator_id, body, signature)
    assert signature is not None  # verified
    raw_records = parse_body(body)
    settings = get_settings()
    now = clock.now()
    latest, oldest = now + CLOCK_SKEW, now - timedelta(days=settings.record_max_age_days)
    results: list[Outcome | None] = [None] * len(raw_records)
    candidates: list[Candidate] = []
    first_index: dict[str, int] = {}
    in_batch_duplicates: list[tuple[int, int]] = []
    for i, raw in enumerate(raw_records):
        parsed = parse_record(i, raw, latest, oldest)
        if isinstance(parsed, Explained):
            results[i] = parsed
            continue
        if parsed.record_id in first_index:
            in_batch_duplicates.append((i, first_index[parsed.record_id]))
            continue
        first_index[parsed.record_id] = i
        candidates.append(parsed)

    conn = await db.raw_connection(session)
    batch_id = ids.uuid7()
    balances: dict[uuid.UUID, int] = {}
    if candidates:
        candidates, labels = await _resolve(session, operator_id, candidates, results)
        if candidates:
            candidates, balances = await _check_against_history(
                session, conn, operator_id, candidates, results, labels
            )
    credited = _compute(candidates, results, await _daily_totals(conn, candidates)) if candidates else []
    for i, first in in_batch_duplicates:  # the same record twice in one batch: the first one's outcome
        repeat = results[first]
        assert repeat is not None
        results[i] = (
            replace(repeat, status=RecordStatus.duplicate)
            if repeat.status == RecordStatus.accepted
            else repeat
        )
    outcomes = [r for r in results if r is not None]
    counts = Counter(r.status for r in outcomes)
    summary = Summary(
        counts[RecordStatus.accepted], counts[RecordStatus.duplicate], counts[RecordStatus.rejected]
    )
    body_sha256 = hashlib.sha256(body).hexdigest()
    kept, encoding = bodies.stored(body)
    try:
        await repo.insert_batch(
            conn,
            batch_id,
            operator_id,
            kid,
            signature,
            kept,
            encoding,
            body_sha256,
            now,
            len(raw_records),
            summary.accepted,
            summary.duplicate,
            summary.rejected,
            rejections(outcomes) if summary.rejected else "[]",
        )
        if credited:
            await _write(conn, operator_id, batch_id, credited, balances, now)
    except asyncpg.UniqueViolationError as exc:
        raise ConcurrentConflict(
            "another batch claimed one of these records or evidence at the same time"
        ) from exc
    if summary.accepted:
        audit.record(
            session,
            actor=operator.actor,
            action="points.batch_credited",
            subject_type="batch",
            subject_id=batch_id,
            data={
                "records": len(raw_records),
                "accepted": summary.accepted,
                "duplicate": summary.duplicate,
                "rejected": summary.rejected,
                "points": sum(c.points for c in credited),
                "body_sha256": body_sha256,
            },
        )
    return BatchResult(batch_id, outcomes, summary)


def rejections(outcomes: list[Outcome]) -> str:
    """The rejected records' outcomes exactly as answered, kept with the batch (``behaviour_batches.rejections``):
    ``[{"index", "record_id", "code", "message"}]`` in request order, ``message`` null where none was given.
    A NUL in a refused record_id (which PostgreSQL's jsonb cannot hold) is kept as U+FFFD."""
    return orjson.dumps(
        [
            {
                "index": i,
                "record_id": o.record_id.replace("\x00", "\ufffd") if o.record_id else o.record_id,
                "code": o.code,
                "message": o.message if isinstance(o, Explained) else None,
            }
            for i, o in enumerate(outcomes)
            if o.status == RecordStatus.rejected
        ]
    ).decode()


async def _resolve(
    session: AsyncSession, operator_id: uuid.UUID, candidates: list[Candidate], results: list[Outcome | None]
) -> tuple[list[Candidate], VersionLabels]:
    """Entrustment, methodology and rule in force, unit, bounds, scene; the labels of the versions read.

    Only a live entrustment counts, from its consent on: once withdrawn, no record of that person
    from this operator is credited, whenever the behaviour happened (a re-enrolment is a new
    entrustment, with a consent given after the withdrawal).
    """
    entrusted = {
        e.external_user_id: e
        for e in await users_service.live_entrustments(
            session, operator_id, {c.external_user_id for c in candidates}
        )
    }
    by_type: defaultdict[str, list[MethodologyTerms]] = defaultdict(list)
    for version in await methodologies_service.counted_methodologies(session, {c.type for c in candidates}):
        by_type[version.behaviour_type].append(version)
    methodologies = {t: Timeline(v) for t, v in by_type.items()}
    rule_versions = await methodologies_service.counted_exchange_rules(session)
    rules: Timeline[RuleTerms] = Timeline(rule_versions)
    zone = clock.zone()
    scene_ids = {c.scene_id for c in candidates if c.scene_id}
    scenes = {s.id: s for s in await scenes_service.scene_states(session, scene_ids)} if scene_ids else {}
    kept = []
    for c in candidates:
        code = None
        versions = methodologies.get(c.type)
        e = entrusted.get(c.external_user_id)
        if e is not None and e.accepted_at <= c.started_at:
            c.user_id = e.user_id
        if not versions:
            code = RejectCode.unknown_type
        elif c.user_id is None:
            code = RejectCode.not_entrusted
        else:
            c.methodology = versions.at(c.started_at)
            c.rule = rules.at(c.started_at)
            m = c.methodology
            if m is None or c.rule is None:
                code = RejectCode.out_of_effective_period
            elif c.unit != m.unit:
                code = RejectCode.unit_mismatch
            elif c.quantity > m.max_quantity_per_record:
                code = RejectCode.implausible_quantity
            elif c.scene_id is not None:
                scene = scenes.get(c.scene_id)
                if scene is None or not scene.accepts(c.type):
                    code = RejectCode.scene_not_approved
            elif m.category == "scene":
                code = RejectCode.scene_required
        if code:
            results[c.index] = Outcome(c.record_id, RecordStatus.rejected, code)
        else:
            c.day = c.started_at.astimezone(zone).date()
            kept.append(c)
    labels = VersionLabels(
        {m.id: m.label for versions in by_type.values() for m in versions},
        {r.id: r.version for r in rule_versions},
    )
    return kept, labels


async def _check_against_history(
    session: AsyncSession,
    conn: repo.Conn,
    operator_id: uuid.UUID,
    candidates: list[Candidate],
    results: list[Outcome | None],
    labels: VersionLabels,
) -> tuple[list[Candidate], dict[uuid.UUID, int]]:
    """After locking the accounts: duplicates, claimed evidence, overlapping behaviours."""
    balances = await repo.lock_accounts(conn, sorted({c.user_id for c in candidates if c.user_id}))
    previous = {
        r["record_id"]: r
        for r in await repo.existing_records(conn, operator_id, [c.record_id for c in candidates])
    }
    unknown = (
        {r["methodology_version_id"] for r in previous.values()} - labels.methodologies.keys(),
        {r["rule_version_id"] for r in previous.values()} - labels.rules.keys(),
    )
    if unknown[0] or unknown[1]:  # a record sent again with another type: the first one's versions
        more = await methodologies_service.version_labels(session, *unknown)
        labels = VersionLabels(labels.methodologies | more.methodologies, labels.rules | more.rules)
    claimed = {
        (r["evidence_source"], r["evidence_ref"])
        for r in await repo.claimed_evidence(conn, [(c.evidence_source, c.evidence_ref) for c in candidates])
    }
    history = defaultdict(list)
    for r in await repo.overlapping(conn, candidates):
        history[(r["user_id"], r["behaviour_type"])].append((r["started_at"], r["ended_at"]))
    kept = []
    for c in candidates:
        first = previous.get(c.record_id)
        if first is not None:
            results[c.index] = Outcome(
                c.record_id,
                RecordStatus.duplicate,
                CapCode(first["code"]) if first["code"] else None,
                first["reduction_g"],
                first["points"],
                labels.methodologies[first["methodology_version_id"]],
                labels.rules[first["rule_version_id"]],
            )
            continue
        if (c.evidence_source, c.evidence_ref) in claimed:
            results[c.index] = Outcome(
                c.record_id, RecordStatus.rejected, RejectCode.evidence_already_claimed
            )
            continue
        spans = history[(c.user_id, c.type)]
        if any(s < c.ended_at and c.started_at < e for s, e in spans):
            results[c.index] = Outcome(c.record_id, RecordStatus.rejected, RejectCode.overlapping_behaviour)
            continue
        claimed.add((c.evidence_source, c.evidence_ref))
        spans.append((c.started_at, c.ended_at))
        kept.append(c)
    return kept, balances


async def _daily_totals(conn: repo.Conn, candidates: list[Candidate]) -> dict:
    """Points and quantity per person, local day and type so far (``'*'``: all types)."""
    zone = clock.zone()
    places: dict[date, int] = {}
    days: list[tuple[date, datetime, datetime]] = []
    people_days: set[tuple[uuid.UUID, int]] = set()
    for c in candidates:
        if c.user_id is None or c.day is None:
            continue
        place = places.get(c.day)
        if place is None:  # each day's bounds made once: a batch's records fall on one or two
            start = datetime(c.day.year, c.day.month, c.day.day, tzinfo=zone)
            days.append((c.day, start, start + timedelta(days=1)))
            place = places[c.day] = len(days)
        people_days.add((c.user_id, place))
    totals: dict = {}
    for r in await repo.daily_totals(conn, list(people_days), days):
        totals[(r["user_id"], r["day"], r["behaviour_type"])] = [r["points"], r["quantity"]]
        overall = totals.setdefault((r["user_id"], r["day"], "*"), [0, Decimal(0)])
        overall[0] += r["points"]
    return totals


def _compute(candidates: list[Candidate], results: list[Outcome | None], totals: dict) -> list[Credit]:
    """Quantity and points in request order, with the daily limits; rounding always down."""
    credited = []
    for c in candidates:
        m, rule = c.methodology, c.rule
        assert m is not None and rule is not None
        by_type = totals.setdefault((c.user_id, c.day, c.type), [0, Decimal(0)])
        overall = totals.setdefault((c.user_id, c.day, "*"), [0, Decimal(0)])
        counted = c.quantity
        code = None
        if m.max_quantity_per_day is not None:
            allowance = m.max_quantity_per_day - by_type[1]
            if allowance <= 0:
                results[c.index] = Outcome(c.record_id, RecordStatus.rejected, RejectCode.daily_limit_reached)
                continue
            if counted > allowance:
                counted, code = allowance, CapCode.quantity_capped
        reduction_g = int((counted * m.net_factor_g).to_integral_value(ROUND_FLOOR))
        points = int((reduction_g * rule.points_per_gram).to_integral_value(ROUND_FLOOR))
        earned = points
        type_cap = (rule.type_daily_caps or {}).get(c.type)
        if type_cap is not None:
            points = min(points, max(0, int(type_cap) - by_type[0]))
        if rule.daily_cap_points is not None:
            points = min(points, max(0, rule.daily_cap_points - overall[0]))
        if points < earned:
            code = CapCode.capped
        by_type[0] += points
        by_type[1] += counted
        overall[0] += points
        overall[1] += counted
        results[c.index] = Outcome(
            c.record_id, RecordStatus.accepted, code, reduction_g, points, m.label, rule.version
        )
        credited.append(Credit(c, points, reduction_g, counted, code))
    return credited


def lot_expiry(credited_at: datetime, lifetime_days: int) -> datetime:
    """Midnight (platform time) ``lifetime_days`` after the day of crediting: never later than that."""
    day = clock.local_day(credited_at) + timedelta(days=lifetime_days)
    return datetime(day.year, day.month, day.day, tzinfo=clock.zone())


async def _write(
    conn: repo.Conn,
    operator_id: uuid.UUID,
    batch_id: uuid.UUID,
    credited: list[Credit],
    balances: dict[uuid.UUID, int],
    now: datetime,
) -> None:
    records = []
    per_lot: defaultdict[tuple[uuid.UUID, datetime], int] = defaultdict(int)
    per_user: dict[uuid.UUID, list[int]] = {}
    expiries: dict[int, datetime] = {}
    methodologies: dict[uuid.UUID, int] = {}  # each version's place in the statement's array, from 1
    rules: dict[uuid.UUID, int] = {}
    for credit in credited:
        c, points, reduction_g = credit.candidate, credit.points, credit.reduction_g
        assert c.user_id is not None and c.methodology is not None and c.rule is not None
        row = {  # repo.CREDIT_KEYS
            "i": c.record_id,
            "u": c.user_id,
            "t": c.type,
            "s": c.started_at,
            "e": c.ended_at,
            "q": c.quantity,
            "c": credit.counted,
            "n": c.unit,
            "es": c.evidence_source,
            "er": c.evidence_ref,
            "m": methodologies.setdefault(c.methodology.id, len(methodologies) + 1),
            "x": rules.setdefault(c.rule.id, len(rules) + 1),
            "g": reduction_g,
            "p": points,
        }
        if c.scene_id is not None:
            row["sc"] = c.scene_id
        if credit.code is not None:
            row["k"] = credit.code
        records.append(row)
        if points:
            lifetime = c.rule.lot_lifetime_days
            if lifetime not in expiries:
                expiries[lifetime] = lot_expiry(now, lifetime)
            per_lot[(c.user_id, expiries[lifetime])] += points
        totals = per_user.setdefault(c.user_id, [0, 0])
        totals[0] += points
        totals[1] += reduction_g
    await repo.credit(
        conn,
        operator_id,
        batch_id,
        now,
        records,
        [{"u": u, "x": x, "p": p} for (u, x), p in per_lot.items()],
        [{"u": u, "p": p, "g": g, "b": balances[u] + p} for u, (p, g) in per_user.items()],
        list(methodologies),
        list(rules),
    )
