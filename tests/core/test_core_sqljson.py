"""JSON made in Python with values a statement fills in: the template, filled by PostgreSQL's format(), is the
JSON Python would have written with those values — in a JSON string inside JSON too, whatever the other text
holds (a % of its own, quotes, backslashes, a NUL-looking text)."""

import json

import asyncpg
import orjson
import pytest

from app.core.sqljson import later, template

ODD = 'half %s "off" \\ %1$s 50%% \\u0000points'  # written by a person: must come back as it is


async def filled(servers, text: str, *values: str) -> str:
    conn = await asyncpg.connect(servers.database_url)
    try:
        return await conn.fetchval("SELECT format($1, VARIADIC $2::text[])", text, list(values))
    finally:
        await conn.close()


class TestTemplate:
    async def test_the_filled_template_is_the_json_python_writes(self, servers):
        data = {"note": ODD, "points": later("points"), "entry": later("entry_id"), "again": later("points")}
        text = template(orjson.dumps(data).decode(), ["entry_id", "points"])
        result = await filled(servers, text, "12", "30")
        assert json.loads(result) == {"note": ODD, "points": 30, "entry": 12, "again": 30}
        assert result == orjson.dumps({**data, "points": 30, "entry": 12, "again": 30}).decode()

    async def test_json_inside_a_json_string(self, servers):
        canonical = json.dumps([ODD, {"points": later("points")}], separators=(",", ":"), ensure_ascii=False)
        text = template(
            orjson.dumps({"rest": canonical, "data": {"points": later("points")}}).decode(), ["points"]
        )
        outer = json.loads(await filled(servers, text, "7"))
        assert outer["data"] == {"points": 7}
        assert outer["rest"] == json.dumps([ODD, {"points": 7}], separators=(",", ":"), ensure_ascii=False)

    async def test_a_value_to_fill_must_be_there(self):
        with pytest.raises(AssertionError, match="points is not in the JSON"):
            template(orjson.dumps({"entry": later("entry_id")}).decode(), ["entry_id", "points"])
