"""The operators' console over HTTP (in process, in English): the landing page, keys (register from a
JWK or a PEM, a private key and a bad PEM refused, revoke after a confirmation), batches and a batch's
rejected records with their download, people per month and by the operator's own id, redemptions in
its own mall with a reversal, and its CER projects."""

import csv
import io
import re
from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from app.core import clock, db, security
from tests.factories import PASSWORD, make_operator, make_org, unique
from tests.factories_cer import create_project, days_ago
from tests.factories_mall import people
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit
from tests.web.helpers import HTML, make_org_staff, page_token, sign_in


@pytest.fixture(autouse=True)
async def rule(app):
    await ensure_rule()
    yield
    clock.set_offset(timedelta(0))


@pytest.fixture
async def console(client, browser_client):
    """An operator whose admin is signed in, in English."""
    op = await make_operator(client)
    browser_client.cookies.set("lang", "en")
    r = await sign_in(browser_client, op.admin_username, PASSWORD, "/operator")
    assert (r.status_code, r.headers["location"]) == (303, "/operator")
    return op


def texts(html: str, table_id: str) -> list[list[str]]:
    """The cells of the table inside the element ``table_id``, tags stripped."""
    block = html[html.index(f'id="{table_id}"') :]
    block = block[: block.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", block, re.S)
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


def alert(html: str) -> str:
    match = re.search(r'<div class="alert alert--error" role="alert"[^>]*>([^<]*)</div>', html)
    assert match, "no error shown"
    return unescape(match.group(1))


async def altered_batch(client, op, change: str) -> str:
    """A batch of one rejected record ("who", a stranger), then ``UPDATE behaviour_batches SET <change>`` on it."""
    r = await submit(client, op, [record("stranger", await make_methodology(), record_id="who")])
    batch_id = r.json()["batch_id"]
    async with db.session_scope() as session:
        await session.execute(
            sa.text(f"UPDATE behaviour_batches SET {change} WHERE id = :id"), {"id": batch_id}
        )
    return batch_id


async def post(
    browser_client, path: str, data: dict | None = None, files=None, form_page: str = "/operator/keys"
):
    token = await page_token(browser_client, form_page)
    return await browser_client.post(
        path, data={"csrf_token": token, **(data or {})}, files=files, headers=HTML
    )


class TestLanding:
    async def test_signing_in_lands_on_the_console(self, client, browser_client):
        op = await make_operator(client)
        r = await sign_in(browser_client, op.admin_username, PASSWORD)
        assert (r.status_code, r.headers["location"]) == (303, "/operator")
        browser_client.cookies.set("lang", "en")
        r = await browser_client.get("/operator")
        assert r.status_code == 200
        for href in (
            "/operator/batches",
            "/operator/keys",
            "/operator/people",
            "/operator/redemptions",
            "/operator/projects",
        ):
            assert f'href="{href}"' in r.text

    async def test_other_roles_are_refused_and_strangers_sent_to_sign_in(self, client, browser_client):
        r = await browser_client.get("/operator/batches")
        assert (r.status_code, r.headers["location"]) == (303, "/sign-in?next=%2Foperator%2Fbatches")
        merchant = await make_org(client, "merchant")
        await sign_in(browser_client, merchant.admin_username)
        for path in (
            "/operator",
            "/operator/keys",
            "/operator/batches",
            "/operator/people",
            "/operator/redemptions",
            "/operator/projects",
        ):
            assert (await browser_client.get(path)).status_code == 403, path


class TestKeys:
    async def test_list_shows_last_use(self, browser_client, console):
        r = await browser_client.get("/operator/keys")
        rows = texts(r.text, "keys")
        assert len(rows) == 2 and rows[1][0] == console.kid and rows[1][1] == "ES256"
        assert rows[1][3] != "Never"  # the client token was asked for with this key
        assert (rows[1][4], rows[1][5]) == ("In use", "Revoke…")

    async def test_register_from_a_pem_file(self, browser_client, console):
        pem = security.generate_rs256_pem()
        public = security.serialization.load_pem_private_key(pem.encode(), None).public_key()
        public_pem = public.public_bytes(
            security.serialization.Encoding.PEM, security.serialization.PublicFormat.SubjectPublicKeyInfo
        )
        r = await post(
            browser_client,
            "/operator/keys",
            files={"pem_file": ("key.pub.pem", public_pem, "application/x-pem-file")},
        )
        assert (r.status_code, r.headers["location"]) == (303, "/operator/keys?done=registered")
        kid = security.thumbprint(security.public_jwk_from_pem(pem))
        r = await browser_client.get(r.headers["location"])
        assert "The key is registered." in r.text
        assert [row[:5] for row in texts(r.text, "keys")[1:]] == [
            [console.kid, "ES256", texts(r.text, "keys")[1][2], texts(r.text, "keys")[1][3], "In use"],
            [kid, "RS256", texts(r.text, "keys")[2][2], "Never", "In use"],
        ]

    async def test_register_from_a_pasted_jwk(self, browser_client, console):
        jwk = security.public_jwk_from_pem(security.generate_es256_pem())
        import json

        r = await post(browser_client, "/operator/keys", {"key_text": json.dumps(jwk)})
        assert r.status_code == 303
        r = await browser_client.get("/operator/keys")
        assert security.thumbprint(jwk) in [row[0] for row in texts(r.text, "keys")]
        r = await post(browser_client, "/operator/keys", {"key_text": json.dumps(jwk)})
        assert (r.status_code, alert(r.text)) == (409, "This key is already registered.")

    async def test_a_private_key_is_refused_and_not_stored(self, browser_client, console):
        pem = security.generate_es256_pem()
        r = await post(browser_client, "/operator/keys", {"key_text": pem})
        assert r.status_code == 422
        assert alert(r.text).startswith("This is a private key. It was not stored.")
        assert "PRIVATE KEY" not in r.text
        r = await post(
            browser_client, "/operator/keys", files={"pem_file": ("id.pem", pem.encode(), "text/plain")}
        )
        assert r.status_code == 422 and alert(r.text).startswith("This is a private key.")
        jwk = {**security.public_jwk_from_pem(pem), "d": "secret"}
        import json

        r = await post(browser_client, "/operator/keys", {"key_text": json.dumps(jwk)})
        assert r.status_code == 422 and alert(r.text).startswith("This is a private key.")
        r = await browser_client.get("/operator/keys")
        assert len(texts(r.text, "keys")) == 2

    async def test_bad_input_is_refused(self, browser_client, console):
        cases = [
            ({"key_text": "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"}, None),
            ({"key_text": "{not json"}, None),
            ({}, ("junk.pem", b"\xff\xfe\x00junk", "application/octet-stream")),
        ]
        for data, upload in cases:
            r = await post(
                browser_client, "/operator/keys", data, files={"pem_file": upload} if upload else None
            )
            assert (r.status_code, alert(r.text)) == (
                422,
                "This is not a public key we can read: paste a JWK (JSON) or a PEM public key.",
            ), data
        r = await post(browser_client, "/operator/keys", {})
        assert (r.status_code, alert(r.text)) == (422, "Upload a PEM file or paste a public key.")

    async def test_revoke_after_a_confirmation(self, browser_client, console):
        r = await browser_client.get(f"/operator/keys/{console.kid}/revoke")
        assert r.status_code == 200
        assert '<button class="button button--danger" type="submit">Revoke this key</button>' in r.text
        r = await post(browser_client, f"/operator/keys/{console.kid}/revoke")
        assert (r.status_code, r.headers["location"]) == (303, "/operator/keys?done=revoked")
        r = await browser_client.get("/operator/keys")
        assert texts(r.text, "keys")[1][4].startswith("Revoked ")
        assert (await browser_client.get("/operator/keys/nope/revoke")).status_code == 404

    async def test_staff_who_are_not_admins_see_keys_but_do_not_manage_them(self, client, browser_client):
        op = await make_operator(client)
        await sign_in(browser_client, await make_org_staff(op.id))
        browser_client.cookies.set("lang", "en")
        r = await browser_client.get("/operator/keys")
        assert r.status_code == 200 and 'action="/operator/keys"' not in r.text
        assert texts(r.text, "keys")[1][5] == ""
        r = await browser_client.post(
            "/operator/keys",
            data={"csrf_token": await page_token(browser_client, "/operator/keys"), "key_text": "{}"},
            headers=HTML,
        )
        assert r.status_code == 403


class TestBatches:
    async def test_list_and_a_batch_with_its_rejected_records(self, client, browser_client, console):
        btype = await make_methodology()
        ext = (await enrol(client, console))["external_user_id"]
        now = clock.now()
        ok = record(ext, btype, quantity=2.0, start=now - timedelta(hours=9), record_id="ok-1")
        assert (await submit(client, console, [ok])).status_code == 200
        bad = [
            record(ext, btype, quantity=1.0, start=now - timedelta(hours=8), record_id="ok-2"),
            record("stranger", btype, quantity=1.0, record_id="who"),
            record(ext, btype, quantity=-1, start=now - timedelta(hours=7), record_id="neg"),
        ]
        r = await submit(client, console, bad)
        mixed = r.json()["batch_id"]
        r = await browser_client.get("/operator/batches")
        rows = texts(r.text, "batches")
        assert [row[1:] for row in rows[1:]] == [["3", "1", "0", "2"], ["1", "1", "0", "0"]]
        assert (
            f'href="/operator/batches/{mixed}"' in r.text
            and '<span class="rejected-count">2</span>' in r.text
        )
        r = await browser_client.get("/operator/batches", params={"rejections": "true"})
        assert len(texts(r.text, "batches")) == 2
        r = await browser_client.get("/operator/batches", params={"received_from": "yesterday"})
        assert r.status_code == 422 and "Enter a day as YYYY-MM-DD." in r.text
        today = clock.today()
        r = await browser_client.get(
            "/operator/batches",
            params={
                "received_from": today.isoformat(),
                "received_to": (today - timedelta(days=1)).isoformat(),
            },
        )
        assert r.status_code == 422 and "The last day comes before the first." in r.text

        r = await browser_client.get(f"/operator/batches/{mixed}")
        assert r.status_code == 200
        quantity = "The quantity is not plausible for one record."
        entrusted = "The person had no live entrustment with your app when the behaviour began."
        assert texts(r.text, "reject-codes")[1:] == [
            ["implausible_quantity", quantity, "1"],
            ["not_entrusted", entrusted, "1"],
        ]
        records = texts(r.text, "records")[1:]
        assert [(x[0], x[1], x[2], x[5], x[6], x[7]) for x in records] == [
            ("2", "who", "stranger", "Rejected", "not_entrusted", entrusted),
            (
                "3",
                "neg",
                ext,
                "Rejected",
                "implausible_quantity",
                quantity + "quantity must be a positive finite number",
            ),
        ]
        assert '<span class="answered">quantity must be a positive finite number</span>' in r.text
        assert "<h2>Record list</h2>" in r.text and "<caption>Record list</caption>" in r.text
        assert 'id="not-recorded"' not in r.text
        r = await browser_client.get(f"/operator/batches/{mixed}", params={"show": "all"})
        assert [x[5] for x in texts(r.text, "records")[1:]] == ["Accepted", "Rejected", "Rejected"]
        r = await browser_client.get(f"/operator/batches/{mixed}", params={"format": "csv"})
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert [row[0] for row in rows] == ["record_id", "who", "neg"]
        assert rows[2] == [
            "neg",
            ext,
            btype,
            bad[2]["started_at"],
            "implausible_quantity",
            "quantity must be a positive finite number",
        ]

    async def test_a_batch_received_before_outcomes_were_kept(self, client, browser_client, console):
        batch_id = await altered_batch(client, console, "rejections = '[]'::jsonb")
        r = await browser_client.get(f"/operator/batches/{batch_id}")
        assert r.status_code == 200
        assert 'id="not-recorded"' in r.text
        assert texts(r.text, "reject-codes")[1:] == [["not recorded", "", "1"]]
        assert [(x[1], x[5], x[6], x[7]) for x in texts(r.text, "records")[1:]] == [
            ("who", "Rejected", "not recorded", "")
        ]

    async def test_a_batch_whose_kept_body_was_altered_is_the_500_page(self, client, browser_client, console):
        batch_id = await altered_batch(client, console, "body = substr(body, 1, 10)")
        r = await browser_client.get(f"/operator/batches/{batch_id}")
        assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
        # a fault on the platform's side, not the operator's: the 500 page, with the request id to quote
        assert "Something went wrong" in r.text and r.headers["x-request-id"] in r.text

    async def test_another_operators_batch_is_not_found(self, client, browser_client, console):
        other = await make_operator(client)
        btype = await make_methodology()
        r = await submit(client, other, [record(unique("u"), btype)])
        theirs = r.json()["batch_id"]
        assert (await browser_client.get(f"/operator/batches/{theirs}")).status_code == 404
        assert (await browser_client.get(f"/operator/batches/{theirs}?format=csv")).status_code == 404
        assert (await browser_client.get("/operator/batches/not-an-id")).status_code == 400


class TestPeople:
    async def test_counts_per_month_and_a_look_up_by_own_id(self, client, browser_client, console):
        a = await enrol(client, console, accepted_at=clock.now() - timedelta(days=2))
        await enrol(client, console, accepted_at=clock.now() - timedelta(days=2))
        r = await client.delete(f"/v1/operator/users/{a['external_user_id']}", headers=console.headers)
        assert r.status_code in (200, 204), r.text
        r = await browser_client.get("/operator/people")
        month = clock.today().strftime("%Y-%m")
        assert texts(r.text, "months")[0] == ["Month", "New entrustments", "Withdrew"]
        rows = texts(r.text, "months")[1:]
        assert rows[0] == [month, "2", "1"] or [
            sum(int(x[1]) for x in rows),
            sum(int(x[2]) for x in rows),
        ] == [2, 1]
        r = await browser_client.get("/operator/people", params={"external_user_id": a["external_user_id"]})
        found = texts(r.text, "found")[1:]
        assert len(found) == 1 and found[0][1] != "Still entrusted"
        assert found[0][2] == "On your word (enrolled by your app)"
        r = await browser_client.get("/operator/people", params={"external_user_id": "nobody"})
        assert texts(r.text, "found")[1:] == [["Nobody entrusted your app under this id."]]
        r = await browser_client.get("/operator/people", params={"external_user_id": " "})
        assert r.status_code == 422 and "Enter your app&#39;s id of the person." in r.text


class TestRedemptions:
    async def test_list_and_reverse(self, client, browser_client, console):
        btype = await make_methodology(factor="1000")
        [person] = await people(client, console, btype, 1, points=300)
        order = unique("op-order")
        r = await client.post(
            "/v1/me/operator-redemptions",
            json={"operator_order_id": order, "points": 120, "description": "a tote bag"},
            headers=person.headers,
        )
        assert r.status_code == 201, r.text
        r = await browser_client.get("/operator/redemptions")
        rows = texts(r.text, "redemptions")[1:]
        assert [(x[0], x[2], x[3], x[4], x[5]) for x in rows] == [
            (order, "a tote bag", "120", "Completed", "Reverse…")
        ]
        r = await browser_client.get(f"/operator/redemptions/{order}/reverse")
        assert r.status_code == 200 and "Reverse it" in r.text
        r = await post(
            browser_client, f"/operator/redemptions/{order}/reverse", form_page="/operator/redemptions"
        )
        assert (r.status_code, r.headers["location"]) == (303, "/operator/redemptions?done=reversed")
        r = await browser_client.get("/operator/redemptions?done=reversed")
        assert texts(r.text, "redemptions")[1][4].startswith("Reversed")
        r = await post(
            browser_client, f"/operator/redemptions/{order}/reverse", form_page="/operator/redemptions"
        )
        assert (r.status_code, alert(r.text)) == (409, "This redemption was reversed already.")
        assert (await browser_client.get("/operator/redemptions/nope/reverse")).status_code == 404


class TestProjects:
    async def test_the_operators_own_projects_with_their_stage(self, client, browser_client, console):
        btype = await make_methodology(factor="50000", max_record="100", max_day=None)
        ext = (await enrol(client, console, accepted_at=days_ago(40)))["external_user_id"]
        r = await submit(client, console, [record(ext, btype, quantity=10, start=days_ago(5))])
        assert r.json()["summary"]["accepted"] == 1, r.text
        from tests.factories_cer import Owner

        project = await create_project(
            client, Owner(console, ext, btype), days_ago(10).date(), days_ago(1).date()
        )
        r = await browser_client.get("/operator/projects")
        rows = texts(r.text, "projects")[1:]
        assert [(x[0], x[1], x[3], x[4]) for x in rows] == [
            (project["name"] + "Public page", "In publicity", "500 kg", "0 / 0")
        ]
        assert f'<a href="/cer/my-projects/{project["id"]}">{project["name"]}</a>' in r.text
        assert f'<a class="cell-link" href="/cer/projects/{project["id"]}">Public page</a>' in r.text
        r = await browser_client.get(f"/cer/my-projects/{project['id']}")  # the owner's view of its evidence
        assert r.status_code == 200 and project["name"] in r.text
