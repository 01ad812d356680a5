"""Ops endpoints, request ids, security headers, CORS, HSTS, JSON logs."""

import json
import logging
import re

import httpx
import pytest
from opentelemetry import trace

from app.core import redis
from app.core.config import Settings
from app.core.observability import JsonFormatter
from app.main import create_app


class TestHealth:
    async def test_healthz(self, client):
        r = await client.get("/healthz")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})

    async def test_readyz(self, client):
        r = await client.get("/readyz")
        assert (r.status_code, r.json()) == (
            200,
            {"status": "ready", "checks": {"postgresql": "ok", "redis": "ok"}},
        )

    async def test_readyz_when_redis_is_unreachable(self, client, monkeypatch):
        class Down:
            async def ping(self):
                raise ConnectionError("down")

        monkeypatch.setattr(redis, "client", lambda: Down())
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {
            "status": "not_ready",
            "checks": {"postgresql": "ok", "redis": "unavailable: ConnectionError"},
        }


class TestMetrics:
    async def test_prometheus_text(self, client):
        await client.get("/healthz")
        await client.get("/v1/definitely-not-here")
        r = await client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=")
        assert "# TYPE carbon_http_requests_total counter" in r.text
        assert re.search(
            r'carbon_http_requests_total\{method="GET",route="/healthz",status="200"\} \d+', r.text
        )
        assert re.search(
            r'carbon_http_requests_total\{method="GET",route="unmatched",status="404"\} \d+', r.text
        )
        assert "carbon_http_request_seconds_bucket" in r.text

    async def test_each_request_counted_and_timed_once(self, client):
        def seen(text: str) -> tuple[float, float]:
            count = re.search(
                r'carbon_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)', text
            )
            timed = re.search(
                r'carbon_http_request_seconds_count\{method="GET",route="/healthz"\} (\S+)', text
            )
            assert count and timed, "the /healthz series are exported"
            return float(count[1]), float(timed[1])

        await client.get("/healthz")
        before = seen((await client.get("/metrics")).text)
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200
        assert seen((await client.get("/metrics")).text) == (before[0] + 3, before[1] + 3)


class TestHeaders:
    async def test_security_headers(self, client):
        r = await client.get("/healthz")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in r.headers

    async def test_request_id_echoed_or_made(self, client):
        r = await client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
        assert r.headers["x-request-id"] == "abc-123.x"
        made = (await client.get("/healthz")).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)

    async def test_unsafe_request_id_is_replaced(self, client):
        r = await client.get("/healthz", headers={"X-Request-ID": 'bad id"}'})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
        r = await client.get("/healthz", headers={"X-Request-ID": "x" * 101})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])

    async def test_request_id_in_problems(self, client):
        r = await client.get("/v1/nope", headers={"X-Request-ID": "find-me"})
        assert r.json()["request_id"] == "find-me"

    async def test_no_cors_by_default(self, client):
        r = await client.options(
            "/v1/organizations",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in r.headers


class TestConfiguredApp:
    """Settings that shape the app itself: a separate app object (routes only, no lifespan)."""

    @pytest.fixture
    def configured(self, app):
        return create_app(
            Settings(cors_origins="https://app.example, https://admin.example/", hsts_seconds=31536000)
        )

    async def test_cors_for_configured_origins(self, configured):
        transport = httpx.ASGITransport(app=configured)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.options(
                "/v1/organizations",
                headers={"Origin": "https://admin.example", "Access-Control-Request-Method": "POST"},
            )
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == "https://admin.example"
            r = await c.get("/healthz", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in r.headers

    async def test_hsts_only_over_https(self, configured):
        transport = httpx.ASGITransport(app=configured)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as c:
            r = await c.get("/healthz")
            assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            assert "strict-transport-security" not in (await c.get("/healthz")).headers


class _Recording(trace.TracerProvider):
    """An OpenTelemetry tracer provider as an SDK's would be set up: the spans it was asked to start."""

    def __init__(self):
        self.spans: list[str] = []

    def get_tracer(self, *args, **kwargs) -> trace.Tracer:
        spans = self.spans

        class Tracer(trace.NoOpTracer):
            def start_span(self, name, *args, **kwargs):
                spans.append(name)
                return super().start_span(name, *args, **kwargs)

        return Tracer()


class TestOpenTelemetry:
    async def test_off_unless_configured_then_a_span_for_each_request(self, app, monkeypatch):
        provider = _Recording()
        monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
        for enabled, first_spans in ((False, []), (True, ["GET"])):  # the request's span, then its steps'
            provider.spans.clear()
            configured = create_app(Settings(opentelemetry=enabled))
            transport = httpx.ASGITransport(app=configured)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                assert (await c.get("/healthz")).status_code == 200
            assert provider.spans[:1] == first_spans
        assert Settings().opentelemetry is False


class TestSettings:
    def test_production_refuses_the_default_secret(self):
        with pytest.raises(ValueError, match="CARBON_IDENTITY_HASH_KEY"):
            Settings(environment="production")
        with pytest.raises(ValueError, match="CARBON_WEBHOOK_SECRET_KEY"):
            Settings(environment="production", identity_hash_key="k" * 32)
        settings = Settings(environment="production", identity_hash_key="k" * 32, webhook_secret_key="w" * 32)
        assert settings.environment == "production"

    def test_cors_origin_list(self):
        assert Settings().cors_origin_list == []
        assert Settings(cors_origins=" https://a.example/ ,https://b.example").cors_origin_list == [
            "https://a.example",
            "https://b.example",
        ]


class TestJsonLogs:
    def test_one_json_object_per_line_with_extras(self):
        record = logging.LogRecord("carbon.access", logging.INFO, __file__, 1, "request", (), None)
        record.request_id = "r-1"
        record.status = 200
        line = JsonFormatter().format(record)
        data = json.loads(line)
        assert (data["level"], data["logger"], data["msg"], data["request_id"], data["status"]) == (
            "INFO",
            "carbon.access",
            "request",
            "r-1",
            200,
        )
