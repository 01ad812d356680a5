"""OWASP API8:2023 Security Misconfiguration.

Every response (success, error, docs) carries the security headers and a request id; private
answers are ``no-store``; CORS is off unless origins are configured, and then allows exactly
those; errors never show a stack trace or internals; debug is off; HSTS is sent behind TLS when
configured; a production deployment refuses the default secret; ``/docs`` and
``/openapi.json`` are served.
"""

import httpx
import pytest

from app.core.config import Settings, get_settings
from app.main import create_app
from tests.factories import authority_token, bearer

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
FOREIGN = "https://evil.example"


# HTML pages (the API reference among them) keep the referrer within the site: a page's links to
# the platform's other pages may tell where they came from; nothing leaves the site.
HTML_REFERRER_POLICY = "same-origin"


def assert_hardened(r: httpx.Response) -> None:
    html = r.headers.get("content-type", "").startswith("text/html")
    expected = {**SECURITY_HEADERS, **({"referrer-policy": HTML_REFERRER_POLICY} if html else {})}
    for name, value in expected.items():
        assert r.headers.get(name) == value, (str(r.url), r.status_code, name)
    assert r.headers.get("x-request-id"), str(r.url)
    assert "access-control-allow-origin" not in r.headers
    assert "server" not in r.headers and "x-powered-by" not in r.headers


class TestHeaders:
    async def test_on_every_kind_of_response(self, client):
        authority = await authority_token(client)
        responses = [
            await client.get("/healthz"),
            await client.get("/v1/organizations", headers=bearer(authority)),
            await client.get("/v1/organizations"),  # 401
            await client.get("/v1/organizations", headers={"Authorization": "Bearer x"}),
            await client.get("/v1/nowhere"),  # 404
            await client.delete("/healthz"),  # 405
            await client.post("/v1/organizations", json={}),  # 422
            await client.post(
                "/v1/organizations", content=b"{", headers={"Content-Type": "application/json"}
            ),
            await client.get("/docs"),
            await client.get("/openapi.json"),
            await client.get("/v1/public/experts"),
        ]
        for r in responses:
            assert_hardened(r)

    async def test_private_answers_are_not_cached(self, client):
        authority = await authority_token(client)
        r = await client.get("/v1/organizations", headers=bearer(authority))
        assert r.headers["cache-control"] == "no-store"
        r = await client.get("/v1/organizations")
        assert r.headers["cache-control"] == "no-store"

    async def test_hsts_behind_tls_when_configured(self, app, settings, monkeypatch):
        monkeypatch.setattr(settings, "hsts_seconds", 31536000)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as c:
            r = await c.get("/healthz")
        assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


class TestCors:
    async def test_off_by_default(self, client):
        assert get_settings().cors_origins == ""
        r = await client.options(
            "/v1/me/account",
            headers={
                "Origin": FOREIGN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-credentials" not in r.headers
        r = await client.get("/v1/public/experts", headers={"Origin": FOREIGN})
        assert r.status_code == 200
        assert "access-control-allow-origin" not in r.headers

    async def test_configured_origins_only(self):
        configured = create_app(Settings(cors_origins="https://app.example, https://admin.example/"))
        transport = httpx.ASGITransport(app=configured)
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization",
        }
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            ok = await c.options("/v1/me/orders", headers={"Origin": "https://app.example", **preflight})
            admin = await c.options("/v1/me/orders", headers={"Origin": "https://admin.example", **preflight})
            evil = await c.options("/v1/me/orders", headers={"Origin": FOREIGN, **preflight})
            sub = await c.options(
                "/v1/me/orders", headers={"Origin": "https://app.example.evil.example", **preflight}
            )
        assert (ok.status_code, ok.headers["access-control-allow-origin"]) == (200, "https://app.example")
        assert admin.headers["access-control-allow-origin"] == "https://admin.example"
        assert "access-control-allow-credentials" not in ok.headers
        for refused in (evil, sub):
            assert refused.status_code == 400
            assert "access-control-allow-origin" not in refused.headers


class TestErrorsRevealNothing:
    async def test_an_unexpected_error_is_a_bare_500(self, client, monkeypatch):
        from app.organizations import service

        async def boom(*args, **kwargs):
            raise RuntimeError("password=hunter2 at /work/main/app/organizations/service.py line 99")

        monkeypatch.setattr(service, "list_", boom)
        authority = await authority_token(client)
        r = await client.get("/v1/organizations", headers=bearer(authority))
        assert r.status_code == 500
        assert_hardened(r)
        body = r.json()
        assert set(body) == {"type", "title", "status", "detail", "code", "instance", "request_id"}
        assert body["code"] == "internal_error"
        for leak in ("hunter2", "Traceback", "service.py", "RuntimeError", "/work/"):
            assert leak not in r.text

    async def test_validation_errors_do_not_echo_input(self, client):
        secret = "s3cret-password-value"
        r = await client.post(
            "/v1/organizations",
            json={
                "kind": "nope",
                "name": "x",
                "credit_code": "bad",
                "admin": {"username": "u", "password": secret},
            },
        )
        assert r.status_code == 422
        assert secret not in r.text

    async def test_database_errors_are_not_shown(self, client):
        authority = await authority_token(client)
        r = await client.get("/v1/organizations", params={"cursor": "' OR 1=1 --"}, headers=bearer(authority))
        assert r.status_code in (400, 422)
        for leak in ("SELECT", "asyncpg", "sqlalchemy", "syntax"):
            assert leak not in r.text


class TestDeployment:
    def test_debug_is_off(self, app):
        assert app.debug is False

    def test_production_refuses_the_default_secret(self):
        with pytest.raises(ValueError, match="CARBON_IDENTITY_HASH_KEY"):
            Settings(environment="production")

    async def test_docs_are_served(self, client):
        r = await client.get("/docs")
        assert (r.status_code, r.headers["content-type"].split(";")[0]) == (200, "text/html")
        r = await client.get("/openapi.json")
        assert r.status_code == 200
        assert r.json()["info"]["title"] == "Carbon points platform"

    async def test_trace_is_not_allowed(self, client):
        r = await client.request("TRACE", "/v1/organizations")
        assert r.status_code == 405
