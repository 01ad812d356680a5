"""Demo data: each domain adds its part in ``app/<domain>/demo.py`` (function ``load``)."""

import importlib

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import db
from app.organizations import service as org_service

DEMO_ADMIN = ("authority", "authority-demo-pw")
DOMAINS = ("methodologies", "points", "mall", "scenes", "cer")


async def load_demo(console: Console, *, only_if_empty: bool) -> None:
    async with db.session_scope() as session:
        if only_if_empty and await org_service.authority_exists(session):
            return
        if not await org_service.authority_exists(session):
            await org_service.create_staff_user(session, *DEMO_ADMIN, "authority")
        notes = [f"authority login: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}"]
        for name in DOMAINS:
            notes += await _load_domain(session, name)
    console.print("[bold green]demo data loaded[/bold green]")
    for note in notes:
        console.print(f"  {note}")


async def _load_domain(session: AsyncSession, name: str) -> list[str]:
    try:
        module = importlib.import_module(f"app.{name}.demo")
    except ModuleNotFoundError as exc:
        if exc.name in (f"app.{name}.demo", f"app.{name}"):
            return []
        raise
    return list(await module.load(session))
