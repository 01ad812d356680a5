"""Methodology and exchange-rule versions: their rules and their lifecycle.

Lifecycle (both kinds): ``draft`` → ``under_review`` (submit) → ``published`` (publish) →
``retired`` (retire). Only a draft can be edited; a change to a published version is a new
version with new effective dates (same ``code``, next ``version``).

Periods are half-open, [effective_from, effective_to). The periods of the published and retired
versions of one behaviour type (of the exchange rule: of all versions) never overlap, so at most one
version is in force at any moment. Publishing checks this under a transaction-scoped advisory lock
per behaviour type (one lock for the exchange rule): two concurrent publishes of overlapping
versions queue on the lock, and the second sees the first's commit. Publishing a version whose
``effective_from`` falls inside the open-ended period of the version in force closes that one's
period at the new ``effective_from``; it stays published for the records of its period.

Rounding is always down: ``reduction_g = floor(quantity × net_factor_g)`` and
``points = floor(reduction_g × points_per_gram)``; a daily cap cuts points, never the recorded
reduction. (The conversion itself is done by the ingestion code, which joins these tables.)

Services flush, never commit; every authority decision is audited.
"""

import hashlib
import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import audit, clock, db
from app.core.db import advisory_xact_lock
from app.core.errors import NotFound
from app.core.pagination import Page, page
from app.methodologies import repository as repo
from app.methodologies.exceptions import (
    BaselineBelowProject,
    CodeTypeMismatch,
    DraftsHidden,
    ExchangeRuleNotFound,
    IncompleteFactors,
    InconsistentNetFactor,
    InvalidBehaviourType,
    InvalidBounds,
    InvalidCap,
    InvalidCode,
    InvalidFactor,
    InvalidLifetime,
    InvalidPeriod,
    InvalidTransition,
    LifetimeTooLong,
    MethodologyNotFound,
    NaiveDatetime,
    NonPositiveNetFactor,
    NonPositiveRate,
    NoRuleInForce,
    OverlappingPeriod,
    VersionExists,
    VersionImmutable,
)
from app.methodologies.models import ExchangeRuleVersion, MethodologyVersion, VersionStatus
from app.methodologies.schemas import (
    ExchangeRuleCreate,
    ExchangeRuleUpdate,
    MethodologyCreate,
    MethodologyUpdate,
)
from app.reviews import service as reviews_service

MAX_LIFETIME_DAYS = 3650  # SZ 22: points expire at most 10 years after crediting
MAX_CAP = 2**31 - 1
BEHAVIOUR_TYPE = re.compile(r"[a-z][a-z0-9_]{1,49}")
CODE = re.compile(r"[a-z0-9][a-z0-9._-]{1,49}")
PUBLIC_STATUSES = (VersionStatus.published, VersionStatus.retired)


# ---------------------------------------------------------------- the rules of one version


def check_behaviour_type(value: str) -> str:
    if not BEHAVIOUR_TYPE.fullmatch(value):
        raise InvalidBehaviourType(
            f"{value[:60]!r} is not a behaviour type: lower-case snake_case, 2–50 characters (e.g. 'own_cup')"
        )
    return value


def check_period(start: datetime, end: datetime | None) -> tuple[datetime, datetime | None]:
    """The period checked, both ends in UTC: as they are stored and read back, so a version's answer spells its
    times the same whether it was just written or read later."""
    for name, moment in (("effective_from", start), ("effective_to", end)):
        if moment is not None and moment.utcoffset() is None:
            raise NaiveDatetime(
                f"{name} has no UTC offset; send RFC 3339 times like 2026-01-01T00:00:00+08:00"
            )
    if end is not None and end <= start:
        raise InvalidPeriod(
            f"effective_to ({end.isoformat()}) is not after effective_from ({start.isoformat()})"
        )
    return start.astimezone(UTC), None if end is None else end.astimezone(UTC)


def _check_moment(at: datetime) -> None:
    if at.utcoffset() is None:
        raise NaiveDatetime("the moment has no UTC offset")


