"""Serial blocks: the pure arithmetic behind issuance, transfers, retirement and clawback.

Every issued tonne has one serial number; units are kept in blocks of consecutive serials
(inclusive ranges). Moving units never creates or loses one: a block is cut into the pieces that
move and the pieces that stay. These functions know nothing of the database, so the property
tests (``tests/cer/test_cer_blocks.py``) can exercise them alone.

A serial reads ``{prefix}-{vintage}-{start}-{end}`` for a block and ``{prefix}-{vintage}-{n}``
for one unit, numbers zero-padded to :data:`WIDTH` digits; the sequence is global (it never
restarts with a new vintage), so a number alone names a unit.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

WIDTH = 9
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, order=True)
class Range:
    """Serials ``start``…``end``, both included."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 1 or self.end < self.start:
            raise ValueError(f"not a serial range: {self.start}-{self.end}")

    @property
    def count(self) -> int:
        return self.end - self.start + 1

    def overlaps(self, other: "Range") -> bool:
        return self.start <= other.end and other.start <= self.end

    def contains(self, other: "Range") -> bool:
        return self.start <= other.start and other.end <= self.end


class InsufficientUnits(ValueError):
    def __init__(self, wanted: int, held: int):
        super().__init__(f"{wanted} units wanted, {held} held")
        self.wanted, self.held = wanted, held


class NotCovered(ValueError):
    """Part of a selection is not inside the blocks offered."""

    def __init__(self, missing: Range):
        super().__init__(f"serials {missing.start}-{missing.end} are not among the units offered")
        self.missing = missing


class OverlappingSelection(ValueError):
    pass


def total(ranges: Sequence[Range]) -> int:
    return sum(r.count for r in ranges)


def normalise(ranges: Sequence[Range]) -> list[Range]:
    """Sorted, with adjacent or overlapping ranges merged."""
    out: list[Range] = []
    for r in sorted(ranges):
        if out and r.start <= out[-1].end + 1:
            out[-1] = Range(out[-1].start, max(out[-1].end, r.end))
        else:
            out.append(r)
    return out


def subtract(outer: Range, inner: Range) -> list[Range]:
    """The pieces of ``outer`` outside ``inner`` (0, 1 or 2 of them)."""
    pieces = []
    if inner.start > outer.start:
        pieces.append(Range(outer.start, min(outer.end, inner.start - 1)))
    if inner.end < outer.end:
        pieces.append(Range(max(outer.start, inner.end + 1), outer.end))
    return pieces


def split(block: Range, count: int) -> tuple[Range, Range | None]:
    """The first ``count`` units of ``block`` and the rest (``None`` when nothing is left)."""
    if not 1 <= count <= block.count:
        raise ValueError(f"cannot take {count} units from a block of {block.count}")
    head = Range(block.start, block.start + count - 1)
    return head, (Range(head.end + 1, block.end) if count < block.count else None)


def fifo(held: Sequence[Range], count: int) -> list[Range]:
    """The ``count`` lowest serials of ``held`` (the oldest units first)."""
    if count < 1:
        raise ValueError("count must be positive")
    available = total(held)
    if count > available:
        raise InsufficientUnits(count, available)
    wanted: list[Range] = []
    for block in sorted(held):
        if count == 0:
            break
        head, _ = split(block, min(count, block.count))
        wanted.append(head)
        count -= head.count
    return wanted


def check_selection(wanted: Sequence[Range]) -> list[Range]:
    """Sorted; refuses a selection that names a serial twice."""
    ordered = sorted(wanted)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.overlaps(b):
            raise OverlappingSelection(f"serials {b.start}-{min(a.end, b.end)} are selected twice")
    return ordered


def allocate(
    held: Sequence[tuple[K, Range]], wanted: Sequence[Range]
) -> dict[K, tuple[list[Range], list[Range]]]:
    """Cut the held blocks along the wanted ranges.

    Returns, for each block a wanted range touches, ``(moving, staying)``: the pieces that move and
    those that stay. Every wanted serial must lie in one of the held blocks (:class:`NotCovered`
    otherwise); blocks the selection does not touch are left out of the result.
    """
    selection = check_selection(wanted)
    blocks = sorted(held, key=lambda kb: kb[1])
    for a, b in zip(blocks, blocks[1:], strict=False):
        if a[1].overlaps(b[1]):
            raise ValueError("held blocks overlap")
    plan: dict[K, tuple[list[Range], list[Range]]] = {}
    for want in selection:
        # the parts of ``want`` inside each block, in order; what no block covers is missing
        cursor = want.start
        for key, block in blocks:
            if block.end < cursor or block.start > want.end:
                continue
            if block.start > cursor:
                raise NotCovered(Range(cursor, block.start - 1))
            piece = Range(cursor, min(block.end, want.end))
            moving, _ = plan.setdefault(key, ([], []))
            moving.append(piece)
            cursor = piece.end + 1
            if cursor > want.end:
                break
        if cursor <= want.end:
            raise NotCovered(Range(cursor, want.end))
    for key, block in blocks:
        if key not in plan:
            continue
        moving, staying = plan[key]
        rest = [block]
        for piece in moving:
            rest = [r for part in rest for r in (subtract(part, piece) if part.overlaps(piece) else [part])]
        staying.extend(rest)
    return plan


# --- serial numbers -------------------------------------------------------------------------


def format_unit(prefix: str, vintage: int, n: int) -> str:
    return f"{prefix}-{vintage}-{n:0{WIDTH}d}"


def format_block(prefix: str, vintage: int, r: Range) -> str:
    return f"{prefix}-{vintage}-{r.start:0{WIDTH}d}-{r.end:0{WIDTH}d}"


def parse(prefix: str, serial: str) -> tuple[int, Range]:
    """``{prefix}-{vintage}-{n}`` or ``{prefix}-{vintage}-{start}-{end}`` → (vintage, range).

    Raises ``ValueError`` for anything else (another prefix, a bad vintage, a reversed range).
    """
    text = serial.strip()
    if not text.startswith(prefix + "-"):
        raise ValueError(f"a serial starts with {prefix}-")
    parts = text[len(prefix) + 1 :].split("-")
    if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError("a serial reads PREFIX-VINTAGE-N or PREFIX-VINTAGE-START-END")
    if len(parts[0]) != 4 or any(len(p) > 18 for p in parts[1:]):
        raise ValueError("the vintage is a year of 4 digits")
    numbers = [int(p) for p in parts[1:]]
    return int(parts[0]), Range(numbers[0], numbers[-1])
