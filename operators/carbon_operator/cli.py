"""``carbon-operator``: the operator's command line (keys, enrolment, batches, simulator)."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import DEFAULT_BASE_URL, MAX_BATCH_RECORDS, AsyncPlatformClient, Chunk, chunk_records
from .errors import AuthenticationError, ClientError, PermissionDeniedError, PlatformError
from .keys import KeyFileError, OperatorKey
from .models import BatchResult, OutcomeStatus
from .records import (
    INVALID_ROW,
    USER_COLUMNS,
    RecordFileError,
    Row,
    file_format,
    progress_path,
    read_rows,
    read_users,
    rejected_path,
    write_records,
    write_rejected,
    write_users,
)
from .simulate import SHANGHAI
from .simulate import simulate as run_simulation

app = typer.Typer(
    name="carbon-operator",
    help="Operator's tools for the carbon-inclusion platform: keys, enrolment, signed batches, simulator.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")
STATE_VERSION = 1


@dataclass
class Settings:
    base_url: str
    client_id: str | None
    key_path: Path
    client_options: dict[str, Any] = field(default_factory=dict)

    def client(self, *, operator: bool = True) -> AsyncPlatformClient:
        key = None
        if operator:
            if not self.client_id:
                raise fail("set --client-id (or CARBON_CLIENT_ID) to your organisation id")
            key = load_key(self.key_path)
        return AsyncPlatformClient(self.base_url, client_id=self.client_id, key=key, **self.client_options)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say what went wrong; the caller raises the returned exit."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def load_key(path: Path) -> OperatorKey:
    try:
        return OperatorKey.load(path)
    except KeyFileError as exc:
        raise fail(f"{exc} (create one with `carbon-operator keygen`, or point --key at it)") from exc


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a platform error ends the command with its code."""
    try:
        return asyncio.run(coro)
    except PlatformError as exc:
        raise fail(f"the platform answered {exc.status or '-'} {exc.code}: {exc.detail}") from exc
    except ExceptionGroup as group:
        platform = group.subgroup(PlatformError)
        if platform is None:
            raise
        first = platform.exceptions[0]
        while isinstance(first, ExceptionGroup):
            first = first.exceptions[0]
        assert isinstance(first, PlatformError)
        raise fail(f"the platform answered {first.status or '-'} {first.code}: {first.detail}") from group


@app.callback()
def main(
    ctx: typer.Context,
    base_url: Annotated[str, typer.Option(envvar="CARBON_BASE_URL", help="The platform's address.")] = (
        DEFAULT_BASE_URL
    ),
    client_id: Annotated[
        str | None, typer.Option(envvar="CARBON_CLIENT_ID", help="Your organisation id (the client id).")
    ] = None,
    key: Annotated[Path, typer.Option(envvar="CARBON_OPERATOR_KEY", help="Your private key (PEM).")] = Path(
        "operator-key.pem"
    ),
) -> None:
    # ``obj`` given to the command (tests pass a transport) becomes options of the client.
    options = dict(ctx.obj) if isinstance(ctx.obj, dict) else {}
    ctx.obj = Settings(base_url=base_url, client_id=client_id, key_path=key, client_options=options)


# ---------------------------------------------------------------- organisation and keys


