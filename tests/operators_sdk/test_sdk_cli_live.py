"""The ``carbon-operator`` command line against a real server process on the test databases.

What an operator does on day one, as the README's demo shows it: keygen, register the key,
simulate a day of trips, enrol the people, submit, resubmit (nothing twice), read an account
and get a user token that works on ``/v1/me``.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench._server import free_port
from tests.factories import PASSWORD, authority_token, make_org, trust_operator
from tests.factories_points import ensure_rule

CLI = shutil.which("carbon-operator") or str(Path(sys.executable).parent / "carbon-operator")


@pytest.fixture(scope="module")
def live_server(servers):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CARBON_PUBLIC_BASE_URL": base, "CARBON_SCHEDULER_ENABLED": "false"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.read_text().splitlines()))


def operator_cli(base: str, client_id: str, key: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CARBON_BASE_URL": base,
        "CARBON_CLIENT_ID": client_id,
        "CARBON_OPERATOR_KEY": str(key),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return subprocess.run([CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


class TestOperatorsFirstDay:
    async def test_keygen_register_simulate_enrol_submit_resubmit(
        self, client, live_server, tmp_path, run_sync
    ):
        await ensure_rule()
        authority = await authority_token(client)
        org = await make_org(client, "operator", authority=authority)
        await trust_operator(client, authority, org.id)  # enrols people on its own word (``enrol``)
        key = tmp_path / "operator-key.pem"
        org.extra["key_path"] = key

        def cli(*args):
            return operator_cli(live_server, org.id, key, *args, cwd=tmp_path)

        assert (await run_sync(cli, "keygen")).returncode == 0
        r = await run_sync(cli, "register-key", "--username", org.admin_username, "--password", PASSWORD)
        assert r.returncode == 0, r.stderr + r.stdout
        r = await run_sync(
            cli,
            "simulate",
            "--users",
            "30",
            "--days",
            "2",
            "--out",
            "trips.csv",
            "--users-out",
            "people.csv",
            "--seed",
            "11",
            "--invalid",
            "0.1",
        )
        assert r.returncode == 0, r.stderr
        invalid = int(re.search(r"(\d+) invalid", r.stdout + r.stderr).group(1))
        assert invalid > 0
        rows = read_csv(tmp_path / "trips.csv")
        r = await run_sync(cli, "enrol", "people.csv")
        assert r.returncode == 0, r.stderr + r.stdout

        r = await run_sync(cli, "submit", "trips.csv")
        assert r.returncode == 0, r.stderr + r.stdout
        rejected = read_csv(tmp_path / "trips.rejected.csv")
        assert len(rejected) == invalid and all(row["code"] for row in rejected)
        assert "1 sent now" in r.stdout + r.stderr

        again = await run_sync(cli, "submit", "trips.csv")
        assert again.returncode == 0, again.stderr + again.stdout
        assert "0 sent now" in again.stdout + again.stderr
        balances = await _balances(client, org, rows)

        for progress in tmp_path.glob("trips*.progress.json"):
            progress.unlink()
        forgotten = await run_sync(cli, "submit", "trips.csv")  # the same signed chunks, keys and all
        assert forgotten.returncode == 0, forgotten.stderr + forgotten.stdout
        assert "1 sent now" in forgotten.stdout + forgotten.stderr
        assert await _balances(client, org, rows) == balances

        person = rows[0]["external_user_id"]
        r = await run_sync(cli, "account", person)
        assert r.returncode == 0, r.stderr
        account = json.loads(r.stdout)
        assert account["balance"] == sum(e["points"] for e in account["expiring"])

        token = (await run_sync(cli, "user-token", person)).stdout.strip()
        me = await client.get("/v1/me/account", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["balance"] == account["balance"]

        ledger = (
            await client.get("/v1/me/ledger?limit=200", headers={"Authorization": f"Bearer {token}"})
        ).json()
        assert sum(e["amount"] for e in ledger["items"]) == account["balance"]


async def _balances(client, org, rows) -> dict[str, int]:

    headers = {"Authorization": f"Bearer {org.extra.get('client_token') or await _token(client, org)}"}
    out = {}
    for person in sorted({row["external_user_id"] for row in rows}):
        r = await client.get(f"/v1/operator/users/{person}/account", headers=headers)
        out[person] = r.json().get("balance")
    return out


async def _token(client, org) -> str:
    """The operator's client-credentials token; the key was registered through the command line."""
    from app.core import security

    pem = (org.extra["key_path"]).read_text()
    org.private_pem, org.kid = pem, security.thumbprint(security.public_jwk_from_pem(pem))
    from tests.factories import client_token

    org.extra["client_token"] = await client_token(client, org)
    return org.extra["client_token"]
