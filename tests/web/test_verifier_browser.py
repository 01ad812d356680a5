"""The verifiers' workspace in a real browser (Chromium): the verifier signs in, opens the project assigned
to it, draws a sample (the same seed draws the same records), downloads the records as CSV, checks the
signed batches and is told what is wrong with a verification above the claim. Recording the verification,
and in Chinese the checks of the home, project, records and sample pages (axe, no sideways scrolling at
375 and 1280 px), are test_journey_browser.py's; the batches here, and every page in English with
CARBON_SHOTS=1 (screenshots in /tmp/shots/verifier/)."""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from app.cer import evidence
from app.core import clock
from tests.factories_evidence import identifiers, make_case
from tests.web.helpers import LANGUAGES
from tests.web.test_web_browser import axe_violations, sign_in


@pytest.fixture(autouse=True)
def clock_back():
    yield
    clock.set_offset(timedelta(0))


async def sample_numbers(page) -> list[str]:
    return await page.locator("#sample tbody th").all_inner_texts()


class TestVerifierJourney:
    async def test_open_draw_download_and_verify(self, client, authority, page, shots):
        case = await make_case(client, authority)
        clock.set_offset(timedelta(0))
        base = f"/verifier/projects/{case.project['id']}"
        await sign_in(page, case.verifier.admin_username)
        assert page.url.endswith("/verifier")
        await page.get_by_role("link", name=case.project["name"]).click()
        await page.wait_for_load_state()
        assert page.url.endswith(base)

        await page.get_by_role("link", name="抽取样本").click()
        await page.wait_for_load_state()
        await page.get_by_label("种子").fill("2026 年 12 月抽查")
        await page.get_by_label("抽取条数").fill("3")
        await page.get_by_role("button", name="抽取", exact=True).click()
        await page.locator("#sample-summary").wait_for()
        first = await sample_numbers(page)
        assert len(first) == 3
        await page.reload()
        assert await sample_numbers(page) == first  # the seed is in the address: the same draw again

        await page.locator(f'.tabs a[href="{base}/records"]').click()
        await page.wait_for_load_state()
        async with page.expect_download() as info:
            await page.get_by_role("link", name="下载全部记录（CSV）").click()
        download = await info.value
        text = Path(await download.path()).read_text(encoding="utf-8")  # noqa: ASYNC240 - a small file
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == list(evidence.CSV_COLUMNS)
        assert len(rows) == 6
        assert set(first) <= {row[0] for row in rows[1:]}
        for value in identifiers(case):
            assert value not in text

        await page.get_by_role("link", name="签名批次").click()
        await page.wait_for_load_state()
        assert await page.locator('[data-verified="true"]').count() == 2
        assert await axe_violations(page) == []

        await page.get_by_role("link", name="报告与核证").click()
        await page.wait_for_load_state()
        claimed = case.project["claimed_g"]
        await page.get_by_label("核证减排量（克二氧化碳当量）").fill(str(claimed + 1))
        await page.get_by_label("核证结论").fill("抽查 3 条记录，与签名批次一致。")
        await page.get_by_role("button", name="提交核证结论").click()
        await page.locator("#f-verified_g-error").wait_for()
        page.record.error_status_expected = True
        assert await axe_violations(page) == []
        assert await page.locator("#project-status").get_attribute("data-status") == "verification"

        # every page, at a phone's and a desktop's width, in both languages
        for language, switch in LANGUAGES:
            if switch:
                await page.get_by_role("button", name=switch).click()
                await page.wait_for_load_state()
            for width, height in ((375, 812), (1280, 800)):
                await page.set_viewport_size({"width": width, "height": height})
                for name, path in (
                    ("home", "/verifier"),
                    ("project", base),
                    ("records", f"{base}/records"),
                    ("sample", f"{base}/sample?seed=2026-12&size=5"),
                    ("batches", f"{base}/batches"),
                ):
                    if language == "zh" and name != "batches":
                        continue  # the journey's
                    assert (await page.goto(path)).status == 200, name
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, f"{name} ({language}) scrolls sideways at {width} px"
                    if width == 375:
                        assert await axe_violations(page) == [], f"{name} ({language})"
                    (shots / "verifier").mkdir(exist_ok=True)
                    await page.screenshot(
                        path=str(shots / "verifier" / f"{name}-{language}-{width}.png"), full_page=True
                    )
