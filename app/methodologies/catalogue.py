"""The shipped catalogue (``catalogue.json``): loaded published, idempotently.

An entry whose ``code`` + ``version`` (exchange rules: ``version``) exists is left alone, whatever
its state, so loading twice creates nothing new. New entries go through the same validation and
the same overlap check as the HTTP routes; they skip the expert review (the shipped catalogue is
the platform's starting state) and are audited as ``system:catalogue``. One transaction: if one
entry is refused, nothing is loaded.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidInput
from app.methodologies import repository as repo
from app.methodologies import service
from app.methodologies.models import VersionStatus
from app.methodologies.schemas import ExchangeRuleCreate, MethodologyCreate

DEFAULT_PATH = Path(__file__).with_name("catalogue.json")
ACTOR = "system:catalogue"


class InvalidCatalogue(InvalidInput):
    code, title = "invalid_catalogue", "The catalogue file is not valid"


@dataclass
class LoadResult:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def read(path: Path | None = None) -> dict[str, Any]:
    path = path or DEFAULT_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidCatalogue(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidCatalogue(f"{path}: expected an object with 'methodologies' and 'exchange_rules'")
    return data


def _entry(model, raw: dict[str, Any], label: str):
    if not isinstance(raw, dict) or not isinstance(raw.get("version"), int) or raw["version"] < 1:
        raise InvalidCatalogue(f"{label}: every entry needs a whole 'version' ≥ 1")
    try:
        return raw["version"], model.model_validate({k: v for k, v in raw.items() if k != "version"})
    except ValidationError as exc:
        raise InvalidCatalogue(f"{label}: {exc.errors(include_url=False)}") from exc


async def load(session: AsyncSession, path: Path | None = None) -> LoadResult:
    data = read(path)
    result = LoadResult()
    for i, raw in enumerate(data.get("methodologies", [])):
        version, entry = _entry(MethodologyCreate, raw, f"methodologies[{i}]")
        label = f"methodology {entry.code} v{version} ({entry.behaviour_type})"
        await service.lock(session, f"methodology-code:{entry.code}")
        if await repo.methodology_by_code(session, entry.code, version) is not None:
            result.existing.append(label)
            continue
        row = await service.draft_methodology(session, ACTOR, entry, version)
        await _publish(session, service.METHODOLOGY, row)
        result.created.append(label)
    for i, raw in enumerate(data.get("exchange_rules", [])):
        version, entry = _entry(ExchangeRuleCreate, raw, f"exchange_rules[{i}]")
        label = f"exchange rule v{version}"
        await service.lock(session, "exchange-rule-versions")
        if await repo.rule_by_version(session, version) is not None:
            result.existing.append(label)
            continue
        rule = await service.draft_exchange_rule(session, ACTOR, entry, version)
        await _publish(session, service.EXCHANGE_RULE, rule)
        result.created.append(label)
    return result


async def _publish(session: AsyncSession, kind, row) -> None:
    row.status = VersionStatus.under_review
    await service.lock(session, kind.period_lock(row))
    await service.publish_locked(session, ACTOR, kind, row)
