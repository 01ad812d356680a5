"""A project from creation to a retirement certificate, over HTTP, with the refusals along the way."""

import hashlib
import io
import json
import re
from datetime import timedelta

import segno
from pypdf import PdfReader

from app.core import clock
from tests.factories import bearer, make_org
from tests.factories_cer import (
    account,
    add_records,
    after_publicity,
    create_project,
    make_owner,
    review,
    verifier,
)


def qr_modules(pdf: bytes) -> set[tuple[int, int]]:
    """The dark modules of the QR code drawn on the certificate, as (row, column) from its top-left."""
    data = PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data()
    squares = [
        tuple(float(v) for v in m) for m in re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) [\d.]+ re f", data)
    ]
    cell = squares[0][2]
    left, top = min(x for x, _, _ in squares), max(y for _, y, _ in squares)
    return {(round((top - y) / cell), round((x - left) / cell)) for x, y, _ in squares}


def expected_modules(url: str) -> set[tuple[int, int]]:
    matrix = segno.make(url, error="m").matrix
    dark = {(r, c) for r, row in enumerate(matrix) for c, v in enumerate(row) if v}
    top, left = min(r for r, _ in dark), min(c for _, c in dark)
    return {(r - top, c - left) for r, c in dark}


def canonical_sha256(value) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


