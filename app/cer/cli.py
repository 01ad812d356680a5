"""``carbon-points cer trace SERIAL``: a unit back to its project, records, methodologies and signed batches."""

import json
from typing import Annotated

import typer
from rich.table import Table

cer_cli = typer.Typer(help="Certified emission reductions.", no_args_is_help=True)


@cer_cli.command("trace")
def trace(
    serial: Annotated[
        str, typer.Argument(help="A unit (PREFIX-VINTAGE-N) or a block (PREFIX-VINTAGE-START-END)")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole trace as JSON")] = False,
    records: Annotated[int, typer.Option(help="How many of the project's records to list")] = 10,
) -> None:
    """Re-derive a unit: block and holder, issuance, project, methodology versions, signed batches."""
    from app.cer import registry
    from app.cer.schemas import TraceRead
    from app.cli import console, run
    from app.core import db

    async def load() -> TraceRead:
        async with db.session_scope() as session:
            return await registry.trace(session, serial, records_limit=records)

    result = run(load)
    if as_json:
        console.print_json(json.dumps(result.model_dump(), default=str))
        return
    block, issuance, project = result.block, result.issuance, result.project
    console.print(
        f"[bold]{result.serial}[/bold] in block {block.serial} · {block.status}"
        f"{' · FRAUD FLAGGED' if block.fraud_flagged else ''} · holder {result.holder_org_id}"
        + (f" · certificate {block.certificate_number}" if block.certificate_number else "")
    )
    console.print(
        f"issued {issuance.issued_at} · {issuance.tonnes} t of {issuance.serials} · "
        f"verified {issuance.verified_g} g + carried in {issuance.carried_in_g} g"
    )
    console.print(
        f"project {project['id']} · {project['name']} · {project['status']} · "
        f"{project['period_start']} – {project['period_end']} · report sha256 {project['report_sha256']}"
    )
    console.print(
        f"{result.records_total} records, {result.reduction_g} g claimed, "
        f"{project['verified_g']} g verified by {project['verifier_org_id']}"
    )
    versions = Table("methodology version", "net factor g", "status", "records", "reduction g")
    for v in result.methodology_versions:
        versions.add_row(
            f"{v.code}@{v.version}", v.net_factor_g, v.status, str(v.records), str(v.reduction_g)
        )
    console.print(versions)
    batches = Table("batch", "kid", "body sha256", "hash ok", "records")
    for b in result.batches:
        batches.add_row(
            str(b.batch_id),
            b.kid,
            b.body_sha256,
            "yes" if b.body_hash_ok else "NO",
            str(b.records_in_project),
        )
    console.print(batches)
    console.print(f"{result.batches_total} signed batches")
    if not all(b.body_hash_ok for b in result.batches):
        raise typer.Exit(1)


def register(cli: typer.Typer) -> None:
    cli.add_typer(cer_cli, name="cer")
