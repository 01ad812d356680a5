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

from .client import DEFAULT_BASE_URL, MAX_BATCH_RECORDS, AsyncPlatformClient
from .errors import PlatformError
from .keys import KeyFileError, OperatorKey
from .oauth import DEFAULT_SCOPE, TokenSet, authorization_request
from .records import USER_COLUMNS, RecordFileError, file_format, write_records, write_users
from .simulate import SHANGHAI
from .simulate import simulate as run_simulation
from .submission import FileEnrolment, FileSubmission, enrol_file, submit_file

app = typer.Typer(
    name="carbon-operator",
    help="Operator's tools for the carbon-inclusion platform: keys, enrolment, signed batches, simulator.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")


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
    except (RecordFileError, OSError) as exc:
        raise fail(str(exc)) from exc


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
    token_audience: Annotated[
        str | None,
        typer.Option(
            envvar="CARBON_TOKEN_AUDIENCE",
            help="The `aud` the platform expects in client assertions (default: BASE_URL/v1/auth/token).",
        ),
    ] = None,
) -> None:
    # ``obj`` given to the command (tests pass a transport) becomes options of the client.
    options = dict(ctx.obj) if isinstance(ctx.obj, dict) else {}
    if token_audience:
        options["token_audience"] = token_audience
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

    async def go() -> None:
        async with ctx.obj.client() as client:
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

    async def go() -> FileEnrolment:
        async with ctx.obj.client() as client:
            with _progress() as progress:
                task = progress.add_task("enrolling")
                return await enrol_file(
                    client,
                    file,
                    concurrency=concurrency,
                    on_start=lambda total: progress.update(task, total=total),
                    on_user=lambda: progress.advance(task),
                )

    result = run(go())
    table = Table(title=f"enrolment of {file.name}")
    table.add_column("outcome")
    table.add_column("users", justify="right")
    table.add_row("enrolled", str(result.enrolled))
    for code, count in sorted(Counter(code for _, code in result.failed).items()):
        table.add_row(f"failed: {code}", str(count))
    out.print(table)
    if result.rejected_file is not None:
        err.print(f"failed rows written to [bold]{result.rejected_file}[/bold]")


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


