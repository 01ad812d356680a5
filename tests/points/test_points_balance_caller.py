"""The balance read checks its caller's standing in its own statement (``GET /v1/me/account``,
:func:`app.core.callers.defer`, ``user_caller_may_act`` of migration 0025).

A person's app reads the balance on every open. When the process does not know the caller's standing, the
balance's statement checks it (the person, their operator, the entrustment, the token's refresh family): one
statement, not the standing's read and then the balance's. Refused, the standing is read as on every route to
answer why; found good, it is kept as a read would have kept it.

These tests commit: a direct read's connection is not the test's, so it sees only committed rows.
"""

import asyncio
import uuid

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from app.auth.dependencies import BalanceReader, Session
from app.core import callers, clock, db
from app.core.routing import DirectReadRoute
from app.points import repository as points_repo
from app.points.schemas import AccountRead
from tests.factories import (
    assert_problem,
    authority_token,
    bearer,
    committed,
    family_token,
    kinds,
    make_operator,
    revoke_family,
    suspended_until_read,
)
from tests.factories_points import enrol, ensure_rule, make_methodology, record, submit, user_headers

pytestmark = pytest.mark.commits


async def credited(client, n: int = 1):
    """An operator and ``n`` of its people with 1,500 g of reduction credited each (150 points), with their
    headers."""
    await ensure_rule()
    btype = await make_methodology(factor="1000")
    op = await make_operator(client)
    exts = [(await enrol(client, op))["external_user_id"] for _ in range(n)]
    r = await submit(client, op, [record(ext, btype, quantity=1.5) for ext in exts])
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * n, r.text
    return op, exts, [await user_headers(client, op, ext) for ext in exts]


async def user_id_of(ext: str) -> uuid.UUID:
    async with db.session_scope() as session:
        return await session.scalar(
            sa.text("SELECT user_id FROM entrustments WHERE external_user_id = :e"), {"e": ext}
        )


async def balance(client, headers) -> httpx.Response:
    return await client.get("/v1/me/account", headers=headers)


class TestOneStatement:
    async def test_an_unknown_callers_read_is_one_statement_and_its_standing_is_kept(
        self, client, sent, deaf
    ):
        _, _, [headers] = await credited(client)
        callers.standing_changed()  # nothing this process knows of anyone's standing is trusted
        sent.clear()
        r = await balance(client, headers)
        assert (r.status_code, r.json()["balance"]) == (200, 150), r.text
        assert kinds(sent) == ["balance, checking the caller"]
        again = await balance(client, headers)
        assert again.json() == r.json()
        assert kinds(sent) == ["balance"]  # kept: checked by nothing

    async def test_many_unknown_callers_at_once_one_refused(self, client, deaf):
        """Reads waiting at the same time share one statement, each caller checked in it: the refused one
        answers why, the others their balances."""
        op, exts, headers = await credited(client, 6)
        r = await client.delete(f"/v1/operator/users/{exts[2]}", headers=op.headers)
        assert r.status_code == 200, r.text
        callers.standing_changed()
        answers = await asyncio.gather(*(balance(client, h) for h in headers))
        assert [(a.status_code, a.json().get("balance", a.json().get("code"))) for a in answers] == [
            (200, 150),
            (200, 150),
            (401, "entrustment_withdrawn"),
            (200, 150),
            (200, 150),
            (200, 150),
        ]


