"""The declaration of interests over HTTP: made once before the opinion, a conflict stands the expert aside."""

import uuid

import sqlalchemy as sa

from app.core import db
from tests.factories import assert_problem, bearer
from tests.factories_scenes import make_expert, strangers

FIELD = "verification"


async def panel_of(client, authority, experts, *, quorum: int | None = None) -> dict:
    body = {
        "subject_type": "methodology_version",
        "subject_id": str(uuid.uuid4()),
        "field": FIELD,
        "size": len(experts),
        "exclude_experts": await strangers(client, authority, FIELD, [e.id for e in experts]),
        **({"quorum": quorum} if quorum else {}),
    }
    r = await client.post("/v1/reviews", json=body, headers=bearer(authority))
    assert r.status_code == 201, r.text
    return r.json()


def declaration(client, panel: dict, expert, **body):
    return client.post(f"/v1/reviews/{panel['id']}/declaration", json=body, headers=expert.headers)


def opinion(client, panel: dict, expert):
    return client.post(
        f"/v1/reviews/{panel['id']}/opinions",
        json={"verdict": "pass", "score": 80, "text": "Sound and well documented."},
        headers=expert.headers,
    )


class TestDeclaration:
    async def test_no_opinion_before_the_declaration(self, client, authority):
        expert = await make_expert(client, authority, fields=[FIELD])
        panel = await panel_of(client, authority, [expert])
        assert_problem(await opinion(client, panel, expert), 409, "declaration_required")

        r = await declaration(client, panel, expert, conflict=False)
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["panel_id"], body["expert_id"], body["conflict"], body["note"]) == (
            panel["id"],
            expert.id,
            False,
            "",
        )
        assert (await opinion(client, panel, expert)).status_code == 201
        (member,) = (await client.get(f"/v1/reviews/{panel['id']}", headers=expert.headers)).json()["members"]
        assert (member["conflict_declared"], member["declared_at"]) == (False, body["declared_at"])

    async def test_once_only(self, client, authority):
        expert = await make_expert(client, authority, fields=[FIELD])
        panel = await panel_of(client, authority, [expert])
        assert (await declaration(client, panel, expert)).status_code == 201
        assert_problem(await declaration(client, panel, expert, conflict=True), 409, "already_declared")
        (member,) = (await client.get(f"/v1/reviews/{panel['id']}", headers=bearer(authority))).json()[
            "members"
        ]
        assert member["conflict_declared"] is False

    async def test_a_conflict_stands_the_expert_aside(self, client, authority):
        expert = await make_expert(client, authority, fields=[FIELD])
        panel = await panel_of(client, authority, [expert])
        r = await declaration(client, panel, expert, conflict=True, note="  I compiled this methodology.  ")
        assert (r.status_code, r.json()["conflict"], r.json()["note"]) == (
            201,
            True,
            "I compiled this methodology.",
        )
        assert_problem(await opinion(client, panel, expert), 409, "conflict_declared")
        (member,) = (await client.get(f"/v1/reviews/{panel['id']}", headers=bearer(authority))).json()[
            "members"
        ]
        assert (member["conflict_declared"], member["declaration_note"], member["submitted"]) == (
            True,
            "I compiled this methodology.",
            False,
        )
        async with db.session_scope() as session:
            stored = (
                await session.execute(
                    sa.text(
                        "SELECT declaration FROM review_panel_members WHERE panel_id = :p AND expert_id = :e"
                    ),
                    {"p": panel["id"], "e": expert.id},
                )
            ).scalar_one()
            actions = (
                (
                    await session.execute(
                        sa.text(
                            "SELECT action FROM audit_entries WHERE subject_type = 'review_panel'"
                            " AND subject_id = :id ORDER BY at, seq"
                        ),
                        {"id": panel["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert stored == "conflict\nI compiled this methodology."
        assert actions == ["review.panel_opened", "review.conflict_declared"]

    async def test_other_members_see_no_ones_declaration_but_their_own(self, client, authority):
        a, b = [await make_expert(client, authority, fields=[FIELD]) for _ in range(2)]
        panel = await panel_of(client, authority, [a, b])
        await declaration(client, panel, a, conflict=True, note="related")
        members = (await client.get(f"/v1/reviews/{panel['id']}", headers=b.headers)).json()["members"]
        shown = {m["expert_id"]: (m["declared_at"] is not None, m["conflict_declared"]) for m in members}
        assert shown == {a.id: (False, None), b.id: (False, None)}

    async def test_outsiders_unknown_panels_and_decided_panels(self, client, authority):
        a, b = [await make_expert(client, authority, fields=[FIELD]) for _ in range(2)]
        outsider = await make_expert(client, authority, fields=[FIELD])
        panel = await panel_of(client, authority, [a, b], quorum=1)
        assert_problem(await declaration(client, panel, outsider), 403, "not_on_panel")
        assert_problem(await declaration(client, {"id": str(uuid.uuid4())}, a), 404, "review_not_found")
        r = await client.post(
            f"/v1/reviews/{panel['id']}/declaration", json={"conflict": False}, headers=bearer(authority)
        )
        assert r.status_code == 403
        await declaration(client, panel, a)
        assert (await opinion(client, panel, a)).status_code == 201
        r = await client.post(
            f"/v1/reviews/{panel['id']}/decision",
            json={"outcome": "pass", "reason": "Quorum reached."},
            headers=bearer(authority),
        )
        assert r.status_code == 200, r.text
        assert_problem(await declaration(client, panel, b), 409, "panel_closed")

    async def test_a_long_note_is_refused(self, client, authority):
        expert = await make_expert(client, authority, fields=[FIELD])
        panel = await panel_of(client, authority, [expert])
        assert_problem(await declaration(client, panel, expert, note="x" * 2001), 422, "validation_error")
        assert_problem(await opinion(client, panel, expert), 409, "declaration_required")
