"""``carbon-points``: serve, migrate, create-admin, audit verify, demo, and the domains' commands.

Each domain adds its own group in ``app/<domain>/cli.py`` and is mounted below.
"""

import asyncio
import getpass
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from app.core import clock, db, embedded, migrate, proofs, redis
from app.core.config import get_settings
from app.core.errors import DomainError

T = TypeVar("T")
CLI_ACTOR = "cli:" + (os.environ.get("USER") or "operator")
console = Console(soft_wrap=True)  # entry names and URLs stay on one line
cli = typer.Typer(help="The carbon points platform.", no_args_is_help=True, pretty_exceptions_enable=False)
audit_cli = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
keys_cli = typer.Typer(help="The platform's token signing keys.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")
cli.add_typer(keys_cli, name="keys")
sms_cli = typer.Typer(help="Text messages (one-time codes).", no_args_is_help=True)
cli.add_typer(sms_cli, name="sms")
clock_cli = typer.Typer(
    help="The sandbox clock: move the platform's time forward (local and test environments only).",
    no_args_is_help=True,
)
cli.add_typer(clock_cli, name="clock")


def urls() -> embedded.ServerUrls:
    settings = get_settings()
    return embedded.ensure_servers(settings.database_url, settings.redis_url, settings.data_dir)


@asynccontextmanager
async def connected():
    """Database and Redis for a one-off command."""
    u = urls()
    db.init(u.database_url, pool_size=5)
    redis.init(u.redis_url)
    try:
        await clock.refresh()  # the sandbox clock (local and test only), as the servers apply it
        yield u
    finally:
        await redis.close()
        await db.dispose()


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine with the database and Redis; a domain error ends the command with exit code 1."""

    async def wrapped() -> T:
        async with connected():
            return await fn()

    try:
        return asyncio.run(wrapped())
    except DomainError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.detail}")
        raise typer.Exit(1) from exc


@cli.command("migrate")
def migrate_cmd() -> None:
    """Apply every database migration."""
    migrate.upgrade(urls().database_url)
    console.print("[green]database is up to date[/green]")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    demo: Annotated[bool, typer.Option(help="Load the demo data on first start")] = False,
) -> None:
    """Apply migrations, start the embedded servers if no URLs are set, and serve the API."""
    import uvicorn

    from app.core import httpserver

    settings = get_settings()
    u = urls()
    # uvicorn re-raises the SIGTERM it handled once it has shut down; as SystemExit here, so the
    # embedded servers are stopped cleanly (finally below) instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        migrate.upgrade(u.database_url)
        if "CARBON_PUBLIC_BASE_URL" not in os.environ and not _in_dotenv("CARBON_PUBLIC_BASE_URL"):
            # client assertions name the token URL as their audience: by default, where we serve
            os.environ["CARBON_PUBLIC_BASE_URL"] = f"http://{host}:{port}"
        get_settings.cache_clear()
        if demo:  # after the base URL: the demo prints links and signs certificates' QR codes with it
            from app.demo import load_demo

            run(lambda: load_demo(console, only_if_empty=True))
        if u.started:
            console.print(
                f"[bold]embedded servers[/bold] ({', '.join(u.started)}) keep their data in "
                f"[cyan]{settings.data_dir.resolve()}[/cyan]\n"
                f"  PostgreSQL: {u.database_url}\n  Redis: {u.redis_url}\n"
                f"  psql: {embedded.psql_hint(u.database_url)}"
            )
        warning = _connection_budget(
            u.database_url, workers, settings.db_pool_size, settings.db_direct_pool_size
        )
        if warning:
            console.print(f"[yellow]{warning}[/yellow]")
        console.print(f"API on http://{host}:{port}  ·  OpenAPI: http://{host}:{port}/docs")
        # The app (and any worker process) uses the servers started here, by URL.
        os.environ.setdefault("CARBON_DATABASE_URL", u.database_url)
        os.environ.setdefault("CARBON_REDIS_URL", u.redis_url)
        get_settings.cache_clear()
        # The workers share the signatures they verified (app.core.proofs): a token is verified once here.
        with proofs.shared_by_workers(workers):
            # No proxy headers in uvicorn (it would believe X-Forwarded-For from loopback): the app reads
            # them itself, from the proxies in CARBON_TRUSTED_PROXIES only (app.core.proxies).
            uvicorn.run(
                "app.main:app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_config=None,
                access_log=False,
                lifespan="on",
                proxy_headers=False,
                loop="uvloop",  # the event loop and HTTP parser in C (uvicorn[standard] installs both)
                http=httpserver.PROTOCOL,  # httptools; a response in one write
            )
    finally:
        embedded.stop_all()  # checkpoint PostgreSQL and save Redis before leaving


def _connection_budget(database_url: str, workers: int, pool_size: int, direct_pool_size: int) -> str | None:
    """What ``serve`` warns of when its workers may open more connections than PostgreSQL gives."""
    available = asyncio.run(db.available_connections(database_url))
    return db.budget_warning(available, workers, pool_size, direct_pool_size)


def _in_dotenv(name: str) -> bool:
    from pathlib import Path

    env = Path(".env")
    return env.exists() and any(
        line.split("=", 1)[0].strip() == name for line in env.read_text().splitlines()
    )


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(0)


@cli.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Argument(help="Login name of the authority account")],
    password: Annotated[str | None, typer.Option(help="Password (asked for if omitted)")] = None,
) -> None:
    """Create an authority (主管部门) account."""
    from app.organizations import service as org_service

    secret = password or getpass.getpass("password: ")
    if len(secret) < 8:
        console.print("[red]the password needs at least 8 characters[/red]")
        raise typer.Exit(2)

    async def create() -> None:
        async with db.session_scope() as session:
            await org_service.create_staff_user(session, username, secret, "authority")

    run(create)
    console.print(f"[green]authority account {username!r} created[/green]")


@cli.command()
def demo() -> None:
    """Load demo data (organisations, keys, people, behaviours…) and print how to try the API."""
    from app.demo import load_demo

    migrate.upgrade(urls().database_url)
    run(lambda: load_demo(console, only_if_empty=False))


@audit_cli.command("verify")
def audit_verify() -> None:
    """Re-hash the audit chains; exit 1 naming the first broken entry of each broken chain."""
    from app.core import audit

    async def verify():
        async with db.session_scope() as session:
            return await audit.verify(session)

    result = run(verify)
    if result.ok:
        console.print(f"[green]audit log intact[/green]: {result.entries} entries")
        return
    for problem in result.broken:
        console.print(f"[red]broken[/red]: {problem}")
    raise typer.Exit(1)


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Sign new tokens with a new key; tokens signed with the old one stay valid until they expire."""
    from app.auth import keys

    async def rotate() -> str:
        async with db.session_scope() as session:
            return await keys.rotate(session)

    console.print(f"new signing key: {run(rotate)}")


