"""``carbon-points mall …``: the voucher-expiry job from the command line."""

import typer

mall_cli = typer.Typer(help="The rewards mall.", no_args_is_help=True)


@mall_cli.command("expire-vouchers")
def expire_vouchers() -> None:
    """Expire every unused voucher past its time: refund or forfeit per its item's policy (the job does the same)."""
    from app.cli import console, run
    from app.mall.tasks import expire_all

    result = run(expire_all)
    console.print(
        f"expired {result['orders']} vouchers: {result['refunded']} refunded ({result['points_refunded']} points),"
        f" {result['forfeited']} forfeited"
    )


def register(cli: typer.Typer) -> None:
    cli.add_typer(mall_cli, name="mall")
