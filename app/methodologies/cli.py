"""``carbon-points methodologies …``: load the shipped catalogue, list what is published."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.core.errors import DomainError

methodologies_cli = typer.Typer(help="Methodologies and exchange rules.", no_args_is_help=True)


@methodologies_cli.command("load-catalogue")
def load_catalogue(
    file: Annotated[
        Path | None, typer.Argument(help="A catalogue JSON file (default: the one shipped with the platform)")
    ] = None,
) -> None:
    """Publish the catalogue's methodologies and exchange rules; existing code+version are left alone."""
    from app.cli import console, run
    from app.core import db
    from app.methodologies import catalogue

    async def load():
        async with db.session_scope() as session:
            return await catalogue.load(session, file)

    try:
        result = run(load)
    except DomainError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.detail}")
        raise typer.Exit(1) from exc
    for label in result.created:
        console.print(f"[green]published[/green] {label}")
    for label in result.existing:
        console.print(f"[dim]exists[/dim]    {label}")
    console.print(f"{len(result.created)} published, {len(result.existing)} already there")


@methodologies_cli.command("list")
def list_versions(
    all_states: Annotated[bool, typer.Option("--all", help="Also drafts and versions under review")] = False,
) -> None:
    """Methodology and exchange-rule versions (published and retired unless --all)."""
    from app.cli import console, run
    from app.core import clock, db
    from app.methodologies import service

    async def fetch() -> service.Listing:
        async with db.session_scope() as session:
            return await service.listing(session, all_states=all_states)

    listing = run(fetch)
    methodologies, rules = listing.methodologies, listing.exchange_rules

    def period(v) -> str:
        def local(t) -> str:
            return t.astimezone(clock.zone()).isoformat(timespec="minutes")

        return f"{local(v.effective_from)} → {local(v.effective_to) if v.effective_to else '…'}"

    table = Table(title="Methodology versions")
    for column in (
        "type",
        "code",
        "v",
        "status",
        "g CO2e / unit",
        "per record / day",
        "period",
        "illustrative",
    ):
        table.add_column(column)
    for m in methodologies:
        table.add_row(
            m.behaviour_type,
            m.code,
            str(m.version),
            m.status,
            f"{_num(m.net_factor_g)} / {m.unit}",
            f"{_num(m.max_quantity_per_record)} / {_num(m.max_quantity_per_day)}",
            period(m),
            "yes" if m.illustrative else "",
        )
    console.print(table)
    table = Table(title="Exchange-rule versions")
    for column in ("v", "status", "points / g", "daily cap", "per type", "lifetime (days)", "period"):
        table.add_column(column)
    for r in rules:
        table.add_row(
            str(r.version),
            r.status,
            _num(r.points_per_gram),
            str(r.daily_cap_points or "-"),
            ", ".join(f"{k} {v}" for k, v in sorted(r.type_daily_caps.items())) or "-",
            str(r.lot_lifetime_days),
            period(r),
        )
    console.print(table)


def _num(value) -> str:
    return "-" if value is None else f"{value.normalize():f}"


def register(cli: typer.Typer) -> None:
    cli.add_typer(methodologies_cli, name="methodologies")
