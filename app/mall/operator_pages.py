"""The operators' console: points used in the operator's own mall (``/operator/redemptions``), with the
reversal of one within the window (after a confirmation), on the services of ``/v1/operator/redemptions``."""

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from app.auth.dependencies import Session
from app.core import clock
from app.core.pagination import Cursor
from app.core.types import Text
from app.mall import service
from app.mall.exceptions import RedemptionNotFound, RedemptionReversed, ReversalWindowClosed
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext, number
from app.web.i18n import datetime_ as show_time
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
OperatorViewer = Annotated[Viewer, Depends(require_viewer("operator"))]
PAGE_SIZE = 20
STATUSES = {"completed": N_("Completed"), "reversed": N_("Reversed")}
REFUSALS = {
    RedemptionReversed: N_("This redemption was reversed already."),
    ReversalWindowClosed: N_("The time to reverse this redemption is over."),
}
OrderId = Annotated[Text, Path(max_length=100)]


@router.get("/operator/redemptions", name="operator_redemptions")
async def redemptions(
    request: Request, session: Session, viewer: OperatorViewer, cursor: Cursor = None
) -> Response:
    result = await service.list_redemptions(session, viewer.principal, PAGE_SIZE, cursor)
    now = clock.now()
    rows = []
    for r in result["items"]:
        reversible = r.status == "completed" and r.reversible_until > now
        rows.append(
            [
                r.operator_order_id,
                show_time(r.created_at),
                r.description,
                number(r.points),
                gettext(STATUSES[r.status]) + (f" {show_time(r.reversed_at)}" if r.reversed_at else ""),
                Markup('<a href="/operator/redemptions/{}/reverse">{}</a>').format(
                    r.operator_order_id, gettext("Reverse…")
                )
                if reversible
                else "",
            ]
        )
    nxt = result["next_cursor"]
    return render(
        request,
        "mall/operator_redemptions.html",
        {
            "section": "redemptions",
            "rows": rows,
            "done": request.query_params.get("done") == "reversed",
            "next_url": f"/operator/redemptions?cursor={nxt}" if nxt else None,
            "first_url": "/operator/redemptions" if cursor else None,
        },
    )


async def _find(session: Session, viewer: Viewer, order_id: str):
    """The redemption with this order id, looked for in the operator's list (newest first)."""
    cursor = None
    while True:
        result = await service.list_redemptions(session, viewer.principal, 200, cursor)
        for r in result["items"]:
            if r.operator_order_id == order_id:
                return r
        cursor = result["next_cursor"]
        if cursor is None:
            raise RedemptionNotFound()


@router.get("/operator/redemptions/{operator_order_id}/reverse", name="operator_redemption_reverse")
async def reverse_form(
    request: Request, session: Session, viewer: OperatorViewer, operator_order_id: OrderId
) -> Response:
    redemption = await _find(session, viewer, operator_order_id)
    return render(
        request,
        "mall/operator_reverse.html",
        {"section": "redemptions", "r": redemption, "error": None},
    )


@router.post("/operator/redemptions/{operator_order_id}/reverse")
async def reverse(
    request: Request, session: Session, viewer: OperatorViewer, operator_order_id: OrderId
) -> Response:
    try:
        await service.reverse_redemption(session, viewer.principal, operator_order_id)
    except (RedemptionReversed, ReversalWindowClosed) as exc:
        redemption = await _find(session, viewer, operator_order_id)
        return render(
            request,
            "mall/operator_reverse.html",
            {"section": "redemptions", "r": redemption, "error": gettext(REFUSALS[type(exc)])},
            status_code=409,
        )
    return RedirectResponse("/operator/redemptions?done=reversed", status_code=303)
