"""Chaos run: traffic against a server process that is SIGKILLed and restarted, with PostgreSQL backends
terminated mid-transaction; then every invariant is checked. Prints JSON.

    python bench/chaos.py [--duration 120] [--people 60] [--kills 8] [--terminations 12]

What runs at the same time, until ``--duration`` is over:

* ingestion: signed batches of behaviour records (and resends of earlier records, which must come
  back ``duplicate`` with their first outcome);
* orders of three mall items (limited stock and a per-person limit; vouchers valid one day, refund
  or forfeit on expiry), cancellations and counter redemptions of the orders placed;
* the voucher expiry job, run in this process at "now + 2 days", racing the cancellations and
  redemptions for the same orders;
* chaos: the server process group gets SIGKILL at random moments and is restarted; PostgreSQL
  backends of the platform (``application_name = 'carbon-points'``) are terminated mid-transaction.

Every client retries a failed or unanswered request with the same ``Idempotency-Key`` until it gets
a definitive answer (a 2xx, or a 4xx that is a business decision). After the chaos every pending
operation is driven to an answer, and the run checks: every acknowledged record credited exactly once
with the acknowledged points, nothing credited that was not sent, no order lost or doubled, every
acknowledged cancellation and redemption in force, stock and per-person limits exact, every
balance equal to what was earned minus what was spent, ``ledger verify`` clean and the audit chain
intact. ``violations`` lists what failed (empty: all held).

The short version runs in the test suite (``tests/chaos``) against the test session's servers.
"""

import argparse
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import db, security  # noqa: E402

PASSWORD = "chaos-password-1"
RETRYABLE_CODES = {"idempotency_key_in_use", "concurrent_conflict", "internal_error"}
TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE application_name = 'carbon-points' AND state <> 'idle' AND pid <> pg_backend_pid()"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChaosServer:
    """``uvicorn app.main:app --factory`` in its own process group, against given PostgreSQL and Redis."""

    def __init__(self, database_url: str, redis_url: str, *, bootstrap_admin: str | None = None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CARBON_DATABASE_URL": database_url,
            "CARBON_REDIS_URL": redis_url,
            "CARBON_PUBLIC_BASE_URL": self.base_url,
            "CARBON_RATE_LIMIT_PER_MINUTE": "100000000",
            "CARBON_LOGIN_RATE_LIMIT_PER_MINUTE": "100000000",
            "CARBON_SCHEDULER_ENABLED": "false",
            "CARBON_LOG_LEVEL": "CRITICAL",
            "CARBON_DB_POOL_SIZE": "10",
        }
        if bootstrap_admin:
            self.env["CARBON_BOOTSTRAP_ADMIN"] = bootstrap_admin
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 90) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "critical",
            ],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown, no lifespan exit, in-flight requests cut."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    connection_errors: int = 0
    server_errors: int = 0
    kills: int = 0
    restarts: int = 0
    terminations: int = 0
    backends_terminated: int = 0
    batches: int = 0
    records_sent: int = 0
    resent_records: int = 0
    orders_placed: int = 0
    orders_refused: int = 0
    cancellations: int = 0
    redemptions: int = 0
    closed_refusals: int = 0
    expiry_runs: int = 0
    expired_by_job: int = 0
    violations: list = field(default_factory=list)


@dataclass
class Person:
    ext: str
    user_id: str
    headers: dict
    slot: int = 0


