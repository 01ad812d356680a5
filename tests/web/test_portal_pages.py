"""The public portal's lists, their CSV exports, the objection form and the certificate page, in-process."""

import csv
import io
import re

from babel.numbers import format_decimal

from tests.web.helpers import HTML, csrf_token
from tests.web.portal_data import portal_data_fixture  # noqa: F401 - the fixture portal_data

JSON = {"Accept": "application/json"}
LISTS = [
    "/methodologies",
    "/exchange-rules",
    "/experts",
    "/organizations/operators",
    "/organizations/merchants",
    "/organizations/verifiers",
    "/organizations/scene-operators",
    "/scenes",
    "/cer/projects",
    "/cer/issuances",
    "/cer/retirements",
    "/mall",
]


def rows_of(html: str) -> list[str]:
    """The text of each row header of the page's table (the first cell of each row)."""
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r'<th scope="row"[^>]*>(.*?)</th>', html, re.S)
    ]


def parse_csv(body: str) -> list[dict]:
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body[1:])))


class TestEveryList:
    async def test_each_list_renders_links_its_csv_and_the_csv_parses(self, browser_client, portal_data):
        for path in LISTS:
            r = await browser_client.get(path)
            assert r.status_code == 200, (path, r.text[-500:])
            assert f'href="{path}?format=csv"' in r.text, path
            r = await browser_client.get(path, params={"format": "csv"})
            assert r.status_code == 200, path
            assert r.headers["content-type"] == "text/csv; charset=utf-8"
            assert r.headers["content-disposition"].startswith("attachment; filename=")
            parse_csv(r.text)

    async def test_the_open_data_index_and_the_home_page_link_every_list(self, browser_client):
        for page in ("/open-data", "/"):
            html = (await browser_client.get(page)).text
            hrefs = set(re.findall(r'href="([^"]+)"', html))
            assert set(LISTS) - {
                "/organizations/operators",
                "/organizations/merchants",
                "/organizations/verifiers",
                "/organizations/scene-operators",
            } <= hrefs | {"/exchange-rules"}
            assert "/open-data" in hrefs

    async def test_an_unknown_organisation_list_is_a_404_page(self, browser_client):
        r = await browser_client.get("/organizations/aliens")
        assert r.status_code == 404 and "<h1>" in r.text


class TestMethodologies:
    async def test_the_page_lists_what_the_api_lists(self, browser_client, portal_data):
        api = (await browser_client.get("/v1/methodologies", params={"limit": 20}, headers=JSON)).json()
        html = (await browser_client.get("/methodologies")).text
        assert rows_of(html) == [m["code"] for m in api["items"]]
        first = api["items"][0]
        assert first["citation"] in html.replace("&#39;", "'").replace("&amp;", "&")

    async def test_search_by_code_and_the_csv_of_the_search(self, browser_client, portal_data):
        api = (await browser_client.get("/v1/methodologies", params={"limit": 1}, headers=JSON)).json()
        code = api["items"][0]["code"]
        html = (await browser_client.get("/methodologies", params={"code": code})).text
        assert set(rows_of(html)) == {code}
        rows = parse_csv(
            (await browser_client.get("/methodologies", params={"code": code, "format": "csv"})).text
        )
        assert {r["代码"] for r in rows} == {code}

    async def test_paging_follows_the_api_cursor(self, browser_client, portal_data):
        api = (await browser_client.get("/v1/methodologies", params={"limit": 20}, headers=JSON)).json()
        html = (await browser_client.get("/methodologies")).text
        if api["next_cursor"] is None:
            assert 'rel="next"' not in html
            return
        next_url = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
        second = (
            await browser_client.get(
                "/v1/methodologies", params={"limit": 20, "cursor": api["next_cursor"]}, headers=JSON
            )
        ).json()
        assert rows_of((await browser_client.get(next_url)).text) == [m["code"] for m in second["items"]]

    async def test_a_forged_cursor_is_refused_on_the_page(self, browser_client):
        r = await browser_client.get("/methodologies", params={"cursor": "forged"})
        assert r.status_code == 400
        assert "该页链接无效（可能已过期），请从第一页开始。" in r.text


