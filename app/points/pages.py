"""The operators' console: the batches they sent (``/operator/batches``) and one batch with its rejected
records and their download, on the service of ``GET /v1/operator/behaviour-batches``."""

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import TypeAdapter, ValidationError

from app.auth.dependencies import Session
from app.core import clock
from app.core.pagination import Cursor
from app.core.types import Day, Text
from app.points import batches
from app.points.models import RecordStatus
from app.web import paging
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext, number
from app.web.i18n import datetime_ as show_time
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
OperatorViewer = Annotated[Viewer, Depends(require_viewer("operator"))]
PAGE_SIZE = 20
RECORDS_PAGE_SIZE = 50
REJECTIONS = (
    ("", N_("All batches")),
    ("true", N_("With rejected records")),
    ("false", N_("Without rejected records")),
)
STATUSES = {
    RecordStatus.accepted: N_("Accepted"),
    RecordStatus.duplicate: N_("Duplicate"),
    RecordStatus.rejected: N_("Rejected"),
}
REASONS = {  # what each reject code means, for the engineer who reads the batch
    "invalid_record": N_("The record is not well formed: a field is missing or too long."),
    "invalid_time": N_("The times are not RFC 3339 with an offset, or the behaviour lasts over 24 hours."),
    "future_time": N_("The behaviour ends in the future."),
    "too_old": N_("The behaviour is older than the submission window."),
    "unknown_type": N_("No published methodology has this behaviour type."),
    "not_entrusted": N_("The person had no live entrustment with your app when the behaviour began."),
    "out_of_effective_period": N_("No methodology or exchange rule version was in force at that time."),
    "unit_mismatch": N_("The unit is not the methodology's unit."),
    "implausible_quantity": N_("The quantity is not plausible for one record."),
    "daily_limit_reached": N_("The person had reached the day's limit for this behaviour."),
    "scene_required": N_("This behaviour is recorded at an approved scene: give its scene_id."),
    "scene_not_approved": N_("The scene is not approved for this behaviour."),
    "evidence_already_claimed": N_("This evidence was already claimed by another record."),
    "overlapping_behaviour": N_("It overlaps in time a behaviour of the same kind already recorded."),
}
_DAY = TypeAdapter(Day)


def _day(value: str | None) -> date | None:
    """A day typed in the filter (empty: none); ValueError when it is not one."""
    if not value:
        return None
    try:
        return _DAY.validate_python(value)
    except ValidationError as exc:
        raise ValueError(value) from exc


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), clock.zone())


@router.get("/operator/batches", name="operator_batches")
async def batch_list(
    request: Request,
    session: Session,
    viewer: OperatorViewer,
    received_from: Annotated[Text | None, Query(max_length=20)] = None,
    received_to: Annotated[Text | None, Query(max_length=20)] = None,
    rejections: Annotated[Text | None, Query(max_length=5)] = None,
    cursor: Cursor = None,
) -> Response:
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name, value in (("received_from", received_from), ("received_to", received_to)):
        try:
            days[name] = _day(value)
        except ValueError:
            errors[name] = gettext("Enter a day as YYYY-MM-DD.")
    first, last = days.get("received_from"), days.get("received_to")
    if first and last and last < first:
        errors["received_to"] = gettext("The last day comes before the first.")
    has_rejections = {"true": True, "false": False}.get(rejections or "")
    params = {"received_from": received_from, "received_to": received_to, "rejections": rejections}
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    if not errors:
        result = await batches.list_batches(
            session,
            viewer.principal,
            received_from=_midnight(first) if first else None,
            received_to=_midnight(last + timedelta(days=1)) if last else None,
            has_rejections=has_rejections,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
    rows = [
        [
            Markup('<a href="/operator/batches/{}">{}</a>').format(b.id, show_time(b.received_at)),
            number(b.records),
            number(b.accepted),
            number(b.duplicate),
            Markup('<span class="rejected-count">{}</span>').format(number(b.rejected))
            if b.rejected
            else number(0),
        ]
        for b in result["items"]
    ]
    nxt = result["next_cursor"]
    return render(
        request,
        "points/operator_batches.html",
        {
            "section": "batches",
            "rows": rows,
            "form": {k: v or "" for k, v in params.items()},
            "errors": errors,
            "rejection_options": [(value, gettext(label)) for value, label in REJECTIONS],
            **paging.links("/operator/batches", params, nxt, cursor),
        },
        status_code=422 if errors else 200,
    )


def _reason(code: str | None, message: str | None) -> Markup | str:
    """What a reject code means in the reader's language, then the submission's own words when it gave some."""
    reason = gettext(REASONS[code]) if code in REASONS else ""
    if not message:
        return reason
    return Markup('{}<span class="answered">{}</span>').format(reason, message) if reason else message


@router.get("/operator/batches/{batch_id}", name="operator_batch")
async def batch_page(
    request: Request,
    session: Session,
    viewer: OperatorViewer,
    batch_id: uuid.UUID,
    show: Annotated[Text | None, Query(max_length=10)] = None,
    format: Annotated[Text | None, Query(max_length=5)] = None,
    cursor: Cursor = None,
) -> Response:
    if format == "csv":
        records = await batches.rejected_records(session, viewer.principal, batch_id)
        return Response(
            batches.rejected_csv(records),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-rejected.csv"'},
        )
    status = show if show in ("all", *STATUSES) else "rejected"
    detail = await batches.batch_detail(
        session,
        viewer.principal,
        batch_id,
        status=None if status == "all" else status,
        limit=RECORDS_PAGE_SIZE,
        cursor=cursor,
    )
    rows = [
        [
            number(r.index + 1),
            r.record_id or "—",
            r.external_user_id or "—",
            r.behaviour_type or "—",
            show_time(r.occurred_at) if r.occurred_at else "—",
            gettext(STATUSES[r.status]),
            r.code or ("—" if r.status != RecordStatus.rejected else gettext("not recorded")),
            _reason(r.code, r.message),
        ]
        for r in detail.results.items
    ]
    path = f"/operator/batches/{batch_id}"
    params = {"show": status if status != "rejected" else None}
    nxt = detail.results.next_cursor
    return render(
        request,
        "points/operator_batch.html",
        {
            "section": "batches",
            "batch": detail,
            "rows": rows,
            "show": status,
            "shows": [("rejected", gettext("Rejected")), ("all", gettext("All records"))],
            **paging.links(path, params, nxt, cursor),
            "csv_url": f"{path}?format=csv",
            "code_rows": [
                (c.code, gettext(REASONS[c.code]) if c.code in REASONS else "", c.count)
                for c in detail.reject_codes
            ],
        },
    )
