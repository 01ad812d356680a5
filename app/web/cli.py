"""``carbon-points web …``: browser sessions from the command line."""

import typer

web_cli = typer.Typer(help="The web interface.", no_args_is_help=True)


@web_cli.command("sign-out")
def sign_out(username: str) -> None:
    """End every browser session of a staff account at once (a lost phone, a leaving employee)."""
    from app.cli import console, run
    from app.core import db
    from app.web import sessions

    async def end() -> int:
        async with db.session_scope() as session:
            return await sessions.end_all_of(session, username)

    console.print(f"ended {run(end)} browser sessions of {username}")


def register(cli: typer.Typer) -> None:
    cli.add_typer(web_cli, name="web")
