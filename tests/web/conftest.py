"""Fixtures of the web tests: an in-process browser-like client, and for the browser tests a real
uvicorn server on the test database with one Chromium for the whole session."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.core import httpserver
from tests.web.helpers import HTML

CHROMIUM = os.environ.get("CARBON_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path("/tmp/shots")
SHOTS_WANTED = os.environ.get("CARBON_SHOTS") == "1"


@pytest.fixture
async def browser_client(app):
    """An in-process client that asks for HTML, as a browser does, and keeps cookies."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=HTML, timeout=60) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(servers):
    """The application in a uvicorn process of its own, on the test database, for the browser."""
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="carbon-live-server-", suffix=".log", delete=False)
    env = {**os.environ, "CARBON_DATABASE_URL": servers.database_url, "CARBON_REDIS_URL": servers.redis_url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--http",  # the HTTP protocol carbon-points serve runs
            httpserver.PROTOCOL,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"the live server exited: {Path(log.name).read_text()[-3000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the live server did not start: {Path(log.name).read_text()[-3000:]}")
        time.sleep(0.2)
    yield base
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    os.unlink(log.name)


@pytest.fixture(scope="session")
async def browser():
    """One Chromium for the whole session: Debian's, never skipped (missing, the tests fail)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once a session
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk (.ci/run installs them)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


class PageRecord:
    """Every request a page made, and what it logged as errors (CSP violations show up there)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.error_status_expected = False  # a 4xx/5xx page logs "Failed to load resource"


@pytest.fixture
async def page(browser, live_server):
    """A fresh browser context (no cookies) at 1280 × 800. Afterwards every request it made must
    have gone to the server's own origin, and nothing may have been logged as an error."""
    context = await browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    record = PageRecord()
    tab.on("request", lambda request: record.requests.append(request.url))
    tab.on(
        "console",
        lambda m: record.console_errors.append(f"{tab.url}: {m.text}") if m.type == "error" else None,
    )
    tab.on("pageerror", lambda exc: record.console_errors.append(f"{tab.url}: {exc}"))
    tab.record = record
    if not SHOTS_WANTED:
        # The checks of a layout (no sideways scroll, axe) always run; the pictures themselves are
        # for people to look at, taken with CARBON_SHOTS=1 (docs/architecture.md, "Tests").
        async def no_picture(**_options) -> bytes:
            return b""

        tab.screenshot = no_picture
    yield tab
    await context.close()
    own = urlsplit(live_server)[:2]
    foreign = [u for u in record.requests if urlsplit(u)[:2] != own and not u.startswith(("data:", "blob:"))]
    assert foreign == [], "requests to other origins"
    errors = [
        e
        for e in record.console_errors
        if not (record.error_status_expected and "Failed to load resource" in e)
    ]
    assert errors == [], "errors logged by the page"


@pytest.fixture(scope="session")
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
