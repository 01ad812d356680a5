"""The public portal in a real browser: lists that match the API, CSV downloads, near me, the charts, and
the certificate page reached from the URL in the PDF's QR code, with axe and screenshots."""

import csv
import hashlib
import io
import re
from urllib.parse import urlsplit

import httpx
import segno
from playwright.async_api import expect
from pypdf import PdfReader

from tests.web.helpers import LANGUAGES
from tests.web.portal_data import portal_data_fixture  # noqa: F401 - the fixture portal_data
from tests.web.test_web_browser import axe_violations


async def row_headers(page) -> list[str]:
    return [t.strip() for t in await page.locator("tbody th[scope=row]").all_inner_texts()]


def qr_modules(pdf: bytes) -> set[tuple[int, int]]:
    """The dark modules of the QR code drawn on the certificate, as (row, column) from its top-left."""
    data = PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data()
    squares = [
        tuple(float(v) for v in m) for m in re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) [\d.]+ re f", data)
    ]
    cell = squares[0][2]
    left, top = min(x for x, _, _ in squares), max(y for _, y, _ in squares)
    return {(round((top - y) / cell), round((x - left) / cell)) for x, y, _ in squares}


def modules_of(url: str) -> set[tuple[int, int]]:
    matrix = segno.make(url, error="m").matrix
    dark = {(r, c) for r, row in enumerate(matrix) for c, v in enumerate(row) if v}
    top, left = min(r for r, _ in dark), min(c for _, c in dark)
    return {(r - top, c - left) for r, c in dark}


class TestListsMatchTheApi:
    async def test_methodologies_scenes_and_issuances(self, page, live_server, portal_data):
        async with httpx.AsyncClient(base_url=live_server) as api:
            methodologies = (await api.get("/v1/methodologies", params={"limit": 20})).json()
            issuances = (await api.get("/v1/public/cer/issuances", params={"limit": 20})).json()
            scenes = (await api.get("/v1/public/scenes", params={"name": portal_data.scene["name"]})).json()
        await page.goto("/")
        await page.get_by_role("navigation", name="主导航").get_by_role("link", name="公开数据").click()
        await page.get_by_role("link", name="方法学", exact=True).click()
        assert await row_headers(page) == [m["code"] for m in methodologies["items"]]
        assert await axe_violations(page) == []

        await page.goto("/scenes")
        await page.get_by_label("名称包含").fill(portal_data.scene["name"])
        await page.get_by_role("button", name="搜索").click()
        await page.wait_for_load_state()
        assert await row_headers(page) == [s["name"] for s in scenes["items"]] == [portal_data.scene["name"]]
        assert await axe_violations(page) == []

        await page.goto("/cer/issuances")
        assert await row_headers(page) == [i["serials"] for i in issuances["items"]]
        assert await axe_violations(page) == []

    async def test_the_csv_download_parses_and_matches_the_page(self, page, portal_data):
        await page.goto("/cer/retirements")
        async with page.expect_download() as info:
            await page.get_by_role("link", name="下载 CSV").click()
        download = await info.value
        body = (await download.path()).read_bytes().decode("utf-8")
        assert body.startswith("\ufeff")
        rows = list(csv.DictReader(io.StringIO(body[1:])))
        number = portal_data.certificate["certificate_number"]
        row = next(r for r in rows if r["证书"] == number)
        assert row["受益方"] == "深圳马拉松 <b>2026</b>" and row["状态"] == "valid"
        assert download.suggested_filename == "cer-retirements.csv"

    async def test_near_me_uses_the_browsers_location(self, browser, live_server, portal_data):
        scene = portal_data.scene
        context = await browser.new_context(
            base_url=live_server,
            viewport={"width": 375, "height": 812},
            geolocation={"latitude": scene["lat"], "longitude": scene["lng"]},
            permissions=["geolocation"],
        )
        try:
            tab = await context.new_page()
            await tab.goto(f"/scenes?name={scene['name']}")
            await tab.get_by_role("button", name="我附近的场景").click()
            await tab.wait_for_url(re.compile(r"lat=22\.543100"))
            assert await row_headers(tab) == [scene["name"]]
            assert await tab.locator("tbody td").first.inner_text() == "0 米"
            assert await axe_violations(tab) == []
        finally:
            await context.close()

    async def test_the_home_page_draws_its_charts(self, page):
        await page.goto("/")
        # an assertion, not wait_for_function, whose polling evaluates a string the pages' CSP refuses
        await expect(page.locator("[data-chart] canvas")).to_have_count(4)
        drawn = await page.evaluate(
            "Array.from(document.querySelectorAll('[data-chart] canvas')).map(c => !!Chart.getChart(c))"
        )
        assert drawn == [True, True, True, True]


