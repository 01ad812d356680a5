"""What the authority lets an operator do (issue 14): the scopes it may ask people for, and whether it may
enrol people on its own word. An untrusted operator that knows only a phone number no longer reaches the
person; people confirm through /oauth/authorize, and their tokens carry what they granted."""

from datetime import timedelta

import sqlalchemy as sa

from app.core import clock, db, security
from tests.factories import (
    assert_problem,
    authority_token,
    bearer,
    make_operator,
    make_org,
    trust_operator,
)
from tests.factories_points import enrol, phone, record, submit
from tests.oauth_flow import (
    REDIRECT,
    authorize_params,
    consent_to,
    exchange,
    oauth_operator,
    query_of,
    refresh,
)
from tests.web.helpers import HTML


async def _rows(sql: str, **params) -> list:
    async with db.session_scope() as session:
        return [tuple(r) for r in (await session.execute(sa.text(sql), params)).all()]


async def _put(client, org_id: str, what: str, body: dict, token: str):
    return await client.put(f"/v1/organizations/{org_id}/{what}", json=body, headers=bearer(token))


def _enrolment(number: str, ext: str = "u-1") -> dict:
    accepted = (clock.now() - timedelta(days=1)).isoformat()
    return {
        "external_user_id": ext,
        "identifier": {"type": "phone", "value": number},
        "consent": {"agreement_version": "v1", "accepted_at": accepted},
    }


class TestTheAuthoritySets:
    async def test_allowed_scopes_and_trust_are_set_read_and_audited(self, client):
        authority = await authority_token(client)
        op = await make_operator(client, authority, trusted=False, scopes=None)
        r = await client.get(f"/v1/organizations/{op.id}", headers=bearer(op.extra["admin_token"]))
        assert (r.json()["trusted_enrolment"], r.json()["allowed_scopes"]) == (
            False,
            ["behaviours:submit", "account:read"],
        )
        body = {"scopes": ["mall", "account:read", "mall"], "reason": "platform mall pilot"}
        r = await _put(client, op.id, "allowed-scopes", body, authority)
        assert r.status_code == 200, r.text
        assert r.json()["allowed_scopes"] == ["account:read", "mall"]  # canonical order, once each
        r = await _put(
            client, op.id, "trusted-enrolment", {"trusted": True, "reason": "real-name app"}, authority
        )
        assert (r.status_code, r.json()["trusted_enrolment"]) == (200, True)
        r = await client.get(f"/v1/organizations/{op.id}", headers=bearer(op.extra["admin_token"]))
        assert (r.json()["trusted_enrolment"], r.json()["allowed_scopes"]) == (True, ["account:read", "mall"])
        r = await _put(
            client, op.id, "trusted-enrolment", {"trusted": False, "reason": "pilot over"}, authority
        )
        assert (r.status_code, r.json()["trusted_enrolment"]) == (200, False)
        rows = await _rows(
            "SELECT action, data->>'reason', data->'to' FROM audit_entries"
            " WHERE subject_type = 'organization' AND subject_id = :id AND action LIKE 'organization.%\\_set'"
            " ORDER BY at, seq",
            id=op.id,
        )
        assert rows == [
            ("organization.allowed_scopes_set", "platform mall pilot", ["account:read", "mall"]),
            ("organization.trusted_enrolment_set", "real-name app", True),
            ("organization.trusted_enrolment_set", "pilot over", False),
        ]

    async def test_only_the_authority_sets_them(self, client):
        authority = await authority_token(client)
        op = await make_operator(client, authority, trusted=False, scopes=None)
        merchant = await make_org(client, "merchant", authority=authority)
        for token in (op.extra["admin_token"], op.token, merchant.token):
            r = await _put(client, op.id, "trusted-enrolment", {"trusted": True, "reason": "me"}, token)
            assert_problem(r, 403, "forbidden_role")
            r = await _put(client, op.id, "allowed-scopes", {"scopes": ["mall"], "reason": "me"}, token)
            assert_problem(r, 403, "forbidden_role")
        r = await client.put(
            f"/v1/organizations/{op.id}/allowed-scopes", json={"scopes": ["mall"], "reason": "x"}
        )
        assert_problem(r, 401, "not_authenticated")
        assert await _rows(
            "SELECT trusted_enrolment, allowed_scopes FROM organizations WHERE id = :id", id=op.id
        ) == [(False, "behaviours:submit account:read")]

    async def test_bad_input_is_refused_and_changes_nothing(self, client):
        authority = await authority_token(client)
        op = await make_operator(client, authority, trusted=False, scopes=None)
        merchant = await make_org(client, "merchant", authority=authority)
        for body in (
            {"scopes": ["mall", "openid"], "reason": "x"},  # unknown scope name
            {"scopes": [], "reason": "x"},
            {"scopes": ["mall"]},  # no reason
            {"scopes": ["mall"], "reason": "  "},
            {"scopes": "mall", "reason": "x"},
            {"scopes": ["mall"], "reason": "x", "extra": 1},
        ):
            assert_problem(
                await _put(client, op.id, "allowed-scopes", body, authority), 422, "validation_error"
            )
        for body in ({"trusted": "maybe", "reason": "x"}, {"reason": "x"}, {"trusted": True}):
            r = await _put(client, op.id, "trusted-enrolment", body, authority)
            assert_problem(r, 422, "validation_error")
        problem = assert_problem(
            await _put(client, merchant.id, "trusted-enrolment", {"trusted": True, "reason": "x"}, authority),
            409,
            "organization_not_operator",
        )
        assert problem["detail"] == "this organisation is a merchant: only operators have this setting"
        r = await _put(client, merchant.id, "allowed-scopes", {"scopes": ["mall"], "reason": "x"}, authority)
        assert_problem(r, 409, "organization_not_operator")
        r = await _put(
            client,
            "00000000-0000-4000-8000-000000000000",
            "allowed-scopes",
            {"scopes": ["mall"], "reason": "x"},
            authority,
        )
        assert_problem(r, 404, "organization_not_found")
        assert await _rows(
            "SELECT trusted_enrolment, allowed_scopes FROM organizations WHERE id = :id", id=op.id
        ) == [(False, "behaviours:submit account:read")]
        assert await _rows(
            "SELECT count(*) FROM audit_entries WHERE subject_id = :id AND action LIKE '%\\_set'", id=op.id
        ) == [(0,)]


