"""The verifiers' workspace and the owners' view of a project's evidence, over HTTP: the projects assigned,
the report, the records (pseudonymous, paged, CSV), the sample, the batches, the verification form."""

import csv
import io
import re
from datetime import timedelta
from html import unescape

import pytest

from app.cer import evidence
from app.core import clock
from app.web import i18n
from app.web.i18n import quantity
from tests.factories import make_org
from tests.factories_cer import verifier
from tests.factories_evidence import identifiers, make_case
from tests.web.helpers import HTML, page_token, sign_in


@pytest.fixture(autouse=True)
def clock_back():
    yield
    clock.set_offset(timedelta(0))


@pytest.fixture
async def case(client, authority):
    return await make_case(client, authority)


@pytest.fixture
async def as_verifier(case, browser_client):
    r = await sign_in(browser_client, case.verifier.admin_username)
    assert (r.status_code, r.headers["location"]) == (303, "/verifier")  # the verifier's landing
    return browser_client


def error_of(html: str, field: str) -> str:
    marker = f'id="f-{field}-error">'
    assert marker in html, f"no error beside {field}"
    return unescape(html.split(marker, 1)[1].split("<", 1)[0])


def record_numbers(html: str) -> list[str]:
    return re.findall(r'<tr><th scope="row"[^>]*>(\d+)</th>', html)


def cells(html: str, table_id: str, label: str) -> list[str]:
    """The text of every cell of one column (by its data-label) in the table inside ``table_id``."""
    block = html[html.index(f'id="{table_id}"') :]
    block = block[: block.index("</table>")]
    return [unescape(c) for c in re.findall(rf'<t[hd][^>]* data-label="{label}">([^<]*)</t[hd]>', block)]


def test_a_quantity_reads_in_the_readers_language():
    for tag, expected in (
        ("en", ["12.4 km", "1 item", "3 items", "2 trips", "1,200.5 kWh", "x km"]),
        ("zh-CN", ["12.4 公里", "1 件", "3 件", "2 次", "1,200.5 kWh", "x km"]),
    ):
        token = i18n.use(i18n.language_for(tag))
        try:
            shown = [
                quantity("12.4000", "km"),
                quantity("1.0000", "item"),
                quantity("3", "item"),
                quantity("2.0000", "trip"),
                quantity("1200.5", "kWh"),
                quantity("x", "km"),
            ]
        finally:
            i18n.reset(token)
        assert shown == expected, tag