@app.command()
def keygen(
    ctx: typer.Context,
    out_path: Annotated[Path | None, typer.Option("--out", help="Where to write the private key.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
) -> None:
    """Create an ES256 key pair: the private key to a 0600 PEM file, the public JWK to stdout."""
    settings: Settings = ctx.obj
    path = out_path or settings.key_path
    if path.exists() and not force:
        raise fail(f"{path} exists; keep it, or pass --force to replace it (the old key stops working)")
    key = OperatorKey.generate()
    key.save(path, overwrite=force)
    err.print(f"private key written to [bold]{path}[/bold] (mode 0600): keep it secret, back it up")
    typer.echo(json.dumps(key.public_jwk(), indent=2))


@app.command()
def apply(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="The organisation's registered name.")],
    credit_code: Annotated[str, typer.Option(help="Unified social credit code (统一社会信用代码).")],
    username: Annotated[str, typer.Option(help="Username of the organisation's admin account.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Apply to register your organisation as an operator; the authority approves it."""

    async def go() -> None:
        async with ctx.obj.client(operator=False) as client:
            org = await client.apply_organization(name, credit_code, username, password)
        out.print(f"organisation [bold]{org.id}[/bold]: {org.status or 'pending'}")
        err.print(f"once approved: export CARBON_CLIENT_ID={org.id}")

    run(go())


@app.command("register-key")
def register_key(
    ctx: typer.Context,
    username: Annotated[str, typer.Option(help="Your organisation's admin username.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Register the public half of --key with the platform (as the organisation's admin)."""
    settings: Settings = ctx.obj
    if not settings.client_id:
        raise fail("set --client-id (or CARBON_CLIENT_ID) to your organisation id")
    key = load_key(settings.key_path)

    async def go() -> None:
        async with AsyncPlatformClient(
            settings.base_url, client_id=settings.client_id, key=key, **settings.client_options
        ) as client:
            registered = await client.register_key(username=username, password=password)
        out.print(f"key registered: kid [bold]{registered.kid}[/bold]")

    run(go())


# ---------------------------------------------------------------- users


@app.command()
def enrol(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV: " + ", ".join(USER_COLUMNS))
    ],
    concurrency: Annotated[int, typer.Option(min=1, max=16)] = 4,
) -> None:
    """Enrol the users of a CSV file (they entrusted you); failures go to FILE.rejected.csv."""
    try:
        users = read_users(file)
    except RecordFileError as exc:
        raise fail(str(exc)) from exc

    async def go() -> tuple[int, list[tuple[dict[str, str], str]]]:
        failed: list[tuple[dict[str, str], str]] = []
        enrolled = 0
        gate = asyncio.Semaphore(concurrency)
        async with ctx.obj.client() as client:
            with _progress() as progress:
                task = progress.add_task("enrolling", total=len(users))

                async def one(user: dict[str, str]) -> None:
                    nonlocal enrolled
                    async with gate:
                        try:
                            await client.enrol_user(
                                user["external_user_id"],
                                user["phone"],
                                user["agreement_version"],
                                user["accepted_at"],
                            )
                            enrolled += 1
                        except (AuthenticationError, PermissionDeniedError):
                            raise
                        except ClientError as exc:
                            failed.append((user, exc.code))
                        progress.advance(task)

                async with asyncio.TaskGroup() as tasks:
                    for user in users:
                        tasks.create_task(one(user))
        return enrolled, failed

    enrolled, failed = run(go())
    rejected = rejected_path(file)
    if failed:
        order = {id(u): i for i, u in enumerate(users)}
        failed.sort(key=lambda pair: order[id(pair[0])])
        write_rejected(rejected, ((Row(0, u), code) for u, code in failed), columns=USER_COLUMNS)
    elif rejected.exists():
        rejected.unlink()
    table = Table(title=f"enrolment of {file.name}")
    table.add_column("outcome")
    table.add_column("users", justify="right")
    table.add_row("enrolled", str(enrolled))
    for code, count in sorted(Counter(code for _, code in failed).items()):
        table.add_row(f"failed: {code}", str(count))
    out.print(table)
    if failed:
        err.print(f"failed rows written to [bold]{rejected}[/bold]")


@app.command()
def withdraw(ctx: typer.Context, external_user_id: str) -> None:
    """Record that a user withdrew the entrustment: no more submissions for them."""

    async def go() -> None:
        async with ctx.obj.client() as client:
            await client.withdraw_user(external_user_id)
        out.print(f"{external_user_id}: entrustment withdrawn")

    run(go())


@app.command()
def account(ctx: typer.Context, external_user_id: str) -> None:
    """Show a user's points balance."""

    async def go() -> None:
        async with ctx.obj.client() as client:
            acct = await client.get_account(external_user_id)
        typer.echo(acct.model_dump_json(indent=2))

    run(go())


# ---------------------------------------------------------------- behaviour batches


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )


def _load_state(path: Path, source: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"version": STATE_VERSION, "file": source.name, "chunks": {}}
    if state.get("version") != STATE_VERSION or state.get("file") != source.name:
        return {"version": STATE_VERSION, "file": source.name, "chunks": {}}
    return state


def _save_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def _chunk_state(chunk: Chunk, result: BatchResult) -> dict[str, Any]:
    accepted = [o for o in result.results if o.status == OutcomeStatus.accepted]
    return {
        "key": chunk.idempotency_key,
        "batch_id": result.batch_id,
        "records": len(chunk),
        "summary": result.summary.model_dump(include={"accepted", "duplicate", "rejected"}),
        "codes": dict(Counter(f"{o.status.value}:{o.code}" for o in result.results if o.code)),
        "rejected": [
            [i, o.code or "unknown"] for i, o in enumerate(result.results) if o.status == "rejected"
        ],
        "points": sum(o.points or 0 for o in accepted),
        "reduction_g": sum(o.reduction_g or 0 for o in accepted),
    }


@app.command()
def submit(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="FILE.csv or FILE.jsonl")],
    chunk_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH_RECORDS)] = MAX_BATCH_RECORDS,
) -> None:
    """Submit behaviour records in signed batches of up to 1,000; resumable.

    Re-run after an interruption: batches already acknowledged are not sent again (and one sent
    twice is answered from the platform's idempotency store). Rejected rows go to
    FILE.rejected.csv / .jsonl with a code column, to fix and resubmit.
    """
    try:
        file_format(file)
        rows = read_rows(file)
    except RecordFileError as exc:
        raise fail(str(exc)) from exc
    good = [r for r in rows if r.record is not None]
    invalid = [(r, INVALID_ROW) for r in rows if r.record is None]
    for row, _ in invalid[:5]:
        err.print(f"[yellow]line {row.line}[/yellow]: {row.error}")
    if len(invalid) > 5:
        err.print(f"… and {len(invalid) - 5} more invalid rows")
    chunks = list(chunk_records((r.record for r in good if r.record is not None), chunk_size))
    state_file = progress_path(file)
    state = _load_state(state_file, file)
    done = {
        chunk.index
        for chunk in chunks
        if state["chunks"].get(str(chunk.index), {}).get("key") == chunk.idempotency_key
    }

    async def go() -> None:
        pending = [c for c in chunks if c.index not in done]
        if not pending:
            return
        async with ctx.obj.client() as client:
            with _progress() as progress:
                task = progress.add_task(f"submitting {file.name}", total=len(good))
                progress.advance(task, sum(len(c) for c in chunks if c.index in done))
                for chunk in pending:
                    result = await client.submit_chunk(chunk)
                    state["chunks"][str(chunk.index)] = _chunk_state(chunk, result)
                    _save_state(state_file, state)
                    progress.advance(task, len(chunk))

    if done:
        err.print(f"resuming: {len(done)} of {len(chunks)} batches were already acknowledged")
    try:
        run(go())
    except typer.Exit:
        err.print("re-run the same command to resume: acknowledged batches will not be sent again")
        raise

    entries = [state["chunks"][str(c.index)] for c in chunks]
    rejected = list(invalid)
    for chunk, entry in zip(chunks, entries, strict=True):
        start = chunk.index * chunk_size
        rejected.extend((good[start + position], code) for position, code in entry["rejected"])
    rejected.sort(key=lambda pair: pair[0].line)
    rejected_file = rejected_path(file)
    if rejected:
        write_rejected(rejected_file, rejected)
    elif rejected_file.exists():
        rejected_file.unlink()
    _print_summary(file, entries, len(invalid))
    if rejected:
        err.print(
            f"{len(rejected)} rejected rows written to [bold]{rejected_file}[/bold] (with a code column)"
        )