class TestAnUntrustedOperator:
    async def test_knowing_a_phone_number_no_longer_reaches_the_person(self, client, btype):
        authority = await authority_token(client)
        trusted = await make_operator(client, authority)
        untrusted = await make_operator(client, authority, trusted=False, scopes=None)
        number = phone()
        person = await enrol(client, trusted, number=number)  # the person exists, through another operator
        r = await client.post("/v1/operator/users", json=_enrolment(number), headers=untrusted.headers)
        problem = assert_problem(r, 403, "person_confirmation_required")
        assert "/oauth/authorize" in problem["detail"] and "walkthrough" in problem["detail"]
        assert await _rows("SELECT count(*) FROM entrustments WHERE operator_id = :op", op=untrusted.id) == [
            (0,)
        ]
        r = await client.post("/v1/operator/users/u-1/tokens", headers=untrusted.headers)
        assert_problem(r, 403, "person_confirmation_required")
        r = await client.get("/v1/operator/users/u-1/account", headers=untrusted.headers)
        assert_problem(r, 404, "not_entrusted")
        r = await submit(client, untrusted, [record("u-1", btype)])
        assert [o["code"] for o in r.json()["results"]] == ["not_entrusted"]
        # the trusted operator's own enrolment and minted tokens are audited
        rows = await _rows(
            "SELECT action, data->>'confirmed_by', data->>'scope' FROM audit_entries WHERE subject_id = :u"
            " AND actor = :actor ORDER BY at, seq",
            u=person["user_id"],
            actor=f"operator:{trusted.id}",
        )
        assert rows == [("entrustment.granted", "operator_asserted", None)]
        r = await client.post(
            f"/v1/operator/users/{person['external_user_id']}/tokens", headers=trusted.headers
        )
        assert r.status_code == 200, r.text
        claims = security.unverified_claims(r.json()["access_token"])
        assert (claims["azp"], claims["scope"]) == (trusted.id, "behaviours:submit account:read mall")
        rows = await _rows(
            "SELECT data->>'scope' FROM audit_entries WHERE subject_id = :u AND action = 'user_token.minted'",
            u=person["user_id"],
        )
        assert rows == [("behaviours:submit account:read mall",)]

    async def test_existing_entrustments_keep_working_and_people_confirm(self, browser_client, client, btype):
        authority = await authority_token(client)
        op = await oauth_operator(client, authority=authority)  # trusted for now
        number = phone()
        person = await enrol(client, op, number=number, accepted_at=clock.now() - timedelta(days=30))
        await trust_operator(client, authority, op.id, trusted=False, scopes=None)
        # batches for people enrolled before are credited as before
        r = await submit(client, op, [record(person["external_user_id"], btype, quantity=0.5)])
        assert [o["status"] for o in r.json()["results"]] == ["accepted"], r.text
        r = await client.post(f"/v1/operator/users/{person['external_user_id']}/tokens", headers=op.headers)
        assert_problem(r, 403, "person_confirmation_required")
        # the person confirms: the operator gets user tokens from its refresh token
        started = authorize_params(op, scope="account:read")
        query = query_of(await consent_to(browser_client, started, number))
        r = await exchange(client, op, query["code"], started.verifier)
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert (tokens["user_id"], tokens["external_user_id"], tokens["scope"]) == (
            person["user_id"],
            person["external_user_id"],
            "account:read",
        )
        assert await _rows(
            "SELECT confirmed_by, scope FROM entrustments WHERE operator_id = :op", op=op.id
        ) == [("person_otp", "account:read")]
        r = await client.get("/v1/me/account", headers=bearer(tokens["access_token"]))
        assert (r.status_code, r.json()["balance"]) == (200, 50)
        r = await refresh(client, op, tokens["refresh_token"])
        assert (r.status_code, r.json()["scope"]) == (200, "account:read")
        claims = security.unverified_claims(r.json()["access_token"])
        assert (claims["azp"], claims["scope"], claims["sub"]) == (op.id, "account:read", person["user_id"])


