"""A CER project with evidence to check, for the tests of its records, sample and batches (API and pages):
5 records of two people in two signed batches, the publicity over, a verifier assigned."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.core import clock, db
from tests.factories import Org, bearer
from tests.factories_cer import Owner, after_publicity, create_project, days_ago, make_owner, verifier
from tests.factories_points import enrol, phone, record, submit


@dataclass
class Case:
    owner: Owner
    project: dict
    verifier: Org
    people: list[dict]  # the enrolment answers (user_id, external_user_id) and the phone numbers
    records: dict[str, dict]  # record_id → the record as submitted
    outcomes: dict[str, str | None]  # record_id → its cap code when accepted


async def make_case(client, authority) -> Case:
    """A project of 5 records of two people (3 + 2, in two signed batches), with its verifier assigned."""
    owner = await make_owner(client, authority)
    first_phone = phone()
    second_phone = phone()
    second = await enrol(client, owner.org, number=second_phone)
    first = {"external_user_id": owner.ext, "phone": None}
    outcomes: dict[str, str | None] = {}
    sent: dict[str, dict] = {}
    for ext, spec in (
        (owner.ext, [(3, 2.0), (3, 1.5), (2, 4.0)]),
        (second["external_user_id"], [(3, 3.0), (2, 0.5)]),
    ):
        batch = [
            record(ext, owner.code, quantity=q, start=days_ago(n, 9 + i)) for i, (n, q) in enumerate(spec)
        ]
        r = await submit(client, owner.org, batch)
        assert r.status_code == 200, r.text
        assert [o["status"] for o in r.json()["results"]] == ["accepted"] * len(batch)
        outcomes.update({o["record_id"]: o["code"] for o in r.json()["results"]})
        sent.update({b["record_id"]: b for b in batch})
    today = clock.today()
    project = await create_project(client, owner, today - timedelta(days=5), today - timedelta(days=1))
    verifier_org = await verifier(client, authority)
    after_publicity(project)
    r = await client.post(f"/v1/cer/projects/{project['id']}/submit", headers=owner.headers)
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/v1/cer/projects/{project['id']}/verifier",
        json={"verifier_org_id": verifier_org.id},
        headers=bearer(authority),
    )
    assert r.status_code == 200, r.text
    async with db.session_scope() as session:
        rows = await session.execute(
            sa.text("SELECT DISTINCT user_id FROM behaviour_records WHERE operator_id = :o"),
            {"o": uuid.UUID(owner.org.id)},
        )
        user_ids = sorted(str(r[0]) for r in rows)
    assert len(user_ids) == 2
    people = [{**first, "user_ids": user_ids}, {**second, "phone": second_phone}, {"phone": first_phone}]
    return Case(owner, project, verifier_org, people, sent, outcomes)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def identifiers(case: Case) -> list[str]:
    """Every person identifier of the case's people: account ids, external ids, phone numbers."""
    out = list(case.people[0]["user_ids"])
    out += [case.people[0]["external_user_id"], case.people[1]["external_user_id"], case.people[1]["phone"]]
    out += [case.people[1]["user_id"]] if "user_id" in case.people[1] else []
    return [x for x in out if x]
