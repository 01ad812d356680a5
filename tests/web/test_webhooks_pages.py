"""Webhook subscriptions in the browser (in process, in English): who reaches ``/webhooks`` and from where,
a new subscription with the secret shown once and every refusal beside its field, pause and resume, a new
secret and deletion after a confirmation, a subscription's deliveries with their attempts and the redelivery
of a failed one; other staff read only, other organisations' subscriptions are not found."""

import re
import uuid
from html import unescape

import pytest
import sqlalchemy as sa

from app.core import db
from app.webhooks import pages, service
from tests.factories import PASSWORD, make_operator, make_org
from tests.web.helpers import HTML, make_authority_account, make_org_staff, page_token, sign_in

HOOK = "https://hooks.example.com/carbon"


async def _signed_in(browser_client, username: str, landing: str = "/webhooks") -> None:
    browser_client.cookies.set("lang", "en")
    r = await sign_in(browser_client, username, PASSWORD, landing)
    assert (r.status_code, r.headers["location"]) == (303, landing)


@pytest.fixture
async def operator(client, browser_client):
    """An operator whose admin is signed in, in English."""
    op = await make_operator(client)
    await _signed_in(browser_client, op.admin_username)
    return op


async def post(browser_client, path: str, data: dict | None = None, form_page: str = "/webhooks"):
    token = await page_token(browser_client, form_page)
    return await browser_client.post(path, data={"csrf_token": token, **(data or {})}, headers=HTML)


async def create(browser_client, url: str = HOOK, types=("entrustment.withdrawn",), description: str = ""):
    return await post(
        browser_client,
        "/webhooks/new",
        {"url": url, "event_types": list(types), "description": description},
        form_page="/webhooks/new",
    )


def secret_of(html: str) -> str:
    match = re.search(r'id="secret"[^>]*>(whsec_[A-Za-z0-9_-]+)</p>', html)
    assert match, "no secret shown"
    return match.group(1)


def field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field__error" id="f-{name}-error">([^<]*)</p>', html)
    assert match, f"no error beside {name}"
    return unescape(match.group(1))