def net_factor(baseline: Decimal | None, project: Decimal | None, net: Decimal | None) -> Decimal:
    """The reduction per unit: baseline − project when both are known, else the net given directly."""
    if baseline is not None and baseline <= 0:
        raise InvalidFactor(f"baseline_factor_g must be greater than 0 (got {baseline})")
    if project is not None and project < 0:
        raise InvalidFactor(f"project_factor_g cannot be negative (got {project})")
    if baseline is not None and project is not None:
        if baseline < project:
            raise BaselineBelowProject(f"baseline {baseline} g < project {project} g per unit")
        computed = baseline - project
        if computed <= 0:
            raise NonPositiveNetFactor("baseline − project is 0: nothing is reduced")
        if net is not None and net != computed:
            raise InconsistentNetFactor(f"net_factor_g {net} ≠ baseline − project = {computed}")
        return computed
    if net is None:
        raise IncompleteFactors("give baseline_factor_g and project_factor_g, or net_factor_g")
    if net <= 0:
        raise NonPositiveNetFactor(f"net_factor_g must be greater than 0 (got {net})")
    return net


def check_bounds(per_record: Decimal, per_day: Decimal | None) -> None:
    if per_record <= 0:
        raise InvalidBounds("max_quantity_per_record must be greater than 0")
    if per_day is not None and per_day < per_record:
        raise InvalidBounds("max_quantity_per_day must be at least max_quantity_per_record")


def check_methodology(values: dict[str, Any]) -> dict[str, Any]:
    """Validate a whole methodology version; returns the values with ``net_factor_g`` settled."""
    check_behaviour_type(values["behaviour_type"])
    values["effective_from"], values["effective_to"] = check_period(
        values["effective_from"], values.get("effective_to")
    )
    values["net_factor_g"] = net_factor(
        values.get("baseline_factor_g"), values.get("project_factor_g"), values.get("net_factor_g")
    )
    check_bounds(values["max_quantity_per_record"], values.get("max_quantity_per_day"))
    return values


def _check_cap(name: str, cap: int | None) -> None:
    if cap is not None and not 1 <= cap <= MAX_CAP:
        raise InvalidCap(f"{name} must be a whole number of points from 1 to {MAX_CAP} (got {cap})")


def check_rule(values: dict[str, Any]) -> dict[str, Any]:
    if values["points_per_gram"] <= 0:
        raise NonPositiveRate(f"points_per_gram must be greater than 0 (got {values['points_per_gram']})")
    _check_cap("daily_cap_points", values.get("daily_cap_points"))
    for behaviour_type, cap in (values.get("type_daily_caps") or {}).items():
        check_behaviour_type(behaviour_type)
        _check_cap(f"type_daily_caps.{behaviour_type}", cap)
    days = values["lot_lifetime_days"]
    if days < 1:
        raise InvalidLifetime(f"lot_lifetime_days must be at least 1 (got {days})")
    if days > MAX_LIFETIME_DAYS:
        raise LifetimeTooLong(
            f"lot_lifetime_days {days} > {MAX_LIFETIME_DAYS}: points expire at most 10 years after crediting"
        )
    values["effective_from"], values["effective_to"] = check_period(
        values["effective_from"], values.get("effective_to")
    )
    return values


# ---------------------------------------------------------------- the lifecycle, shared by both kinds


@dataclass(frozen=True)
class _Kind:
    model: repo.VersionModel
    subject: str  # audit subject type and action prefix
    not_found: type[NotFound]
    period_lock: Callable[[Any], str]  # serialises publishes whose periods may collide
    siblings: Callable[[Any], list[Any]]  # the versions whose periods may not overlap this one's


METHODOLOGY = _Kind(
    MethodologyVersion,
    "methodology",
    MethodologyNotFound,
    lambda row: f"methodology-period:{row.behaviour_type}",
    lambda row: [MethodologyVersion.behaviour_type == row.behaviour_type],
)
EXCHANGE_RULE = _Kind(
    ExchangeRuleVersion,
    "exchange_rule",
    ExchangeRuleNotFound,
    lambda row: "exchange-rule-period",
    lambda row: [],
)


def _audit(session: AsyncSession, actor: str, kind: _Kind, verb: str, subject_id: Any, **data: Any) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"{kind.subject}.{verb}",
        subject_type=kind.subject,
        subject_id=subject_id,
        data=data,
    )


def lock_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


async def lock(session: AsyncSession, name: str) -> None:
    await advisory_xact_lock(session, lock_key(name))


def _describe(row: Any) -> str:
    label = f"{row.code} v{row.version}" if isinstance(row, MethodologyVersion) else f"v{row.version}"
    end = row.effective_to.isoformat() if row.effective_to else "open-ended"
    return f"{label} [{row.effective_from.isoformat()}, {end})"


