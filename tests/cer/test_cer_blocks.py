"""The pure arithmetic of serial blocks and the working-day calendar."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cer import blocks, calendar
from app.cer.blocks import Range

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def holdings(draw, max_blocks: int = 6):
    """Disjoint blocks, with gaps or touching, as (key, range)."""
    n = draw(st.integers(1, max_blocks))
    out, cursor = [], draw(st.integers(1, 50))
    for key in range(n):
        cursor += draw(st.integers(0, 5))  # 0: touches the previous block
        size = draw(st.integers(1, 40))
        out.append((key, Range(cursor, cursor + size - 1)))
        cursor += size
    return draw(st.permutations(out))


@st.composite
def holdings_and_selection(draw):
    held = draw(holdings())
    units = sorted(u for _, r in held for u in range(r.start, r.end + 1))
    chosen = sorted(draw(st.sets(st.sampled_from(units), min_size=1, max_size=min(len(units), 60))))
    # the chosen units as maximal runs of consecutive serials
    runs, start = [], chosen[0]
    for a, b in zip(chosen, chosen[1:] + [None], strict=True):
        if b != a + 1:
            runs.append(Range(start, a))
            start = b
    return held, draw(st.permutations(runs))


def units_of(ranges) -> list[int]:
    return [u for r in ranges for u in range(r.start, r.end + 1)]


def check_plan(held, wanted, plan) -> None:
    touched = {k: r for k, r in held if k in plan}
    moving = [r for m, _ in plan.values() for r in m]
    staying = [r for _, s in plan.values() for r in s]
    # conservation: what moves and what stays is exactly what the touched blocks held
    assert sorted(units_of(moving + staying)) == sorted(units_of(touched.values()))
    assert blocks.total(moving) + blocks.total(staying) == blocks.total(list(touched.values()))
    # what moves is exactly what was wanted
    assert sorted(units_of(moving)) == sorted(units_of(wanted))
    # no piece overlaps another, and each lies within its block
    pieces = sorted(moving + staying)
    assert all(not a.overlaps(b) for a, b in zip(pieces, pieces[1:], strict=False))
    for key, (m, s) in plan.items():
        assert all(touched[key].contains(p) for p in m + s)


class TestBlockArithmetic:
    @SETTINGS
    @given(holdings_and_selection())
    def test_a_selection_moves_exactly_the_selected_units(self, data):
        held, wanted = data
        check_plan(held, wanted, blocks.allocate(held, wanted))

    @SETTINGS
    @given(holdings(), st.integers(1, 300))
    def test_fifo_takes_the_lowest_serials_and_conserves(self, held, count):
        total = blocks.total([r for _, r in held])
        if count > total:
            with pytest.raises(blocks.InsufficientUnits):
                blocks.fifo([r for _, r in held], count)
            return
        wanted = blocks.fifo([r for _, r in held], count)
        assert blocks.total(wanted) == count
        assert units_of(wanted) == sorted(units_of(r for _, r in held))[:count]
        check_plan(held, wanted, blocks.allocate(held, wanted))

    @SETTINGS
    @given(holdings(max_blocks=4), st.lists(st.integers(1, 30), min_size=1, max_size=8))
    def test_a_chain_of_transfers_keeps_every_unit_once(self, held, amounts):
        """Accounts pass units around (FIFO): at every step all units exist once, across all accounts."""
        accounts = {0: [r for _, r in held], 1: [], 2: []}
        everything = sorted(units_of(accounts[0]))
        for step, amount in enumerate(amounts):
            src, dst = step % 3, (step + 1) % 3
            if amount > blocks.total(accounts[src]):
                continue
            keyed = list(enumerate(accounts[src]))
            plan = blocks.allocate(keyed, blocks.fifo(accounts[src], amount))
            moved = [r for m, _ in plan.values() for r in m]
            kept = [r for k, r in keyed if k not in plan] + [r for _, s in plan.values() for r in s]
            accounts[src], accounts[dst] = kept, accounts[dst] + moved
            assert blocks.total(moved) == amount
            assert sorted(units_of(r for rs in accounts.values() for r in rs)) == everything

    @SETTINGS
    @given(st.integers(1, 10**9), st.integers(1, 1000), st.data())
    def test_split_conserves(self, start, size, data):
        block = Range(start, start + size - 1)
        count = data.draw(st.integers(1, size))
        head, tail = blocks.split(block, count)
        assert head.count == count and (tail.count if tail else 0) == size - count
        assert head.start == block.start and (tail.end if tail else head.end) == block.end

    def test_a_selection_outside_the_holdings_names_what_is_missing(self):
        held = [("a", Range(1, 10)), ("b", Range(21, 30))]
        with pytest.raises(blocks.NotCovered) as exc:
            blocks.allocate(held, [Range(8, 23)])
        assert exc.value.missing == Range(11, 20)
        with pytest.raises(blocks.NotCovered) as exc:
            blocks.allocate(held, [Range(29, 31)])
        assert exc.value.missing == Range(31, 31)

    def test_touching_blocks_serve_one_range(self):
        plan = blocks.allocate([("a", Range(1, 10)), ("b", Range(11, 20))], [Range(5, 14)])
        assert plan == {"a": ([Range(5, 10)], [Range(1, 4)]), "b": ([Range(11, 14)], [Range(15, 20)])}

    def test_a_serial_selected_twice_is_refused(self):
        with pytest.raises(blocks.OverlappingSelection):
            blocks.allocate([("a", Range(1, 10))], [Range(1, 5), Range(5, 6)])

    def test_normalise_merges_adjacent_ranges(self):
        assert blocks.normalise([Range(5, 6), Range(1, 4), Range(9, 9)]) == [Range(1, 6), Range(9, 9)]


class TestSerials:
    def test_format_and_parse(self):
        assert (
            blocks.format_block("CN-SZ-PHCER", 2026, Range(1, 100)) == "CN-SZ-PHCER-2026-000000001-000000100"
        )
        assert blocks.format_unit("CN-SZ-PHCER", 2026, 7) == "CN-SZ-PHCER-2026-000000007"
        assert blocks.parse("CN-SZ-PHCER", "CN-SZ-PHCER-2026-000000001-000000100") == (2026, Range(1, 100))
        assert blocks.parse("CN-SZ-PHCER", "CN-SZ-PHCER-2026-7") == (2026, Range(7, 7))

    @pytest.mark.parametrize(
        "serial",
        [
            "CN-SH-X-2026-1",
            "CN-SZ-PHCER-26-1",
            "CN-SZ-PHCER-2026-5-3",
            "CN-SZ-PHCER-2026-0",
            "CN-SZ-PHCER-2026",
            "CN-SZ-PHCER-2026-1-2-3",
            "CN-SZ-PHCER-2026-x",
            "CN-SZ-PHCER-2026-１",
        ],
    )
    def test_bad_serials(self, serial):
        with pytest.raises(ValueError):
            blocks.parse("CN-SZ-PHCER", serial)


class TestCalendar:
    def test_publicity_skips_weekends_and_the_national_day_holiday(self):
        # Mon 2025-09-29: Sep 30, (holiday Oct 1–8), Oct 9, 10, Sat 11 (an adjusted working day), 13, 14, 15
        assert calendar.publicity_end(date(2025, 9, 29), {}) == date(2025, 10, 15)
        # an ordinary week: Mon → the next Wednesday but one
        assert calendar.publicity_end(date(2025, 11, 17), {}) == date(2025, 11, 26)

    def test_years_the_package_does_not_know_follow_weekends_and_the_table(self):
        start = date(2031, 3, 3)  # a Monday
        assert calendar.source(start, {}) == "weekend_rule"
        assert calendar.publicity_end(start, {}) == date(2031, 3, 12)
        holidays = {date(2031, 3, 5): False, date(2031, 3, 8): True}  # a day off, a Saturday worked
        assert calendar.source(date(2031, 3, 5), holidays) == "table"
        assert calendar.publicity_end(start, holidays) == date(2031, 3, 12)  # one lost, one gained
        assert calendar.publicity_end(start, {date(2031, 3, 5): False}) == date(2031, 3, 13)

    def test_trading_days_exclude_adjusted_weekends(self):
        assert calendar.is_workday(date(2025, 10, 11), {}) is True
        assert calendar.is_trading_day(date(2025, 10, 11), {}) is False
        assert calendar.trading_days_before(date(2025, 10, 13), 4, {}) == [
            date(2025, 10, 10),
            date(2025, 10, 9),
            date(2025, 9, 30),
            date(2025, 9, 29),
        ]