class TestVerifier:
    async def test_lists_the_projects_assigned(self, case, as_verifier):
        r = await as_verifier.get("/verifier")
        assert r.status_code == 200
        assert case.project["name"] in r.text
        assert f'href="/verifier/projects/{case.project["id"]}"' in r.text
        assert 'data-status="verification"' in r.text

    async def test_the_report_and_the_evidence_pages(self, case, as_verifier):
        base = f"/verifier/projects/{case.project['id']}"
        r = await as_verifier.get(base)
        assert r.status_code == 200
        assert case.project["report_sha256"] in r.text
        assert 'action="' + base + '/verification"' in r.text
        records = await as_verifier.get(f"{base}/records")
        assert records.status_code == 200
        assert len(record_numbers(records.text)) == 5
        assert f'href="{base}/records.csv"' in records.text
        for value in identifiers(case):
            assert value not in records.text
        download = await as_verifier.get(f"{base}/records.csv")
        assert download.status_code == 200
        assert download.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.reader(io.StringIO(download.text)))
        assert rows[0] == list(evidence.CSV_COLUMNS)
        assert [row[0] for row in rows[1:]] == record_numbers(records.text)
        batches = await as_verifier.get(f"{base}/batches")
        assert batches.status_code == 200
        assert batches.text.count('data-verified="true"') == 2
        assert 'data-verified="false"' not in batches.text

    async def test_records_read_as_people_read_them_and_stack_on_a_phone(self, case, as_verifier):
        base = f"/verifier/projects/{case.project['id']}"
        as_verifier.cookies.set("lang", "en")
        r = await as_verifier.get(f"{base}/records")
        assert "<caption>Record list</caption>" in r.text
        assert len(cells(r.text, "records", "No.")) == 5
        assert cells(r.text, "records", "Quantity") == ["2 km", "1.5 km", "4 km", "3 km", "0.5 km"]
        assert '<div class="stack stack--wide">' in r.text  # rows become cards on a phone (verifier.css)
        shown = cells(r.text, "records", "Batch")  # the first 8 characters; the batches tab has the whole id
        assert len(shown) == 5 and all(re.fullmatch(r"[0-9a-f]{8}…", b) for b in shown)
        batches = (await as_verifier.get(f"{base}/batches")).text
        assert {b[:8] for b in shown} == {b[:8] for b in re.findall(r'data-batch="([0-9a-f-]{36})"', batches)}
        as_verifier.cookies.set("lang", "zh-CN")
        r = await as_verifier.get(base)
        assert (
            f'<span class="muted">({case.project["claimed_g"]:,} 克)</span>' in r.text
        )  # not "g" in Chinese
        assert cells(r.text, "report-heading", "行为") == [
            case.owner.code
        ]  # a code without a name stays as is
        r = await as_verifier.get(f"{base}/records")
        assert "<caption>记录清单</caption>" in r.text
        assert cells(r.text, "records", "数量") == ["2 公里", "1.5 公里", "4 公里", "3 公里", "0.5 公里"]
        r = await as_verifier.get(f"{base}/sample", params={"seed": "s", "size": "5"})
        assert sorted(cells(r.text, "sample", "数量")) == sorted(
            ["2 公里", "1.5 公里", "4 公里", "3 公里", "0.5 公里"]
        )
        r = await as_verifier.get(f"{base}/batches")
        assert len(cells(r.text, "batches", "接收时间")) == 2
        # a signature checked again is 验证通过, not the verifier's 已核查
        assert r.text.count('<span class="check check--ok" data-verified="true">验证通过</span>') == 2
        assert sorted(cells(r.text, "batches", "计入本项目")) == ["2", "3"]

    async def test_the_same_seed_draws_the_same_sample(self, client, case, as_verifier):
        base = f"/verifier/projects/{case.project['id']}/sample"
        blank = await as_verifier.get(base)
        assert blank.status_code == 200
        assert 'id="sample-summary"' not in blank.text
        first = await as_verifier.get(base, params={"seed": "spot-check 1", "size": "3"})
        again = await as_verifier.get(base, params={"seed": "spot-check 1", "size": "3"})
        drawn = record_numbers(first.text)
        assert len(drawn) == 3 and drawn == record_numbers(again.text)
        api = await client.get(
            f"/v1/cer/projects/{case.project['id']}/records/sample",
            params={"seed": "spot-check 1", "size": 3},
            headers=case.verifier.headers,
        )
        assert drawn == [str(i["id"]) for i in api.json()["items"]]
        for params, field in (
            ({"seed": "x", "size": "0"}, "size"),
            ({"seed": "x", "size": "1001"}, "size"),
            ({"seed": "x", "size": "many"}, "size"),
            ({"seed": " ", "size": "3"}, "seed"),
        ):
            r = await as_verifier.get(base, params=params)
            assert r.status_code == 422
            assert (
                error_of(r.text, field)
                == {
                    "size": "请抽取 1 至 1,000 条记录。",
                    "seed": "请输入种子：任意文字（记下它，便可再次抽出同一样本）。",
                }[field]
            )
            assert 'id="sample-summary"' not in r.text

    async def test_the_verification_form_refuses_then_records(self, case, as_verifier):
        base = f"/verifier/projects/{case.project['id']}"
        token = await page_token(as_verifier, base)
        claimed = case.project["claimed_g"]
        form = {"csrf_token": token, "verified_g": str(claimed + 1), "statement": "Checked.", "documents": ""}
        r = await as_verifier.post(f"{base}/verification", data=form, headers=HTML)
        assert r.status_code == 422
        assert f"{claimed:,}" in error_of(r.text, "verified_g")
        # with another mistake beside it, the grams over the claim are named in the same answer
        r = await as_verifier.post(f"{base}/verification", data={**form, "statement": " "}, headers=HTML)
        assert r.status_code == 422
        assert f"{claimed:,}" in error_of(r.text, "verified_g") and error_of(r.text, "statement")
        r = await as_verifier.post(
            f"{base}/verification",
            data={**form, "verified_g": "abc", "statement": "", "documents": "ftp://x"},
            headers=HTML,
        )
        assert r.status_code == 422
        assert error_of(r.text, "verified_g") and error_of(r.text, "statement")
        r = await as_verifier.post(
            f"{base}/verification",
            data={**form, "verified_g": str(claimed), "documents": "ftp://x"},
            headers=HTML,
        )
        assert r.status_code == 422
        assert error_of(r.text, "documents")
        r = await as_verifier.post(
            f"{base}/verification",
            data={**form, "verified_g": str(claimed - 5), "documents": "https://verifier.example/r.pdf"},
            headers=HTML,
        )
        assert (r.status_code, r.headers["location"]) == (303, f"{base}?verified=1#verification")
        r = await as_verifier.get(f"{base}?verified=1")
        assert 'id="recorded-verification"' in r.text and "https://verifier.example/r.pdf" in r.text
        assert 'data-status="verified"' in r.text
        assert f'action="{base}/verification"' not in r.text


class TestWhoMaySee:
    async def test_another_verifier_gets_404_and_a_merchant_403(
        self, client, authority, case, browser_client
    ):
        other = await verifier(client, authority)
        await sign_in(browser_client, other.admin_username)
        base = f"/verifier/projects/{case.project['id']}"
        for path in (base, f"{base}/records", f"{base}/records.csv", f"{base}/sample", f"{base}/batches"):
            assert (await browser_client.get(path)).status_code == 404, path
        r = await browser_client.get("/verifier")
        assert case.project["name"] not in r.text
        merchant = await make_org(client, "merchant", authority=authority)
        await browser_client.post(
            "/sign-out", data={"csrf_token": await page_token(browser_client)}, headers=HTML
        )
        await sign_in(browser_client, merchant.admin_username)
        assert (await browser_client.get(base)).status_code == 403
        assert (await browser_client.get(f"/cer/my-projects/{case.project['id']}")).status_code == 403

    async def test_the_owner_reads_the_same_evidence_without_the_form(self, case, browser_client):
        await sign_in(browser_client, case.owner.org.admin_username)
        base = f"/cer/my-projects/{case.project['id']}"
        r = await browser_client.get("/cer/my-projects")
        assert f'href="{base}"' in r.text
        r = await browser_client.get(base)
        assert r.status_code == 200
        assert "/verification" not in r.text.split('id="verification"', 1)[1]
        assert len(record_numbers((await browser_client.get(f"{base}/records")).text)) == 5
        assert (await browser_client.get(f"{base}/records.csv")).status_code == 200
        assert (await browser_client.get(f"{base}/batches")).text.count('data-verified="true"') == 2
        assert (await browser_client.get(f"/verifier/projects/{case.project['id']}")).status_code == 403
