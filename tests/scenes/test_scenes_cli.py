"""``carbon-points scenes verify-draw``: anyone with the record can check a panel was drawn fairly."""

import asyncio
import json
import os
import sys
import uuid

import sqlalchemy as sa

from app.core import db
from tests.factories import authority_token, make_org
from tests.factories_scenes import ensure_experts, make_scene, open_scene_review


async def cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "scenes",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "250"},
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


class TestVerifyDraw:
    async def test_a_true_record_verifies_and_a_doctored_one_does_not(self, client):
        authority = await authority_token(client)
        await ensure_experts(client, authority, n=2)
        operator = await make_org(client, "scene_operator", authority=authority)
        scene = await make_scene(client, operator, submit=True)
        panel = await open_scene_review(client, authority, scene["id"], size=2, seed="cli-seed-0001")
        code, out = await cli("verify-draw", panel["id"])
        assert code == 0, out
        assert "cli-seed-0001" in out and "the recorded panel is the draw's result" in out

        chosen = [str(m["expert_id"]) for m in panel["members"]]
        async with db.session_scope() as session:
            await session.execute(
                sa.text("UPDATE review_panels SET chosen = CAST(:c AS jsonb) WHERE id = :id"),
                {"c": json.dumps(list(reversed(chosen))), "id": panel["id"]},
            )
        code, out = await cli("verify-draw", panel["id"])
        assert code == 1 and "differs from the record" in out, out

    async def test_an_unknown_panel(self):
        code, out = await cli("verify-draw", str(uuid.uuid4()))
        assert code == 1 and "review_not_found" in out, out
