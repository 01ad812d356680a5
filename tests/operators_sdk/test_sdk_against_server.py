"""The SDK against the real platform (in process, over ``httpx.ASGITransport``).

registration → approval → key → enrolment → a simulated file of records → outcomes; a run killed
half-way and re-run credits each record exactly once; a tampered body is refused.
"""

import csv
from pathlib import Path

import httpx
import pytest
from carbon_operator import AsyncPlatformClient, OperatorKey, PlatformError, enrol_file, submit_file
from carbon_operator.client import BATCH_PATH, Chunk
from carbon_operator.records import write_records, write_users
from carbon_operator.signing import sign_detached
from carbon_operator.simulate import Simulation, simulate

from tests.factories import PASSWORD, authority_token, bearer, credit_code, trust_operator, unique
from tests.factories_points import ensure_rule, make_methodology

BASE = "http://test"
MODES = ("metro", "bus", "cycling", "walking", "nev")


class Killed(Exception):
    """The operator's process dies right after the platform answered."""


class KillAfter(httpx.AsyncBaseTransport):
    """Passes requests to the app; after ``batches`` answered batch requests, dies."""

    def __init__(self, inner: httpx.AsyncBaseTransport, batches: int | None = None):
        self.inner, self.batches, self.sent = inner, batches, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == BATCH_PATH:
            self.sent += 1
            if self.batches is not None and self.sent > self.batches:
                await response.aread()
                raise Killed()
        return response


@pytest.fixture
def transport(app) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))


@pytest.fixture
async def types() -> dict[str, str]:
    """Published methodologies for the simulator's modes, under types of this test's own."""
    await ensure_rule()
    return {mode: await make_methodology(behaviour_type=unique(mode)) for mode in MODES}


@pytest.fixture
async def operator(client, transport) -> tuple[str, OperatorKey]:
    """An operator registered, approved and keyed through the SDK; returns its id and key."""
    username = unique("op-admin")
    async with AsyncPlatformClient(BASE, transport=transport) as anonymous:
        org = await anonymous.apply_organization(unique("Metro Go"), credit_code(), username, PASSWORD)
    assert org.status == "pending"
    authority = await authority_token(client)
    r = await client.post(f"/v1/organizations/{org.id}/approve", headers=bearer(authority))
    assert r.status_code == 200, r.text
    await trust_operator(client, authority, org.id)  # these tests enrol people on the operator's word
    key = OperatorKey.generate()
    async with AsyncPlatformClient(BASE, client_id=org.id, key=key, transport=transport) as admin:
        registered = await admin.register_key(username=username, password=PASSWORD)
    assert registered.kid == key.kid
    return org.id, key


def simulated_files(
    tmp_path: Path, types: dict[str, str], users: int, days: int
) -> tuple[Path, Path, Simulation]:
    sim = simulate(users, days, duplicates=0.01, invalid=0.01)
    records = [r.model_copy(update={"type": types.get(r.type, r.type)}) for r in sim.records]
    data, people = tmp_path / "behaviours.csv", tmp_path / "users.csv"
    write_records(data, records)
    write_users(people, sim.users)
    return data, people, sim


async def credited_points(sdk: AsyncPlatformClient, people: Path) -> int:
    with people.open() as fh:
        ids = [row["external_user_id"] for row in csv.DictReader(fh)]
    total = 0
    for ext in ids:
        total += (await sdk.get_account(ext)).lifetime_points or 0
    return total


async def test_from_registration_to_outcomes(operator, types, transport, tmp_path):
    data, people, sim = simulated_files(tmp_path, types, users=240, days=30)
    org_id, key = operator
    async with AsyncPlatformClient(BASE, client_id=org_id, key=key, transport=transport) as sdk:
        enrolment = await enrol_file(sdk, people)
        assert (enrolment.enrolled, enrolment.failed) == (len(sim.users), [])
        result = await submit_file(sdk, data)
        assert result.totals["accepted"] == sim.clean
        assert result.totals["duplicate"] == sim.duplicates
        assert result.totals["rejected"] == sim.invalid
        assert {c.split(":")[1] for c in result.codes if c.startswith("rejected:")} == {
            "unknown_type", "implausible_quantity", "future_time"
        }  # fmt: skip
        assert result.totals["points"] > 0
        assert await credited_points(sdk, people) == result.totals["points"]
    with (tmp_path / "behaviours.rejected.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == sim.invalid


async def test_a_killed_run_resumes_and_credits_each_record_once(operator, types, transport, tmp_path):
    data, people, sim = simulated_files(tmp_path, types, users=40, days=10)
    org_id, key = operator
    dying = KillAfter(transport, batches=2)
    async with AsyncPlatformClient(BASE, client_id=org_id, key=key, transport=dying) as sdk:
        await enrol_file(sdk, people)
        with pytest.raises(Killed):
            await submit_file(sdk, data, chunk_size=100)
        assert dying.sent == 3  # the third batch was committed by the platform, never acknowledged here
        dying.batches = None
        result = await submit_file(sdk, data, chunk_size=100)
        assert (result.resumed, result.sent) == (2, result.batches - 2)
        assert result.totals["accepted"] == sim.clean
        assert result.totals["duplicate"] == sim.duplicates
        assert await credited_points(sdk, people) == result.totals["points"]
        again = await submit_file(sdk, data, chunk_size=100)
        assert again.sent == 0 and dying.sent == 3 + result.batches - 2
        assert await credited_points(sdk, people) == result.totals["points"]


async def test_a_tampered_body_is_refused(operator, types, transport, client, make_record):
    org_id, key = operator
    async with AsyncPlatformClient(BASE, client_id=org_id, key=key, transport=transport) as sdk:
        await sdk.enrol_user("u-tamper", "+8613900139000", "2026-01", "2026-01-01T00:00:00+08:00")
        chunk = Chunk.build(0, [make_record(1, external_user_id="u-tamper", type=types["metro"])])
        token = await sdk.access_token()
    tampered = chunk.body.replace(b"12.4", b"24.8")
    r = await client.post(
        BATCH_PATH,
        content=tampered,
        headers={
            **bearer(token),
            "Content-Type": "application/json",
            "Idempotency-Key": chunk.idempotency_key,
            "X-Content-Signature": sign_detached(chunk.body, key),
        },
    )
    assert r.status_code in (400, 401, 403, 422), r.text
    assert r.json()["code"] == "invalid_signature"


async def test_a_wrong_audience_is_refused(operator, transport):
    org_id, key = operator
    async with AsyncPlatformClient(
        BASE, client_id=org_id, key=key, transport=transport, token_audience="http://elsewhere/v1/auth/token"
    ) as sdk:
        with pytest.raises(PlatformError) as caught:
            await sdk.access_token()
    assert caught.value.status == 401