class Chaos:
    """One run: setup over HTTP, workload with retries, chaos, final drive to answers, checks."""

    def __init__(
        self,
        server: ChaosServer,
        database_url: str,
        authority_headers: dict,
        *,
        people: int,
        duration: float,
        kills: int,
        terminations: int,
        seed: int | None = None,
        run_job=None,
    ):
        self.server = server
        self.database_url = db.plain_url(database_url)
        self.authority = authority_headers
        self.n_people = people
        self.duration = duration
        self.kills = kills
        self.terminations = terminations
        self.random = random.Random(seed)
        self.stats = Stats()
        self.run_job = run_job  # runs a coroutine function on the platform's code (the expiry job)
        self.up = asyncio.Event()
        self.stopping = False
        self.records: dict[str, dict] = {}  # record_id -> the record as sent
        self.acknowledged: dict[str, dict] = {}  # record_id -> first acknowledged outcome
        self.orders: dict[str, dict] = {}  # order id -> acknowledged order
        self.order_keys: dict[str, str] = {}  # idempotency key -> order id
        self.cancelled: set[str] = set()
        self.redeemed: set[str] = set()
        self.pending: list = []

    # ---------------------------------------------------------------- HTTP with retries

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict | None = None,
        person: Person | None = None,
        final: bool = False,
        **kwargs,
    ) -> httpx.Response | None:
        """Retry until a definitive answer. ``None``: the chaos phase ended first (the caller keeps it pending)."""
        attempt = 0
        while True:
            if self.stopping and not final:
                return None
            await self.up.wait()
            h = dict(person.headers if person else headers or {})
            if key:
                h["Idempotency-Key"] = key
            try:
                self.stats.requests += 1
                r = await self.http.request(method, path, headers=h, **kwargs)
            except httpx.HTTPError:
                self.stats.connection_errors += 1
                r = None
            if r is not None and r.status_code == 401 and person is not None:
                await self.refresh_token(person)
            elif (
                r is not None
                and r.status_code < 500
                and not (r.status_code in (409, 429) and _code(r) in RETRYABLE_CODES | {"rate_limited"})
            ):
                return r
            elif r is not None:
                self.stats.server_errors += 1
            attempt += 1
            self.stats.retries += 1
            await asyncio.sleep(min(1.0, 0.05 * 2 ** min(attempt, 5)) * (0.5 + self.random.random()))

    async def refresh_token(self, person: Person) -> None:
        r = await self.call(
            "POST", f"/v1/operator/users/{person.ext}/tokens", headers=self.op_headers, final=True
        )
        person.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    # ---------------------------------------------------------------- setup

    async def setup(self) -> None:
        self.up.set()
        call = self.call
        self.op = await self._org("operator")
        pem = security.generate_es256_pem()
        r = await call(
            "POST",
            f"/v1/organizations/{self.op['id']}/keys",
            headers=self.op["headers"],
            key=uuid.uuid4().hex,
            json={"jwk": security.public_jwk_from_pem(pem)},
            final=True,
        )
        assert r.status_code == 201, r.text
        self.kid, self.pem = r.json()["kid"], pem
        now = int(time.time())
        assertion = security.sign_jwt(
            {
                "iss": self.op["id"],
                "sub": self.op["id"],
                "aud": self.server.base_url + "/v1/auth/token",
                "jti": uuid.uuid4().hex,
                "iat": now,
                "exp": now + 60,
            },
            security.SigningKey(self.kid, "ES256", pem, {}),
        )
        r = await call(
            "POST",
            "/v1/auth/token",
            final=True,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
        assert r.status_code == 200, r.text
        self.op_headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        self.btype = f"chaos-{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self.database_url)
        try:
            if not await conn.fetchval("SELECT 1 FROM exchange_rule_versions WHERE status = 'published'"):
                await conn.execute(
                    "INSERT INTO exchange_rule_versions (id, version, name, points_per_gram, daily_cap_points,"
                    " type_daily_caps, lot_lifetime_days, status, effective_from, created_at)"
                    " VALUES ($1, 1, 'chaos', 0.1, 200, '{}'::jsonb, 730, 'published', '2020-01-01', now())",
                    uuid.uuid4(),
                )
            await conn.execute(
                "INSERT INTO methodology_versions (id, code, version, behaviour_type, category, name, description,"
                " unit, net_factor_g, max_quantity_per_record, max_quantity_per_day, citation, derivation,"
                " illustrative, status, effective_from, created_at, published_at) VALUES ($1, $2, 1, $2, 'travel',"
                " 'chaos', '', 'km', $3, 60, NULL, '', '', false, 'published', '2020-01-01', now(), now())",
                uuid.uuid4(),
                self.btype,
                Decimal("10"),
            )
        finally:
            await conn.close()
        self.merchant = await self._org("merchant")
        self.items = {}
        for name, price, stock, limit, days, policy in (
            ("limited", 5, 40, 4, 30, "refund"),
            ("day-refund", 3, None, None, 1, "refund"),
            ("day-forfeit", 2, 30, None, 1, "forfeit"),
        ):
            r = await call(
                "POST",
                "/v1/mall/items",
                headers=self.merchant["headers"],
                key=uuid.uuid4().hex,
                final=True,
                json={
                    "title": f"chaos {name}",
                    "points_price": price,
                    "stock": stock,
                    "per_user_limit": limit,
                    "voucher_valid_days": days,
                    "expiry_policy": policy,
                },
            )
            assert r.status_code == 201, r.text
            self.items[r.json()["id"]] = {"name": name, "price": price, "stock": stock, "limit": limit}
        self.people = await asyncio.gather(*[self._person(i) for i in range(self.n_people)])

    async def _org(self, kind: str) -> dict:
        username = f"chaos-{kind}-{uuid.uuid4().hex[:8]}"
        code = (
            "91"
            + f"{self.random.randint(0, 999999):06d}"
            + "".join(self.random.choices("0123456789ABCDEFGHJKLMNPQRTUWXY", k=10))
        )
        r = await self.call(
            "POST",
            "/v1/organizations",
            key=uuid.uuid4().hex,
            final=True,
            json={
                "kind": kind,
                "name": username,
                "credit_code": code,
                "admin": {"username": username, "password": PASSWORD},
            },
        )
        assert r.status_code == 201, r.text
        org_id = r.json()["id"]
        r = await self.call("POST", f"/v1/organizations/{org_id}/approve", headers=self.authority, final=True)
        assert r.status_code in (200, 409), r.text
        if kind == "operator":  # trusted to enrol people on its own word, with every scope
            for what, body in (
                ("trusted-enrolment", {"trusted": True, "reason": "chaos"}),
                (
                    "allowed-scopes",
                    {"scopes": ["behaviours:submit", "account:read", "mall"], "reason": "chaos"},
                ),
            ):
                r = await self.call(
                    "PUT", f"/v1/organizations/{org_id}/{what}", headers=self.authority, final=True, json=body
                )
                assert r.status_code == 200, r.text
        r = await self.call(
            "POST",
            "/v1/auth/token",
            final=True,
            data={"grant_type": "password", "username": username, "password": PASSWORD},
        )
        assert r.status_code == 200, r.text
        return {"id": org_id, "headers": {"Authorization": f"Bearer {r.json()['access_token']}"}}

    async def _person(self, i: int) -> Person:
        ext = f"chaos-{uuid.uuid4().hex[:10]}"
        r = await self.call(
            "POST",
            "/v1/operator/users",
            headers=self.op_headers,
            key=uuid.uuid4().hex,
            final=True,
            json={
                "external_user_id": ext,
                "identifier": {"type": "phone", "value": f"+86137{uuid.uuid4().int % 10**8:08d}"},
                "consent": {
                    "agreement_version": "v1",
                    "accepted_at": (datetime.now(UTC) - timedelta(days=60)).isoformat(),
                },
            },
        )
        assert r.status_code == 201, r.text
        person = Person(ext, r.json()["user_id"], {})
        await self.refresh_token(person)
        return person

    # ---------------------------------------------------------------- workload

    def _record(self, person: Person) -> dict:
        person.slot += 1
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1, minutes=30 * person.slot)
        record = {
            "record_id": f"c-{uuid.uuid4().hex[:16]}",
            "external_user_id": person.ext,
            "type": self.btype,
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=10)).isoformat(),
            "quantity": float(self.random.choice([1, 2, 3])),
            "unit": "km",
            "scene_id": None,
            "evidence": {"source": "chaos-card", "ref": uuid.uuid4().hex},
        }
        self.records[record["record_id"]] = record
        return record

    async def submit(self, records: list[dict], key: str, final: bool = False) -> bool:
        body = json.dumps({"records": records}, separators=(",", ":")).encode()
        headers = {
            **self.op_headers,
            "Content-Type": "application/json",
            "X-Content-Signature": security.sign_detached(body, self.pem, "ES256", self.kid),
        }
        r = await self.call(
            "POST", "/v1/operator/behaviour-batches", key=key, headers=headers, content=body, final=final
        )
        if r is None:
            self.pending.append(("batch", records, key))
            return False
        if r.status_code != 200:
            self.stats.violations.append(f"batch {key}: {r.status_code} {r.text[:300]}")
            return True
        self.stats.batches += 1
        for rec, outcome in zip(records, r.json()["results"], strict=True):
            first = self.acknowledged.get(rec["record_id"])
            if outcome["status"] == "rejected":
                self.stats.violations.append(f"record {rec['record_id']} rejected: {outcome['code']}")
            elif first is None:
                self.acknowledged[rec["record_id"]] = outcome
            elif (outcome["status"], outcome["points"]) != ("duplicate", first["points"]):
                self.stats.violations.append(f"record {rec['record_id']} answered {outcome} after {first}")
        return True

    async def ingest_worker(self) -> None:
        while not self.stopping:
            records = [
                self._record(self.random.choice(self.people)) for _ in range(self.random.randint(5, 25))
            ]
            sent = list(self.acknowledged)
            if sent and self.random.random() < 0.5:  # resend a few acknowledged records: duplicates
                again = [self.records[r] for r in self.random.sample(sent, min(3, len(sent)))]
                records += again
                self.stats.resent_records += len(again)
            self.stats.records_sent += len(records)
            await self.submit(records, uuid.uuid4().hex)

    async def order(self, person: Person, item_id: str, key: str, final: bool = False) -> None:
        r = await self.call(
            "POST",
            "/v1/me/orders",
            key=key,
            person=person,
            final=final,
            json={"item_id": item_id, "quantity": 1},
        )
        if r is None:
            self.pending.append(("order", person, item_id, key))
        elif r.status_code == 201:
            order = r.json()
            known = self.order_keys.get(key)
            if known is not None and known != order["id"]:
                self.stats.violations.append(f"order key {key} answered two orders")
            self.order_keys[key] = order["id"]
            self.orders[order["id"]] = {**order, "person": person}
            self.stats.orders_placed += known is None
        elif r.status_code == 409 and _code(r) in (
            "insufficient_points",
            "out_of_stock",
            "per_user_limit_exceeded",
        ):
            self.stats.orders_refused += 1
        else:
            self.stats.violations.append(f"order: {r.status_code} {r.text[:300]}")

    async def order_worker(self) -> None:
        await asyncio.sleep(1)
        while not self.stopping:
            await self.order(
                self.random.choice(self.people), self.random.choice(list(self.items)), uuid.uuid4().hex
            )

    async def close(self, kind: str, order_id: str, key: str, final: bool = False) -> None:
        order = self.orders[order_id]
        if kind == "cancel":
            r = await self.call(
                "POST", f"/v1/me/orders/{order_id}/cancel", key=key, person=order["person"], final=final
            )
        else:
            r = await self.call(
                "POST",
                f"/v1/merchant/vouchers/{order['voucher']['code']}/redeem",
                key=key,
                headers=self.merchant["headers"],
                final=final,
            )
        if r is None:
            self.pending.append(("close", kind, order_id, key))
        elif r.status_code == 200:
            (self.cancelled if kind == "cancel" else self.redeemed).add(order_id)
            if kind == "cancel":
                self.stats.cancellations += 1
            else:
                self.stats.redemptions += 1
        elif r.status_code == 409 and _code(r) in (
            "voucher_redeemed",
            "voucher_cancelled",
            "voucher_expired",
        ):
            self.stats.closed_refusals += 1
        else:
            self.stats.violations.append(f"{kind} {order_id}: {r.status_code} {r.text[:300]}")

    async def close_worker(self, kind: str) -> None:
        while not self.stopping:
            await asyncio.sleep(0.05)
            open_orders = [o for o in self.orders if o not in self.cancelled and o not in self.redeemed]
            if open_orders:
                await self.close(kind, self.random.choice(open_orders), uuid.uuid4().hex)

    async def expiry_worker(self) -> None:
        """The voucher expiry job, as if two days had passed: it races the cancellations and redemptions."""
        while not self.stopping:
            await asyncio.sleep(self.random.uniform(1.0, 3.0))
            try:
                done = await self.run_job()
                self.stats.expiry_runs += 1
                self.stats.expired_by_job += done["orders"]
            except Exception:  # noqa: BLE001 - its backend may be terminated: the job is simply run again
                self.stats.retries += 1

    async def chaos_worker(self) -> None:
        """The events in a random order, each after a random stretch of normal traffic with the server up."""
        events = ["kill"] * self.kills + ["terminate"] * self.terminations
        self.random.shuffle(events)
        gap = self.duration / (len(events) + 1)
        for event in events:
            await asyncio.sleep(gap * self.random.uniform(0.5, 1.5))
            if event == "kill":
                self.up.clear()
                await asyncio.to_thread(self.server.kill)
                self.stats.kills += 1
                await asyncio.sleep(self.random.uniform(0, 0.5))
                await asyncio.to_thread(self.server.start)
                self.stats.restarts += 1
                self.up.set()
            else:
                conn = await asyncpg.connect(self.database_url)
                try:  # until a transaction in flight is hit (at most a second)
                    for _ in range(50):
                        terminated = await conn.fetchval(TERMINATE)
                        if terminated:
                            self.stats.backends_terminated += terminated
                            break
                        await asyncio.sleep(0.02)
                    self.stats.terminations += 1
                finally:
                    await conn.close()

    # ---------------------------------------------------------------- the run

    async def run(self) -> dict:
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=30) as http:
            self.http = http
            await self.setup()
            self.started = time.time()
            workers = [
                self.ingest_worker(),
                self.ingest_worker(),
                self.order_worker(),
                self.order_worker(),
                self.close_worker("cancel"),
                self.close_worker("redeem"),
                self.expiry_worker(),
            ]
            tasks = [asyncio.create_task(w) for w in workers]
            chaos = asyncio.create_task(self.chaos_worker())
            await asyncio.sleep(self.duration)
            await chaos  # every event has happened (restarts take time) ...
            await asyncio.sleep(1)  # ... and traffic runs a moment with the server up
            self.stopping = True
            await asyncio.gather(*tasks)
            self.up.set()
            # every operation that had no answer yet is driven to one
            pending, self.pending = self.pending, []
            for item in pending:
                if item[0] == "batch":
                    await self.submit(item[1], item[2], final=True)
                elif item[0] == "order":
                    await self.order(item[1], item[2], item[3], final=True)
                else:
                    await self.close(item[1], item[2], item[3], final=True)
            self.elapsed = time.time() - self.started
            await self.check()
        return self.report()

    # ---------------------------------------------------------------- checks

    async def check(self) -> None:
        v = self.stats.violations
        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetch(
                "SELECT record_id, points, user_id::text FROM behaviour_records WHERE operator_id = $1",
                uuid.UUID(self.op["id"]),
            )
            stored: dict[str, list] = {}
            for r in rows:
                stored.setdefault(r["record_id"], []).append(r)
            for record_id in self.records:
                if record_id not in self.acknowledged:
                    v.append(f"record {record_id} was never acknowledged")
                copies = stored.get(record_id, [])
                if len(copies) != 1:
                    v.append(f"record {record_id} stored {len(copies)} times")
                elif (
                    record_id in self.acknowledged
                    and copies[0]["points"] != self.acknowledged[record_id]["points"]
                ):
                    v.append(
                        f"record {record_id}: {copies[0]['points']} points stored, "
                        f"{self.acknowledged[record_id]['points']} acknowledged"
                    )
            for record_id in set(stored) - set(self.records):
                v.append(f"record {record_id} credited but never sent")
            orders = await conn.fetch(
                "SELECT id::text, user_id::text, item_id::text, status, points, refunded_points, quantity"
                " FROM mall_orders WHERE merchant_id = $1",
                uuid.UUID(self.merchant["id"]),
            )
            by_id = {o["id"]: o for o in orders}
            if len(by_id) != len(orders):
                v.append("an order id is stored twice")
            if set(by_id) != set(self.orders):
                v.append(
                    f"orders stored {len(by_id)} vs acknowledged {len(self.orders)}: "
                    f"lost {sorted(set(self.orders) - set(by_id))[:5]}, "
                    f"unacknowledged {sorted(set(by_id) - set(self.orders))[:5]}"
                )
            for order_id in self.cancelled:
                if by_id.get(order_id, {}).get("status") != "cancelled":
                    v.append(f"order {order_id} cancelled but {by_id.get(order_id, {}).get('status')}")
            for order_id in self.redeemed:
                if by_id.get(order_id, {}).get("status") != "redeemed":
                    v.append(f"order {order_id} redeemed but {by_id.get(order_id, {}).get('status')}")
            if self.cancelled & self.redeemed:
                v.append(f"orders both cancelled and redeemed: {sorted(self.cancelled & self.redeemed)[:5]}")
            for item_id, item in self.items.items():
                stock = (await self.call("GET", f"/v1/mall/items/{item_id}", final=True)).json()["stock"]
                mine = [o for o in orders if o["item_id"] == item_id]
                if item["stock"] is not None:
                    held = sum(o["quantity"] for o in mine if o["status"] in ("issued", "redeemed"))
                    if stock != item["stock"] - held:
                        v.append(f"item {item['name']}: stock {stock}, expected {item['stock'] - held}")
                if item["limit"] is not None:
                    per_person: dict[str, int] = {}
                    for o in mine:
                        if o["status"] in ("issued", "redeemed") or (
                            o["status"] == "expired" and not o["refunded_points"]
                        ):
                            per_person[o["user_id"]] = per_person.get(o["user_id"], 0) + o["quantity"]
                    over = {u: n for u, n in per_person.items() if n > item["limit"]}
                    if over:
                        v.append(f"item {item['name']}: per-person limit exceeded {over}")
            earned_by: dict[str, int] = {}
            for record_id, outcome in self.acknowledged.items():
                ext = self.records[record_id]["external_user_id"]
                earned_by[ext] = earned_by.get(ext, 0) + outcome["points"]
            spent_by: dict[str, int] = {}
            for o in orders:
                spent_by[o["user_id"]] = spent_by.get(o["user_id"], 0) + o["points"] - o["refunded_points"]
            for person in self.people:
                earned, spent = earned_by.get(person.ext, 0), spent_by.get(person.user_id, 0)
                account = await conn.fetchrow(
                    "SELECT balance, lifetime_points FROM point_accounts WHERE user_id = $1",
                    uuid.UUID(person.user_id),
                )
                got = (account["balance"], account["lifetime_points"]) if account else (0, 0)
                if got != (earned - spent, earned):
                    v.append(
                        f"person {person.ext}: balance/lifetime {got}, expected {(earned - spent, earned)}"
                    )
        finally:
            await conn.close()
        from app.core import audit
        from app.points.verify import verify

        # The terminations end any busy backend named carbon-points, this process's own too (the expiry job's, a
        # test's); the pool gives out no connection it knows ended (db._closed_is_gone), but the checks do not rely
        # on the goodbye having been read: they run on new connections.
        await db.engine().dispose()
        async with db.sessionmaker()() as session:
            for violation in await verify(session):
                v.append(f"ledger verify: {violation.check} {violation.examples[:2]}")
            chain = await audit.verify(session)
            self.audit_entries = chain.entries
            v.extend(f"audit: {b}" for b in chain.broken)
            await session.rollback()

    def report(self) -> dict:
        s = self.stats
        return {
            "chaos": {
                "duration_s": round(self.elapsed, 1),
                "server_kills_survived": s.kills,
                "restarts": s.restarts,
                "backend_terminations": s.terminations,
                "backends_terminated": s.backends_terminated,
            },
            "traffic": {
                "requests": s.requests,
                "retries": s.retries,
                "connection_errors": s.connection_errors,
                "server_errors_retried": s.server_errors,
                "batches": s.batches,
                "records": len(self.records),
                "records_resent": s.resent_records,
                "orders": len(self.orders),
                "orders_refused": s.orders_refused,
                "cancellations": s.cancellations,
                "redemptions": s.redemptions,
                "refused_closed_orders": s.closed_refusals,
                "voucher_expiry_runs": s.expiry_runs,
                "vouchers_expired_by_job": s.expired_by_job,
            },
            "checked": [
                "every acknowledged record stored exactly once with its acknowledged points",
                "no record credited that was not sent; resends answered duplicate with the first points",
                "every acknowledged order stored once, no order without an acknowledgement",
                "acknowledged cancellations and redemptions in force, never both",
                "stock and per-person limits exact",
                "each balance = earned - spent, lifetime = earned",
                "ledger verify clean",
                f"audit chain intact ({getattr(self, 'audit_entries', 0)} entries)",
            ],
            "violations": s.violations,
        }