@app.command()
def batches(
    ctx: typer.Context,
    batch_id: Annotated[
        str | None, typer.Argument(help="One batch: its counts, reject codes and records")
    ] = None,
    rejected: Annotated[
        bool, typer.Option("--rejected", help="With a batch id: only its rejected records")
    ] = False,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="With a batch id: write its rejected records here")
    ] = None,
    with_rejections: Annotated[
        bool, typer.Option("--with-rejections", help="Only batches with rejections")
    ] = False,
    since: Annotated[str | None, typer.Option(help="Received at or after (RFC 3339)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """List the batches you sent (newest first), or show one with its records' outcomes."""

    async def go() -> None:
        async with ctx.obj.client() as client:
            if batch_id is None:
                page = await client.list_batches(
                    received_from=since, has_rejections=True if with_rejections else None, limit=limit
                )
                for b in page.items:
                    typer.echo(
                        f"{b.id}  {b.received_at.isoformat()}  records {b.records}  accepted {b.accepted}"
                        f"  duplicate {b.duplicate}  rejected {b.rejected}"
                    )
                return
            if csv_out is not None:
                csv_out.write_text(await client.rejected_csv(batch_id), encoding="utf-8")
                typer.echo(f"rejected records written to {csv_out}")
                return
            detail = await client.get_batch(batch_id, status="rejected" if rejected else None, limit=limit)
            typer.echo(detail.model_dump_json(indent=2))

    run(go())


OPAQUE_ARGUMENT = {"ignore_unknown_options": True}
"""For a command whose argument is a value made elsewhere (a code or a refresh token the platform made:
random URL-safe text, one in 64 begins with ``-``; your id of a person, which may be ``-42``): the command
takes it as the argument, not as an unknown option (``No such option: -R``). These commands have no short
options a value could be read as, a mistyped option is still refused (as an extra argument), and ``--``
before the value works as well."""


@app.command("user-token", context_settings=OPAQUE_ARGUMENT)
def user_token(ctx: typer.Context, external_user_id: str) -> None:
    """Print a short-lived user token for one of your users (what your app sends to /v1/me/...)."""

    async def go() -> None:
        async with ctx.obj.client() as client:
            token = await client.issue_user_token(external_user_id)
        typer.echo(token.access_token)

    run(go())


# ---------------------------------------------------------------- people confirm their entrustment

TokensFile = Annotated[
    Path | None,
    typer.Option(
        "--tokens",
        help="Also keep the token set in this JSON file (mode 0600); `refresh --tokens` rotates it.",
    ),
]


def _keep(tokens: TokenSet, path: Path | None) -> None:
    """Print the token set (JSON) and, with --tokens, write it to a 0600 file in place of the old one."""
    text = tokens.model_dump_json(indent=2)
    if path is not None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        os.chmod(path, 0o600)
        err.print(f"token set kept in [bold]{path}[/bold] (mode 0600): its refresh token works once")
    typer.echo(text)


@app.command("authorize-url")
def authorize_url(
    ctx: typer.Context,
    redirect_uri: Annotated[str, typer.Option(help="One of your registered redirect URIs, exactly.")],
    scope: Annotated[str, typer.Option(help="Space-separated: behaviours:submit, account:read, mall.")] = (
        DEFAULT_SCOPE
    ),
    state: Annotated[str | None, typer.Option(help="The state to use (default: a random one).")] = None,
) -> None:
    """Print an /oauth/authorize URL with its state and PKCE verifier (JSON).

    A fresh S256 verifier and a random state each time: keep both until the person comes back.
    """
    settings: Settings = ctx.obj
    if not settings.client_id:
        raise fail("set --client-id (or CARBON_CLIENT_ID) to your organisation id")
    try:
        request = authorization_request(
            settings.base_url, settings.client_id, redirect_uri, scope, state=state
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    body = {
        "url": request.url,
        "state": request.state,
        "code_verifier": request.code_verifier,
        "redirect_uri": request.redirect_uri,
        "scope": request.scope,
    }
    typer.echo(json.dumps(body, indent=2))
    err.print("send the person to the url; on your redirect URI check the state, then run exchange-code")


@app.command("exchange-code", context_settings=OPAQUE_ARGUMENT)
def exchange_code(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The code your redirect URI received.")],
    redirect_uri: Annotated[str, typer.Option(help="The redirect URI of the authorize URL.")],
    verifier: Annotated[str, typer.Option(help="The code verifier authorize-url printed.")],
    external_user_id: Annotated[
        str | None, typer.Option(help="Your id of the person (default: their platform user id).")
    ] = None,
    tokens_file: TokensFile = None,
) -> None:
    """Exchange the code for the person's token set (user token and refresh token), printed as JSON."""

    async def go() -> TokenSet:
        async with ctx.obj.client() as client:
            return await client.exchange_code(code, redirect_uri, verifier, external_user_id=external_user_id)

    _keep(run(go()), tokens_file)


@app.command(context_settings=OPAQUE_ARGUMENT)
def refresh(
    ctx: typer.Context,
    refresh_token: Annotated[
        str | None, typer.Argument(help="The refresh token (or give --tokens FILE).", show_default=False)
    ] = None,
    tokens_file: TokensFile = None,
) -> None:
    """Rotate the refresh token: a new user token and a new refresh token (the old one stops working)."""
    if refresh_token is None:
        if tokens_file is None:
            raise fail("give the refresh token, or --tokens FILE written by exchange-code")
        try:
            refresh_token = TokenSet.model_validate_json(tokens_file.read_text()).refresh_token
        except (OSError, ValueError) as exc:
            raise fail(f"{tokens_file}: not a token set ({exc})") from exc
    token = refresh_token

    async def go() -> TokenSet:
        async with ctx.obj.client() as client:
            return await client.refresh(token)

    _keep(run(go()), tokens_file)


redirect_uris = typer.Typer(help="Your app's registered redirect URIs (as the organisation's admin).")
app.add_typer(redirect_uris, name="redirect-uris")
Username = Annotated[str, typer.Option(help="Your organisation's admin username.")]
Password = Annotated[str, typer.Option(prompt=True, hide_input=True)]


@redirect_uris.command("add")
def redirect_uris_add(ctx: typer.Context, uri: str, username: Username, password: Password) -> None:
    """Register an exact redirect URI (https; http on a loopback address outside production)."""

    async def go() -> None:
        async with ctx.obj.client(operator=False) as client:
            added = await client.add_redirect_uri(uri, username=username, password=password)
        out.print(f"redirect URI [bold]{added.id}[/bold] registered: {added.uri}")

    run(go())


@redirect_uris.command("list")
def redirect_uris_list(ctx: typer.Context, username: Username, password: Password) -> None:
    """List the registered redirect URIs."""

    async def go() -> None:
        async with ctx.obj.client(operator=False) as client:
            uris = await client.list_redirect_uris(username=username, password=password)
        table = Table(title="redirect URIs")
        table.add_column("id", justify="right")
        table.add_column("uri")
        table.add_column("registered")
        for item in uris:
            table.add_row(str(item.id), item.uri, item.created_at.isoformat(timespec="seconds"))
        out.print(table)

    run(go())


@redirect_uris.command("remove")
def redirect_uris_remove(ctx: typer.Context, uri_id: int, username: Username, password: Password) -> None:
    """Remove a redirect URI by its id: people are no longer sent back to it."""

    async def go() -> None:
        async with ctx.obj.client(operator=False) as client:
            removed = await client.remove_redirect_uri(uri_id, username=username, password=password)
        out.print(f"redirect URI {removed.id} removed: {removed.uri}")

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

    async def go() -> FileSubmission:
        async with ctx.obj.client() as client:
            with _progress() as progress:
                task = progress.add_task(f"submitting {file.name}")

                def start(total: int, done: int) -> None:
                    progress.update(task, total=total, completed=done)
                    if done:
                        progress.console.print(
                            f"resuming: {done} of {total} records were already acknowledged"
                        )

                return await submit_file(
                    client,
                    file,
                    chunk_size=chunk_size,
                    on_start=start,
                    on_chunk=lambda n: progress.advance(task, n),
                )

    try:
        result = run(go())
    except typer.Exit:
        err.print("re-run the same command to resume: acknowledged batches will not be sent again")
        raise
    for row in result.invalid[:5]:
        err.print(f"[yellow]line {row.line}[/yellow]: {row.error}")
    if len(result.invalid) > 5:
        err.print(f"… and {len(result.invalid) - 5} more rows that are not records")
    _print_summary(result)
    if result.rejected_file is not None:
        err.print(f"{len(result.rejected)} rejected rows written to [bold]{result.rejected_file}[/bold]")


def _print_summary(result: FileSubmission) -> None:
    totals, codes = result.totals, result.codes
    table = Table(title=f"{result.file.name}: {result.batches} batches ({result.sent} sent now)")
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
    if result.invalid:
        table.add_row("invalid rows (not sent)", str(len(result.invalid)))
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
