"""Methodology versions over HTTP: lifecycle, immutability, the overlap rule, visibility, bad input."""

import asyncio

import pytest
import sqlalchemy as sa

from app.core import db
from tests.factories import bearer, make_org, unique
from tests.factories_methodologies import (
    act,
    at,
    create,
    methodology_body,
    new_type,
    published,
    submitted,
)

M = "/v1/methodologies"


class TestLifecycle:
    async def test_draft_submit_publish_retire(self, client, authority):
        draft = await create(client, authority)
        assert (draft["status"], draft["version"], draft["net_factor_g"]) == ("draft", 1, 60.0)
        assert (draft["baseline_factor_g"], draft["project_factor_g"]) == (100.0, 40.0)
        assert (draft["published_at"], draft["retired_at"]) == (None, None)

        r = await client.patch(
            f"{M}/{draft['id']}",
            json={"project_factor_g": 30.5, "name": "Renamed"},
            headers=bearer(authority),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["net_factor_g"]) == ("Renamed", 69.5)

        r = await act(client, authority, "methodologies", draft["id"], "submit")
        assert (r.status_code, r.json()["status"]) == (200, "under_review")
        r = await act(client, authority, "methodologies", draft["id"], "publish")
        assert (r.status_code, r.json()["status"]) == (200, "published")
        assert r.json()["published_at"] is not None

        r = await act(client, authority, "methodologies", draft["id"], "retire")
        body = r.json()
        assert (r.status_code, body["status"]) == (200, "retired")
        # It had not begun (2030): its period becomes empty, it was never in force.
        assert body["effective_to"] == body["effective_from"]
        assert body["retired_at"] is not None

    async def test_retire_cuts_the_period_at_now(self, client, authority):
        version = await published(client, authority, effective_from=at(2020))
        r = await act(client, authority, "methodologies", version["id"], "retire")
        assert r.status_code == 200, r.text
        assert r.json()["effective_to"] == r.json()["retired_at"]

    async def test_a_change_is_the_next_version_of_the_same_code(self, client, authority):
        v1 = await published(client, authority, effective_from=at(2030))
        v2 = await create(
            client,
            authority,
            code=v1["code"],
            behaviour_type=v1["behaviour_type"],
            effective_from=at(2031),
            net_factor_g=55,
            baseline_factor_g=None,
            project_factor_g=None,
        )
        assert (v2["code"], v2["version"], v2["status"], v2["net_factor_g"]) == (v1["code"], 2, "draft", 55.0)
        assert (v2["baseline_factor_g"], v2["project_factor_g"]) == (None, None)

    async def test_a_code_keeps_its_behaviour_type(self, client, authority):
        v1 = await create(client, authority)
        r = await client.post(M, json=methodology_body(code=v1["code"]), headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (409, "code_behaviour_type_mismatch")
        v2 = await create(client, authority, code=v1["code"], behaviour_type=v1["behaviour_type"])
        r = await client.patch(
            f"{M}/{v2['id']}", json={"behaviour_type": new_type()}, headers=bearer(authority)
        )
        assert (r.status_code, r.json()["code"]) == (409, "code_behaviour_type_mismatch")
        r = await client.patch(f"{M}/{v1['id']}", json={"behaviour_type": "x"}, headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, "invalid_behaviour_type")

    async def test_a_retried_create_makes_one_version(self, client, authority):
        body = methodology_body()
        headers = {**bearer(authority), "Idempotency-Key": unique("create")}
        first, again = [await client.post(M, json=body, headers=headers) for _ in range(2)]
        assert (first.status_code, again.status_code, again.json()["id"]) == (201, 201, first.json()["id"])
        r = await client.get(M, params={"code": body["code"], "status": "draft"}, headers=bearer(authority))
        assert [v["version"] for v in r.json()["items"]] == [1]

    async def test_every_decision_is_audited(self, client, authority):
        version = await published(client, authority)
        async with db.session_scope() as session:
            actions = (
                (
                    await session.execute(
                        sa.text("SELECT action FROM audit_entries WHERE subject_id = :id ORDER BY at, seq"),
                        {"id": version["id"]},
                    )
                )
                .scalars()
                .all()
            )
        assert sorted(actions) == ["methodology.create", "methodology.publish", "methodology.submit"]

    async def test_a_draft_reads_back_as_it_was_answered(self, client, authority):
        """Times are answered in UTC whether the version was just written, changed or read later."""
        draft = await create(client, authority, effective_from=at(2031), effective_to=at(2032))
        assert (draft["effective_from"], draft["effective_to"]) == (
            "2030-12-31T16:00:00Z",
            "2031-12-31T16:00:00Z",
        )
        assert (await client.get(f"{M}/{draft['id']}", headers=bearer(authority))).json() == draft
        r = await client.patch(
            f"{M}/{draft['id']}", json={"effective_from": at(2031, 6)}, headers=bearer(authority)
        )
        assert r.json()["effective_from"] == "2031-05-31T16:00:00Z"
        assert (await client.get(f"{M}/{draft['id']}", headers=bearer(authority))).json() == r.json()


class TestImmutability:
    @pytest.mark.parametrize("state", ["under_review", "published", "retired"])
    async def test_only_drafts_can_be_edited(self, client, authority, state):
        version = await submitted(client, authority)
        if state != "under_review":
            assert (
                await act(client, authority, "methodologies", version["id"], "publish")
            ).status_code == 200
        if state == "retired":
            assert (await act(client, authority, "methodologies", version["id"], "retire")).status_code == 200
        r = await client.patch(f"{M}/{version['id']}", json={"net_factor_g": 1}, headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (409, "version_immutable")
        r = await client.get(f"{M}/{version['id']}", headers=bearer(authority))
        assert (r.json()["status"], r.json()["net_factor_g"]) == (state, 60.0)

    async def test_publishing_a_draft_that_was_not_submitted(self, client, authority):
        draft = await create(client, authority)
        r = await act(client, authority, "methodologies", draft["id"], "publish")
        assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")

    @pytest.mark.parametrize(
        ("action", "from_state"),
        [
            ("submit", "under_review"),
            ("retire", "draft"),
            ("retire", "under_review"),
            ("submit", "published"),
            ("publish", "published"),
        ],
    )
    async def test_other_invalid_transitions(self, client, authority, action, from_state):
        version = await create(client, authority)
        if from_state in ("under_review", "published"):
            await act(client, authority, "methodologies", version["id"], "submit")
        if from_state == "published":
            await act(client, authority, "methodologies", version["id"], "publish")
        r = await act(client, authority, "methodologies", version["id"], action)
        assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")


class TestOverlap:
    async def test_overlapping_periods_of_one_type_are_refused(self, client, authority):
        first = await published(client, authority, effective_from=at(2030), effective_to=at(2032))
        second = await submitted(
            client,
            authority,
            behaviour_type=first["behaviour_type"],
            code="other-code",
            effective_from=at(2031),
            effective_to=at(2033),
        )
        r = await act(client, authority, "methodologies", second["id"], "publish")
        body = r.json()
        assert (r.status_code, body["code"]) == (409, "overlapping_effective_period")
        assert [c["id"] for c in body["conflicts"]] == [first["id"]]
        r = await client.get(f"{M}/{second['id']}", headers=bearer(authority))
        assert r.json()["status"] == "under_review"

    async def test_adjacent_periods_and_other_types_do_not_overlap(self, client, authority):
        first = await published(client, authority, effective_from=at(2030), effective_to=at(2031))
        await published(
            client,
            authority,
            behaviour_type=first["behaviour_type"],
            code=first["code"],
            effective_from=at(2031),
            effective_to=at(2032),
        )
        await published(client, authority, effective_from=at(2030), effective_to=at(2032))  # another type

    async def test_a_new_version_closes_the_open_ended_one(self, client, authority):
        old = await published(client, authority, effective_from=at(2030))
        new = await published(
            client, authority, behaviour_type=old["behaviour_type"], code=old["code"], effective_from=at(2035)
        )
        r = await client.get(f"{M}/{old['id']}")
        assert (r.json()["status"], r.json()["effective_to"]) == ("published", new["effective_from"])
        assert new["effective_to"] is None

    async def test_a_version_starting_before_the_open_ended_one_is_refused(self, client, authority):
        old = await published(client, authority, effective_from=at(2035))
        earlier = await submitted(
            client, authority, behaviour_type=old["behaviour_type"], code=old["code"], effective_from=at(2030)
        )
        r = await act(client, authority, "methodologies", earlier["id"], "publish")
        assert (r.status_code, r.json()["code"]) == (409, "overlapping_effective_period")
        assert (await client.get(f"{M}/{old['id']}")).json()["effective_to"] is None

    async def test_a_retired_version_keeps_its_period(self, client, authority):
        old = await published(client, authority, effective_from=at(2020), effective_to=at(2021))
        assert (await act(client, authority, "methodologies", old["id"], "retire")).status_code == 200
        clash = await submitted(
            client,
            authority,
            behaviour_type=old["behaviour_type"],
            code=old["code"],
            effective_from=at(2020, 6),
            effective_to=at(2022),
        )
        r = await act(client, authority, "methodologies", clash["id"], "publish")
        assert (r.status_code, r.json()["code"]) == (409, "overlapping_effective_period")

    @pytest.mark.parametrize("contenders", [2, 6])
    async def test_concurrent_publishes_of_overlapping_versions_exactly_one_wins(
        self, client, authority, contenders
    ):
        behaviour_type = new_type()
        versions = [
            await submitted(
                client,
                authority,
                behaviour_type=behaviour_type,
                code=behaviour_type.replace("_", "-"),
                effective_from=at(2030, 1 + i),
                effective_to=at(2032),
            )
            for i in range(contenders)
        ]
        responses = await asyncio.gather(
            *(act(client, authority, "methodologies", v["id"], "publish") for v in versions)
        )
        assert sorted(r.status_code for r in responses) == [200] + [409] * (contenders - 1)
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {
            "overlapping_effective_period"
        }
        r = await client.get(M, params={"behaviour_type": behaviour_type})
        assert [v["id"] for v in r.json()["items"]] == [
            next(resp.json()["id"] for resp in responses if resp.status_code == 200)
        ]


class TestVisibility:
    async def test_public_reads_hide_drafts_and_versions_under_review(self, client, authority):
        behaviour_type = new_type()
        code = behaviour_type.replace("_", "-")
        live = await published(
            client,
            authority,
            behaviour_type=behaviour_type,
            code=code,
            effective_from=at(2030),
            effective_to=at(2031),
        )
        review = await submitted(client, authority, behaviour_type=behaviour_type, code=code)
        draft = await create(client, authority, behaviour_type=behaviour_type, code=code)

        r = await client.get(M, params={"behaviour_type": behaviour_type})
        assert r.status_code == 200
        assert [v["id"] for v in r.json()["items"]] == [live["id"]]
        assert r.headers["cache-control"] == "public, max-age=60"
        for hidden in (review, draft):
            r = await client.get(f"{M}/{hidden['id']}")
            assert (r.status_code, r.json()["code"]) == (404, "methodology_not_found")
        for status in ("draft", "under_review"):
            r = await client.get(M, params={"status": status})
            assert (r.status_code, r.json()["code"]) == (403, "drafts_not_public")

        r = await client.get(
            M, params={"behaviour_type": behaviour_type, "status": "draft"}, headers=bearer(authority)
        )
        assert [v["id"] for v in r.json()["items"]] == [draft["id"]]
        assert r.headers["cache-control"] == "no-store"
        r = await client.get(f"{M}/{review['id']}", headers=bearer(authority))
        assert (r.status_code, r.json()["status"]) == (200, "under_review")

    async def test_retired_versions_are_public(self, client, authority):
        version = await published(client, authority)
        await act(client, authority, "methodologies", version["id"], "retire")
        r = await client.get(M, params={"status": "retired", "behaviour_type": version["behaviour_type"]})
        assert [v["id"] for v in r.json()["items"]] == [version["id"]]

    async def test_pages_by_cursor(self, client, authority):
        behaviour_type = new_type()
        code = behaviour_type.replace("_", "-")
        ids = [
            (
                await published(
                    client,
                    authority,
                    behaviour_type=behaviour_type,
                    code=code,
                    effective_from=at(2030 + i),
                    effective_to=at(2031 + i),
                )
            )["id"]
            for i in range(3)
        ]
        seen, cursor = [], None
        for expected_size in (2, 1):
            params = {"behaviour_type": behaviour_type, "limit": 2, **({"cursor": cursor} if cursor else {})}
            body = (await client.get(M, params=params)).json()
            assert len(body["items"]) == expected_size
            seen += [v["id"] for v in body["items"]]
            cursor = body["next_cursor"]
        assert (seen, cursor) == (ids, None)
        r = await client.get(M, params={"cursor": "bm90LWEtY3Vyc29y"})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_cursor")


class TestAccess:
    async def test_only_the_authority_writes(self, client, authority):
        version = await create(client, authority)
        merchant = await make_org(client, "merchant", authority=authority)
        calls = [
            client.post(M, json=methodology_body(), headers=merchant.headers),
            client.patch(f"{M}/{version['id']}", json={"name": "x"}, headers=merchant.headers),
            *(
                act(client, merchant.token, "methodologies", version["id"], a)
                for a in ("submit", "publish", "retire")
            ),
        ]
        for r in await asyncio.gather(*calls):
            assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
        r = await client.post(M, json=methodology_body())
        assert (r.status_code, r.json()["code"]) == (401, "not_authenticated")

    async def test_unknown_ids(self, client, authority):
        missing = "00000000-0000-4000-8000-000000000000"
        for r in (
            await client.get(f"{M}/{missing}"),
            await client.patch(f"{M}/{missing}", json={"name": "x"}, headers=bearer(authority)),
            await act(client, authority, "methodologies", missing, "submit"),
            await act(client, authority, "methodologies", missing, "publish"),
            await act(client, authority, "methodologies", missing, "retire"),
        ):
            assert (r.status_code, r.json()["code"]) == (404, "methodology_not_found")


class TestBadInput:
    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"behaviour_type": "Metro Ride"}, "invalid_behaviour_type"),
            ({"behaviour_type": "x"}, "invalid_behaviour_type"),
            ({"behaviour_type": "metro-ride"}, "invalid_behaviour_type"),
            ({"code": "Bad Code!"}, "invalid_code"),
            ({"baseline_factor_g": -5}, "invalid_factor"),
            ({"baseline_factor_g": 0}, "invalid_factor"),
            ({"project_factor_g": -1}, "invalid_factor"),
            ({"baseline_factor_g": 30, "project_factor_g": 40}, "baseline_below_project"),
            ({"baseline_factor_g": 40, "project_factor_g": 40}, "non_positive_net_factor"),
            (
                {"baseline_factor_g": None, "project_factor_g": None, "net_factor_g": 0},
                "non_positive_net_factor",
            ),
            (
                {"baseline_factor_g": None, "project_factor_g": None, "net_factor_g": -3},
                "non_positive_net_factor",
            ),
            ({"baseline_factor_g": None, "project_factor_g": None}, "incomplete_factors"),
            ({"project_factor_g": None}, "incomplete_factors"),
            ({"net_factor_g": 61}, "inconsistent_net_factor"),
            ({"max_quantity_per_record": 0}, "invalid_bounds"),
            ({"max_quantity_per_day": 10}, "invalid_bounds"),
            ({"effective_from": at(2030), "effective_to": at(2030)}, "invalid_effective_period"),
            ({"effective_from": at(2031), "effective_to": at(2030)}, "invalid_effective_period"),
            ({"effective_from": "2030-01-01T00:00:00"}, "naive_datetime"),
            ({"effective_to": "2031-01-01T00:00:00"}, "naive_datetime"),
        ],
    )
    async def test_refused_with_its_own_code(self, client, authority, overrides, code):
        r = await client.post(M, json=methodology_body(**overrides), headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, code), r.text
        assert r.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        "overrides",
        [
            {"category": "shopping"},
            {"unit": ""},
            {"baseline_factor_g": "NaN"},
            {"baseline_factor_g": 1e12},
            {"project_factor_g": 0.00001},
            {"unknown_field": 1},
            {"effective_from": "yesterday"},
        ],
    )
    async def test_malformed_fields(self, client, authority, overrides):
        r = await client.post(M, json=methodology_body(**overrides), headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text

    @pytest.mark.parametrize(
        ("patch", "code"),
        [
            ({"project_factor_g": 200}, "baseline_below_project"),
            ({"effective_to": at(2029)}, "invalid_effective_period"),
            ({"effective_from": "2030-01-01T00:00:00"}, "naive_datetime"),
            ({"behaviour_type": "Nope"}, "invalid_behaviour_type"),
            ({"name": None}, "validation_error"),
            ({"code": "renamed"}, "validation_error"),
        ],
    )
    async def test_a_patch_is_checked_as_a_whole(self, client, authority, patch, code):
        draft = await create(client, authority)
        r = await client.patch(f"{M}/{draft['id']}", json=patch, headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, code), r.text