class TestScenes:
    async def test_search_by_name_and_district(self, browser_client, portal_data):
        name = portal_data.scene["name"]
        html = (
            await browser_client.get("/scenes", params={"name": name[-8:], "district_code": "440305"})
        ).text
        assert rows_of(html) == [name]
        html = (
            await browser_client.get("/scenes", params={"name": name[-8:], "district_code": "440303"})
        ).text
        assert rows_of(html) == []

    async def test_near_me_lists_the_scene_with_its_distance(self, browser_client, portal_data):
        scene = portal_data.scene
        html = (
            await browser_client.get(
                "/scenes", params={"lat": scene["lat"], "lng": scene["lng"], "name": scene["name"]}
            )
        ).text
        assert rows_of(html) == [scene["name"]]
        assert "0 米" in html

    async def test_an_unknown_kind_of_place_is_refused_beside_the_field(self, browser_client):
        r = await browser_client.get("/scenes", params={"category": "spaceport"})
        assert r.status_code == 400
        assert '<p class="field__error" id="f-category-error">请从列表中选择场所类型。</p>' in r.text

    async def test_a_position_off_the_earth_is_refused(self, browser_client):
        r = await browser_client.get("/scenes", params={"lat": "91", "lng": "10"})
        assert r.status_code == 400
        assert "无法使用您的位置（不是有效的位置）。" in r.text


