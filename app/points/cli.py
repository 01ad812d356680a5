"""``carbon-points points expire`` and ``carbon-points ledger verify``."""

import typer

from app.core import db


def register(cli: typer.Typer) -> None:
    points_cli = typer.Typer(help="Carbon points.", no_args_is_help=True)
    ledger_cli = typer.Typer(help="The points ledger.", no_args_is_help=True)
    cli.add_typer(points_cli, name="points")
    cli.add_typer(ledger_cli, name="ledger")

    @points_cli.command("expire")
    def expire() -> None:
        """Expire every lot whose time has come (the daily job does the same)."""
        from app.cli import console, run
        from app.points.tasks import expire_all

        result = run(expire_all)
        console.print(f"expired {result['points']} points in {result['accounts']} accounts")

    @ledger_cli.command("verify")
    def verify() -> None:
        """Check every ledger invariant; exit 1 naming what broke."""
        from app.cli import console, run
        from app.points.verify import CHECKS
        from app.points.verify import verify as verify_ledger

        async def check():
            async with db.session_scope() as session:
                return await verify_ledger(session)

        violations = run(check)
        if not violations:
            console.print(f"[green]ledger intact[/green]: {len(CHECKS)} invariants hold")
            return
        for v in violations:
            console.print(f"[red]broken[/red]: {v.check}", soft_wrap=True)
            for example in v.examples:
                console.print(f"  {example}", soft_wrap=True, markup=False)
        raise typer.Exit(1)
