from collections import Counter
from datetime import datetime, timedelta

import pytest
from carbon_operator.simulate import MODES, SHANGHAI, UNKNOWN_TYPE, simulate

NOW = datetime(2026, 11, 20, 21, 30, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def sim():
    return simulate(60, 14, seed=7, duplicates=0.02, invalid=0.03, now=NOW)


def _is_invalid(record) -> bool:
    return record.quantity < 0 or record.type == UNKNOWN_TYPE or record.started_at > NOW


class TestDeterminism:
    def test_same_seed_same_stream(self, sim):
        again = simulate(60, 14, seed=7, duplicates=0.02, invalid=0.03, now=NOW)
        assert again.records == sim.records and again.users == sim.users

    def test_another_seed_another_stream_and_other_ids(self, sim):
        other = simulate(60, 14, seed=8, duplicates=0.02, invalid=0.03, now=NOW)
        assert {r.record_id for r in other.records}.isdisjoint(r.record_id for r in sim.records)
        assert {r.evidence.ref for r in other.records}.isdisjoint(r.evidence.ref for r in sim.records)


class TestNoise:
    def test_duplicates_are_exact_copies_after_their_original(self, sim):
        seen = {}
        duplicates = 0
        for record in sim.records:
            if record.record_id in seen:
                assert record == seen[record.record_id]
                duplicates += 1
            seen[record.record_id] = record
        assert duplicates == sim.duplicates == round(0.02 * sim.clean)

    def test_invalid_rows_are_the_expected_share_and_kinds(self, sim):
        invalid = [r for r in sim.records if _is_invalid(r)]
        assert len(invalid) == sim.invalid == round(0.03 * sim.clean)
        kinds = Counter(
            "negative" if r.quantity < 0 else "type" if r.type == UNKNOWN_TYPE else "future" for r in invalid
        )
        assert set(kinds) == {"negative", "type", "future"}
        assert max(kinds.values()) - min(kinds.values()) <= 1

    def test_totals(self, sim):
        assert len(sim.records) == sim.clean + sim.duplicates + sim.invalid

    def test_none_asked_none_made(self):
        clean = simulate(10, 3, seed=1, duplicates=0, invalid=0, now=NOW)
        assert len(clean.records) == clean.clean == len({r.record_id for r in clean.records})

    def test_evidence_refs_are_unique_but_for_duplicates(self, sim):
        by_ref = Counter(r.evidence.ref for r in sim.records)
        ids_by_ref = {}
        for r in sim.records:
            ids_by_ref.setdefault(r.evidence.ref, set()).add(r.record_id)
        assert all(len(ids) == 1 for ids in ids_by_ref.values())
        assert sum(n - 1 for n in by_ref.values()) == sim.duplicates


class TestRealism:
    def test_clean_rows_are_in_the_past_within_the_window(self, sim):
        for r in sim.records:
            if _is_invalid(r):
                continue
            assert NOW - timedelta(days=14) <= r.started_at < r.ended_at <= NOW - timedelta(minutes=2)
            assert r.started_at.utcoffset() == timedelta(hours=8)
            assert r.started_at.isoformat().endswith("+08:00")

    def test_without_a_now_nothing_is_in_the_future(self):
        before = datetime.now(SHANGHAI)
        sim = simulate(20, 2, seed=3, invalid=0)
        assert all(r.ended_at <= before for r in sim.records)

    def test_distances_stay_in_each_modes_range(self, sim):
        ranges = {m.name: (m.low_km, m.high_km) for m in MODES}
        for r in sim.records:
            if not _is_invalid(r):
                low, high = ranges[r.type]
                assert low - 0.01 <= r.quantity <= high + 0.01
                assert r.unit == "km"

    def test_workday_trips_fall_in_the_commute_peaks(self, sim):
        workday = [r for r in sim.records if not _is_invalid(r) and r.started_at.weekday() < 5]
        minutes = [r.started_at.hour * 60 + r.started_at.minute for r in workday]
        assert all(7 * 60 <= m < 9 * 60 + 30 or 17 * 60 <= m < 19 * 60 + 30 for m in minutes)
        assert len(workday) > 0.6 * sim.clean

    def test_mode_shares_roughly_follow_the_city(self):
        big = simulate(400, 7, seed=11, duplicates=0, invalid=0, now=NOW)
        shares = Counter(r.type for r in big.records)
        total = sum(shares.values())
        assert set(shares) == {m.name for m in MODES}
        assert shares["metro"] / total > 0.25 and shares["nev"] / total < 0.15

    def test_users_to_enrol(self, sim):
        assert len(sim.users) == 60
        assert len({u["phone"] for u in sim.users}) == 60
        assert all(u["phone"].startswith("+861") and len(u["phone"]) == 14 for u in sim.users)
        first_trip = min(r.started_at for r in sim.records)
        assert all(datetime.fromisoformat(u["accepted_at"]) < first_trip for u in sim.users)
        assert {r.external_user_id for r in sim.records} <= {u["external_user_id"] for u in sim.users}