def _print_summary(file: Path, entries: list[dict[str, Any]], invalid: int) -> None:
    totals: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for entry in entries:
        totals.update(entry["summary"])
        totals["points"] += entry["points"]
        totals["reduction_g"] += entry["reduction_g"]
        codes.update(entry["codes"])
    table = Table(title=f"{file.name}: {len(entries)} batches")
    table.add_column("outcome")
    table.add_column("records", justify="right")
    table.add_row("accepted", str(totals["accepted"]))
    for code, count in sorted(codes.items()):
        if code.startswith("accepted:"):
            table.add_row(f"  of which {code.split(':', 1)[1]}", str(count))
    table.add_row("duplicate", str(totals["duplicate"]))
    table.add_row("rejected", str(totals["rejected"]))
    for code, count in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])):
        if code.startswith("rejected:"):
            table.add_row(f"  {code.split(':', 1)[1]}", str(count))
    if invalid:
        table.add_row("invalid rows (not sent)", str(invalid))
    table.add_section()
    table.add_row("points credited", str(totals["points"]))
    table.add_row("reduction (g CO2e)", str(totals["reduction_g"]))
    out.print(table)


# ---------------------------------------------------------------- simulator


@app.command()
def simulate(
    users: Annotated[int, typer.Option(min=1, help="How many users.")],
    days: Annotated[int, typer.Option(min=1, help="How many days back from now.")],
    out_file: Annotated[Path, typer.Option("--out", help="FILE.csv or FILE.jsonl to write.")],
    users_out: Annotated[Path | None, typer.Option(help="Also write the users to enrol (CSV).")] = None,
    seed: Annotated[int | None, typer.Option(help="Same seed (and --end): same stream.")] = None,
    duplicates: Annotated[
        float, typer.Option(min=0, max=1, help="Duplicate rows, share of clean ones.")
    ] = 0.01,
    invalid: Annotated[float, typer.Option(min=0, max=1, help="Invalid rows, share of clean ones.")] = 0.01,
    end: Annotated[
        datetime | None, typer.Option(help="Pretend it is this time (Asia/Shanghai); default: now.")
    ] = None,
) -> None:
    """Simulate realistic behaviour records (commute peaks, mode shares, distances)."""
    try:
        file_format(out_file)
    except RecordFileError as exc:
        raise fail(str(exc)) from exc
    now = end.replace(tzinfo=SHANGHAI) if end is not None and end.tzinfo is None else end
    sim = run_simulation(users, days, seed=seed, duplicates=duplicates, invalid=invalid, now=now)
    written = write_records(out_file, sim.records)
    if users_out is not None:
        write_users(users_out, sim.users)
    out.print(
        f"{written} records written to [bold]{out_file}[/bold]: {sim.clean} clean, "
        f"{sim.duplicates} duplicates, {sim.invalid} invalid; {len(sim.users)} users"
        + (f" in [bold]{users_out}[/bold]" if users_out is not None else "")
    )