class TestProjectToCertificate:
    async def test_the_whole_walk(self, client, authority):
        auth = bearer(authority)
        owner = await make_owner(client, authority)  # 50 kg per km
        # 30 + 26 + 10 km in the period = 66 km = 3.3 t; one record before it
        await add_records(client, owner, [(4, 30.0), (3, 26.0), (2, 10.0), (8, 40.0)])
        today = clock.today()
        start, end = today - timedelta(days=6), today - timedelta(days=1)
        compiler = await make_org(client, "verifier", authority=authority)
        project = await create_project(client, owner, start, end, compiled_by_org_id=compiler.id)
        pid = project["id"]
        assert project["status"] == "publicity"
        assert project["publicity"] == "in_progress"
        assert project["publicity_starts_on"] == today.isoformat()
        assert project["record_count"] == 3
        assert project["claimed_g"] == 3_300_000
        assert project["report"]["totals"] == {"records": 3, "reduction_g": 3_300_000, "users": 1}
        [version] = project["report"]["by_methodology_version"]
        assert (version["code"], version["version"], version["records"], version["reduction_g"]) == (
            owner.code,
            1,
            3,
            3_300_000,
        )
        assert sum(m["reduction_g"] for m in project["report"]["by_month"]) == 3_300_000
        assert project["report_sha256"] == canonical_sha256(project["report"])
        assert project["exclusions"]["included"] == 3

        # public during publicity; anyone may object
        r = await client.get("/v1/public/cer/projects", params={"owner_org_id": owner.org.id})
        assert [(p["id"], p["publicity"]) for p in r.json()["items"]] == [(pid, "in_progress")]
        r = await client.post(
            f"/v1/public/cer/projects/{pid}/objections",
            json={"name": "A neighbour", "contact": "n@example.org", "text": "Counted twice?"},
        )
        assert r.status_code == 201, r.text
        objection = r.json()
        assert objection["contact"] is None
        r = await client.get(f"/v1/public/cer/projects/{pid}/report")
        assert r.json()["match"] is True and r.json()["recomputed_sha256"] == project["report_sha256"]

        # too early to submit
        r = await client.post(f"/v1/cer/projects/{pid}/submit", headers=owner.headers)
        assert (r.status_code, r.json()["code"]) == (409, "publicity_not_over")
        after_publicity(project)
        r = await client.post(f"/v1/public/cer/projects/{pid}/objections", json={"text": "late"})
        assert (r.status_code, r.json()["code"]) == (409, "publicity_closed")
        r = await client.post(f"/v1/cer/projects/{pid}/submit", headers=owner.headers)
        assert (r.status_code, r.json()["code"]) == (409, "objections_unanswered")
        r = await client.get(f"/v1/cer/projects/{pid}/objections", headers=owner.headers)
        assert [o["contact"] for o in r.json()] == ["n@example.org"]
        r = await client.post(
            f"/v1/cer/projects/{pid}/objections/{objection['id']}/answer",
            json={"answer": "Each record is in one project only."},
            headers=owner.headers,
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/v1/cer/projects/{pid}/objections/{objection['id']}/answer",
            json={"answer": "again"},
            headers=owner.headers,
        )
        assert (r.status_code, r.json()["code"]) == (409, "objection_already_answered")
        r = await client.post(f"/v1/cer/projects/{pid}/submit", headers=owner.headers)
        assert r.status_code == 200 and r.json()["status"] == "submitted", r.text

        # verification: never the compiler, never the owner
        r = await client.post(
            f"/v1/cer/projects/{pid}/verifier", json={"verifier_org_id": compiler.id}, headers=auth
        )
        assert (r.status_code, r.json()["code"]) == (409, "self_verification")
        r = await client.post(
            f"/v1/cer/projects/{pid}/verifier", json={"verifier_org_id": owner.org.id}, headers=auth
        )
        assert (r.status_code, r.json()["code"]) == (422, "not_a_verifier")
        checker = await verifier(client, authority)
        r = await client.post(
            f"/v1/cer/projects/{pid}/verifier", json={"verifier_org_id": checker.id}, headers=auth
        )
        assert r.json()["status"] == "verification", r.text
        body = {"verified_g": 3_300_001, "statement": "checked", "documents": ["https://v.example/r.pdf"]}
        r = await client.post(f"/v1/cer/projects/{pid}/verification", json=body, headers=checker.headers)
        assert (r.status_code, r.json()["code"]) == (422, "verified_exceeds_claimed")
        r = await client.post(f"/v1/cer/projects/{pid}/verification", json=body, headers=compiler.headers)
        assert (r.status_code, r.json()["code"]) == (404, "project_not_found")
        r = await client.post(
            f"/v1/cer/projects/{pid}/verification",
            json={**body, "verified_g": 3_250_000},
            headers=checker.headers,
        )
        assert r.json()["status"] == "verified" and r.json()["verified_g"] == 3_250_000, r.text

        # issuing before filing, filing before the review passed
        r = await client.post(f"/v1/cer/projects/{pid}/issue", headers=auth)
        assert (r.status_code, r.json()["code"]) == (409, "not_filed")
        r = await client.post(
            f"/v1/cer/projects/{pid}/filing", json={"outcome": "filed", "reason": "ok"}, headers=auth
        )
        assert (r.status_code, r.json()["code"]) == (409, "review_not_passed")
        panel = await review(client, authority, pid)
        assert panel["field"] == "verification" and panel["outcome"] == "pass"
        r = await client.get(f"/v1/cer/projects/{pid}", headers=auth)
        assert r.json()["status"] == "reviewed"
        r = await client.post(
            f"/v1/cer/projects/{pid}/filing", json={"outcome": "filed", "reason": "ok"}, headers=auth
        )
        assert r.json()["status"] == "filed", r.text

        # issuance: 3 t, 250 kg carried forward
        r = await client.post(f"/v1/cer/projects/{pid}/issue", headers=auth)
        assert r.status_code == 201, r.text
        issuance = r.json()
        assert (issuance["tonnes"], issuance["carried_in_g"], issuance["carried_out_g"]) == (3, 0, 250_000)
        assert issuance["vintage"] == end.year
        first, last = int(issuance["serials"].split("-")[-2]), int(issuance["serials"].split("-")[-1])
        assert last - first + 1 == 3
        assert issuance["serials"] == f"CN-SZ-PHCER-{end.year}-{first:09d}-{last:09d}"
        r = await client.post(f"/v1/cer/projects/{pid}/issue", headers=auth)
        assert (r.status_code, r.json()["code"]) == (409, "invalid_project_state")
        held = await account(client, owner.headers)
        assert (held["held_tonnes"], held["carry_forward_g"]) == (3, 250_000)
        assert [b["serial"] for b in held["blocks"]] == [issuance["serials"]]

        # a trade settled on an exchange: 2 t to a buyer, who retires 1 t for an event
        buyer = await make_org(client, "buyer", authority=authority)
        r = await client.post(
            "/v1/cer/transfers",
            json={"to_org_id": buyer.id, "tonnes": 2, "exchange": "SZ CEEX", "trade_ref": "T-1"},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        assert r.json()["serials"] == [f"CN-SZ-PHCER-{end.year}-{first:09d}-{first + 1:09d}"]
        r = await client.post(
            "/v1/cer/retirements", json={"tonnes": 1, "purpose": "neutral event"}, headers=buyer.headers
        )
        assert (r.status_code, r.json()["code"]) == (422, "beneficiary_required")
        r = await client.post(
            "/v1/cer/retirements",
            json={
                "serials": [f"CN-SZ-PHCER-{end.year}-{first + 1:09d}"],
                "beneficiary": {"kind": "event", "name": "深圳马拉松 2026"},
                "purpose": "Carbon neutrality of the 2026 Shenzhen marathon",
            },
            headers=buyer.headers,
        )
        assert r.status_code == 201, r.text
        retirement = r.json()
        number = retirement["certificate_number"]
        assert retirement["tonnes"] == 1
        assert retirement["serials"] == [f"CN-SZ-PHCER-{end.year}-{first + 1:09d}-{first + 1:09d}"]
        assert retirement["certificate_url"] == f"http://test/v1/public/certificates/{number}"

        # the certificate: public data, hash, PDF with the hash and the verification URL
        r = await client.get(f"/v1/public/certificates/{number}")
        assert r.status_code == 200, r.text
        cert = r.json()
        assert cert["content_sha256"] == canonical_sha256(cert["content"]) == retirement["content_sha256"]
        content = cert["content"]
        assert (content["tonnes"], content["beneficiary"]["name"], content["purpose"]) == (
            1,
            "深圳马拉松 2026",
            "Carbon neutrality of the 2026 Shenzhen marathon",
        )
        assert content["projects"][0]["id"] == pid
        assert content["projects"][0]["methodologies"] == [f"{owner.code}@1"]
        assert content["verification_url"] == f"http://test/certificates/{number}"  # the public page
        r = await client.get(f"/v1/public/certificates/{number}.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF") and hashlib.sha256(r.content).hexdigest() == cert["pdf_sha256"]
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
        assert cert["content_sha256"] in text
        assert number in text and content["verification_url"] in text
        assert retirement["serials"][0] in text
        assert qr_modules(r.content) == expected_modules(cert["content"]["verification_url"])
        r = await client.get("/v1/public/certificates/CERT-1999-000000")
        assert (r.status_code, r.json()["code"]) == (404, "certificate_not_found")

        # the retired unit never moves again
        r = await client.post(
            "/v1/cer/transfers",
            json={"to_org_id": owner.org.id, "serials": retirement["serials"]},
            headers=buyer.headers,
        )
        assert (r.status_code, r.json()["code"]) == (409, "units_retired")
        buyer_account = await account(client, buyer.headers)
        assert (buyer_account["held_tonnes"], buyer_account["retired_tonnes"]) == (1, 1)
        assert [(b["status"], b["certificate_number"]) for b in buyer_account["blocks"]] == [
            ("held", None),
            ("retired", number),
        ]

        # disclosure
        r = await client.get("/v1/public/cer/retirements")
        assert number in [x["certificate_number"] for x in r.json()["items"]]
        r = await client.get("/v1/public/cer/issuances")
        assert issuance["id"] in [x["id"] for x in r.json()["items"]]
        r = await client.get("/v1/public/cer/totals")
        totals = r.json()
        assert (
            totals["issued_tonnes"]
            == totals["held_tonnes"] + totals["retired_tonnes"] + totals["revoked_tonnes"]
        )