def _code(r: httpx.Response) -> str | None:
    try:
        return r.json().get("code")
    except ValueError:
        return None


async def voucher_expiry_in_two_days() -> dict:
    from app.mall import tasks as mall_tasks

    return await mall_tasks.expire_all(datetime.now(UTC) + timedelta(days=2))


async def main_async(args, urls) -> dict:
    from app.core import redis

    db.init(urls.database_url, 5)
    redis.init(urls.redis_url)
    server = ChaosServer(urls.database_url, urls.redis_url, bootstrap_admin="chaos-admin:chaos-admin-pw")
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as c:
            r = await c.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": "chaos-admin", "password": "chaos-admin-pw"},
            )
            authority = {"Authorization": f"Bearer {r.json()['access_token']}"}
        run = Chaos(
            server,
            urls.database_url,
            authority,
            people=args.people,
            duration=args.duration,
            kills=args.kills,
            terminations=args.terminations,
            seed=args.seed,
            run_job=voucher_expiry_in_two_days,
        )
        return await run.run()
    finally:
        await asyncio.to_thread(server.stop)
        await db.dispose()
        await redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--terminations", type=int, default=12)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    from app.core import embedded, migrate

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="carbon-chaos-"))
    urls = embedded.ensure_servers(None, None, data_dir)
    try:
        migrate.upgrade(urls.database_url)
        report = asyncio.run(main_async(args, urls))
    finally:
        embedded.stop_all(fast=True)
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["violations"] else 0)


if __name__ == "__main__":
    main()
