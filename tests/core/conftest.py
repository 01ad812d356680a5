"""Fixtures of the core tests: the options ``carbon-points serve`` hands uvicorn, and the app behind them."""

from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from app import cli


@pytest.fixture
def serve_options(app, monkeypatch) -> dict:
    """The keyword arguments ``carbon-points serve`` passes ``uvicorn.run`` (nothing started)."""
    import uvicorn

    options: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: options.update(kw))
    monkeypatch.setattr(
        cli,
        "urls",
        lambda: SimpleNamespace(database_url="postgresql://db", redis_url="redis://r", started=[]),
    )
    monkeypatch.setattr(cli.migrate, "upgrade", lambda url: None)
    monkeypatch.setattr(cli, "_connection_budget", lambda *args: None)
    monkeypatch.setattr(cli.embedded, "stop_all", lambda **kw: None)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)
    monkeypatch.setattr(cli.get_settings, "cache_clear", lambda: None)  # the test app keeps its settings
    result = CliRunner().invoke(cli.cli, ["serve"])
    assert result.exit_code == 0, result.output
    return options


@pytest.fixture
def served(app, serve_options):
    """``async with served() as c``: a client of the app behind uvicorn configured as serve configures it."""
    import uvicorn

    proxy = {k: serve_options[k] for k in ("proxy_headers", "forwarded_allow_ips") if k in serve_options}
    config = uvicorn.Config(app, log_config=None, **proxy)
    config.load()

    def client(peer: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://test")

    return client
