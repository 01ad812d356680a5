import csv
import json

import pytest
from carbon_operator.models import BehaviourRecord
from carbon_operator.records import (
    CSV_COLUMNS,
    RecordFileError,
    progress_path,
    read_rows,
    read_users,
    rejected_path,
    write_records,
    write_rejected,
)

HEADER = ",".join(CSV_COLUMNS)
GOOD = (
    "op-1,u-5512,metro,2026-11-20T08:01:00+08:00,2026-11-20T08:32:00+08:00,12.4,km,,sz-metro-card,TXN88123001"
)


class TestCsv:
    def test_a_row_becomes_the_api_record(self, tmp_path):
        path = tmp_path / "in.csv"
        path.write_text(f"{HEADER}\n{GOOD}\n")
        (row,) = read_rows(path)
        assert row.error is None and row.line == 2
        assert row.record.model_dump(mode="json") == {
            "record_id": "op-1",
            "external_user_id": "u-5512",
            "type": "metro",
            "started_at": "2026-11-20T08:01:00+08:00",
            "ended_at": "2026-11-20T08:32:00+08:00",
            "quantity": 12.4,
            "unit": "km",
            "scene_id": None,
            "evidence": {"source": "sz-metro-card", "ref": "TXN88123001"},
        }

    def test_bad_rows_are_kept_with_the_reason(self, tmp_path):
        path = tmp_path / "in.csv"
        bad_time = GOOD.replace("2026-11-20T08:01:00+08:00", "yesterday")
        bad_quantity = GOOD.replace("12.4", "twelve")
        no_offset = GOOD.replace("08:01:00+08:00", "08:01:00")
        path.write_text("\n".join([HEADER, GOOD, bad_time, bad_quantity, no_offset]) + "\n")
        rows = read_rows(path)
        assert [r.error is None for r in rows] == [True, False, False, False]
        assert "started_at" in rows[1].error and "quantity" in rows[2].error and "started_at" in rows[3].error
        assert rows[2].raw["quantity"] == "twelve"

    def test_a_negative_quantity_or_an_unknown_type_is_for_the_platform_to_refuse(self, tmp_path):
        path = tmp_path / "in.csv"
        path.write_text(f"{HEADER}\n{GOOD.replace('12.4', '-3').replace('metro', 'teleport')}\n")
        (row,) = read_rows(path)
        assert (row.record.quantity, row.record.type) == (-3.0, "teleport")

    def test_missing_columns(self, tmp_path):
        path = tmp_path / "in.csv"
        path.write_text("record_id,type\nop-1,metro\n")
        with pytest.raises(RecordFileError, match="external_user_id"):
            read_rows(path)

    def test_unknown_suffix(self, tmp_path):
        with pytest.raises(RecordFileError):
            read_rows(tmp_path / "in.txt")

    def test_round_trip(self, tmp_path, make_record):
        records = [BehaviourRecord(**make_record(i, scene_id="s-1" if i % 2 else None)) for i in range(5)]
        path = tmp_path / "out.csv"
        assert write_records(path, records) == 5
        assert [r.record for r in read_rows(path)] == records


class TestJsonl:
    def test_the_api_shape_one_a_line(self, tmp_path, make_record):
        path = tmp_path / "in.jsonl"
        path.write_text(
            json.dumps(make_record(1)) + "\n\n" + "{not json\n" + "[1]\n" + json.dumps({"x": 1}) + "\n"
        )
        rows = read_rows(path)
        assert rows[0].record == BehaviourRecord(**make_record(1))
        assert [r.line for r in rows] == [1, 3, 4, 5]
        assert [r.record is None for r in rows] == [False, True, True, True]
        assert rows[1].raw == "{not json"

    def test_round_trip(self, tmp_path, make_record):
        records = [BehaviourRecord(**make_record(i)) for i in range(3)]
        path = tmp_path / "out.jsonl"
        write_records(path, records)
        assert [r.record for r in read_rows(path)] == records


class TestRejectedFile:
    def test_names_sit_next_to_the_input(self, tmp_path):
        assert rejected_path(tmp_path / "day1.csv") == tmp_path / "day1.rejected.csv"
        assert rejected_path(tmp_path / "day1.jsonl") == tmp_path / "day1.rejected.jsonl"
        assert progress_path(tmp_path / "day1.csv") == tmp_path / "day1.progress.json"

    def test_csv_gets_a_code_column_and_can_be_resubmitted(self, tmp_path):
        source = tmp_path / "in.csv"
        source.write_text(f"{HEADER}\n{GOOD}\n")
        rows = read_rows(source)
        target = rejected_path(source)
        write_rejected(target, [(rows[0], "unknown_type")])
        with target.open() as fh:
            (line,) = list(csv.DictReader(fh))
        assert line["code"] == "unknown_type" and line["record_id"] == "op-1"
        assert read_rows(target)[0].record == rows[0].record

    def test_jsonl_gets_a_code_member_that_is_dropped_on_resubmission(self, tmp_path, make_record):
        source = tmp_path / "in.jsonl"
        source.write_text(json.dumps(make_record(1)) + "\nnope\n")
        rows = read_rows(source)
        target = rejected_path(source)
        write_rejected(target, [(rows[0], "implausible_quantity"), (rows[1], "invalid_row")])
        lines = [json.loads(t) for t in target.read_text().splitlines()]
        assert lines[0]["code"] == "implausible_quantity"
        assert lines[1] == {"raw": "nope", "code": "invalid_row"}
        again = read_rows(target)
        assert again[0].record == rows[0].record and "code" not in again[0].raw


def test_users_file(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(
        "external_user_id,phone,agreement_version,accepted_at\nu-1,+8613800138000,2026-01,2026-11-01T09:00:00+08:00\n"
    )
    assert read_users(path) == [
        {"external_user_id": "u-1", "phone": "+8613800138000", "agreement_version": "2026-01",
         "accepted_at": "2026-11-01T09:00:00+08:00"}
    ]  # fmt: skip
    (tmp_path / "bad.csv").write_text("external_user_id,phone\nu-1,1\n")
    with pytest.raises(RecordFileError, match="agreement_version"):
        read_users(tmp_path / "bad.csv")
