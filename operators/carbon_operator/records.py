"""Records and users in files: CSV (flat columns) and JSONL (the API record shape, one a line).

Reading never stops at a bad row: each row comes back with either its record or the reason it
cannot be one, so a command can send the good rows and hand the bad ones back to be fixed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .models import BehaviourRecord

CSV_COLUMNS = (
    "record_id",
    "external_user_id",
    "type",
    "started_at",
    "ended_at",
    "quantity",
    "unit",
    "scene_id",
    "evidence_source",
    "evidence_ref",
)
USER_COLUMNS = ("external_user_id", "phone", "agreement_version", "accepted_at")
CODE_COLUMN = "code"
INVALID_ROW = "invalid_row"


class RecordFileError(Exception):
    """The file cannot be read at all (unknown format, missing columns)."""


@dataclass(frozen=True)
class Row:
    """One row of an input file: the original text/fields, and the record or why it is none."""

    line: int
    raw: dict[str, Any] | str
    record: BehaviourRecord | None = None
    error: str | None = None


def file_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise RecordFileError(f"{path}: use a .csv or .jsonl file")


def sibling(path: str | Path, tag: str, suffix: str | None = None) -> Path:
    """``data.csv`` → ``data.<tag>.csv`` (or ``data.<tag><suffix>``)."""
    p = Path(path)
    return p.with_name(f"{p.stem}.{tag}{suffix if suffix is not None else p.suffix}")


def rejected_path(path: str | Path) -> Path:
    return sibling(path, "rejected")


def progress_path(path: str | Path) -> Path:
    return sibling(path, "progress", ".json")


def _explain(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors())


# ---------------------------------------------------------------- CSV ⇄ record


def csv_row_to_record(row: Mapping[str, str | None]) -> BehaviourRecord:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    return BehaviourRecord.model_validate(
        {
            "record_id": cell("record_id"),
            "external_user_id": cell("external_user_id"),
            "type": cell("type"),
            "started_at": cell("started_at"),
            "ended_at": cell("ended_at"),
            "quantity": cell("quantity"),
            "unit": cell("unit"),
            "scene_id": cell("scene_id") or None,
            "evidence": {"source": cell("evidence_source"), "ref": cell("evidence_ref")},
        }
    )


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def record_to_csv_row(record: BehaviourRecord) -> dict[str, str]:
    return {
        "record_id": record.record_id,
        "external_user_id": record.external_user_id,
        "type": record.type,
        "started_at": record.started_at.isoformat(),
        "ended_at": record.ended_at.isoformat(),
        "quantity": _number(record.quantity),
        "unit": record.unit,
        "scene_id": record.scene_id or "",
        "evidence_source": record.evidence.source,
        "evidence_ref": record.evidence.ref,
    }


# ---------------------------------------------------------------- reading


def _read_csv(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or []) and c != "scene_id"]
        if missing:
            raise RecordFileError(f"{path}: missing columns {', '.join(missing)}")
        for raw in reader:
            fields = {k: v for k, v in raw.items() if k is not None and k != CODE_COLUMN}
            try:
                rows.append(Row(reader.line_num, fields, record=csv_row_to_record(fields)))
            except ValidationError as exc:
                rows.append(Row(reader.line_num, fields, error=_explain(exc)))
    return rows


def _read_jsonl(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open(encoding="utf-8-sig") as fh:
        for number, text in enumerate(fh, start=1):
            text = text.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                rows.append(Row(number, text, error=f"not JSON: {exc}"))
                continue
            if not isinstance(obj, dict):
                rows.append(Row(number, text, error="not a JSON object"))
                continue
            obj.pop(CODE_COLUMN, None)
            try:
                rows.append(Row(number, obj, record=BehaviourRecord.model_validate(obj)))
            except ValidationError as exc:
                rows.append(Row(number, obj, error=_explain(exc)))
    return rows


def read_rows(path: str | Path) -> list[Row]:
    """Every row of a CSV or JSONL file of records, good or bad, in file order."""
    p = Path(path)
    return _read_csv(p) if file_format(p) == "csv" else _read_jsonl(p)


def read_users(path: str | Path) -> list[dict[str, str]]:
    """The enrolment file: ``external_user_id, phone, agreement_version, accepted_at``."""
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in USER_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RecordFileError(f"{path}: missing columns {', '.join(missing)}")
        return [{c: (row.get(c) or "").strip() for c in USER_COLUMNS} for row in reader]


# ---------------------------------------------------------------- writing


def write_records(path: str | Path, records: Iterable[BehaviourRecord]) -> int:
    """Write records as CSV or JSONL (by suffix); returns how many."""
    p = Path(path)
    count = 0
    with p.open("w", newline="", encoding="utf-8") as fh:
        if file_format(p) == "csv":
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for record in records:
                writer.writerow(record_to_csv_row(record))
                count += 1
        else:
            for record in records:
                fh.write(record.model_dump_json() + "\n")
                count += 1
    return count


def write_users(path: str | Path, users: Iterable[Mapping[str, str]]) -> int:
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=USER_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        count = 0
        for user in users:
            writer.writerow(user)
            count += 1
    return count


def write_rejected(
    path: str | Path, rejected: Iterable[tuple[Row, str]], *, columns: Iterable[str] = CSV_COLUMNS
) -> int:
    """Write rejected rows, each with an added ``code``, in the input's format, to fix and resubmit."""
    p = Path(path)
    count = 0
    with p.open("w", newline="", encoding="utf-8") as fh:
        if file_format(p) == "csv":
            writer = csv.DictWriter(fh, fieldnames=[*columns, CODE_COLUMN], extrasaction="ignore")
            writer.writeheader()
            for row, code in rejected:
                fields = row.raw if isinstance(row.raw, dict) else {}
                writer.writerow({**fields, CODE_COLUMN: code})
                count += 1
        else:
            for row, code in rejected:
                obj = dict(row.raw) if isinstance(row.raw, dict) else {"raw": row.raw}
                fh.write(json.dumps({**obj, CODE_COLUMN: code}, ensure_ascii=False) + "\n")
                count += 1
    return count
