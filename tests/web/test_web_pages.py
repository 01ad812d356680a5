"""The web foundation over HTTP: the home page, headers, CSRF, languages, error pages, static files, /docs."""

import re
from datetime import UTC, datetime
from typing import Annotated

import httpx
from babel.numbers import format_decimal
from fastapi import Depends

from app.web import i18n
from app.web.sessions import Viewer
from tests.web.helpers import HTML, csrf_token, page_token

JSON = {"Accept": "application/json"}


def _total(html: str, name: str) -> str:
    match = re.search(rf'data-total="{name}">([^<]*)<', html)
    assert match, name
    return match.group(1)


class TestHomePage:
    async def test_the_totals_are_those_of_the_public_api(self, browser_client):
        api = (await browser_client.get("/v1/public/totals", headers=JSON)).json()
        cer = (await browser_client.get("/v1/public/cer/totals", headers=JSON)).json()
        html = (await browser_client.get("/")).text
        grouped = lambda n: format_decimal(n, locale="zh_CN")  # noqa: E731
        assert _total(html, "people") == grouped(api["people"])
        assert _total(html, "behaviours") == grouped(api["behaviours"])
        assert _total(html, "reduction") == format_decimal(
            api["reduction_g"] / 10**6, "#,##0.000", locale="zh_CN"
        )
        assert _total(html, "points-issued") == grouped(api["points_credited"])
        assert _total(html, "points-spent") == grouped(api["points_used"])
        assert _total(html, "points-expired") == grouped(api["points_expired"])
        assert _total(html, "cer-issued") == grouped(cer["issued_tonnes"])
        assert _total(html, "cer-retired") == grouped(cer["retired_tonnes"])
        for kind in ("operator", "merchant", "scene_operator", "verifier", "buyer"):
            assert _total(html, f"org-{kind}") == grouped(api["organisations"].get(kind, 0))

    async def test_it_is_chinese_by_default_with_a_skip_link_and_links_for_each_actor(self, browser_client):
        r = await browser_client.get("/")
        assert r.status_code == 200
        assert '<html lang="zh-CN">' in r.text
        assert "碳普惠平台" in r.text
        assert '<a class="skip-link" href="#main">跳到正文</a>' in r.text
        assert '<main id="main"' in r.text
        hrefs = set(re.findall(r'href="([^"]+)"', r.text))
        assert {"/sign-in", "/docs", "/redoc", "/redoc#tag/public"} <= hrefs
        assert not [h for h in hrefs if h.startswith(("http:", "https:", "//"))]

    async def test_html_responses_carry_the_security_headers(self, browser_client):
        r = await browser_client.get("/")
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store"
        assert "style=" not in r.text and "<style" not in r.text
        assert re.findall(r"<script(?![^>]*\bsrc=)", r.text) == []  # no inline script
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("cp_csrf=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    async def test_the_json_api_keeps_its_headers(self, browser_client):
        r = await browser_client.get("/v1/public/totals", headers=JSON)
        assert "content-security-policy" not in r.headers
        assert "set-cookie" not in r.headers


class TestCsrf:
    async def test_a_form_posted_without_its_token_is_refused_with_a_page(self, browser_client):
        await browser_client.get("/")
        r = await browser_client.post("/language", data={"lang": "en", "next": "/"})
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("text/html")
        assert "表单已失效" in r.text
        assert "lang=" not in r.headers.get("set-cookie", "")

    async def test_a_token_of_another_browser_is_refused(self, app, browser_client):
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=HTML
        )
        async with other:
            foreign = await page_token(other)
        await browser_client.get("/")
        r = await browser_client.post("/language", data={"lang": "en", "csrf_token": foreign})
        assert r.status_code == 403

    async def test_the_token_may_come_in_a_header(self, browser_client):
        token = await page_token(browser_client)
        r = await browser_client.post("/language", data={"lang": "en"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 303

    async def test_a_json_client_gets_problem_json(self, browser_client):
        r = await browser_client.post("/language", data={"lang": "en"}, headers=JSON)
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "csrf_failed"


class TestLanguage:
    async def test_the_switch_is_remembered(self, browser_client):
        token = await page_token(browser_client)
        r = await browser_client.post(
            "/language", data={"lang": "en", "next": "/sign-in", "csrf_token": token}
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/sign-in"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("lang=en;") and "Max-Age=31536000" in cookie and "SameSite=Lax" in cookie
        page = await browser_client.get("/sign-in")
        assert '<html lang="en">' in page.text
        assert ">Sign in</h1>" in page.text
        assert 'lang="zh-CN">中文</button>' in page.text
        home = await browser_client.get("/")
        assert "Carbon Inclusion Platform" in home.text and "碳普惠平台" not in home.text
        token = csrf_token(home.text)
        await browser_client.post("/language", data={"lang": "zh-CN", "csrf_token": token})
        assert '<html lang="zh-CN">' in (await browser_client.get("/")).text

    async def test_an_unknown_language_is_chinese_and_next_stays_on_this_site(self, browser_client):
        token = await page_token(browser_client)
        r = await browser_client.post(
            "/language", data={"lang": "xx", "next": "https://evil.example/", "csrf_token": token}
        )
        assert r.headers["location"] == "/"
        assert r.headers["set-cookie"].startswith("lang=zh-CN;")


class TestErrorPages:
    async def test_a_browser_gets_a_404_page_with_the_request_id(self, browser_client):
        r = await browser_client.get("/no/such/page", headers={"X-Request-ID": "req-404-check"})
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "页面不存在" in r.text
        assert '<code class="request-id">req-404-check</code>' in r.text
        assert "content-security-policy" in r.headers

    async def test_api_clients_and_api_paths_keep_problem_json(self, browser_client):
        r = await browser_client.get("/no/such/page", headers=JSON)
        assert r.headers["content-type"] == "application/problem+json"
        r = await browser_client.get("/v1/no/such/route")  # HTML accepted, but an API path
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"

    async def test_a_405_on_a_page_is_a_page(self, browser_client):
        r = await browser_client.put("/sign-in")
        assert r.status_code == 405
        assert "此页面不支持该操作。" in r.text

    async def test_an_unexpected_error_is_a_500_page_with_the_request_id(self, app):
        from app.main import create_app
        from app.web.dependencies import page_router

        broken = create_app()
        router = page_router()

        @router.get("/broken-page")
        async def boom():
            raise RuntimeError("boom")

        broken.include_router(router)
        transport = httpx.ASGITransport(app=broken, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML) as c:
            r = await c.get("/broken-page", headers={"X-Request-ID": "req-500-check"})
            assert r.status_code == 500
            assert "出错了" in r.text and "req-500-check" in r.text
            assert r.headers["x-frame-options"] == "DENY"
            r = await c.get("/broken-page", headers=JSON)
            assert r.status_code == 500
            assert r.headers["content-type"] == "application/problem+json"

    async def test_a_signed_in_page_sends_browsers_to_sign_in(self, app):
        from app.main import create_app
        from app.web.dependencies import page_router, require_viewer

        other = create_app()
        router = page_router()

        @router.get("/staff-only")
        async def staff_only(viewer: Annotated[Viewer, Depends(require_viewer("merchant"))]):
            return "ok"

        other.include_router(router)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://test", headers=HTML
        ) as c:
            r = await c.get("/staff-only?x=1")
        assert r.status_code == 303
        assert r.headers["location"] == "/sign-in?next=%2Fstaff-only%3Fx%3D1"


class TestStaticAndDocs:
    async def test_static_files_are_cached_for_a_year(self, browser_client):
        home = (await browser_client.get("/")).text
        css = re.search(r'href="(/static/web/site\.css\?v=[0-9a-f]{12})"', home).group(1)
        r = await browser_client.get(css)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-type"].startswith("text/css")
        r = await browser_client.get("/static/vendor/htmx-2.0.11/htmx.min.js")
        assert r.status_code == 200 and r.headers["cache-control"].endswith("immutable")
        r = await browser_client.get("/static/../main.py")
        assert r.status_code == 404

    async def test_docs_and_redoc_load_only_vendored_files(self, browser_client):
        for path, bundle in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
            r = await browser_client.get(path)
            assert r.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
            assert sources and all(s.startswith("/static/") for s in sources), sources
            assert any(bundle in s for s in sources)
            assert "script-src 'self';" in r.headers["content-security-policy"]
            assert ("unsafe-inline" in r.headers["content-security-policy"]) == (path == "/redoc")
            for source in sources:
                assert (await browser_client.get(source)).status_code == 200, source
        spec = (await browser_client.get("/openapi.json")).json()
        assert not [
            p
            for p in spec["paths"]
            if not p.startswith(("/v1/", "/.well-known/", "/healthz", "/readyz", "/metrics"))
        ]


class TestFormatting:
    def test_masses_numbers_and_times_in_both_languages(self):
        moment = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 00:30 the next day in Asia/Shanghai
        token = i18n.use(i18n.language_for("zh-CN"))
        try:
            assert i18n.mass(850) == "850 克"
            assert i18n.mass(12_345) == "12.3 千克"
            assert i18n.mass(4_567_890_123) == "4,567.89 吨"
            assert i18n.tonnes(1_234_567_891) == "1,234.568"
            assert i18n.number(1234567) == "1,234,567"
            assert i18n.datetime_(moment) == "2026年3月2日 00:30:00"
            assert i18n.date_(moment) == "2026年3月2日"
        finally:
            i18n.reset(token)
        token = i18n.use(i18n.language_for("en"))
        try:
            assert i18n.mass(12_345) == "12.3 kg"
            assert i18n.mass(2_000_000) == "2 t"
            assert i18n.datetime_(moment) == "Mar 2, 2026, 12:30:00\u202fAM"
        finally:
            i18n.reset(token)
