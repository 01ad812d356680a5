"""Exchange-rule versions over HTTP: one rule set for the platform, versions by number."""

import asyncio
from datetime import datetime, timedelta

import pytest

from app.core import clock, db
from app.methodologies import service
from app.methodologies.exceptions import NaiveDatetime
from tests.factories import bearer, make_org
from tests.factories_methodologies import CST, act, at, create, published, rule_body, rule_years, submitted

R = "/v1/exchange-rules"
KIND = "exchange-rules"


class TestLifecycle:
    async def test_draft_submit_publish_retire(self, client, authority):
        year = rule_years()
        before = await create(client, authority, KIND, effective_from=at(year), effective_to=at(year + 1))
        draft = await create(client, authority, KIND, effective_from=at(year), effective_to=at(year + 1))
        assert draft["version"] == before["version"] + 1
        assert (draft["status"], draft["points_per_gram"], draft["rounding"]) == ("draft", 0.1, "down")
        assert (draft["daily_cap_points"], draft["type_daily_caps"], draft["lot_lifetime_days"]) == (
            200,
            {"walking": 50},
            730,
        )

        r = await client.patch(
            f"{R}/{draft['id']}",
            json={"type_daily_caps": {"walking": 40, "cycling": 60}, "daily_cap_points": None},
            headers=bearer(authority),
        )
        assert r.status_code == 200, r.text
        assert (r.json()["type_daily_caps"], r.json()["daily_cap_points"]) == (
            {"walking": 40, "cycling": 60},
            None,
        )

        for action, status in (("submit", "under_review"), ("publish", "published"), ("retire", "retired")):
            r = await act(client, authority, KIND, draft["id"], action)
            assert (r.status_code, r.json()["status"]) == (200, status), r.text
        # Retired before it began: an empty period, never in force.
        assert r.json()["effective_to"] == r.json()["effective_from"]

    async def test_a_draft_reads_back_as_it_was_answered(self, client, authority):
        """Times are answered in UTC whether the version was just written, changed or read later."""
        year = rule_years()
        draft = await create(client, authority, KIND, effective_from=at(year), effective_to=at(year + 1))
        assert (draft["effective_from"], draft["effective_to"]) == (
            f"{year - 1}-12-31T16:00:00Z",
            f"{year}-12-31T16:00:00Z",
        )
        read = await client.get(f"{R}/{draft['id']}", headers=bearer(authority))
        assert read.json() == draft
        r = await client.patch(
            f"{R}/{draft['id']}", json={"effective_to": at(year + 2)}, headers=bearer(authority)
        )
        assert r.json()["effective_to"] == f"{year + 1}-12-31T16:00:00Z"
        assert (await client.get(f"{R}/{draft['id']}", headers=bearer(authority))).json() == r.json()

    async def test_longest_lifetime_is_ten_years(self, client, authority):
        year = rule_years()
        rule = await create(client, authority, KIND, lot_lifetime_days=3650, effective_from=at(year))
        assert rule["lot_lifetime_days"] == 3650

    async def test_published_versions_are_immutable(self, client, authority):
        year = rule_years()
        rule = await published(client, authority, KIND, effective_from=at(year), effective_to=at(year + 1))
        r = await client.patch(f"{R}/{rule['id']}", json={"points_per_gram": 1}, headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (409, "version_immutable")
        draft = await create(client, authority, KIND, effective_from=at(year + 2))
        r = await act(client, authority, KIND, draft["id"], "publish")
        assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")


class TestOverlap:
    async def test_overlapping_versions_are_refused(self, client, authority):
        year = rule_years()
        first = await published(client, authority, KIND, effective_from=at(year), effective_to=at(year + 2))
        second = await submitted(
            client, authority, KIND, effective_from=at(year + 1), effective_to=at(year + 3)
        )
        r = await act(client, authority, KIND, second["id"], "publish")
        assert (r.status_code, r.json()["code"]) == (409, "overlapping_effective_period")
        assert [c["version"] for c in r.json()["conflicts"]] == [first["version"]]

    async def test_a_new_version_closes_the_open_ended_one(self, client, authority):
        year = rule_years()
        old = await published(client, authority, KIND, effective_from=at(year))
        new = await published(client, authority, KIND, effective_from=at(year + 5))
        r = await client.get(f"{R}/{old['id']}")
        assert (r.json()["status"], r.json()["effective_to"]) == ("published", new["effective_from"])

    async def test_concurrent_publishes_exactly_one_wins(self, client, authority):
        year = rule_years()
        rules = [
            await submitted(
                client, authority, KIND, effective_from=at(year, 1 + i), effective_to=at(year + 1)
            )
            for i in range(4)
        ]
        responses = await asyncio.gather(
            *(act(client, authority, KIND, rule["id"], "publish") for rule in rules)
        )
        assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {
            "overlapping_effective_period"
        }


class TestCurrent:
    async def test_the_version_in_force_now(self, client):
        r = await client.get(f"{R}/current")
        assert r.status_code == 200, r.text
        body = r.json()
        async with db.session_scope() as session:
            in_force = await service.current_exchange_rule(session, clock.now())
        assert body["id"] == str(in_force.id)
        assert (body["points_per_gram"], body["daily_cap_points"], body["lot_lifetime_days"]) == (
            0.1,
            200,
            730,
        )
        assert body["status"] == "published"

    async def test_the_version_in_force_at_a_moment_is_half_open(self, client, authority):
        year = rule_years()
        rule = await published(client, authority, KIND, effective_from=at(year), effective_to=at(year + 1))
        start, end = datetime(year, 1, 1, tzinfo=CST), datetime(year + 1, 1, 1, tzinfo=CST)
        async with db.session_scope() as session:
            found = [
                await service.current_exchange_rule(session, moment)
                for moment in (start - timedelta(microseconds=1), start, end - timedelta(microseconds=1), end)
            ]
            with pytest.raises(NaiveDatetime):
                await service.current_exchange_rule(session, datetime(year, 6, 1))
        assert [f is not None and str(f.id) == rule["id"] for f in found] == [False, True, True, False]


class TestVisibility:
    async def test_public_reads_hide_drafts(self, client, authority):
        draft = await create(client, authority, KIND, effective_from=at(rule_years()))
        r = await client.get(f"{R}/{draft['id']}")
        assert (r.status_code, r.json()["code"]) == (404, "exchange_rule_not_found")
        r = await client.get(R, params={"status": "draft"})
        assert (r.status_code, r.json()["code"]) == (403, "drafts_not_public")
        ids = []
        cursor = None
        while True:
            params = {"status": "draft", "limit": 200, **({"cursor": cursor} if cursor else {})}
            body = (await client.get(R, params=params, headers=bearer(authority))).json()
            ids += [v["id"] for v in body["items"]]
            if not (cursor := body["next_cursor"]):
                break
        assert draft["id"] in ids
        public = (await client.get(R)).json()["items"]
        assert {v["status"] for v in public} == {"published"}


class TestAccessAndBadInput:
    async def test_only_the_authority_writes(self, client, authority):
        merchant = await make_org(client, "merchant", authority=authority)
        r = await client.post(R, json=rule_body(), headers=merchant.headers)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")
        r = await client.post(R, json=rule_body())
        assert (r.status_code, r.json()["code"]) == (401, "not_authenticated")
        missing = "00000000-0000-4000-8000-000000000000"
        r = await act(client, authority, KIND, missing, "publish")
        assert (r.status_code, r.json()["code"]) == (404, "exchange_rule_not_found")

    @pytest.mark.parametrize(
        ("overrides", "code"),
        [
            ({"lot_lifetime_days": 3651}, "lifetime_too_long"),
            ({"lot_lifetime_days": 36500}, "lifetime_too_long"),
            ({"lot_lifetime_days": 0}, "invalid_lifetime"),
            ({"points_per_gram": 0}, "non_positive_rate"),
            ({"points_per_gram": -0.1}, "non_positive_rate"),
            ({"daily_cap_points": 0}, "invalid_cap"),
            ({"daily_cap_points": 2**40}, "invalid_cap"),
            ({"type_daily_caps": {"walking": -5}}, "invalid_cap"),
            ({"type_daily_caps": {"Walking Fast": 5}}, "invalid_behaviour_type"),
            ({"effective_from": "2050-01-01T00:00:00"}, "naive_datetime"),
            ({"effective_from": at(2051), "effective_to": at(2050)}, "invalid_effective_period"),
        ],
    )
    async def test_refused_with_its_own_code(self, client, authority, overrides, code):
        r = await client.post(R, json=rule_body(**overrides), headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, code), r.text

    async def test_a_patch_cannot_lengthen_the_lifetime_past_ten_years(self, client, authority):
        draft = await create(client, authority, KIND, effective_from=at(rule_years()))
        r = await client.patch(
            f"{R}/{draft['id']}", json={"lot_lifetime_days": 4000}, headers=bearer(authority)
        )
        assert (r.status_code, r.json()["code"]) == (422, "lifetime_too_long")

    @pytest.mark.parametrize(
        "patch",
        [{"points_per_gram": None}, {"name": None, "effective_to": None}, {"lot_lifetime_days": None}],
    )
    async def test_null_clears_only_the_cap_and_the_end(self, client, authority, patch):
        draft = await create(client, authority, KIND, effective_from=at(rule_years()))
        before = await client.get(f"{R}/{draft['id']}", headers=bearer(authority))
        r = await client.patch(f"{R}/{draft['id']}", json=patch, headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
        assert "cannot be null: leave a field out to keep it" in r.text
        after = await client.get(f"{R}/{draft['id']}", headers=bearer(authority))
        assert after.json() == before.json()

    @pytest.mark.parametrize(
        "overrides", [{"points_per_gram": 0.0000001}, {"lot_lifetime_days": 1.5}, {"type_daily_caps": []}]
    )
    async def test_malformed_fields(self, client, authority, overrides):
        r = await client.post(R, json=rule_body(**overrides), headers=bearer(authority))
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
