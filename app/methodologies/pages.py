"""The public lists of the methodologies and of the exchange rule (no sign-in), as pages and CSV."""

from typing import Annotated

from fastapi import Query, Request
from markupsafe import Markup

from app.auth.dependencies import Session
from app.core.types import Text
from app.methodologies import service
from app.web.dependencies import page_router
from app.web.disclosure import Column, Listing, respond
from app.web.i18n import date_, gettext, number

router = page_router()


def _citation(text: str) -> str | Markup:
    """A long citation folded: its first words, the whole on a click (a table row stays one line high)."""
    if len(text) <= 80:
        return text
    return Markup("<details><summary>{}…</summary>{}</details>").format(text[:60], text)


def _factor(value: object) -> str:
    return "—" if value is None else number(value)  # type: ignore[arg-type]


@router.get("/methodologies", name="public_methodologies")
async def methodologies(
    request: Request,
    session: Session,
    code: Annotated[Text | None, Query(max_length=50)] = None,
    behaviour_type: Annotated[Text | None, Query(max_length=50)] = None,
):
    columns = [
        Column(gettext("Code"), lambda m: m.code),
        Column(gettext("Version"), lambda m: m.version),
        Column(gettext("Name"), lambda m: m.name),
        Column(gettext("Behaviour type"), lambda m: m.behaviour_type),
        Column(gettext("Unit"), lambda m: m.unit),
        Column(
            gettext("Baseline factor (g CO₂e per unit)"),
            lambda m: _factor(m.baseline_factor_g),
            lambda m: m.baseline_factor_g,
        ),
        Column(
            gettext("Project factor (g CO₂e per unit)"),
            lambda m: _factor(m.project_factor_g),
            lambda m: m.project_factor_g,
        ),
        Column(
            gettext("Net reduction (g CO₂e per unit)"),
            lambda m: _factor(m.net_factor_g),
            lambda m: m.net_factor_g,
        ),
        Column(
            gettext("Effective from"),
            lambda m: date_(m.effective_from),
            lambda m: m.effective_from.isoformat(),
        ),
        Column(gettext("Citation"), lambda m: _citation(m.citation), lambda m: m.citation),
    ]
    listing = Listing(
        gettext("Methodologies"),
        "methodologies.csv",
        filters={"code": code, "behaviour_type": behaviour_type},
        extra={"wide_last": True},
    )
    return await respond(
        request,
        "methodologies/list.html",
        columns,
        lambda cursor, limit: service.list_methodologies(
            session,
            None,
            code=code or None,
            behaviour_type=behaviour_type or None,
            limit=limit,
            cursor=cursor,
        ),
        listing,
    )


@router.get("/exchange-rules", name="public_exchange_rules")
async def exchange_rules(request: Request, session: Session):
    columns = [
        Column(gettext("Version"), lambda r: r.version),
        Column(gettext("Name"), lambda r: r.name),
        Column(
            gettext("Points per gram CO₂e"), lambda r: number(r.points_per_gram), lambda r: r.points_per_gram
        ),
        Column(
            gettext("Daily cap (points)"), lambda r: number(r.daily_cap_points), lambda r: r.daily_cap_points
        ),
        Column(
            gettext("Points expire after (days)"),
            lambda r: number(r.lot_lifetime_days),
            lambda r: r.lot_lifetime_days,
        ),
        Column(
            gettext("Effective from"),
            lambda r: date_(r.effective_from),
            lambda r: r.effective_from.isoformat(),
        ),
        Column(
            gettext("Effective until"),
            lambda r: date_(r.effective_to),
            lambda r: r.effective_to.isoformat() if r.effective_to else "",
        ),
    ]
    return await respond(
        request,
        "methodologies/exchange_rules.html",
        columns,
        lambda cursor, limit: service.list_exchange_rules(session, None, limit=limit, cursor=cursor),
        Listing(gettext("Exchange rule"), "exchange-rules.csv"),
    )