async def _load(session: AsyncSession, kind: _Kind, version_id: uuid.UUID, *, for_update: bool = False):
    row = await repo.get(session, kind.model, version_id, for_update=for_update)
    if row is None:
        raise kind.not_found(f"no {kind.subject.replace('_', ' ')} version {version_id}")
    return row


def _require_status(kind: _Kind, row: Any, expected: str, action: str) -> None:
    if row.status != expected:
        raise InvalidTransition(
            f"cannot {action} a {row.status} {kind.subject.replace('_', ' ')} version; it must be {expected}"
        )


async def _submit(session: AsyncSession, actor: str, kind: _Kind, version_id: uuid.UUID):
    row = await _load(session, kind, version_id, for_update=True)
    _require_status(kind, row, VersionStatus.draft, "submit")
    row.status = VersionStatus.under_review
    await session.flush()
    _audit(session, actor, kind, "submit", row.id, version=row.version)
    return row


async def _publish(session: AsyncSession, actor: str, kind: _Kind, version_id: uuid.UUID):
    """Lock the period of ``version_id``'s siblings, check the state again, publish."""
    row = await _load(session, kind, version_id)
    _require_status(kind, row, VersionStatus.under_review, "publish")
    await lock(session, kind.period_lock(row))
    row = await _load(session, kind, version_id, for_update=True)
    _require_status(kind, row, VersionStatus.under_review, "publish")  # another request may have won
    return await publish_locked(session, actor, kind, row)


async def publish_locked(session: AsyncSession, actor: str, kind: _Kind, row: Any):
    """Publish ``row``; the caller holds the period lock."""
    others = await repo.overlapping(
        session, kind.model, kind.siblings(row), row.effective_from, row.effective_to, row.id
    )

    # An open-ended version that started earlier is closed where this one starts; anything else clashes.
    def closable(o: Any) -> bool:
        return o.effective_to is None and o.effective_from < row.effective_from

    clashes = [o for o in others if not closable(o)]
    if clashes:
        raise OverlappingPeriod(
            f"{_describe(row)} overlaps the published {', '.join(_describe(o) for o in clashes)}",
            conflicts=[
                {
                    "id": str(o.id),
                    "version": o.version,
                    "status": o.status,
                    "effective_from": o.effective_from.isoformat(),
                    "effective_to": o.effective_to.isoformat() if o.effective_to else None,
                }
                for o in clashes
            ],
        )
    now = clock.now()
    for old in filter(closable, others):
        old.effective_to = row.effective_from
        _audit(
            session,
            actor,
            kind,
            "period_closed",
            old.id,
            version=old.version,
            effective_to=old.effective_to,
            superseded_by=str(row.id),
        )
    await session.flush()  # close the old period before the new one starts
    row.status = VersionStatus.published
    row.published_at = now
    await session.flush()
    _audit(
        session,
        actor,
        kind,
        "publish",
        row.id,
        version=row.version,
        effective_from=row.effective_from,
        effective_to=row.effective_to,
    )
    return row


async def _retire(session: AsyncSession, actor: str, kind: _Kind, version_id: uuid.UUID):
    """Published → retired; the period ends now (or stays shorter; empty if it never began)."""
    row = await _load(session, kind, version_id)
    _require_status(kind, row, VersionStatus.published, "retire")
    await lock(session, kind.period_lock(row))
    row = await _load(session, kind, version_id, for_update=True)
    _require_status(kind, row, VersionStatus.published, "retire")
    now = clock.now()
    end = row.effective_to if row.effective_to is not None and row.effective_to <= now else now
    row.effective_to = max(end, row.effective_from)
    row.status = VersionStatus.retired
    row.retired_at = now
    await session.flush()
    _audit(session, actor, kind, "retire", row.id, version=row.version, effective_to=row.effective_to)
    return row


async def _draft_for_update(session: AsyncSession, kind: _Kind, version_id: uuid.UUID):
    row = await _load(session, kind, version_id, for_update=True)
    if row.status != VersionStatus.draft:
        raise VersionImmutable(
            f"version {row.version} is {row.status}: only drafts can be edited; create a new version instead"
        )
    return row


def _visible(principal: Principal | None) -> bool:
    """Whether the caller may see drafts and versions under review (the authority)."""
    return principal is not None and principal.role == "authority"