@sms_cli.command("outbox")
def sms_outbox(limit: int = typer.Option(20, min=1, max=500, help="How many messages, newest first")) -> None:
    """The development outbox: the messages CARBON_SMS_BACKEND=outbox kept (refused in production)."""
    from app.core import sms

    if not sms.outbox_allowed():
        console.print("[red]the development outbox does not exist in production[/red]")
        raise typer.Exit(1)

    async def read() -> list[sms.OutboxEntry]:
        async with db.session_scope() as session:
            return await sms.outbox(session, limit)

    for entry in run(read):
        console.print(f"{entry.created_at.isoformat(timespec='seconds')}  {entry.recipient}  {entry.body}")


_DURATION = re.compile(r"^\s*(\d{1,7})\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _show_clock(sandbox: clock.SandboxClock) -> None:
    zone = clock.zone()
    ahead = sandbox.offset
    console.print(
        f"platform time: {sandbox.platform_now.astimezone(zone).isoformat(timespec='seconds')}"
        f"  (real time {datetime.now(zone).isoformat(timespec='seconds')})"
    )
    console.print(
        f"moved forward by: {ahead.days} days {ahead.seconds // 3600} hours {ahead.seconds % 3600 // 60} minutes"
    )
    if sandbox.updated_at is not None:
        console.print(
            f"last moved at {sandbox.updated_at.isoformat(timespec='seconds')} by {sandbox.updated_by}"
        )


def _clock_allowed() -> None:
    if not clock.sandbox_allowed():
        console.print(
            "[red]sandbox_clock_refused[/red]: the platform's clock can be moved only in the local and test"
            " environments, never in production"
        )
        raise typer.Exit(1)


@clock_cli.command("show")
def clock_show() -> None:
    """The platform's time and how far it is moved forward."""
    _clock_allowed()

    async def read() -> clock.SandboxClock:
        async with db.session_scope() as session:
            return await clock.read_sandbox(session)

    _show_clock(run(read))


@clock_cli.command("advance")
def clock_advance(
    by: Annotated[str, typer.Argument(help="How far: 10d (days), 6h (hours) or 30m (minutes)")],
) -> None:
    """Move the platform's clock forward for every process (audited as the command line)."""
    _clock_allowed()
    match = _DURATION.match(by)
    if not match or int(match.group(1)) == 0:
        console.print("[red]invalid_advance[/red]: give a positive whole number and a unit: 10d, 6h or 30m")
        raise typer.Exit(2)
    delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})

    async def move() -> clock.SandboxClock:
        async with db.session_scope() as session:
            return await clock.advance(session, delta, CLI_ACTOR)

    moved = run(move)
    clock.apply_sandbox(moved.offset)
    _show_clock(moved)


@clock_cli.command("reset")
def clock_reset() -> None:
    """Put the platform's clock back to the real time (audited)."""
    _clock_allowed()

    async def back() -> clock.SandboxClock:
        async with db.session_scope() as session:
            return await clock.reset(session, CLI_ACTOR)

    moved = run(back)
    clock.apply_sandbox(moved.offset)
    _show_clock(moved)


def _mount_domain_commands() -> None:
    import importlib

    for name in ("points", "methodologies", "mall", "scenes", "cer", "web"):
        try:
            module = importlib.import_module(f"app.{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.{name}.cli" and exc.name != f"app.{name}":
                raise
            continue
        module.register(cli)


_mount_domain_commands()  # at import, so ``cli`` is whole for tests (CliRunner) and the console script


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    cli()


if __name__ == "__main__":  # python -m app.cli
    main()