class TestCer:
    async def test_issuances_match_the_api(self, browser_client, portal_data):
        api = (
            await browser_client.get("/v1/public/cer/issuances", params={"limit": 20}, headers=JSON)
        ).json()
        html = (await browser_client.get("/cer/issuances")).text
        assert rows_of(html) == [i["serials"] or "—" for i in api["items"]]
        rows = parse_csv((await browser_client.get("/cer/issuances", params={"format": "csv"})).text)
        assert portal_data.issuance["serials"] in [r["序列号"] for r in rows]

    async def test_retirements_link_their_certificate_page(self, browser_client, portal_data):
        number = portal_data.certificate["certificate_number"]
        html = (await browser_client.get("/cer/retirements")).text
        assert f'<a href="/certificates/{number}">{number}</a>' in html
        assert "深圳马拉松 &lt;b&gt;2026&lt;/b&gt;" in html

    async def test_a_project_in_publicity_takes_an_objection(self, browser_client, portal_data):
        pid = portal_data.project["id"]
        r = await browser_client.get(f"/cer/projects/{pid}")
        assert r.status_code == 200 and "提出异议" in r.text
        token = csrf_token(r.text)
        r = await browser_client.post(
            f"/cer/projects/{pid}/objections",
            headers=HTML,
            data={
                "csrf_token": token,
                "text": "Counted twice? <script>x()</script>",
                "name": "邻居",
                "contact": "n@example.org",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == f"/cer/projects/{pid}?filed=1#objections"
        html = (await browser_client.get(r.headers["location"])).text
        assert "Counted twice? &lt;script&gt;x()&lt;/script&gt;" in html
        assert "n@example.org" not in html  # the contact is for the owner and the authority
        objections = (
            await browser_client.get(f"/v1/public/cer/projects/{pid}/objections", headers=JSON)
        ).json()
        assert objections[-1]["text"] == "Counted twice? <script>x()</script>"

    async def test_an_empty_objection_is_refused_beside_the_field(self, browser_client, portal_data):
        pid = portal_data.project["id"]
        token = csrf_token((await browser_client.get(f"/cer/projects/{pid}")).text)
        r = await browser_client.post(
            f"/cer/projects/{pid}/objections",
            headers=HTML,
            data={"csrf_token": token, "text": "  ", "name": "我"},
        )
        assert r.status_code == 422
        assert '<p class="field__error" id="f-text-error">请写下您的异议（最多 5,000 字）。</p>' in r.text
        assert 'value="我"' in r.text

    async def test_an_objection_without_its_csrf_token_is_refused(self, browser_client, portal_data):
        pid = portal_data.project["id"]
        r = await browser_client.post(f"/cer/projects/{pid}/objections", headers=HTML, data={"text": "x"})
        assert r.status_code == 403

    async def test_after_the_publicity_objections_are_closed(self, browser_client, portal_data):
        pid = portal_data.issuance["project_id"]
        r = await browser_client.get(f"/cer/projects/{pid}")
        assert "提出异议" in r.text and 'action="/cer/projects/' not in r.text
        r = await browser_client.post(
            f"/cer/projects/{pid}/objections",
            headers=HTML,
            data={"csrf_token": csrf_token(r.text), "text": "late"},
        )
        assert r.status_code == 409
        assert "该项目的公示期已结束，不再受理异议。" in r.text


class TestCertificatePage:
    async def test_it_shows_what_the_certificate_states_and_the_pdf_hash(self, browser_client, portal_data):
        number = portal_data.certificate["certificate_number"]
        api = (await browser_client.get(f"/v1/public/certificates/{number}", headers=JSON)).json()
        r = await browser_client.get(f"/certificates/{number}")
        assert r.status_code == 200
        html = r.text
        assert f'<dd data-field="number">{number}</dd>' in html
        assert f'<dd class="hash" data-field="pdf-sha256">{api["pdf_sha256"]}</dd>' in html
        assert f'<dd class="hash" data-field="content-sha256">{api["content_sha256"]}</dd>' in html
        assert 'data-certificate-status="valid"' in html
        assert f'href="/v1/public/certificates/{number}.pdf"' in html
        assert f"sha256sum {number}.pdf" in html
        assert "深圳马拉松 &lt;b&gt;2026&lt;/b&gt;" in html
        for serial in api["content"]["serials"]:
            assert f"<code>{serial}</code>" in html
        assert api["content"]["verification_url"].endswith(f"/certificates/{number}")

    async def test_an_unknown_number_is_a_clear_404_page(self, browser_client):
        for number in ("CERT-1999-000000", "nothing<script>"):
            r = await browser_client.get(f"/certificates/{number}")
            assert r.status_code == 404
            assert "<h1>未找到证书</h1>" in r.text
            assert "<script>" not in r.text.split("<main", 1)[1]

    async def test_the_api_route_still_answers_json(self, client, portal_data):
        number = portal_data.certificate["certificate_number"]
        r = await client.get(f"/v1/public/certificates/{number}")
        assert r.headers["content-type"] == "application/json" and r.json()["number"] == number


class TestCsv:
    async def test_a_cell_a_spreadsheet_would_run_is_quoted(self):
        from app.web.disclosure import _csv_value

        assert [_csv_value(v) for v in ("=1+2", "+x", "@SUM(A1)", "-12", "-x", "ok", None, 5)] == [
            "'=1+2",
            "'+x",
            "'@SUM(A1)",
            "-12",
            "'-x",
            "ok",
            "",
            5,
        ]


class TestHomeCharts:
    async def test_the_chart_data_is_a_data_attribute_with_thirty_days(self, browser_client, portal_data):
        import html as html_module
        import json

        html = (await browser_client.get("/")).text
        attribute = re.search(r"id=\"portal-charts\" data-charts='([^']*)'", html)
        data = json.loads(html_module.unescape(attribute.group(1)))
        assert len(data["days"]) == 30
        assert [c["id"] for c in data["charts"]] == ["reductions", "behaviours", "points", "cer"]
        assert all(len(ds["data"]) == 30 for c in data["charts"] for ds in c["datasets"])
        from app.core import db
        from app.public import service

        async with db.session_scope() as session:
            days = await service.portal_days(session)
        by_id = {c["id"]: c for c in data["charts"]}
        assert by_id["reductions"]["datasets"][0]["data"] == [round(d.reduction_g / 10**6, 3) for d in days]
        assert by_id["behaviours"]["datasets"][0]["data"] == [d.behaviours for d in days]
        assert [ds["data"] for ds in by_id["points"]["datasets"]] == [
            [d.points_earned for d in days],
            [d.points_spent for d in days],
            [d.points_expired for d in days],
        ]
        assert [ds["data"] for ds in by_id["cer"]["datasets"]] == [
            [d.cer_issued_tonnes for d in days],
            [d.cer_retired_tonnes for d in days],
        ]
        assert any(by_id["behaviours"]["datasets"][0]["data"])  # the records of portal_data, days ago
        # the same figures as a table under each chart, grouped as the language writes numbers
        assert format_decimal(days[-1].behaviours, locale="zh_CN") in html
