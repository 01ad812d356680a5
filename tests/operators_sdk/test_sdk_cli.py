import csv
import json
import stat
from datetime import datetime

import pytest
from carbon_operator.cli import app
from carbon_operator.keys import OperatorKey
from carbon_operator.records import read_rows
from carbon_operator.simulate import SHANGHAI
from typer.testing import CliRunner

BASE = "http://platform.test"
END = datetime(2026, 11, 20, 21, 0, tzinfo=SHANGHAI)
CLEAN_ENV = {"CARBON_BASE_URL": None, "CARBON_CLIENT_ID": None, "CARBON_OPERATOR_KEY": None}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env=CLEAN_ENV)


class TestKeygen:
    def test_writes_a_private_pem_0600_and_prints_the_public_jwk(self, runner, tmp_path):
        path = tmp_path / "operator-key.pem"
        result = runner.invoke(app, ["--key", str(path), "keygen"])
        assert result.exit_code == 0, result.output
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        jwk = json.loads(result.stdout)
        assert jwk == OperatorKey.load(path).public_jwk()
        assert "d" not in jwk

    def test_refuses_to_overwrite_without_force(self, runner, tmp_path):
        path = tmp_path / "k.pem"
        assert runner.invoke(app, ["keygen", "--out", str(path)]).exit_code == 0
        kid = OperatorKey.load(path).kid
        refused = runner.invoke(app, ["keygen", "--out", str(path)])
        assert refused.exit_code == 1 and "exists" in refused.stderr
        assert OperatorKey.load(path).kid == kid
        assert runner.invoke(app, ["keygen", "--out", str(path), "--force"]).exit_code == 0
        assert OperatorKey.load(path).kid != kid

    def test_key_path_from_the_environment(self, tmp_path):
        path = tmp_path / "env.pem"
        result = CliRunner(env={**CLEAN_ENV, "CARBON_OPERATOR_KEY": str(path)}).invoke(app, ["keygen"])
        assert result.exit_code == 0 and path.exists()


class TestSimulate:
    ARGS = ["simulate", "--users", "15", "--days", "4", "--seed", "5", "--end", "2026-11-20T21:00:00"]

    def test_writes_records_and_users(self, runner, tmp_path):
        out, users = tmp_path / "week.csv", tmp_path / "users.csv"
        result = runner.invoke(app, [*self.ARGS, "--out", str(out), "--users-out", str(users)])
        assert result.exit_code == 0, result.output
        rows = read_rows(out)
        assert rows and all(r.record is not None for r in rows)
        assert all(r.raw["started_at"].endswith("+08:00") for r in rows)
        with users.open() as fh:
            enrolled = list(csv.DictReader(fh))
        assert len(enrolled) == 15
        assert {r.record.external_user_id for r in rows} <= {u["external_user_id"] for u in enrolled}

    def test_same_seed_same_file_in_either_format(self, runner, tmp_path):
        for name in ("a.jsonl", "b.jsonl", "c.csv", "d.csv"):
            assert runner.invoke(app, [*self.ARGS, "--out", str(tmp_path / name)]).exit_code == 0
        assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
        assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "d.csv").read_bytes()
        assert [r.record for r in read_rows(tmp_path / "a.jsonl")] == [
            r.record for r in read_rows(tmp_path / "c.csv")
        ]

    def test_refuses_an_unknown_format(self, runner, tmp_path):
        result = runner.invoke(app, [*self.ARGS, "--out", str(tmp_path / "x.xlsx")])
        assert result.exit_code == 1


