"""Factories for the reliability and security suite: one caller of every role, and a thread bridge.

``make_cast(client)`` makes a fresh authority account, approved organisations of every kind, an
operator with a key, an expert and a person enrolled by the operator, and returns their headers
by role name. ``Bridge`` lets synchronous code (hypothesis, schemathesis) running in a worker
thread send requests through the test's ``httpx.AsyncClient`` on the test's event loop, where the
app's database pool lives.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from tests.factories import Org, authority_token, bearer, make_operator, make_org
from tests.factories_points import enrol, user_headers
from tests.factories_scenes import make_expert

ROLES = (
    "anonymous",
    "authority",
    "operator",
    "merchant",
    "scene_operator",
    "verifier",
    "buyer",
    "expert",
    "user",
)


@dataclass
class Cast:
    authority: str
    operator: Org
    orgs: dict[str, Org]
    expert_id: str
    expert_token: str
    user: dict
    user_headers: dict[str, str]
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


async def make_cast(client: httpx.AsyncClient) -> Cast:
    authority = await authority_token(client)
    operator = await make_operator(client, authority)
    orgs = {
        kind: await make_org(client, kind, authority=authority)
        for kind in ("merchant", "scene_operator", "verifier", "buyer")
    }
    expert = await make_expert(client, authority, fields=["data"])
    user = await enrol(client, operator)
    uh = await user_headers(client, operator, user["external_user_id"])
    cast = Cast(authority, operator, orgs, expert.id, expert.token, user, uh)
    cast.headers = {
        "anonymous": {},
        "authority": bearer(authority),
        "operator": operator.headers,
        **{kind: org.headers for kind, org in orgs.items()},
        "expert": expert.headers,
        "user": uh,
    }
    return cast


class Bridge:
    """Run coroutines on ``loop`` from a worker thread and wait for their result."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = 120):
        self.loop = loop
        self.timeout = timeout

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)


def hold_the_rate_window(monkeypatch) -> datetime:
    """Hold the platform clock in the middle of a minute: no rate window ends during the test."""
    from app.core import clock

    moment = clock.now().replace(second=30, microsecond=0)
    monkeypatch.setattr(clock, "_frozen", moment)  # monkeypatch lets the clock run again afterwards
    return moment
