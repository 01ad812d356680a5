"""The demo's operator has a registered redirect URI, and the authorize URL it prints opens the phone page."""

import re

import pytest
from rich.console import Console

from app.core import clock, db
from app.demo import load_demo
from tests.web.helpers import HTML

pytestmark = pytest.mark.commits


async def test_the_demo_prints_a_working_authorize_url(app, browser_client):
    console = Console(record=True, width=10_000)
    try:
        await load_demo(console, only_if_empty=False)
    finally:  # the CER demo moved the sandbox clock, committed here: the tests after this one keep the real time
        async with db.session_scope() as session:
            if (await clock.read_sandbox(session)).offset:
                await clock.reset(session, "test")
        await clock.refresh()
    text = console.export_text()
    match = re.search(r"open (http://test/oauth/authorize\?\S+)", text)
    if match is None:  # the demo operator was loaded by another test before: nothing printed again
        assert "demo operator already there" in text
        return
    r = await browser_client.get(match.group(1).removeprefix("http://test"), headers=HTML)
    assert r.status_code == 200 and 'name="phone"' in r.text