def rows(html: str, table_id: str) -> list[list[str]]:
    block = html[html.index(f'id="{table_id}"') :]
    block = block[: block.index("</table>")]
    found = re.findall(r"<tr>(.*?)</tr>", block, re.S)
    return [
        [
            " ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split())
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in found
    ]


async def _subscription_ids(org_id) -> list[str]:
    async with db.session_scope() as session:
        result = await session.execute(
            sa.text("SELECT id::text FROM webhook_subscriptions WHERE org_id = :o ORDER BY created_at"),
            {"o": uuid.UUID(str(org_id))},
        )
        return [r[0] for r in result]


async def _created(browser_client, org) -> str:
    r = await create(browser_client)
    assert r.status_code == 200, r.text
    return (await _subscription_ids(org.id))[-1]


class TestWhoReachesIt:
    async def test_the_operators_console_links_it(self, browser_client, operator):
        r = await browser_client.get("/operator")
        assert r.text.count('href="/webhooks"') == 2  # the console's navigation and its card
        r = await browser_client.get("/webhooks")
        assert r.status_code == 200
        assert '<a href="/webhooks" aria-current="page">Webhooks</a>' in r.text
        assert rows(r.text, "subscriptions")[1] == [
            "No subscription yet: events are kept in GET /v1/events until you subscribe."
        ]
        assert 'href="/webhooks/new"' in r.text

    @pytest.mark.parametrize(
        ("kind", "portal", "link_page"),
        [
            ("merchant", "/merchant", "/merchant/orders"),
            ("scene_operator", "/scene-operator", "/scene-operator"),
            ("verifier", "/verifier", "/verifier"),
            ("buyer", "/organization", "/organization"),
        ],
    )
    async def test_every_kind_with_events_from_its_portal(
        self, client, browser_client, kind, portal, link_page
    ):
        org = await make_org(client, kind)
        await _signed_in(browser_client, org.admin_username, link_page)
        assert 'href="/webhooks"' in (await browser_client.get(link_page)).text
        r = await browser_client.get("/webhooks")
        assert r.status_code == 200
        assert f'<p class="back-link"><a href="{portal}">' in r.text
        r = await browser_client.get("/webhooks/new")
        offered = re.findall(r'name="event_types" value="([^"]+)"', r.text)
        assert offered == [t.type for t in service.event_types(kind)]

    async def test_strangers_sign_in_and_the_authority_is_refused(self, browser_client):
        r = await browser_client.get("/webhooks/new")
        assert (r.status_code, r.headers["location"]) == (303, "/sign-in?next=%2Fwebhooks%2Fnew")
        await _signed_in(browser_client, await make_authority_account(), "/console")
        assert (await browser_client.get("/webhooks")).status_code == 403

    async def test_every_event_type_is_explained_in_the_readers_language(self):
        assert set(pages.TYPE_TEXTS) == set(service.EVENT_TYPES)


class TestCreate:
    async def test_the_secret_is_shown_once(self, browser_client, operator):
        r = await browser_client.get("/webhooks/new")
        offered = re.findall(r'name="event_types" value="([^"]+)"', r.text)
        assert offered == [t.type for t in service.event_types("operator")]
        assert "Every morning: your people whose points expire in the next days" in unescape(r.text)
        r = await create(
            browser_client, types=["points.expiring", "entrustment.withdrawn"], description="metro app"
        )
        assert (r.status_code, r.headers["cache-control"]) == (200, "no-store")
        secret = secret_of(r.text)
        assert "This secret is shown only this once." in r.text
        [sid] = await _subscription_ids(operator.id)
        assert f'href="/webhooks/{sid}"' in r.text
        listing = await browser_client.get("/webhooks")
        assert rows(listing.text, "subscriptions")[1:] == [
            [f"{HOOK} metro app", "entrustment.withdrawn points.expiring", "Active", "—", "—"]
        ]
        detail = await browser_client.get(f"/webhooks/{sid}")
        assert secret not in listing.text and secret not in detail.text
        assert "whsec_" not in detail.text

    @pytest.mark.parametrize(
        ("url", "types", "field", "message"),
        [
            (HOOK, [], "event_types", "Choose at least one event type."),
            (
                "",
                ["entrustment.withdrawn"],
                "url",
                "Enter the address the events are posted to (at most 2,000 characters).",
            ),
            (
                "http://hooks.example.com/x",
                ["entrustment.withdrawn"],
                "url",
                "The address starts with https:// (on a test platform also http:// to this computer, 127.0.0.1).",
            ),
            (
                "https://user:pw@hooks.example.com/x",
                ["entrustment.withdrawn"],
                "url",
                "Leave the user name and password out of the address: the signature shows the platform sent it.",
            ),
            (
                "https://hooks.example.com/x#top",
                ["entrustment.withdrawn"],
                "url",
                "Leave out the part from # on.",
            ),
            (
                "https://" + "a" * 2000,
                ["entrustment.withdrawn"],
                "url",
                "Enter the address the events are posted to (at most 2,000 characters).",
            ),
            (
                HOOK,
                ["no.such_type"],
                "event_types",
                "Choose event types from this list: your organisation receives these.",
            ),
            (
                HOOK,
                ["scene.decided"],
                "event_types",
                "Choose event types from this list: your organisation receives these.",
            ),
        ],
    )
    async def test_refusals_beside_their_field(self, browser_client, operator, url, types, field, message):
        r = await create(browser_client, url=url, types=types)
        assert r.status_code == 400
        assert field_error(r.text, field) == message
        assert await _subscription_ids(operator.id) == []

    async def test_a_refused_address_and_no_event_type_are_named_together(self, browser_client, operator):
        r = await create(browser_client, url="ftp://hooks.example.com/x", types=[])
        assert r.status_code == 400
        assert field_error(r.text, "event_types") == "Choose at least one event type."
        assert field_error(r.text, "url") == (
            "The address starts with https:// (on a test platform also http:// to this computer, 127.0.0.1)."
        )
        assert await _subscription_ids(operator.id) == []

    async def test_production_wants_https_to_a_public_address(
        self, browser_client, operator, settings, monkeypatch
    ):
        monkeypatch.setattr(settings, "environment", "production")
        r = await create(browser_client, url="http://127.0.0.1:9000/hook")
        assert field_error(r.text, "url") == "The address starts with https://."
        r = await create(browser_client, url="https://10.0.0.5/hook")
        assert field_error(r.text, "url") == (
            "The platform posts only to public addresses, never to private or loopback ones."
        )
        assert r.status_code == 400 and await _subscription_ids(operator.id) == []

    async def test_the_eleventh_is_refused_with_the_form_kept(self, browser_client, operator):
        for _ in range(10):
            assert (await create(browser_client)).status_code == 200
        r = await create(browser_client, url="https://eleven.example.com/")
        assert r.status_code == 409
        assert 'role="alert" id="form-error">Your organisation has 10 subscriptions already' in r.text
        assert 'value="https://eleven.example.com/"' in r.text
        assert len(await _subscription_ids(operator.id)) == 10

    async def test_without_the_form_token_nothing_is_written(self, browser_client, operator):
        r = await browser_client.post(
            "/webhooks/new", data={"url": HOOK, "event_types": "entrustment.withdrawn"}, headers=HTML
        )
        assert r.status_code == 403 and await _subscription_ids(operator.id) == []


class TestChanges:
    async def test_pause_and_resume(self, browser_client, operator):
        sid = await _created(browser_client, operator)
        r = await post(browser_client, f"/webhooks/{sid}/pause")
        assert (r.status_code, r.headers["location"]) == (303, f"/webhooks/{sid}?done=paused")
        r = await browser_client.get(r.headers["location"])
        assert "The subscription is paused: new events are not sent to it." in r.text
        assert 'data-status="paused"' in r.text and f'action="/webhooks/{sid}/resume"' in r.text
        r = await post(browser_client, f"/webhooks/{sid}/resume")
        assert (r.status_code, r.headers["location"]) == (303, f"/webhooks/{sid}?done=resumed")
        r = await browser_client.get(r.headers["location"])
        assert 'data-status="active"' in r.text and f'action="/webhooks/{sid}/pause"' in r.text

    async def test_a_disabled_one_is_resumed_not_paused(self, browser_client, operator):
        sid = await _created(browser_client, operator)
        await disabled_by_the_platform(sid)
        listing = await browser_client.get("/webhooks")
        row = rows(listing.text, "subscriptions")[1]
        # the reason in the page's language, not the stored machine text
        assert row[2:] == ["Disabled", row[3], "Every delivery attempt failed for a day"] and row[3] != "—"
        notice = (
            "The platform stopped delivering events to 1 endpoint: its deliveries failed for a day. "
            "Fix the endpoint, then resume the subscription; the events missed meanwhile are in GET /v1/events."
        )
        for page in ("/webhooks", "/operator"):  # the admin is told where they look: the list and the console
            r = await browser_client.get(page)
            alert = re.search(
                r'<div class="alert alert--error" role="alert" id="disabled-webhooks">(.*?)</div>',
                r.text,
                re.S,
            )
            assert alert is not None, page
            assert " ".join(re.sub(r"<[^>]+>", " ", alert.group(1)).split()).startswith(notice), page
            assert f'href="/webhooks/{sid}"' in alert.group(1)
            assert f"· failing since {row[3]}" in " ".join(re.sub(r"<[^>]+>", " ", alert.group(1)).split()), (
                page
            )
        r = await post(browser_client, f"/webhooks/{sid}/pause")
        assert r.status_code == 409
        assert "The platform disabled this subscription: resume it once its endpoint works again." in r.text
        assert (await post(browser_client, f"/webhooks/{sid}/resume")).status_code == 303

    async def test_a_new_secret_after_a_confirmation(self, browser_client, operator):
        r = await create(browser_client)
        first = secret_of(r.text)
        [sid] = await _subscription_ids(operator.id)
        r = await browser_client.get(f"/webhooks/{sid}/rotate-secret")
        assert (
            r.status_code == 200
            and "For 24 hours deliveries are signed with the old secret as well" in r.text
        )
        r = await post(
            browser_client, f"/webhooks/{sid}/rotate-secret", form_page=f"/webhooks/{sid}/rotate-secret"
        )
        assert (r.status_code, r.headers["cache-control"]) == (200, "no-store")
        second = secret_of(r.text)
        assert second != first and "deliveries are signed with the old secret as well" in r.text
        detail = await browser_client.get(f"/webhooks/{sid}")
        assert "Old secret signs until" in detail.text and second not in detail.text

    async def test_delete_after_a_confirmation(self, browser_client, operator):
        sid = await _created(browser_client, operator)
        r = await browser_client.get(f"/webhooks/{sid}/delete")
        assert "This cannot be undone." in r.text
        assert '<button class="button button--danger" type="submit">' in r.text  # red: it cannot be undone
        r = await post(browser_client, f"/webhooks/{sid}/delete")
        assert (r.status_code, r.headers["location"]) == (303, "/webhooks?done=deleted")
        assert "The subscription is deleted." in (await browser_client.get("/webhooks?done=deleted")).text
        assert await _subscription_ids(operator.id) == []
        assert (await browser_client.get(f"/webhooks/{sid}")).status_code == 404


class TestReadOnlyStaff:
    async def test_staff_read_and_may_change_nothing(self, client, browser_client):
        op = await make_operator(client)
        await _signed_in(browser_client, op.admin_username)
        sid = await _created(browser_client, op)
        event_id, delivery_id = await _failed_delivery(op, sid)
        await post(browser_client, "/sign-out")
        await _signed_in(browser_client, await make_org_staff(op.id))
        r = await browser_client.get("/webhooks")
        assert r.status_code == 200 and 'href="/webhooks/new"' not in r.text
        assert "Your organisation's admin account adds, pauses and deletes subscriptions" in r.text
        r = await browser_client.get(f"/webhooks/{sid}")
        assert r.status_code == 200 and "/pause" not in r.text and "/redeliver" not in r.text
        r = await browser_client.get(f"/webhooks/{sid}/deliveries/{delivery_id}")
        assert r.status_code == 200 and "/redeliver" not in r.text
        for path in ("/webhooks/new", f"/webhooks/{sid}/rotate-secret", f"/webhooks/{sid}/delete"):
            assert (await browser_client.get(path)).status_code == 403, path
        for path in (
            "/webhooks/new",
            f"/webhooks/{sid}/pause",
            f"/webhooks/{sid}/resume",
            f"/webhooks/{sid}/rotate-secret",
            f"/webhooks/{sid}/delete",
            f"/webhooks/{sid}/deliveries/{delivery_id}/redeliver",
        ):
            assert (
                await post(browser_client, path, {"url": HOOK, "event_types": "order.created"})
            ).status_code == (403), path
        assert await _subscription_ids(op.id) == [sid]
        assert await _delivery_status(delivery_id) == "failed"


async def disabled_by_the_platform(sid: str) -> None:
    """The subscription ``sid`` as the delivery worker leaves it after a day of failures."""
    async with db.session_scope() as session:
        await session.execute(
            sa.text(
                "UPDATE webhook_subscriptions SET status = 'disabled', failing_since = now(),"
                " disabled_reason = 'every attempt failed for 24 hours' WHERE id = :s"
            ),
            {"s": uuid.UUID(sid)},
        )


async def _failed_delivery(org, sid: str) -> tuple[uuid.UUID, int]:
    """An event of ``org`` with a delivery to ``sid`` given up after two failed attempts."""
    async with db.session_scope() as session:
        event_id = await service.emit(
            session,
            org_id=uuid.UUID(org.id),
            type="entrustment.withdrawn",
            subject_type="entrustment",
            subject_id="u-1",
            payload={
                "external_user_id": "u-1",
                "withdrawn_at": "2026-01-01T00:00:00+00:00",
                "by": "operator",
            },
        )
        delivery_id = (
            await session.execute(
                sa.text(
                    "UPDATE webhook_deliveries SET status = 'failed', attempts = 2 WHERE event_id = :e"
                    " AND subscription_id = :s RETURNING id"
                ),
                {"e": event_id, "s": uuid.UUID(sid)},
            )
        ).scalar_one()
        for status, error, latency in ((None, "ReadTimeout: timed out", 10000), (503, "HTTP 503", 42)):
            await session.execute(
                sa.text(
                    "INSERT INTO webhook_attempts (delivery_id, at, status_code, latency_ms, error, response_excerpt)"
                    " VALUES (:d, now(), :c, :l, :e, :x)"
                ),
                {"d": delivery_id, "c": status, "l": latency, "e": error, "x": "busy" if status else ""},
            )
    return event_id, delivery_id


async def _delivery_status(delivery_id: int) -> str:
    async with db.session_scope() as session:
        return (
            await session.execute(
                sa.text("SELECT status FROM webhook_deliveries WHERE id = :d"), {"d": delivery_id}
            )
        ).scalar_one()


class TestDeliveries:
    async def test_deliveries_attempts_and_a_redelivery(self, browser_client, operator):
        sid = await _created(browser_client, operator)
        event_id, delivery_id = await _failed_delivery(operator, sid)
        r = await browser_client.get(f"/webhooks/{sid}")
        [header, row] = rows(r.text, "delivery-list")
        assert header == ["Event type", "Event time", "Status", "Attempts", "Last attempt", "Action"]
        assert [row[0], row[2], row[3], row[5]] == [
            f"entrustment.withdrawn {event_id}",
            "Not delivered",
            "2",
            "Redeliver",
        ]
        assert row[4].startswith("HTTP 503 · 42 ms")
        assert rows((await browser_client.get(f"/webhooks/{sid}?status=delivered")).text, "delivery-list")[
            1
        ] == ["Nothing sent to this address yet."]
        r = await browser_client.get(f"/webhooks/{sid}/deliveries/{delivery_id}")
        assert [a[1:4] for a in rows(r.text, "attempts")[1:]] == [
            ["—", "10,000 ms", "ReadTimeout: timed out"],
            ["503", "42 ms", "HTTP 503"],
        ]
        r = await post(browser_client, f"/webhooks/{sid}/deliveries/{delivery_id}/redeliver")
        assert (r.status_code, r.headers["location"]) == (
            303,
            f"/webhooks/{sid}/deliveries/{delivery_id}?done=redelivered",
        )
        r = await browser_client.get(r.headers["location"])
        assert "The event will be sent again within seconds." in r.text and 'data-status="pending"' in r.text
        # a delivery waiting for its next attempt is not a review's "pending" (待审核)
        assert '<span class="badge badge--waiting">Waiting to be delivered</span>' in r.text
        assert await _delivery_status(delivery_id) == "pending"

    async def test_other_organisations_and_bad_ids_are_not_found(self, client, browser_client, operator):
        sid = await _created(browser_client, operator)
        _, delivery_id = await _failed_delivery(operator, sid)
        other = await make_operator(client)
        await post(browser_client, "/sign-out")
        await _signed_in(browser_client, other.admin_username)
        for path in (
            f"/webhooks/{sid}",
            f"/webhooks/{sid}/delete",
            f"/webhooks/{sid}/deliveries/{delivery_id}",
            f"/webhooks/{uuid.uuid4()}",
        ):
            assert (await browser_client.get(path)).status_code == 404, path
        for path in (f"/webhooks/{sid}/pause", f"/webhooks/{sid}/deliveries/{delivery_id}/redeliver"):
            assert (await post(browser_client, path)).status_code == 404, path
        assert await _delivery_status(delivery_id) == "failed"
        assert (await browser_client.get("/webhooks/not-a-uuid")).status_code == 400
        assert (await browser_client.get(f"/webhooks/{sid}?status=lost")).status_code == 400
        other_sid = await _created(browser_client, other)
        assert (
            await browser_client.get(f"/webhooks/{other_sid}/deliveries/{delivery_id}")
        ).status_code == 404
        assert (
            await browser_client.get(f"/webhooks/{other_sid}/deliveries/99999999999999999999")
        ).status_code == 400