class TestSubmit:
    @pytest.fixture
    def setup(self, runner, tmp_path, operator_key, client_id, fake, no_sleep):
        fake.now = END
        key_path = operator_key.save(tmp_path / "operator-key.pem")
        data = tmp_path / "data.csv"
        args = [
            *TestSimulate.ARGS[:1],
            "--users",
            "40",
            "--days",
            "7",
            "--seed",
            "9",
            "--end",
            "2026-11-20T21:00:00",
        ]
        assert (
            runner.invoke(
                app, [*args, "--out", str(data), "--invalid", "0.02", "--duplicates", "0.02"]
            ).exit_code
            == 0
        )
        with data.open("a") as fh:
            fh.write("broken,u-1,metro,not-a-time,,1,km,,src,ref\n")

        def submit(*extra: str):
            return runner.invoke(
                app,
                [
                    "--base-url",
                    BASE,
                    "--client-id",
                    client_id,
                    "--key",
                    str(key_path),
                    "submit",
                    str(data),
                    *extra,
                ],
                obj={"transport": fake.transport, "sleep": no_sleep},
            )

        return data, submit

    def batch_requests(self, fake):
        return [r for r in fake.requests if r.url.path == "/v1/operator/behaviour-batches"]

    def test_outcomes_summary_and_rejected_rows(self, setup, fake):
        data, submit = setup
        rows = read_rows(data)
        result = submit("--chunk-size", "200")
        assert result.exit_code == 0, result.output
        good = [r for r in rows if r.record]
        assert len(self.batch_requests(fake)) == -(-len(good) // 200)
        assert all(n == 1 for n in fake.credited.values())
        assert (
            "accepted" in result.stdout
            and "unknown_type" in result.stdout
            and "invalid rows" in result.stdout
        )

        with (data.parent / "data.rejected.csv").open() as fh:
            rejected = list(csv.DictReader(fh))
        codes = {r["code"] for r in rejected}
        assert codes == {"unknown_type", "implausible_quantity", "future_time", "invalid_row"}
        bad_records = [r for r in good if r.record.type == "teleport" or r.record.quantity < 0]
        future = [r for r in good if r.record.started_at > END]
        assert len(rejected) == len(bad_records) + len(future) + 1
        duplicates = len(good) - len({r.record.record_id for r in good})
        (line,) = [t for t in result.stdout.splitlines() if "duplicate" in t]
        assert line.split("│")[2].strip() == str(duplicates)

    def test_a_killed_run_resumes_and_credits_each_record_once(self, setup, fake):
        data, submit = setup
        fake.kill_after_batches = 2
        killed = submit("--chunk-size", "150")
        assert killed.exit_code != 0
        state = json.loads((data.parent / "data.progress.json").read_text())
        assert sorted(state["chunks"]) == ["0", "1"]
        chunks = -(-sum(1 for r in read_rows(data) if r.record) // 150)
        assert len(self.batch_requests(fake)) == 3

        fake.kill_after_batches = None
        resumed = submit("--chunk-size", "150")
        assert resumed.exit_code == 0, resumed.output
        assert "resuming: 300 of" in resumed.stderr
        sent_again = self.batch_requests(fake)[3:]
        assert len(sent_again) == chunks - 2
        assert (
            sent_again[0].content == self.batch_requests(fake)[2].content
        )  # the unacknowledged one, replayed
        assert all(n == 1 for n in fake.credited.values())

        before = len(fake.requests)
        again = submit("--chunk-size", "150")
        assert again.exit_code == 0
        assert len(fake.requests) == before
        assert "(0 sent now)" in again.stdout
        assert again.stdout.splitlines()[1:] == resumed.stdout.splitlines()[1:]

    def test_needs_a_client_id_and_a_key(self, runner, tmp_path, setup):
        data, _ = setup
        no_id = runner.invoke(app, ["--key", str(tmp_path / "operator-key.pem"), "submit", str(data)])
        assert no_id.exit_code == 1 and "client-id" in no_id.stderr
        no_key = runner.invoke(
            app, ["--client-id", "x", "--key", str(tmp_path / "none.pem"), "submit", str(data)]
        )
        assert no_key.exit_code == 1 and "keygen" in no_key.stderr


class TestEnrol:
    def test_enrols_every_user_of_the_file(self, runner, tmp_path, operator_key, client_id, fake, no_sleep):
        key_path = operator_key.save(tmp_path / "k.pem")
        users = tmp_path / "users.csv"
        assert (
            runner.invoke(
                app, [*TestSimulate.ARGS, "--out", str(tmp_path / "r.csv"), "--users-out", str(users)]
            ).exit_code
            == 0
        )
        result = runner.invoke(
            app,
            ["--base-url", BASE, "--client-id", client_id, "--key", str(key_path), "enrol", str(users)],
            obj={"transport": fake.transport, "sleep": no_sleep},
        )
        assert result.exit_code == 0, result.output
        enrolments = [r for r in fake.requests if r.url.path == "/v1/operator/users"]
        assert len(enrolments) == 15
        assert len({r.headers["idempotency-key"] for r in enrolments}) == 15
        assert "15" in result.stdout
        assert not (tmp_path / "users.rejected.csv").exists()


class TestRegistration:
    def invoke(self, runner, fake, no_sleep, *args, **kwargs):
        return runner.invoke(
            app, ["--base-url", BASE, *args], obj={"transport": fake.transport, "sleep": no_sleep}, **kwargs
        )

    def test_apply_asks_for_the_password_twice(self, runner, fake, no_sleep):
        result = self.invoke(
            runner, fake, no_sleep, "apply", "--name", "Metro Go", "--credit-code", "91440300MA5G9XXX1A",
            "--username", "metrogo-admin", input="correct-horse-battery\ncorrect-horse-battery\n",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert fake.client_id in result.stdout and "pending" in result.stdout
        (request,) = fake.requests
        assert json.loads(request.content)["admin"] == {
            "username": "metrogo-admin",
            "password": "correct-horse-battery",
        }

    def test_register_key_sends_the_public_jwk_of_the_key_file(
        self, runner, fake, no_sleep, tmp_path, client_id
    ):
        key = OperatorKey.generate()
        key.save(tmp_path / "k.pem")
        args = [
            "--client-id",
            client_id,
            "--key",
            str(tmp_path / "k.pem"),
            "register-key",
            "--username",
            "metrogo-admin",
        ]
        result = self.invoke(runner, fake, no_sleep, *args, "--password", "correct-horse-battery")
        assert result.exit_code == 0, result.output
        assert fake.registered_jwks == [key.public_jwk()]
        assert key.kid in result.stdout

    def test_a_refused_login_is_reported_with_its_code(self, runner, fake, no_sleep, tmp_path, client_id):
        OperatorKey.generate().save(tmp_path / "k.pem")
        args = [
            "--client-id",
            client_id,
            "--key",
            str(tmp_path / "k.pem"),
            "register-key",
            "--username",
            "nobody",
        ]
        result = self.invoke(runner, fake, no_sleep, *args, "--password", "wrong-password")
        assert result.exit_code == 1
        assert "invalid_grant" in result.stderr

    def test_the_token_audience_can_be_overridden(
        self, runner, fake, no_sleep, tmp_path, client_id, operator_key
    ):
        operator_key.save(tmp_path / "k.pem")
        base = ["--client-id", client_id, "--key", str(tmp_path / "k.pem")]
        ok = self.invoke(runner, fake, no_sleep, *base, "account", "u-1")
        assert ok.exit_code == 0 and json.loads(ok.stdout)["balance"] == 120
        wrong = self.invoke(
            runner,
            fake,
            no_sleep,
            "--token-audience",
            "http://elsewhere/v1/auth/token",
            *base,
            "account",
            "u-1",
        )
        assert wrong.exit_code == 1 and "invalid_client" in wrong.stderr
