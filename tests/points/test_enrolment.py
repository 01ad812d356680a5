import uuid

import sqlalchemy as sa

from app.core import db
from tests.factories import make_operator, person_session, unique
from tests.factories_points import enrol, phone, user_headers


class TestOnePersonOneAccount:
    async def test_two_operators_enrolling_the_same_phone_meet_in_one_account(self, client):
        a, b = await make_operator(client), await make_operator(client)
        number = phone()
        local = number.removeprefix("+86")
        first = await enrol(client, a, number=number)
        second = await enrol(client, b, number=f"{local[:3]} {local[3:7]} {local[7:]}")
        assert first["user_id"] == second["user_id"]

    async def test_the_phone_number_is_not_stored(self, client):
        op = await make_operator(client)
        number = phone()
        await enrol(client, op, number=number)
        async with db.session_scope() as session:
            dump = (await session.execute(sa.text("SELECT string_agg(t::text, ' ') FROM users t"))).scalar()
            dump += (
                await session.execute(sa.text("SELECT string_agg(t::text, ' ') FROM entrustments t"))
            ).scalar()
        assert number.removeprefix("+86") not in dump

    async def test_enrolling_again_changes_nothing(self, client):
        op = await make_operator(client)
        number, ext = phone(), unique("u")
        first = await enrol(client, op, external_user_id=ext, number=number)
        r = await client.post(
            "/v1/operator/users",
            json={
                "external_user_id": ext,
                "identifier": {"type": "phone", "value": number},
                "consent": {"agreement_version": "v1", "accepted_at": "2026-01-01T00:00:00+08:00"},
            },
            headers=op.headers,
        )
        assert r.status_code == 200
        assert r.json()["created"] is False
        assert r.json()["user_id"] == first["user_id"]


class TestEnrolmentBadInput:
    async def test_external_id_of_another_person(self, client):
        op = await make_operator(client)
        ext = unique("u")
        await enrol(client, op, external_user_id=ext)
        r = await client.post(
            "/v1/operator/users",
            json={
                "external_user_id": ext,
                "identifier": {"type": "phone", "value": phone()},
                "consent": {"agreement_version": "v1", "accepted_at": "2026-01-01T00:00:00+08:00"},
            },
            headers=op.headers,
        )
        assert r.status_code == 409
        assert r.json()["code"] == "external_user_id_taken"

    async def test_same_person_under_a_second_external_id(self, client):
        op = await make_operator(client)
        number = phone()
        await enrol(client, op, number=number)
        r = await client.post(
            "/v1/operator/users",
            json={
                "external_user_id": unique("u"),
                "identifier": {"type": "phone", "value": number},
                "consent": {"agreement_version": "v1", "accepted_at": "2026-01-01T00:00:00+08:00"},
            },
            headers=op.headers,
        )
        assert r.status_code == 409
        assert r.json()["code"] == "already_entrusted"

    async def test_invalid_phone(self, client):
        op = await make_operator(client)
        r = await client.post(
            "/v1/operator/users",
            json={
                "external_user_id": "x1",
                "identifier": {"type": "phone", "value": "12345"},
                "consent": {"agreement_version": "v1", "accepted_at": "2026-01-01T00:00:00+08:00"},
            },
            headers=op.headers,
        )
        assert r.status_code == 422
        assert r.json()["code"] == "invalid_identifier"

    async def test_consent_in_the_future_or_without_offset(self, client):
        op = await make_operator(client)
        body = {
            "external_user_id": "x2",
            "identifier": {"type": "phone", "value": phone()},
            "consent": {"agreement_version": "v1", "accepted_at": "2199-01-01T00:00:00+08:00"},
        }
        r = await client.post("/v1/operator/users", json=body, headers=op.headers)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_consent")
        body["consent"]["accepted_at"] = "2026-01-01T00:00:00"
        r = await client.post("/v1/operator/users", json=body, headers=op.headers)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")

    async def test_only_operators_enrol(self, client):
        from tests.factories import make_org

        merchant = await make_org(client, "merchant")
        r = await client.post(
            "/v1/operator/users",
            json={
                "external_user_id": "x3",
                "identifier": {"type": "phone", "value": phone()},
                "consent": {"agreement_version": "v1", "accepted_at": "2026-01-01T00:00:00+08:00"},
            },
            headers=merchant.headers,
        )
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")


class TestWithdrawal:
    async def test_withdrawn_user_gets_no_token_and_unknown_withdrawal_is_404(self, client):
        op = await make_operator(client)
        u = await enrol(client, op)
        r = await client.delete(f"/v1/operator/users/{u['external_user_id']}", headers=op.headers)
        assert r.status_code == 200
        assert r.json()["user_id"] == u["user_id"]
        r = await client.post(f"/v1/operator/users/{u['external_user_id']}/tokens", headers=op.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")
        r = await client.delete(f"/v1/operator/users/{u['external_user_id']}", headers=op.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")

    async def test_an_operator_cannot_see_another_operators_user(self, client):
        a, b = await make_operator(client), await make_operator(client)
        u = await enrol(client, a)
        r = await client.get(f"/v1/operator/users/{u['external_user_id']}/account", headers=b.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_entrusted")


class TestUserTokenAndDeletion:
    async def test_me_routes_need_a_user_token(self, client):
        op = await make_operator(client)
        r = await client.get("/v1/me/account", headers=op.headers)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
        r = await client.get("/v1/me/account")
        assert (r.status_code, r.json()["code"]) == (401, "not_authenticated")

    async def test_delete_anonymises_and_tokens_stop(self, client):
        op = await make_operator(client)
        number = phone()
        u = await enrol(client, op, number=number)
        h = await user_headers(client, op, u["external_user_id"])
        csrf = await person_session(client, number)  # only the person, signed in on the platform, deletes
        r = await client.delete("/v1/me", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200
        async with db.session_scope() as session:
            row = (
                await session.execute(
                    sa.text("SELECT identity_hash, deleted_at FROM users WHERE id = :id"),
                    {"id": uuid.UUID(u["user_id"])},
                )
            ).one()
        assert row.identity_hash is None and row.deleted_at is not None
        r = await client.get("/v1/me/account", headers=h)
        assert (r.status_code, r.json()["code"]) == (401, "invalid_token")
        again = await enrol(client, op, number=number)
        assert again["user_id"] != u["user_id"]


class TestWithdrawalEndsUserTokens:
    async def test_a_user_token_stops_when_the_entrustment_is_withdrawn(self, client):
        op = await make_operator(client)
        u = await enrol(client, op)
        h = await user_headers(client, op, u["external_user_id"])
        assert (await client.get("/v1/me/account", headers=h)).status_code == 200
        r = await client.delete(f"/v1/operator/users/{u['external_user_id']}", headers=op.headers)
        assert r.status_code == 200
        r = await client.get("/v1/me/account", headers=h)
        assert (r.status_code, r.json()["code"]) == (401, "entrustment_withdrawn")
