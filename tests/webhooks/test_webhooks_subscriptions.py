"""Webhook subscriptions: created with a secret shown once, listed, paused, resumed, rotated, deleted; bad
input refused with stable codes and nothing written."""

import uuid

import pytest
import sqlalchemy as sa

from app.core import db
from app.webhooks import service
from app.webhooks.exceptions import SecretUnreadable
from tests.factories import assert_problem, bearer, make_org, staff_token

HOOK = "https://hooks.example.com/carbon"


async def _count(org_id: str) -> int:
    async with db.session_scope() as session:
        return (
            await session.execute(
                sa.text("SELECT count(*) FROM webhook_subscriptions WHERE org_id = :o"),
                {"o": uuid.UUID(org_id)},
            )
        ).scalar_one()


async def _subscribe(client, org, types=("order.redeemed",), url=HOOK):
    return await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": url, "event_types": list(types), "description": "till"},
        headers=org.headers,
    )


class TestCreate:
    async def test_the_secret_is_shown_once_and_kept_sealed(self, client):
        merchant = await make_org(client, "merchant")
        r = await _subscribe(client, merchant, ("order.redeemed", "order.created", "order.redeemed"))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["secret"].startswith("whsec_") and len(body["secret"]) == 6 + 43
        assert (body["url"], body["event_types"], body["status"], body["description"]) == (
            HOOK,
            ["order.created", "order.redeemed"],
            "active",
            "till",
        )
        got = await client.get(f"/v1/webhooks/subscriptions/{body['id']}", headers=merchant.headers)
        assert got.status_code == 200 and "secret" not in got.json()
        listed = await client.get("/v1/webhooks/subscriptions", headers=merchant.headers)
        assert [s["id"] for s in listed.json()] == [body["id"]] and "secret" not in listed.json()[0]
        async with db.session_scope() as session:
            sealed = (
                await session.execute(
                    sa.text("SELECT secret_sealed FROM webhook_subscriptions WHERE id = :i"),
                    {"i": body["id"]},
                )
            ).scalar_one()
        assert body["secret"].encode() not in sealed
        assert service.unseal_secret(sealed) == body["secret"]

    @pytest.mark.parametrize(
        ("url", "fragment"),
        [
            ("http://hooks.example.com/x", "https"),
            ("https://user:pw@hooks.example.com/x", "user name or password"),
            ("https://hooks.example.com/x#frag", "fragment"),
            ("ftp://hooks.example.com/x", "https"),
            ("https:///nohost", "host"),
            ("https://hooks.example.com/a b", "spaces"),
            ("https://hooks.example.com/" + "a" * 1990, "2000"),
        ],
    )
    async def test_bad_urls_are_refused(self, client, url, fragment):
        merchant = await make_org(client, "merchant")
        r = await _subscribe(client, merchant, url=url)
        if len(url) > 2000:
            assert r.status_code == 422
        else:
            assert fragment in assert_problem(r, 422, "invalid_webhook_url")["detail"]
        assert await _count(merchant.id) == 0

    async def test_loopback_http_outside_production_only(self, client, settings, monkeypatch):
        merchant = await make_org(client, "merchant")
        assert (await _subscribe(client, merchant, url="http://127.0.0.1:9999/hook")).status_code == 201
        monkeypatch.setattr(settings, "environment", "production")
        assert_problem(
            await _subscribe(client, merchant, url="http://127.0.0.1:9999/hook"), 422, "invalid_webhook_url"
        )
        assert_problem(
            await _subscribe(client, merchant, url="http://hooks.example.com/h"), 422, "invalid_webhook_url"
        )
        for private in (
            "https://10.0.0.5/h",
            "https://169.254.169.254/latest",
            "https://localhost/h",
            "https://[::1]/h",
        ):
            assert_problem(await _subscribe(client, merchant, url=private), 422, "invalid_webhook_url")
        assert (await _subscribe(client, merchant)).status_code == 201
        assert await _count(merchant.id) == 2

    async def test_unknown_and_foreign_event_types(self, client):
        merchant = await make_org(client, "merchant")
        problem = assert_problem(
            await _subscribe(client, merchant, ("order.redeemed", "order.eaten")), 422, "unknown_event_type"
        )
        assert problem["types"] == ["order.eaten"]
        problem = assert_problem(
            await _subscribe(client, merchant, ("order.redeemed", "points.expiring")),
            422,
            "event_type_not_allowed",
        )
        assert problem["types"] == ["points.expiring"]
        assert await _count(merchant.id) == 0

    async def test_admins_change_staff_read(self, client):
        merchant = await make_org(client, "merchant")
        sub = (await _subscribe(client, merchant)).json()
        staff = bearer(await staff_token(client, merchant))
        assert_problem(
            await client.post(
                "/v1/webhooks/subscriptions",
                json={"url": HOOK, "event_types": ["order.redeemed"]},
                headers=staff,
            ),
            403,
            "admin_required",
        )
        assert_problem(
            await client.post(f"/v1/webhooks/subscriptions/{sub['id']}/pause", headers=staff),
            403,
            "admin_required",
        )
        assert (await client.get(f"/v1/webhooks/subscriptions/{sub['id']}", headers=staff)).status_code == 200

    async def test_another_organisations_subscription_is_not_found(self, client):
        merchant, other = await make_org(client, "merchant"), await make_org(client, "merchant")
        sub = (await _subscribe(client, merchant)).json()
        for method, path in (
            ("GET", ""),
            ("POST", "/pause"),
            ("POST", "/resume"),
            ("POST", "/rotate-secret"),
            ("DELETE", ""),
        ):
            r = await client.request(
                method, f"/v1/webhooks/subscriptions/{sub['id']}{path}", headers=other.headers
            )
            assert_problem(r, 404, "subscription_not_found")
        assert await _count(merchant.id) == 1

    async def test_at_most_ten(self, client):
        merchant = await make_org(client, "merchant")
        for _ in range(10):
            assert (await _subscribe(client, merchant)).status_code == 201
        assert_problem(await _subscribe(client, merchant), 409, "too_many_subscriptions")


