"""OWASP API7:2023 Server Side Request Forgery: URLs that clients send are stored, never fetched.

Scene evidence links, mall item images and behaviour evidence references may name any host,
including the cloud metadata address and internal names. The platform keeps them as text: while
they are submitted, read and listed, the process resolves no host name and opens no network
connection (the database and Redis are reached over local sockets already open or on loopback).
"""

import pathlib
import socket
from datetime import timedelta

import pytest

from app.core import clock
from tests.factories import make_operator, make_org
from tests.factories_mall import item_body, make_item, make_merchant
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit
from tests.factories_scenes import make_scene, scene_body

TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://ssrf-canary.invalid/ping",
    "https://localhost:6379/",
    "http://[::1]:5432/",
    "http://10.0.0.1/admin",
]
LOCAL = {"localhost", "127.0.0.1", "::1", None, ""}


@pytest.fixture
def network(monkeypatch):
    """Every name lookup and TCP/UDP connection of the process while the test runs."""
    seen: list[tuple[str, object]] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        seen.append(("resolve", host))
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple):
            seen.append(("connect", address[0]))
        return real_connect(self, address)

    def connect_ex(self, address):
        if isinstance(address, tuple):
            seen.append(("connect", address[0]))
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


def _outbound(seen) -> list:
    return [(what, host) for what, host in seen if host not in LOCAL]


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


class TestStoredNeverFetched:
    async def test_scene_evidence_links(self, client, network):
        so = await make_org(client, "scene_operator")
        network.clear()
        scene = await make_scene(client, so, evidence_links=TARGETS)
        assert scene["evidence_links"] == TARGETS
        r = await client.get(f"/v1/scenes/{scene['id']}", headers=so.headers)
        assert r.json()["evidence_links"] == TARGETS
        r = await client.patch(
            f"/v1/scenes/{scene['id']}", json={"evidence_links": TARGETS[::-1]}, headers=so.headers
        )
        assert r.status_code == 200, r.text
        r = await client.post(f"/v1/scenes/{scene['id']}/submit", headers=so.headers)
        assert r.status_code == 200, r.text
        assert _outbound(network) == []

    async def test_mall_item_images(self, client, network):
        merchant = await make_merchant(client)
        network.clear()
        item = await make_item(client, merchant, images=TARGETS)
        assert item["images"] == TARGETS
        r = await client.patch(
            f"/v1/mall/items/{item['id']}", json={"images": TARGETS[:2]}, headers=merchant.headers
        )
        assert (r.status_code, r.json()["images"]) == (200, TARGETS[:2])
        r = await client.get("/v1/mall/items", params={"merchant_id": merchant.id})
        assert r.status_code == 200
        assert _outbound(network) == []

    async def test_links_that_are_not_http_are_refused(self, client):
        so = await make_org(client, "scene_operator")
        for link in ("file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "ftp://x/y", "//no-scheme/x"):
            r = await client.post("/v1/scenes", json=_scene(evidence_links=[link]), headers=so.headers)
            assert (r.status_code, r.json()["code"]) == (422, "invalid_evidence_link"), link
        merchant = await make_merchant(client)
        for link in (
            "file:///etc/passwd",
            "gopher://127.0.0.1:6379/_FLUSHALL",
            "ftp://x/y",
            "javascript:alert(1)",
        ):
            r = await client.post("/v1/mall/items", json=item_body(images=[link]), headers=merchant.headers)
            assert (r.status_code, r.json()["code"]) == (422, "validation_error"), link

    async def test_behaviour_evidence_references(self, client, network):
        btype = await make_methodology()
        op = await make_operator(client)
        ext = (await enrol(client, op))["external_user_id"]
        network.clear()
        records = [
            {**record(ext, btype, quantity=1.0, minutes=1), "evidence": {"source": "url", "ref": url}}
            for url in TARGETS
        ]
        for i, rec in enumerate(records):
            start = clock.now() - timedelta(hours=10 - i)
            rec["started_at"], rec["ended_at"] = start.isoformat(), (start + timedelta(minutes=1)).isoformat()
        r = await submit(client, op, records)
        assert r.json()["summary"] == {"accepted": 5, "duplicate": 0, "rejected": 0}, r.text
        assert _outbound(network) == []


def _scene(**overrides):
    return scene_body(**overrides)


# The HTTP clients: the SMS gateway adapter posts to CARBON_SMS_HTTP_URL, a URL the deployment
# configures (its only input is the message); the webhook worker posts to the URLs organisations
# subscribed, each resolved, checked against private, link-local and metadata addresses in production,
# and connected to at the checked address (tests/webhooks/test_delivery.py proves the refusals).
HTTP_CLIENTS = {"core/sms.py", "webhooks/delivery.py"}


def test_the_app_has_no_http_client():
    """No module of the platform imports an HTTP client but the two above: nothing else could fetch
    a URL a client sent."""
    root = pathlib.Path(__file__).resolve().parents[2] / "app"
    offenders = []
    for path in root.rglob("*.py"):
        if str(path.relative_to(root)) in HTTP_CLIENTS:
            continue
        text = path.read_text(encoding="utf-8")
        for needle in (
            "import httpx",
            "import requests",
            "import aiohttp",
            "urllib.request",
            "urlopen(",
            "http.client",
        ):
            if needle in text:
                offenders.append(f"{path.relative_to(root)}: {needle}")
    assert offenders == []
