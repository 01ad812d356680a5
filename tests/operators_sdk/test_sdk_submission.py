import csv
import json

import httpx
import pytest
from carbon_operator import AsyncPlatformClient, PermissionDeniedError
from carbon_operator.records import write_users
from carbon_operator.submission import enrol_file, load_state, submit_file

BASE = "http://platform.test"


@pytest.fixture
def client(fake, client_id, operator_key, no_sleep):
    return AsyncPlatformClient(
        BASE,
        client_id=client_id,
        key=operator_key,
        transport=httpx.MockTransport(fake.handle),
        sleep=no_sleep,
    )


def users(n: int) -> list[dict[str, str]]:
    return [
        {"external_user_id": f"u-{i}", "phone": f"+86138001380{i:02d}", "agreement_version": "2026-01",
         "accepted_at": "2026-11-01T09:00:00+08:00"}
        for i in range(n)
    ]  # fmt: skip


class TestSubmitFile:
    async def test_jsonl_outcomes_and_rejected_rows(self, client, fake, tmp_path, make_record):
        path = tmp_path / "day.jsonl"
        lines = [make_record(i) for i in range(25)] + [make_record(3), make_record(99, type="teleport")]
        path.write_text("".join(json.dumps(r) + "\n" for r in lines) + "oops\n")
        started = []
        async with client:
            result = await submit_file(client, path, chunk_size=10, on_start=lambda *a: started.append(a))
        assert started == [(27, 0)]
        assert (result.batches, result.sent, result.resumed) == (3, 3, 0)
        assert (result.totals["accepted"], result.totals["duplicate"], result.totals["rejected"]) == (
            25,
            1,
            1,
        )
        assert result.codes == {"rejected:unknown_type": 1}
        rejected = [json.loads(t) for t in (tmp_path / "day.rejected.jsonl").read_text().splitlines()]
        assert [(r.get("record_id"), r["code"]) for r in rejected] == [
            ("op-0000099", "unknown_type"), (None, "invalid_row")
        ]  # fmt: skip
        state = load_state(path)
        assert sorted(state["chunks"]) == ["0", "1", "2"]
        assert state["chunks"]["2"]["rejected"] == [[6, "unknown_type"]]

    async def test_an_edited_file_sends_only_the_chunks_that_changed(
        self, client, fake, tmp_path, make_record
    ):
        path = tmp_path / "day.jsonl"
        records = [make_record(i) for i in range(30)]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        async with client:
            await submit_file(client, path, chunk_size=10)
            records[15]["quantity"] = 3.0
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
            result = await submit_file(client, path, chunk_size=10)
        assert (result.sent, result.resumed) == (1, 2)
        assert result.totals["duplicate"] == 10  # the platform already had those record ids
        assert not (tmp_path / "day.rejected.jsonl").exists()

    async def test_a_state_file_of_another_input_is_ignored(self, client, tmp_path, make_record):
        path = tmp_path / "day.jsonl"
        path.write_text(json.dumps(make_record(1)) + "\n")
        (tmp_path / "day.progress.json").write_text(
            json.dumps({"version": 1, "file": "other.csv", "chunks": {}})
        )
        async with client:
            result = await submit_file(client, path)
        assert result.sent == 1


class TestEnrolFile:
    async def test_refused_users_are_listed_with_their_code(self, client, fake, tmp_path):
        path = tmp_path / "users.csv"
        write_users(path, users(6))
        fake.enrol_refusals = {"u-2": (422, "invalid_phone"), "u-4": (409, "already_enrolled_elsewhere")}
        async with client:
            result = await enrol_file(client, path, concurrency=3)
        assert result.enrolled == 4
        assert [(u["external_user_id"], code) for u, code in result.failed] == [
            ("u-2", "invalid_phone"), ("u-4", "already_enrolled_elsewhere")
        ]  # fmt: skip
        with (tmp_path / "users.rejected.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert [(r["external_user_id"], r["code"]) for r in rows] == [
            ("u-2", "invalid_phone"), ("u-4", "already_enrolled_elsewhere")
        ]  # fmt: skip

    async def test_a_refused_operator_stops_the_run_with_the_platform_error(self, client, fake, tmp_path):
        path = tmp_path / "users.csv"
        write_users(path, users(5))
        fake.enrol_refusals = {f"u-{i}": (403, "organization_not_active") for i in range(5)}
        async with client:
            with pytest.raises(PermissionDeniedError) as caught:
                await enrol_file(client, path, concurrency=1)
        assert caught.value.code == "organization_not_active"
