"""The client address: ``X-Forwarded-*`` count only from the proxies in ``CARBON_TRUSTED_PROXIES``.

The address is the anonymous caller's rate-limit identity, so a caller that could choose it could
rotate it. Requests go both to the app and to the app as ``carbon-points serve`` runs it (uvicorn
with the options serve passes), so the server's own proxy handling cannot trust anyone either.
"""

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.core import clock
from app.core.config import Settings

LIMITED = "/v1/public/verifiers?limit=1"


@pytest.fixture
def one_call_a_minute(settings, monkeypatch):
    """One anonymous call a minute, counted in a minute no other test counted in."""
    monkeypatch.setattr(settings, "rate_limit_per_minute", 1)
    clock.freeze(datetime(2001, 1, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(10**7), seconds=30))
    yield
    clock.freeze(None)


def xff(*hops: str) -> dict[str, str]:
    return {"X-Forwarded-For": ", ".join(hops)}


@pytest.mark.usefixtures("one_call_a_minute")
class TestUntrustedCallers:
    async def test_a_local_caller_cannot_rotate_its_address(self, served):
        async with served() as local:
            assert (await local.get(LIMITED, headers=xff("198.51.100.1"))).status_code == 200
            r = await local.get(LIMITED, headers=xff("198.51.100.2"))
            assert (r.status_code, r.json()["code"]) == (429, "rate_limited")

    async def test_nor_a_remote_one(self, client_at):
        async with client_at("203.0.113.50") as remote:
            assert (await remote.get(LIMITED, headers=xff("198.51.100.1"))).status_code == 200
            assert (await remote.get(LIMITED, headers=xff("198.51.100.2"))).status_code == 429

    async def test_forwarded_https_is_not_believed(self, client, settings, monkeypatch):
        monkeypatch.setattr(settings, "hsts_seconds", 600)
        r = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in r.headers


@pytest.mark.usefixtures("one_call_a_minute")
class TestTrustedProxies:
    async def test_the_proxy_names_the_client(self, served, settings, monkeypatch):
        monkeypatch.setattr(settings, "trusted_proxies", "127.0.0.1")
        async with served() as proxy:
            assert (await proxy.get(LIMITED, headers=xff("198.51.100.1"))).status_code == 200
            assert (await proxy.get(LIMITED, headers=xff("198.51.100.2"))).status_code == 200
            assert (await proxy.get(LIMITED, headers=xff("198.51.100.1"))).status_code == 429

    async def test_the_right_most_untrusted_address_is_the_client(self, client, settings, monkeypatch):
        monkeypatch.setattr(settings, "trusted_proxies", "127.0.0.1, 10.0.0.0/8")
        # the client may write anything left of the address the first proxy saw
        assert (
            await client.get(LIMITED, headers=xff("192.0.2.1", "203.0.113.9", "10.1.2.3"))
        ).status_code == 200
        r = await client.get(LIMITED, headers=xff("192.0.2.2", "203.0.113.9", "10.1.2.3"))
        assert r.status_code == 429
        assert (await client.get(LIMITED, headers=xff("203.0.113.10", "10.1.2.3"))).status_code == 200

    async def test_several_headers_are_one_list(self, client, settings, monkeypatch):
        monkeypatch.setattr(settings, "trusted_proxies", "127.0.0.1,10.0.0.0/8")
        headers = [("X-Forwarded-For", "192.0.2.1, 203.0.113.20"), ("X-Forwarded-For", "10.9.9.9")]
        assert (await client.get(LIMITED, headers=headers)).status_code == 200
        assert (await client.get(LIMITED, headers=xff("203.0.113.20"))).status_code == 429

    async def test_a_chain_of_trusted_proxies_only(self, client, settings, monkeypatch):
        monkeypatch.setattr(settings, "trusted_proxies", "127.0.0.1,10.0.0.0/8")
        assert (await client.get(LIMITED, headers=xff("10.0.0.5", "10.0.0.6"))).status_code == 200
        assert (await client.get(LIMITED, headers=xff("10.0.0.5"))).status_code == 429  # the left-most

    async def test_an_address_from_a_proxy_not_listed_is_ignored(self, client_at, settings, monkeypatch):
        monkeypatch.setattr(settings, "trusted_proxies", "10.0.0.0/8")
        async with client_at("203.0.113.60") as elsewhere:
            assert (await elsewhere.get(LIMITED, headers=xff("198.51.100.1"))).status_code == 200
            assert (await elsewhere.get(LIMITED, headers=xff("198.51.100.2"))).status_code == 429

    async def test_forwarded_https_from_the_proxy(self, client, settings, monkeypatch):
        monkeypatch.setattr(settings, "trusted_proxies", "127.0.0.1")
        monkeypatch.setattr(settings, "hsts_seconds", 600)
        r = await client.get("/healthz", headers={"X-Forwarded-Proto": "https", **xff("198.51.100.1")})
        assert r.headers["strict-transport-security"] == "max-age=600; includeSubDomains"


class TestSetting:
    def test_empty_by_default(self):
        assert Settings().trusted_proxies == ""

    @pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.0/33", "10.0.0.1/8", "*"])
    def test_only_addresses_and_networks(self, value):
        with pytest.raises(ValueError, match="CARBON_TRUSTED_PROXIES"):
            Settings(trusted_proxies=value)
