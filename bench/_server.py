"""Shared by the benchmarks: a real server process on the embedded default, and a seeded platform."""

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import db, embedded, migrate, security  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``carbon-points serve`` in a child process with embedded PostgreSQL and Redis."""

    def __init__(self, workers: int = 1, data_dir: str | None = None, checkout: Path = ROOT):
        """``checkout``: the project's folder whose code the server runs (another checkout of it: its own
        migrations and, if it has one, its own ``.venv``), this one by default."""
        self.checkout = checkout.resolve()
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="carbon-bench-"))
        self.own_dir = data_dir is None  # a folder it made is removed when it stops
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        self.urls = embedded.ensure_servers(None, None, self.data_dir)
        env = {
            **os.environ,
            "CARBON_DATABASE_URL": self.urls.database_url,
            "CARBON_REDIS_URL": self.urls.redis_url,
            "CARBON_PUBLIC_BASE_URL": self.base_url,
            "CARBON_RATE_LIMIT_PER_MINUTE": "100000000",
            "CARBON_LOGIN_RATE_LIMIT_PER_MINUTE": "100000000",
            "CARBON_LOG_LEVEL": "WARNING",
            "CARBON_BOOTSTRAP_ADMIN": "bench-admin:bench-admin-pw",
            "CARBON_SCHEDULER_ENABLED": "false",
        }
        python = self.checkout / ".venv" / "bin" / "python"
        python = python if python.exists() and self.checkout != ROOT else Path(sys.executable)
        if self.checkout == ROOT:
            migrate.upgrade(self.urls.database_url)
        else:  # that checkout's migrations
            subprocess.run(
                [python, "-m", "app.cli", "migrate"],
                cwd=self.checkout,
                env=env,
                check=True,
                stdout=sys.stderr,
            )
        self.proc = subprocess.Popen(
            [
                python,
                "-m",
                "app.cli",  # the server as `carbon-points serve` runs it (uvloop, httptools, no access log)
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            cwd=self.checkout,
            env=env,
            stdout=sys.stderr,  # what serve prints is not the benchmark's JSON
            start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far (user and system) of the API's processes and of this PostgreSQL's (the postmaster
        and its backends): read before and after a phase, what each request cost the machine's two halves."""
        import psutil

        def total(processes: list) -> float:
            seconds = 0.0
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:  # a backend gone meanwhile: its time is lost to both readings
                    continue
                seconds += times.user + times.system
            return seconds

        assert self.proc is not None
        postmaster = psutil.Process(
            int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        )
        return {
            # the serving process and its workers (with one worker it serves alone)
            "api": total([server := psutil.Process(self.proc.pid), *server.children(recursive=True)]),
            "postgres": total([postmaster, *postmaster.children(recursive=True)]),
        }

    def stop(self) -> None:
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        embedded.stop_all()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def cores_busy(before: dict[str, float], after: dict[str, float], seconds: float) -> float:
    """The cores the server's two halves kept busy between two :meth:`Server.cpu_seconds` readings ``seconds``
    apart: close to the machine's cores the CPU bounds the rate; far below them the requests wait (the load
    generator, on the same machine, takes part of the rest)."""
    return round(sum(after[k] - before[k] for k in after) / seconds, 2)


async def seed_operator(client: httpx.AsyncClient, database_url: str) -> dict:
    """An approved operator with a key and a token, the exchange rule and a bench methodology."""
    r = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "bench-admin", "password": "bench-admin-pw"},
    )
    admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    code = (
        "91"
        + f"{random.randint(0, 999999):06d}"
        + "".join(random.choices("0123456789ABCDEFGHJKLMNPQRTUWXY", k=10))
    )
    username = f"op-{uuid.uuid4().hex[:8]}"
    r = await client.post(
        "/v1/organizations",
        json={
            "kind": "operator",
            "name": username,
            "credit_code": code,
            "admin": {"username": username, "password": "bench-pass-123"},
        },
    )
    assert r.status_code == 201, r.text
    org_id = r.json()["id"]
    await client.post(f"/v1/organizations/{org_id}/approve", headers=admin)
    # trusted to enrol people on its own word, with every scope (the people's own confirmation is issue 14's)
    await client.put(
        f"/v1/organizations/{org_id}/trusted-enrolment",
        json={"trusted": True, "reason": "bench"},
        headers=admin,
    )
    await client.put(
        f"/v1/organizations/{org_id}/allowed-scopes",
        json={"scopes": ["behaviours:submit", "account:read", "mall"], "reason": "bench"},
        headers=admin,
    )
    r = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": username, "password": "bench-pass-123"}
    )
    org_admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    pem = security.generate_es256_pem()
    r = await client.post(
        f"/v1/organizations/{org_id}/keys", json={"jwk": security.public_jwk_from_pem(pem)}, headers=org_admin
    )
    kid = r.json()["kid"]
    now = int(time.time())
    assertion = security.sign_jwt(
        {
            "iss": org_id,
            "sub": org_id,
            "aud": str(client.base_url).rstrip("/") + "/v1/auth/token",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 60,
        },
        security.SigningKey(kid, "ES256", pem, {}),
    )
    r = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    token = r.json()["access_token"]
    conn = await asyncpg.connect(db.plain_url(database_url))
    try:
        if not await conn.fetchval("SELECT 1 FROM exchange_rule_versions WHERE status = 'published'"):
            await conn.execute(
                "INSERT INTO exchange_rule_versions (id, version, name, points_per_gram, daily_cap_points,"
                " type_daily_caps, lot_lifetime_days, status, effective_from, created_at)"
                " VALUES ($1, 1, 'bench', 0.1, 200, '{}'::jsonb, 730, 'published', '2020-01-01', now())",
                uuid.uuid4(),
            )
        if not await conn.fetchval("SELECT 1 FROM methodology_versions WHERE behaviour_type = 'bench-metro'"):
            await conn.execute(
                "INSERT INTO methodology_versions (id, code, version, behaviour_type, category, name, unit,"
                " net_factor_g, max_quantity_per_record, max_quantity_per_day, illustrative, status, effective_from,"
                " created_at) VALUES ($1, 'bench-metro', 1, 'bench-metro', 'travel', 'bench', 'km', $2, 60, 200,"
                " false, 'published', '2020-01-01', now())",
                uuid.uuid4(),
                Decimal("46.7"),
            )
    finally:
        await conn.close()
    return {
        "org_id": org_id,
        "kid": kid,
        "pem": pem,
        "headers": {"Authorization": f"Bearer {token}"},
        "admin_headers": org_admin,
    }


def sign(op: dict, body: bytes) -> str:
    return security.sign_detached(body, op["pem"], "ES256", op["kid"])


async def enrol_many(client: httpx.AsyncClient, op: dict, count: int, concurrency: int = 16) -> list[str]:
    ids = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    sem = asyncio.Semaphore(concurrency)
    base = 13_000_000_000 + int(uuid.uuid4().int % 900_000_000)

    async def one(i: int, ext: str) -> None:
        async with sem:
            r = await client.post(
                "/v1/operator/users",
                headers=op["headers"],
                json={
                    "external_user_id": ext,
                    "identifier": {"type": "phone", "value": f"+86{base + i}"},
                    "consent": {"agreement_version": "v1", "accepted_at": "2026-01-01T00:00:00+08:00"},
                },
            )
            assert r.status_code in (200, 201), r.text

    await asyncio.gather(*[one(i, ext) for i, ext in enumerate(ids)])
    return ids


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def dumps(data) -> str:
    return json.dumps(data, indent=2, default=str)
