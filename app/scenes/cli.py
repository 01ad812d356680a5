"""``carbon-points scenes …``: audit a review panel's draw from the command line."""

import uuid
from typing import Annotated

import typer

scenes_cli = typer.Typer(help="Scenes and their expert reviews.", no_args_is_help=True)


@scenes_cli.command("verify-draw")
def verify_draw(panel_id: Annotated[uuid.UUID, typer.Argument(help="The review panel's id")]) -> None:
    """Re-run a panel's draw from its recorded seed and candidates; exit 1 if it differs from the record."""
    from app.cli import console, run
    from app.core import db
    from app.core.errors import DomainError
    from app.reviews import service as reviews_service
    from app.reviews.draw import draw
    from app.reviews.schemas import DrawRecord

    async def load() -> DrawRecord:
        async with db.session_scope() as session:
            return await reviews_service.draw_record(session, panel_id)

    try:
        record = run(load)
    except DomainError as exc:
        console.print(f"[red]{exc.code}[/red]: {exc.detail}")
        raise typer.Exit(1) from exc
    again = draw(record.seed, record.candidates, record.size)
    console.print(f"{record.subject_type} {record.subject_id} · {record.algorithm} · seed {record.seed}")
    console.print(f"{len(record.candidates)} candidates, drawn: {', '.join(again)}")
    if again != record.chosen:
        console.print(f"[red]differs from the record[/red]: {', '.join(record.chosen)}")
        raise typer.Exit(1)
    console.print("[green]the recorded panel is the draw's result[/green]")


def register(cli: typer.Typer) -> None:
    cli.add_typer(scenes_cli, name="scenes")
