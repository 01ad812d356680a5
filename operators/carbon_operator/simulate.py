"""Realistic behaviour streams for demos, tests and benchmarks.

Each simulated user has habits: a main mode of transport (drawn from city-wide mode shares),
a usual commute distance for it, and usual departure times inside the commute peaks
(07:00–09:30 and 17:00–19:30, Asia/Shanghai). Workdays bring commutes, weekends a few leisure
trips. On top of the clean stream come exact duplicate rows (an operator re-sending a record) and
invalid rows (negative quantity, unknown type, a time in the future), each a stated fraction of
the clean records. Clean rows always end in the past: at the latest a few minutes before ``now``.

Deterministic for a seed and a ``now``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from .models import BehaviourRecord, Evidence

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
UNIT = "km"
UNKNOWN_TYPE = "teleport"
INVALID_KINDS = ("negative_quantity", "unknown_type", "future_time")
MORNING = (time(7, 0), time(9, 30))
EVENING = (time(17, 0), time(19, 30))
_PHONE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "156", "157", "158", "159", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189",
)  # fmt: skip


@dataclass(frozen=True)
class Mode:
    """A mode of transport: its share of trips, its distance law (lognormal, clipped), its pace."""

    name: str
    share: float
    median_km: float
    sigma: float
    low_km: float
    high_km: float
    speed_kmh: float
    overhead_min: float
    source: str
    ref_prefix: str

    def distance(self, rng: random.Random) -> float:
        for _ in range(8):
            km = rng.lognormvariate(math.log(self.median_km), self.sigma)
            if self.low_km <= km <= self.high_km:
                return km
        return min(max(km, self.low_km), self.high_km)

    def clip(self, km: float) -> float:
        return min(max(km, self.low_km), self.high_km)

    def duration(self, km: float, rng: random.Random) -> timedelta:
        minutes = (self.overhead_min + km / self.speed_kmh * 60) * rng.uniform(0.9, 1.15)
        return timedelta(seconds=round(minutes * 60))


MODES: tuple[Mode, ...] = (
    Mode("metro", 0.36, 9.0, 0.50, 3.0, 25.0, 32.0, 8.0, "metro-card", "MT"),
    Mode("bus", 0.24, 4.0, 0.55, 1.0, 12.0, 16.0, 6.0, "bus-card", "BS"),
    Mode("cycling", 0.18, 2.2, 0.60, 0.5, 8.0, 13.0, 1.0, "bike-share", "BK"),
    Mode("walking", 0.14, 1.2, 0.55, 0.3, 4.0, 4.8, 0.0, "pedometer", "WK"),
    Mode("nev", 0.08, 14.0, 0.50, 5.0, 40.0, 30.0, 2.0, "nev-telematics", "EV"),
)
_BY_NAME = {m.name: m for m in MODES}
_LEISURE_WEIGHTS = {"metro": 0.25, "bus": 0.15, "cycling": 0.25, "walking": 0.30, "nev": 0.05}


@dataclass(frozen=True)
class _User:
    external_user_id: str
    phone: str
    accepted_at: datetime
    mode: Mode
    commute_km: float
    commute_probability: float
    leisure_probability: float
    morning_hour: float
    evening_hour: float


@dataclass(frozen=True)
class _Trip:
    user: str
    mode: Mode
    started_at: datetime
    ended_at: datetime
    km: float


@dataclass
class Simulation:
    records: list[BehaviourRecord]
    users: list[dict[str, str]]
    clean: int
    duplicates: int
    invalid: int


def _pick(rng: random.Random, weights: dict[str, float]) -> Mode:
    return _BY_NAME[rng.choices(list(weights), weights=list(weights.values()))[0]]


def _hour_in(rng: random.Random, centre: float, window: tuple[time, time], spread: float) -> float:
    low = window[0].hour + window[0].minute / 60
    high = window[1].hour + window[1].minute / 60
    return min(max(rng.gauss(centre, spread), low), high - 1 / 60)


def _phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = f"+86{rng.choice(_PHONE_PREFIXES)}{rng.randrange(10**8):08d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _make_users(rng: random.Random, count: int, tag: str, window_start: datetime) -> list[_User]:
    shares = {m.name: m.share for m in MODES}
    phones: set[str] = set()
    users = []
    for i in range(count):
        mode = _pick(rng, shares)
        users.append(
            _User(
                external_user_id=f"u-{tag}-{i:05d}",
                phone=_phone(rng, phones),
                accepted_at=(window_start - timedelta(days=rng.uniform(1, 60))).replace(microsecond=0),
                mode=mode,
                commute_km=mode.distance(rng),
                commute_probability=rng.uniform(0.75, 0.95),
                leisure_probability=rng.uniform(0.2, 0.6),
                morning_hour=_hour_in(rng, 8.25, MORNING, 0.4),
                evening_hour=_hour_in(rng, 18.25, EVENING, 0.4),
            )
        )
    return users


def _trip(rng: random.Random, user: _User, day: datetime, hour: float, mode: Mode, km: float) -> _Trip:
    started = (day + timedelta(hours=hour)).replace(microsecond=0)
    return _Trip(user.external_user_id, mode, started, started + mode.duration(km, rng), round(km, 2))


def _commute(
    rng: random.Random, user: _User, day: datetime, centre: float, window: tuple[time, time]
) -> _Trip:
    hour = _hour_in(rng, centre, window, 0.15)
    if rng.random() < 0.75:
        mode = user.mode
        km = mode.clip(user.commute_km * rng.lognormvariate(0, 0.08))
    else:
        mode = _pick(rng, {m.name: m.share for m in MODES})
        km = mode.distance(rng)
    return _trip(rng, user, day, hour, mode, km)


def _day_trips(rng: random.Random, user: _User, day: datetime) -> list[_Trip]:
    trips = []
    if day.weekday() < 5:
        if rng.random() < user.commute_probability:
            trips.append(_commute(rng, user, day, user.morning_hour, MORNING))
        if rng.random() < user.commute_probability:
            trips.append(_commute(rng, user, day, user.evening_hour, EVENING))
    else:
        for earliest, latest in ((9.0, 14.0), (15.0, 21.0)):  # apart, so a user's trips never overlap
            if rng.random() < user.leisure_probability:
                mode = _pick(rng, _LEISURE_WEIGHTS)
                trips.append(_trip(rng, user, day, rng.uniform(earliest, latest), mode, mode.distance(rng)))
    return trips


def _record(trip: _Trip, record_id: str, ref: str) -> BehaviourRecord:
    return BehaviourRecord(
        record_id=record_id,
        external_user_id=trip.user,
        type=trip.mode.name,
        started_at=trip.started_at,
        ended_at=trip.ended_at,
        quantity=trip.km,
        unit=UNIT,
        scene_id=None,
        evidence=Evidence(source=trip.mode.source, ref=ref),
    )


def _invalid(
    rng: random.Random, template: BehaviourRecord, kind: str, k: int, tag: str, now: datetime
) -> BehaviourRecord:
    changes: dict[str, object] = {
        "record_id": f"op-{tag}-x{k:06d}",
        "evidence": Evidence(source=template.evidence.source, ref=f"XX-{tag}-{k:06d}"),
    }
    if kind == "negative_quantity":
        changes["quantity"] = -template.quantity
    elif kind == "unknown_type":
        changes["type"] = UNKNOWN_TYPE
    else:
        started = (now + timedelta(hours=rng.uniform(1, 72))).replace(microsecond=0)
        changes["started_at"] = started
        changes["ended_at"] = started + (template.ended_at - template.started_at)
    return template.model_copy(update=changes)


def simulate(
    users: int,
    days: int,
    *,
    seed: int | None = None,
    duplicates: float = 0.01,
    invalid: float = 0.01,
    now: datetime | None = None,
    agreement_version: str = "2026-01",
) -> Simulation:
    """``users`` users over the last ``days`` days, up to a few minutes before ``now``.

    ``duplicates`` and ``invalid`` are fractions of the clean records: that many exact copies
    (placed after their original) and that many invalid rows are mixed into the stream.
    """
    if users < 0 or days < 1:
        raise ValueError("users must be >= 0 and days >= 1")
    if not (0 <= duplicates <= 1 and 0 <= invalid <= 1):
        raise ValueError("duplicates and invalid are fractions between 0 and 1")
    rng = random.Random(seed)
    tag = f"{rng.getrandbits(32):08x}"
    now = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI).replace(microsecond=0)
    latest = now - timedelta(minutes=rng.uniform(2, 10))
    window_start = now - timedelta(days=days)
    people = _make_users(rng, users, tag, window_start)

    trips: list[_Trip] = []
    first_day = window_start.replace(hour=0, minute=0, second=0)
    for d in range((now.date() - first_day.date()).days + 1):
        day = first_day + timedelta(days=d)
        for user in people:
            trips.extend(
                t for t in _day_trips(rng, user, day) if t.started_at >= window_start and t.ended_at <= latest
            )
    trips.sort(key=lambda t: (t.ended_at, t.user))
    clean = [
        _record(t, f"op-{tag}-{n:07d}", f"{t.mode.ref_prefix}-{tag}-{n:07d}") for n, t in enumerate(trips)
    ]

    # Mixed in by sort key: clean record i sits at i, its duplicate somewhere after it.
    keyed: list[tuple[float, BehaviourRecord]] = [(float(i), r) for i, r in enumerate(clean)]
    n_invalid = round(invalid * len(clean))
    for k in range(n_invalid):
        bad = _invalid(rng, rng.choice(clean), INVALID_KINDS[k % len(INVALID_KINDS)], k, tag, now)
        keyed.append((rng.uniform(-0.5, len(clean)), bad))
    n_duplicates = round(duplicates * len(clean))
    for i in sorted(rng.sample(range(len(clean)), n_duplicates)):
        keyed.append((rng.uniform(i + 0.5, len(clean)), clean[i].model_copy()))
    keyed.sort(key=lambda pair: pair[0])
    stream = [record for _, record in keyed]

    user_rows = [
        {
            "external_user_id": u.external_user_id,
            "phone": u.phone,
            "agreement_version": agreement_version,
            "accepted_at": u.accepted_at.isoformat(),
        }
        for u in people
    ]
    return Simulation(stream, user_rows, len(clean), n_duplicates, n_invalid)