async def _get_for(session: AsyncSession, principal: Principal | None, kind: _Kind, version_id: uuid.UUID):
    row = await repo.get(session, kind.model, version_id)
    if row is None or (row.status not in PUBLIC_STATUSES and not _visible(principal)):
        raise kind.not_found(f"no {kind.subject.replace('_', ' ')} version {version_id}")
    return row


def _status_filter(principal: Principal | None, status: str) -> None:
    if status not in PUBLIC_STATUSES and not _visible(principal):
        raise DraftsHidden(f"{status} versions are visible to the authority only")


# ---------------------------------------------------------------- methodologies


async def create_methodology(
    session: AsyncSession, principal: Principal, data: MethodologyCreate
) -> MethodologyVersion:
    """A new draft: version 1 of a new ``code``, or the next version of an existing one."""
    return await draft_methodology(session, principal.actor, data)


async def draft_methodology(
    session: AsyncSession, actor: str, data: MethodologyCreate, version: int | None = None
) -> MethodologyVersion:
    if not CODE.fullmatch(data.code):
        raise InvalidCode(f"{data.code[:60]!r} is not a methodology code")
    values = check_methodology(data.model_dump())
    await lock(session, f"methodology-code:{data.code}")  # version numbers are handed out one at a time
    latest, types = await repo.code_state(session, data.code)
    if types and types != {values["behaviour_type"]}:
        raise CodeTypeMismatch(f"{data.code} is the methodology of {', '.join(sorted(types))}")
    row = MethodologyVersion(
        **values, version=version or latest + 1, status=VersionStatus.draft, created_at=clock.now()
    )
    try:
        await repo.insert(session, row)
    except IntegrityError as exc:
        raise VersionExists(f"{data.code} v{row.version} exists") from exc
    _audit(
        session,
        actor,
        METHODOLOGY,
        "create",
        row.id,
        code=row.code,
        version=row.version,
        behaviour_type=row.behaviour_type,
    )
    return row


async def update_methodology(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID, data: MethodologyUpdate
) -> MethodologyVersion:
    """Change a draft. Absent fields stay; the factors are checked again as a whole."""
    row = await _draft_for_update(session, METHODOLOGY, version_id)
    patch = data.model_dump(exclude_unset=True)
    values = {name: getattr(row, name) for name in MethodologyUpdate.model_fields}
    values.update(patch)
    # The stored net factor was derived when baseline and project were both known; it is given
    # (and kept) only if the patch says so or the version has no baseline/project pair.
    if (
        "net_factor_g" not in patch
        and values["baseline_factor_g"] is not None
        and values["project_factor_g"] is not None
    ):
        values["net_factor_g"] = None
    check_methodology(values)
    if "behaviour_type" in patch and patch["behaviour_type"] != row.behaviour_type:
        _, types = await repo.code_state(session, row.code, exclude_id=row.id)
        if types and types != {patch["behaviour_type"]}:
            raise CodeTypeMismatch(f"{row.code} is the methodology of {', '.join(sorted(types))}")
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()
    _audit(session, principal.actor, METHODOLOGY, "update", row.id, fields=sorted(patch))
    return row


async def submit_methodology(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID
) -> MethodologyVersion:
    """draft → under_review: the version is frozen for the reviewers."""
    return await _submit(session, principal.actor, METHODOLOGY, version_id)


async def publish_methodology(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID
) -> MethodologyVersion:
    """under_review → published, if its period overlaps no other published version of its type."""
    # review gate: the version's latest expert panel (app/reviews) must have passed (SZ 12–13),
    # checked before anything is locked or written; otherwise 409 `review_not_passed`. An unknown
    # version or one not under review answers as before (404 / `invalid_transition`).
    row = await _load(session, METHODOLOGY, version_id)
    _require_status(METHODOLOGY, row, VersionStatus.under_review, "publish")
    await reviews_service.require_passed(session, "methodology_version", str(version_id))
    return await _publish(session, principal.actor, METHODOLOGY, version_id)


async def retire_methodology(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID
) -> MethodologyVersion:
    return await _retire(session, principal.actor, METHODOLOGY, version_id)


async def get_methodology(
    session: AsyncSession, principal: Principal | None, version_id: uuid.UUID
) -> MethodologyVersion:
    return await _get_for(session, principal, METHODOLOGY, version_id)


