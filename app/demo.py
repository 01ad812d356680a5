"""Demo data: each domain adds its part in ``app/<domain>/demo.py`` (function ``load``).

Outside production only: the demo makes accounts with known passwords, and the CER demo moves the
sandbox clock forward past a project's publicity (``app/cer/demo.py``)."""

import importlib

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import CallerKind, Principal
from app.core import clock, db
from app.core.errors import DomainError
from app.organizations import service as org_service
from app.organizations.models import Organization
from app.organizations.schemas import AdminAccount, OrganizationCreate, OrgDecision, StaffRole

DEMO_ADMIN = ("authority", "authority-demo-pw")
DOMAINS = ("methodologies", "points", "mall", "scenes", "cer")


class DemoRefused(DomainError):
    status, code, title = 403, "demo_refused", "The demo data is not loaded in production"


async def load_demo(console: Console, *, only_if_empty: bool) -> None:
    if not clock.sandbox_allowed():
        raise DemoRefused(
            "the demo data (accounts with known passwords, a moved sandbox clock) is loaded only in the local"
            " and test environments, never in production"
        )
    async with db.session_scope() as session:
        if only_if_empty and await org_service.authority_exists(session):
            return
        if not await org_service.authority_exists(session):
            await org_service.create_staff_user(session, *DEMO_ADMIN, StaffRole.authority)
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


async def authority(session: AsyncSession) -> Principal:
    """The first authority account, acting in a domain's demo."""
    staff_id = await org_service.first_authority_id(session)
    if staff_id is None:
        raise RuntimeError("the demo needs an authority account; load_demo creates it first")
    return Principal(CallerKind.staff, StaffRole.authority, staff_id)


async def approved_org(
    session: AsyncSession, *, kind: str, name: str, credit_code: str, admin: tuple[str, str]
) -> tuple[Organization, Principal]:
    """An organisation applied for and approved through the services; its admin as a principal."""
    org = await org_service.apply(
        session,
        OrganizationCreate(
            kind=kind,
            name=name,
            credit_code=credit_code,
            admin=AdminAccount(username=admin[0], password=admin[1]),
        ),
    )
    await org_service.decide(session, await authority(session), org.id, OrgDecision.approve, "demo")
    admin_id = await org_service.staff_id(session, admin[0])
    assert admin_id is not None  # apply() created the admin account
    return org, Principal(CallerKind.staff, kind, admin_id, org.id, True)
