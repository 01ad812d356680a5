"""The shipped catalogue: published, idempotent, the Shenzhen figures, the command and the demo."""

import asyncio
import json
import os
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from app.core import clock, db
from app.methodologies import catalogue, demo, service
from app.methodologies.exceptions import LifetimeTooLong
from tests.factories_methodologies import CST, new_type

M = "/v1/methodologies"
EPOCH = datetime(2020, 1, 1, tzinfo=CST)
SHIPPED = json.loads(catalogue.DEFAULT_PATH.read_text(encoding="utf-8"))
LABELS = 7  # six methodologies and one exchange rule


async def published_of(client, behaviour_type: str) -> dict:
    r = await client.get(M, params={"behaviour_type": behaviour_type})
    items = r.json()["items"]
    assert len(items) == 1, items
    return items[0]


async def cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "methodologies",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "250"},
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


class TestShippedFigures:
    async def test_metro_is_46_7_g_per_person_km(self, client):
        metro = await published_of(client, "metro")
        assert (metro["net_factor_g"], metro["unit"], metro["category"], metro["illustrative"]) == (
            46.7,
            "km",
            "travel",
            False,
        )
        assert (metro["max_quantity_per_record"], metro["max_quantity_per_day"]) == (60.0, 200.0)
        assert "深圳市低碳公共出行碳普惠方法学" in metro["citation"]
        assert (datetime.fromisoformat(metro["effective_from"]), metro["effective_to"]) == (EPOCH, None)

    async def test_battery_electric_bus_is_26_9_g_per_person_km(self, client):
        bus = await published_of(client, "bus")
        assert (bus["net_factor_g"], bus["unit"], bus["illustrative"]) == (26.9, "km", False)
        assert (bus["max_quantity_per_record"], bus["max_quantity_per_day"]) == (50.0, 150.0)
        assert "深圳市低碳公共出行碳普惠方法学" in bus["citation"]

    @pytest.mark.parametrize(
        ("behaviour_type", "category", "unit", "net"),
        [
            ("cycling", "travel", "km", 80.0),
            ("walking", "travel", "km", 80.0),
            ("nev", "travel", "km", 100.65),
            ("own_cup", "scene", "item", 23.8),
        ],
    )
    async def test_our_estimates_are_illustrative_with_their_arithmetic(
        self, client, behaviour_type, category, unit, net
    ):
        m = await published_of(client, behaviour_type)
        assert (m["category"], m["unit"], m["net_factor_g"], m["illustrative"]) == (category, unit, net, True)
        assert Decimal(str(m["baseline_factor_g"])) - Decimal(str(m["project_factor_g"])) == Decimal(str(net))
        assert m["derivation"].startswith("Illustrative estimate.")
        assert m["citation"]

    async def test_the_exchange_rule_in_force_now(self, client):
        r = await client.get("/v1/exchange-rules/current")
        rule = r.json()
        assert (rule["points_per_gram"], rule["daily_cap_points"], rule["lot_lifetime_days"]) == (
            0.1,
            200,
            730,
        )
        assert rule["type_daily_caps"]["walking"] == 50
        assert datetime.fromisoformat(rule["effective_from"]) == EPOCH
        assert rule["rounding"] == "down"

    async def test_lookups_for_other_domains(self):
        async with db.session_scope() as session:
            now = await service.methodology_for(session, "metro", clock.now())
            first = await service.methodology_for(session, "metro", EPOCH)
            before = await service.methodology_for(
                session, "metro", datetime(2019, 12, 31, 23, 59, tzinfo=CST)
            )
            unknown = await service.methodology_for(session, new_type(), clock.now())
            rule = await service.current_exchange_rule(session, EPOCH)
        assert (now.net_factor_g, first.id, before, unknown) == (Decimal("46.7"), now.id, None, None)
        assert (rule.points_per_gram, rule.lot_lifetime_days) == (Decimal("0.1"), 730)


class TestIdempotentLoading:
    async def test_loading_again_creates_nothing(self, client):
        async with db.session_scope() as session:
            result = await catalogue.load(session)
        assert (result.created, len(result.existing)) == ([], LABELS)
        r = await client.get(M, params={"code": "sz-public-travel-metro"})
        assert [m["version"] for m in r.json()["items"]] == [1]

    async def test_concurrent_loads_create_each_version_once(self, tmp_path: Path):
        behaviour_type = new_type()
        entry = {
            **SHIPPED["methodologies"][0],
            "code": behaviour_type.replace("_", "-"),
            "behaviour_type": behaviour_type,
        }
        path = tmp_path / "catalogue.json"
        path.write_text(json.dumps({"methodologies": [entry]}), encoding="utf-8")

        async def load():
            async with db.session_scope() as session:
                return await catalogue.load(session, path)

        results = await asyncio.gather(*(load() for _ in range(3)))
        assert sorted(len(r.created) for r in results) == [0, 0, 1]

    async def test_a_bad_entry_loads_nothing(self, tmp_path: Path):
        behaviour_type = new_type()
        path = tmp_path / "catalogue.json"
        path.write_text(
            json.dumps(
                {
                    "methodologies": [
                        {
                            **SHIPPED["methodologies"][0],
                            "code": behaviour_type,
                            "behaviour_type": behaviour_type,
                        }
                    ],
                    "exchange_rules": [
                        {**SHIPPED["exchange_rules"][0], "version": 10_000, "lot_lifetime_days": 4000}
                    ],
                }
            ),
            encoding="utf-8",
        )
        with pytest.raises(LifetimeTooLong):
            async with db.session_scope() as session:
                await catalogue.load(session, path)
        async with db.session_scope() as session:
            assert await service.methodology_for(session, behaviour_type, clock.now()) is None

    async def test_the_demo_loads_it_too(self):
        async with db.session_scope() as session:
            lines = await demo.load(session)
        assert lines[0] == f"catalogue: 0 versions published, {LABELS} already there"


class TestCommands:
    async def test_load_catalogue_and_list(self, tmp_path: Path, client):
        code, out = await cli("load-catalogue")
        assert code == 0, out
        assert f"0 published, {LABELS} already there" in out

        behaviour_type = new_type()
        entry = {
            **SHIPPED["methodologies"][1],
            "code": behaviour_type.replace("_", "-"),
            "behaviour_type": behaviour_type,
            "net_factor_g": 12.5,
        }
        path = tmp_path / "extra.json"
        path.write_text(json.dumps({"methodologies": [entry]}), encoding="utf-8")
        code, out = await cli("load-catalogue", str(path))
        assert code == 0, out
        assert "1 published, 0 already there" in out
        assert (await published_of(client, behaviour_type))["net_factor_g"] == 12.5

        code, out = await cli("list")
        assert code == 0, out
        assert "sz-public-travel-metro" in out and "46.7 / km" in out and behaviour_type in out

    async def test_a_refused_catalogue_exits_non_zero(self, tmp_path: Path):
        path = tmp_path / "bad.json"
        path.write_text(
            json.dumps(
                {
                    "exchange_rules": [
                        {**SHIPPED["exchange_rules"][0], "version": 10_001, "lot_lifetime_days": 3651}
                    ]
                }
            ),
            encoding="utf-8",
        )
        code, out = await cli("load-catalogue", str(path))
        assert code == 1, out
        assert "lifetime_too_long" in out