class TestRefused:
    """Each refusal the balance's statement makes: the answer every route gives, after the standing's read."""

    async def _refused(self, client, headers, sent, code: tuple[int, str], then: list[str]) -> None:
        callers.standing_changed()  # the change may not have been heard yet: the standing is not known
        sent.clear()
        assert_problem(await balance(client, headers), *code)
        assert kinds(sent) == ["balance, checking the caller", "standing read", *then]

    async def test_a_suspended_operator_and_reinstated(self, client, sent, deaf):
        op, _, [headers] = await credited(client)
        authority = await authority_token(client)
        assert (
            await client.post(f"/v1/organizations/{op.id}/suspend", headers=bearer(authority))
        ).status_code == 200
        await self._refused(client, headers, sent, (403, "organization_not_active"), [])
        r = await client.post(f"/v1/organizations/{op.id}/reinstate", headers=bearer(authority))
        assert r.status_code == 200, r.text
        callers.standing_changed()
        assert (await balance(client, headers)).json()["balance"] == 150
        assert kinds(sent) == ["balance, checking the caller"]

    async def test_a_withdrawn_entrustment(self, client, sent, deaf):
        op, [ext], [headers] = await credited(client)
        assert (await client.delete(f"/v1/operator/users/{ext}", headers=op.headers)).status_code == 200
        await self._refused(client, headers, sent, (401, "entrustment_withdrawn"), [])

    async def test_a_deleted_person(self, client, sent, deaf):
        _, [ext], [headers] = await credited(client)
        async with committed() as session:
            await session.execute(
                sa.text("UPDATE users SET deleted_at = now() WHERE id = :u"), {"u": await user_id_of(ext)}
            )
        await self._refused(client, headers, sent, (401, "invalid_token"), [])

    async def test_a_revoked_refresh_family(self, client, sent, deaf):
        op, [ext], _ = await credited(client)
        user, family = await user_id_of(ext), uuid.uuid4()
        token = family_token(user, uuid.UUID(op.id), family, "account:read")
        callers.standing_changed()
        sent.clear()
        assert (await balance(client, bearer(token))).json()["balance"] == 150  # a family nothing revoked
        assert kinds(sent) == ["balance, checking the caller"]
        await revoke_family(user, uuid.UUID(op.id), family)
        await self._refused(client, bearer(token), sent, (401, "token_revoked"), ["family read"])

    async def test_good_again_when_read_the_balance_is_answered(self, client, sent, deaf, monkeypatch):
        """Reinstated between the statement's check and the route's read: the balance is read again, unchecked."""
        op, _, [headers] = await credited(client)
        await suspended_until_read(monkeypatch, uuid.UUID(op.id))
        callers.standing_changed()
        sent.clear()
        r = await balance(client, headers)
        assert (r.status_code, r.json()["balance"]) == (200, 150), r.text
        assert kinds(sent) == ["balance, checking the caller", "standing read", "balance"]


class TestTheStatementsCheck:
    async def test_it_answers_what_user_caller_may_act_answers(self, client):
        """The balance's statement writes the check out (for its plan); it answers what the order's statement's
        function answers, for every kind of caller, one key or many."""
        op, [ext], _ = await credited(client)
        other = await make_operator(client)
        user, operator, family, revoked = await user_id_of(ext), uuid.UUID(op.id), uuid.uuid4(), uuid.uuid4()
        await revoke_family(user, operator, revoked)  # a family with one revoked token
        callers_ = [
            (user, operator, None),
            (user, operator, family),
            (user, operator, revoked),
            (user, uuid.UUID(other.id), None),
            (uuid.uuid4(), operator, None),
            (user, None, None),
        ]

        async def answers() -> tuple[list[bool], list[bool], list[bool]]:
            async with db.shared_connection() as conn:
                function = [
                    await conn.fetchval("SELECT user_caller_may_act($1, $2, $3)", *c) for c in callers_
                ]
                many = await points_repo.checked_account_views(conn, callers_, clock.now())
                one = [(await points_repo.checked_account_view(conn, c, clock.now()))[0] for c in callers_]
            return function, [many[c][0] for c in callers_], one

        function, many, one = await answers()
        assert function == [True, True, False, False, False, False]
        assert many == one == function
        for change, undo in (
            (
                "UPDATE organizations SET status = 'suspended' WHERE id = :o",
                "UPDATE organizations SET status = 'approved' WHERE id = :o",
            ),
            (
                "UPDATE entrustments SET withdrawn_at = now() WHERE user_id = :u AND operator_id = :o",
                "UPDATE entrustments SET withdrawn_at = NULL WHERE user_id = :u AND operator_id = :o",
            ),
            (
                "UPDATE users SET deleted_at = now() WHERE id = :u",
                "UPDATE users SET deleted_at = NULL WHERE id = :u",
            ),
        ):
            async with committed() as session:
                await session.execute(sa.text(change), {"o": operator, "u": user})
            function, many, one = await answers()
            assert function == [False] * 6, change
            assert many == one == function, change
            async with committed() as session:
                await session.execute(sa.text(undo), {"o": operator, "u": user})
        assert (await answers())[1] == [True, True, False, False, False, False]


class TestDeclaration:
    async def test_a_direct_read_that_leaves_its_standing_unchecked_fails(self, client):
        """A route whose caller's standing is left to its statement must check it: one that does not is a
        mistake, and fails rather than answer a caller nobody checked."""
        _, _, [headers] = await credited(client)

        async def forgetful(session: Session, user: BalanceReader):
            return {
                "user_id": user.subject,
                "balance": 0,
                "lifetime_points": 0,
                "lifetime_reduction_g": 0,
                "expiring": [],
            }

        app = FastAPI()
        app.router.route_class = DirectReadRoute
        app.get("/x", response_model=AccountRead)(forgetful)
        callers.standing_changed()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            with pytest.raises(RuntimeError, match="never checked its caller's standing"):
                await c.get("/x", headers=headers)