class TestLifecycle:
    async def test_pause_resume_rotate_delete(self, client):
        merchant = await make_org(client, "merchant")
        sub = (await _subscribe(client, merchant)).json()
        base = f"/v1/webhooks/subscriptions/{sub['id']}"
        assert (await client.post(f"{base}/pause", headers=merchant.headers)).json()["status"] == "paused"
        assert (await client.post(f"{base}/pause", headers=merchant.headers)).json()["status"] == "paused"
        assert (await client.post(f"{base}/resume", headers=merchant.headers)).json()["status"] == "active"
        rotated = (await client.post(f"{base}/rotate-secret", headers=merchant.headers)).json()
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != sub["secret"]
        assert rotated["previous_secret_expires_at"] is not None
        async with db.session_scope() as session:
            row = (
                await session.execute(
                    sa.text(
                        "SELECT secret_sealed, previous_secret_sealed FROM webhook_subscriptions WHERE id = :i"
                    ),
                    {"i": sub["id"]},
                )
            ).one()
        assert (service.unseal_secret(row[0]), service.unseal_secret(row[1])) == (
            rotated["secret"],
            sub["secret"],
        )
        deleted = await client.delete(base, headers=merchant.headers)
        assert deleted.status_code == 200 and deleted.json()["id"] == sub["id"]
        assert_problem(await client.get(base, headers=merchant.headers), 404, "subscription_not_found")
        async with db.session_scope() as session:
            actions = (
                (
                    await session.execute(
                        sa.text("SELECT action FROM audit_entries WHERE subject_id = :i ORDER BY at, seq"),
                        {"i": sub["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert actions == [
            "webhook.subscription_created",
            "webhook.subscription_paused",
            "webhook.subscription_resumed",
            "webhook.secret_rotated",
            "webhook.subscription_deleted",
        ]

    async def test_a_disabled_subscription_is_resumed_not_paused(self, client):
        merchant = await make_org(client, "merchant")
        sub = (await _subscribe(client, merchant)).json()
        async with db.session_scope() as session:
            await session.execute(
                sa.text(
                    "UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = 'failing',"
                    " failing_since = now() WHERE id = :i"
                ),
                {"i": sub["id"]},
            )
        base = f"/v1/webhooks/subscriptions/{sub['id']}"
        assert_problem(
            await client.post(f"{base}/pause", headers=merchant.headers), 409, "invalid_subscription_state"
        )
        resumed = (await client.post(f"{base}/resume", headers=merchant.headers)).json()
        assert (resumed["status"], resumed["disabled_reason"], resumed["failing_since"]) == (
            "active",
            None,
            None,
        )


class TestSecrets:
    def test_a_secret_sealed_under_another_key_does_not_open(self, settings, monkeypatch):
        sealed = service.seal_secret("whsec_abc")
        assert service.unseal_secret(sealed) == "whsec_abc"
        monkeypatch.setattr(settings, "webhook_secret_key", "another key entirely")
        with pytest.raises(SecretUnreadable):
            service.unseal_secret(sealed)
        with pytest.raises(SecretUnreadable):
            service.unseal_secret(b"\x01short")

    async def test_the_catalogue_is_public(self, client):
        r = await client.get("/v1/webhooks/event-types")
        assert r.status_code == 200
        assert [t["type"] for t in r.json()] == list(service.EVENT_TYPES)
        assert {t["type"]: t["kinds"] for t in r.json()}["order.created"] == ["merchant", "operator"]