class TestScopesAtTheAuthorizationEndpoint:
    async def test_a_scope_the_operator_may_not_ask_for_goes_back_as_invalid_scope(
        self, browser_client, client
    ):
        op = await oauth_operator(client, trusted=False, scopes=None)
        for scope in ("mall", "account:read mall", "openid"):
            started = authorize_params(op, scope=scope)
            r = await browser_client.get(started.url, headers=HTML)
            assert r.status_code == 303, r.text
            assert r.headers["location"].startswith(REDIRECT + "?")
            query = query_of(r.headers["location"])
            assert (query["error"], query["state"]) == ("invalid_scope", started.state)
        assert (
            query_of((await browser_client.get(authorize_params(op, scope="mall").url)).headers["location"])[
                "error_description"
            ]
            == "this application may ask only for behaviours:submit account:read"
        )
        assert await _rows(
            "SELECT count(*) FROM oauth_authorization_requests WHERE client_id = :op", op=op.id
        ) == [(0,)]

    async def test_what_the_person_granted_is_what_the_tokens_carry(self, browser_client, client):
        authority = await authority_token(client)
        op = await oauth_operator(client, authority=authority, trusted=False, scopes=("account:read", "mall"))
        started = authorize_params(op, scope="mall account:read")
        query = query_of(await consent_to(browser_client, started, phone()))
        tokens = (await exchange(client, op, query["code"], started.verifier)).json()
        assert tokens["scope"] == "account:read mall"
        headers = bearer(tokens["access_token"])
        r = await client.get("/v1/me/orders", headers=headers)
        assert (r.status_code, r.json()["items"]) == (200, [])
        # the authority takes `mall` away: the next refresh narrows the tokens, the grant is kept
        await trust_operator(client, authority, op.id, trusted=False, scopes=("account:read",))
        r = await refresh(client, op, tokens["refresh_token"])
        assert (r.status_code, r.json()["scope"]) == (200, "account:read"), r.text
        narrowed = r.json()
        problem = assert_problem(
            await client.get("/v1/me/orders", headers=bearer(narrowed["access_token"])), 403, "scope_required"
        )
        assert problem["scope"] == "mall"
        await trust_operator(client, authority, op.id, trusted=False, scopes=("account:read", "mall"))
        r = await refresh(client, op, narrowed["refresh_token"])
        assert (r.status_code, r.json()["scope"]) == (200, "account:read mall")