async def list_methodologies(
    session: AsyncSession,
    principal: Principal | None,
    *,
    status: str = VersionStatus.published,
    behaviour_type: str | None = None,
    code: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[MethodologyVersion]:
    """By code, then version."""
    _status_filter(principal, status)
    rows = await repo.methodology_page(
        session, status=status, behaviour_type=behaviour_type, code=code, cursor=cursor, limit=limit
    )
    return Page[MethodologyVersion](**page(rows, limit, lambda r: [r.code, r.version]))


async def methodology_for(
    session: AsyncSession, behaviour_type: str, at: datetime
) -> MethodologyVersion | None:
    """The version of ``behaviour_type`` in force at ``at`` (published or retired, period containing it)."""
    _check_moment(at)
    return await repo.methodology_in_force(session, behaviour_type, at)


async def published_behaviour_types(session: AsyncSession, category: str) -> list[str]:
    """The behaviour types of ``category`` (``travel`` | ``scene``) with a published version, sorted."""
    return await repo.published_behaviour_types(session, category)


# ---------------------------------------------------------------- exchange rules


async def create_exchange_rule(
    session: AsyncSession, principal: Principal, data: ExchangeRuleCreate
) -> ExchangeRuleVersion:
    """A new draft with the next version number of the platform's exchange rule."""
    return await draft_exchange_rule(session, principal.actor, data)


async def draft_exchange_rule(
    session: AsyncSession, actor: str, data: ExchangeRuleCreate, version: int | None = None
) -> ExchangeRuleVersion:
    values = check_rule(data.model_dump())
    await lock(session, "exchange-rule-versions")
    row = ExchangeRuleVersion(
        **values,
        version=version or await repo.max_rule_version(session) + 1,
        status=VersionStatus.draft,
        created_at=clock.now(),
    )
    try:
        await repo.insert(session, row)
    except IntegrityError as exc:
        raise VersionExists(f"exchange rule v{row.version} exists") from exc
    _audit(session, actor, EXCHANGE_RULE, "create", row.id, version=row.version)
    return row


async def update_exchange_rule(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID, data: ExchangeRuleUpdate
) -> ExchangeRuleVersion:
    row = await _draft_for_update(session, EXCHANGE_RULE, version_id)
    patch = data.model_dump(exclude_unset=True)
    values = {name: getattr(row, name) for name in ExchangeRuleUpdate.model_fields}
    values.update(patch)
    check_rule(values)
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()
    _audit(session, principal.actor, EXCHANGE_RULE, "update", row.id, fields=sorted(patch))
    return row


async def submit_exchange_rule(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID
) -> ExchangeRuleVersion:
    return await _submit(session, principal.actor, EXCHANGE_RULE, version_id)


async def publish_exchange_rule(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID
) -> ExchangeRuleVersion:
    """under_review → published, if its period overlaps no other published version."""
    return await _publish(session, principal.actor, EXCHANGE_RULE, version_id)


async def retire_exchange_rule(
    session: AsyncSession, principal: Principal, version_id: uuid.UUID
) -> ExchangeRuleVersion:
    return await _retire(session, principal.actor, EXCHANGE_RULE, version_id)


async def get_exchange_rule(
    session: AsyncSession, principal: Principal | None, version_id: uuid.UUID
) -> ExchangeRuleVersion:
    return await _get_for(session, principal, EXCHANGE_RULE, version_id)


async def list_exchange_rules(
    session: AsyncSession,
    principal: Principal | None,
    *,
    status: str = VersionStatus.published,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ExchangeRuleVersion]:
    """By version number."""
    _status_filter(principal, status)
    rows = await repo.rule_page(session, status=status, cursor=cursor, limit=limit)
    return Page[ExchangeRuleVersion](**page(rows, limit, lambda r: [r.version]))


async def current_exchange_rule(session: AsyncSession, at: datetime) -> ExchangeRuleVersion | None:
    """The exchange-rule version in force at ``at`` (published or retired, period containing it)."""
    _check_moment(at)
    return await repo.rule_in_force(session, at)


async def exchange_rule_in_force_now(session: AsyncSession) -> ExchangeRuleVersion:
    rule = await current_exchange_rule(session, clock.now())
    if rule is None:
        raise NoRuleInForce("no exchange-rule version is in force now")
    return rule


# ---------------------------------------------------------------- the whole catalogue


@dataclass(frozen=True)
class Listing:
    """Every methodology version (by behaviour type, then version) and exchange-rule version."""

    methodologies: list[MethodologyVersion]
    exchange_rules: list[ExchangeRuleVersion]


async def listing(session: AsyncSession, *, all_states: bool = False) -> Listing:
    """Published and retired versions; with ``all_states`` drafts and versions under review too."""
    statuses = None if all_states else PUBLIC_STATUSES
    methodologies = await repo.listing(
        session, MethodologyVersion, [MethodologyVersion.behaviour_type, MethodologyVersion.version], statuses
    )
    rules = await repo.listing(session, ExchangeRuleVersion, [ExchangeRuleVersion.version], statuses)
    return Listing(methodologies, rules)


# ---------------------------------------------------------------- what batch ingestion and the ledger ask (points)


@dataclass(frozen=True, slots=True)
class MethodologyTerms:
    """A published or retired methodology version as a record is computed with it."""

    id: uuid.UUID
    code: str
    version: int
    behaviour_type: str
    category: str
    unit: str
    net_factor_g: Decimal
    max_quantity_per_record: Decimal
    max_quantity_per_day: Decimal | None
    effective_from: datetime
    effective_to: datetime | None

    @property
    def label(self) -> str:
        """``{code}@{version}``, as records and their outcomes name it."""
        return f"{self.code}@{self.version}"


@dataclass(frozen=True, slots=True)
class RuleTerms:
    """A published or retired exchange-rule version as a record's points are computed with it."""

    id: uuid.UUID
    version: int
    points_per_gram: Decimal
    daily_cap_points: int | None
    type_daily_caps: dict[str, int] | None
    lot_lifetime_days: int
    effective_from: datetime
    effective_to: datetime | None


@dataclass(frozen=True)
class VersionLabels:
    """Methodology versions by id as ``{code}@{version}``, exchange-rule versions by id as their version."""

    methodologies: dict[uuid.UUID, str]
    rules: dict[uuid.UUID, int]


async def counted_methodologies(
    session: AsyncSession, behaviour_types: Collection[str]
) -> list[MethodologyTerms]:
    """The versions that compute records of these types (published or retired), by type then period."""
    rows = await repo.counted_methodologies(await db.raw_connection(session), list(behaviour_types))
    return [MethodologyTerms(*r) for r in rows]


async def counted_exchange_rules(session: AsyncSession) -> list[RuleTerms]:
    """The exchange-rule versions that compute points (published or retired), by period."""
    rows = await repo.counted_exchange_rules(await db.raw_connection(session))
    return [
        RuleTerms(
            r["id"],
            r["version"],
            r["points_per_gram"],
            r["daily_cap_points"],
            orjson.loads(r["type_daily_caps"])
            if isinstance(r["type_daily_caps"], str | bytes)
            else r["type_daily_caps"],
            r["lot_lifetime_days"],
            r["effective_from"],
            r["effective_to"],
        )
        for r in rows
    ]


async def version_labels(
    session: AsyncSession, methodology_ids: Collection[uuid.UUID], rule_ids: Collection[uuid.UUID]
) -> VersionLabels:
    """How records name the versions that computed them (one statement for both kinds)."""
    labels = VersionLabels({}, {})
    for kind, version_id, label in await repo.version_labels(
        await db.raw_connection(session), list(methodology_ids), list(rule_ids)
    ):
        if kind == "m":
            labels.methodologies[version_id] = label
        else:
            labels.rules[version_id] = int(label)
    return labels


# ---- what the CER registry asks


async def versions_by_code(session: AsyncSession, codes: Collection[str]) -> list[MethodologyVersion]:
    """Every version of the methodologies ``codes``, whatever its status, by code and version."""
    return await repo.methodology_versions(session, codes=list(codes)) if codes else []


async def versions_by_id(session: AsyncSession, ids: Collection[uuid.UUID]) -> list[MethodologyVersion]:
    """The methodology versions ``ids``, by code and version (the order a project's report lists them in)."""
    return await repo.methodology_versions(session, ids=list(ids)) if ids else []


async def count_by_status(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Versions by status, of both kinds: ``{"methodology": {"draft": 1, …}, "exchange_rule": {…}}``."""
    return {
        "methodology": await repo.count_by_status(session, MethodologyVersion),
        "exchange_rule": await repo.count_by_status(session, ExchangeRuleVersion),
    }
