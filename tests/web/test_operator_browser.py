"""The operators' console in a real browser (Chromium): an operator's engineer signs in, registers a key
from an uploaded PEM public key, finds the batch with rejected records, reads why each was rejected and
downloads them as CSV. Axe runs on every page of the walk. With ``CARBON_SHOTS=1`` the same test also
takes screenshots of every console page at 375 and 1280 px in Chinese and English into
/tmp/shots/operator/ (left out otherwise, to keep the suite fast)."""

import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest

from app.core import clock, security
from tests.factories import make_operator
from tests.factories_cer import Owner, create_project, days_ago
from tests.factories_mall import people
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit
from tests.web.helpers import LANGUAGES
from tests.web.test_web_browser import axe_violations, sign_in

SHOTS_WANTED = os.environ.get("CARBON_SHOTS") == "1"


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()


def public_pem() -> tuple[bytes, str]:
    """A new EC P-256 public key as PEM, and the kid the platform gives it (its JWK thumbprint)."""
    private = security.generate_es256_pem()
    key = security.serialization.load_pem_private_key(private.encode(), None).public_key()
    pem = key.public_bytes(
        security.serialization.Encoding.PEM, security.serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, security.thumbprint(security.public_jwk_from_pem(private))


async def nav(page, href: str) -> None:
    await page.locator(f'.console-nav a[href="{href}"]').click()
    await page.wait_for_load_state()
    assert page.url.endswith(href)


class TestOperatorJourney:
    async def test_register_a_key_and_find_a_batchs_rejected_records(self, client, page, shots):
        op = await make_operator(client)
        btype = await make_methodology()
        ext = (await enrol(client, op))["external_user_id"]
        now = clock.now()
        card = f"card-{op.id}"
        first = record(ext, btype, start=now - timedelta(hours=9), evidence=card, record_id="trip-1")
        assert (await submit(client, op, [first])).json()["summary"]["accepted"] == 1
        sent = [
            record(ext, btype, start=now - timedelta(hours=7), record_id="trip-2"),
            record("unknown-rider", btype, record_id="trip-3"),
            record(ext, btype, start=now - timedelta(hours=5), evidence=card, record_id="trip-4"),
            record(ext, btype, quantity=-1, start=now - timedelta(hours=4), record_id="trip-5"),
        ]
        r = await submit(client, op, sent)
        assert r.json()["summary"] == {"accepted": 1, "duplicate": 0, "rejected": 3}
        batch_id = r.json()["batch_id"]

        await sign_in(page, op.admin_username)
        assert page.url.endswith("/operator")
        assert await axe_violations(page) == []

        await nav(page, "/operator/keys")
        pem, kid = public_pem()
        await page.set_input_files(
            "#f-pem_file",
            files=[{"name": "app-key.pub.pem", "mimeType": "application/x-pem-file", "buffer": pem}],
        )
        await page.get_by_role("button", name="登记此密钥").click()
        await page.wait_for_load_state()
        assert page.url.endswith("/operator/keys?done=registered")
        assert (await page.locator(".alert--ok").inner_text()).strip() == "密钥已登记。"
        assert await page.locator("#keys tbody th").all_inner_texts() == [op.kid, kid]
        assert await axe_violations(page) == []

        await nav(page, "/operator/batches")
        await page.get_by_label("被拒绝的记录").select_option("true")
        await page.get_by_role("button", name="查看", exact=True).click()
        await page.wait_for_load_state()
        links = page.locator("#batches tbody th a")
        assert await links.count() == 1
        assert await page.locator("#batches .rejected-count").inner_text() == "3"
        assert await axe_violations(page) == []
        await links.first.click()
        await page.wait_for_load_state()
        assert page.url.endswith(f"/operator/batches/{batch_id}")
        assert await page.locator("#reject-codes tbody th").all_inner_texts() == [
            "evidence_already_claimed",
            "implausible_quantity",
            "not_entrusted",
        ]
        records = page.locator("#records tbody tr")
        assert [await records.nth(i).locator("th, td").nth(1).inner_text() for i in range(3)] == [
            "trip-3",
            "trip-4",
            "trip-5",
        ]
        assert await page.locator("#not-recorded").count() == 0
        assert await axe_violations(page) == []

        async with page.expect_download() as info:
            await page.get_by_role("link", name="下载被拒绝的记录（CSV）").click()
        download = await info.value
        assert download.suggested_filename == f"batch-{batch_id}-rejected.csv"
        text = Path(await download.path()).read_text(encoding="utf-8-sig")  # noqa: ASYNC240 - a small file
        started = {x["record_id"]: x["started_at"] for x in sent}
        assert list(csv.reader(io.StringIO(text))) == [
            ["record_id", "external_user_id", "behaviour_type", "occurred_at", "code", "message"],
            ["trip-3", "unknown-rider", btype, started["trip-3"], "not_entrusted", ""],
            ["trip-4", ext, btype, started["trip-4"], "evidence_already_claimed", ""],
            [
                "trip-5",
                ext,
                btype,
                started["trip-5"],
                "implausible_quantity",
                "quantity must be a positive finite number",
            ],
        ]

        if SHOTS_WANTED:
            await screenshots(client, page, shots, op, batch_id)


async def screenshots(client, page, shots, op, batch_id: str) -> None:
    """Every console page at a phone's and a desktop's width in both languages, with something on each."""
    [person] = await people(client, op, await make_methodology(factor="1000"), 1, points=300)
    r = await client.post(
        "/v1/me/operator-redemptions",
        json={"operator_order_id": f"order-{op.id}", "points": 120, "description": "环保帆布袋"},
        headers=person.headers,
    )
    assert r.status_code == 201, r.text
    cer_type = await make_methodology(factor="50000", max_record="100", max_day=None)
    owner_ext = (await enrol(client, op, accepted_at=days_ago(40)))["external_user_id"]
    r = await submit(client, op, [record(owner_ext, cer_type, quantity=10, start=days_ago(5))])
    assert r.json()["summary"]["accepted"] == 1, r.text
    await create_project(client, Owner(op, owner_ext, cer_type), days_ago(10).date(), days_ago(1).date())
    folder = shots / "operator"
    folder.mkdir(exist_ok=True)
    for language, switch in LANGUAGES:
        if switch:
            await page.get_by_role("button", name=switch).click()
            await page.wait_for_load_state()
        for width, height in ((375, 812), (1280, 800)):
            await page.set_viewport_size({"width": width, "height": height})
            for name, path in (
                ("home", "/operator"),
                ("keys", "/operator/keys"),
                ("batches", "/operator/batches"),
                ("batch", f"/operator/batches/{batch_id}?show=all"),
                ("people", "/operator/people"),
                ("redemptions", "/operator/redemptions"),
                ("projects", "/operator/projects"),
            ):
                assert (await page.goto(path)).status == 200, name
                overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{name} ({language}) scrolls sideways at {width} px"
                if width == 375:
                    assert await axe_violations(page) == [], f"{name} ({language})"
                await page.screenshot(path=str(folder / f"{name}-{language}-{width}.png"), full_page=True)