class TestCertificateFromItsQrCode:
    async def test_the_qr_code_leads_to_the_page_that_shows_the_pdfs_hash(
        self, page, live_server, portal_data
    ):
        number = portal_data.certificate["certificate_number"]
        async with httpx.AsyncClient(base_url=live_server) as api:
            pdf = (await api.get(f"/v1/public/certificates/{number}.pdf")).content
        # the URL in the QR code: the link over it, and the code's modules are that URL's
        [annotation] = PdfReader(io.BytesIO(pdf)).pages[0]["/Annots"]
        url = annotation.get_object()["/A"]["/URI"]
        assert qr_modules(pdf) == modules_of(url)
        assert urlsplit(url).path == f"/certificates/{number}"
        await page.goto(urlsplit(url).path)  # the live server stands in for the public base URL
        assert await page.locator('[data-field="pdf-sha256"]').inner_text() == hashlib.sha256(pdf).hexdigest()
        assert await page.locator('[data-field="number"]').inner_text() == number
        assert (
            await page.locator("[data-certificate-status]").get_attribute("data-certificate-status")
            == "valid"
        )
        assert await axe_violations(page) == []
        # the PDF link on the page serves the same bytes
        href = await page.get_by_role("link", name="下载证书（PDF）").get_attribute("href")
        async with httpx.AsyncClient(base_url=live_server) as api:
            assert (await api.get(href)).content == pdf


class TestLayouts:
    async def test_every_portal_page_at_375_and_1280_in_both_languages(self, page, shots, portal_data):
        page.record.error_status_expected = True
        number = portal_data.certificate["certificate_number"]
        pages = {
            "portal-home": ("/", 200),
            "portal-open-data": ("/open-data", 200),
            "portal-methodologies": ("/methodologies", 200),
            "portal-exchange-rules": ("/exchange-rules", 200),
            "portal-experts": ("/experts", 200),
            "portal-merchants": ("/organizations/merchants", 200),
            "portal-scenes": ("/scenes", 200),
            "portal-scenes-refused": ("/scenes?category=spaceport", 400),
            "portal-cer-projects": ("/cer/projects", 200),
            "portal-cer-project": (f"/cer/projects/{portal_data.project['id']}", 200),
            "portal-cer-issuances": ("/cer/issuances", 200),
            "portal-cer-retirements": ("/cer/retirements", 200),
            "portal-mall": ("/mall", 200),
            "portal-certificate": (f"/certificates/{number}", 200),
            "portal-certificate-missing": ("/certificates/CERT-1999-000000", 404),
        }
        for language, switch in LANGUAGES:
            if switch:
                await page.goto("/")
                await page.get_by_role("button", name=switch).click()
                await page.wait_for_load_state()
            for width, height in ((375, 812), (1280, 800)):
                await page.set_viewport_size({"width": width, "height": height})
                for name, (path, status) in pages.items():
                    assert (await page.goto(path)).status == status, name
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, f"{name} ({language}) scrolls sideways at {width} px"
                    assert await axe_violations(page) == [], f"{name} ({language}, {width})"
                    await page.screenshot(path=str(shots / f"{name}-{language}-{width}.png"), full_page=True)
