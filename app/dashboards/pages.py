"""The authority's dashboards (``/console/dashboards``), audit log viewer (``/console/audit``), ledger and
audit-chain health (``/console/health``) and the sandbox clock (``/console/clock``).

Authority accounts only. The charts are drawn by ``web/dashboard-charts.js`` from JSON in a data
attribute (no inline script); each chart has its figures in a table beside it and a CSV download.
"""

import json
import re
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from app.auth.dependencies import Session
from app.core import audit, clock
from app.core.pagination import Cursor
from app.core.types import MAX_YEAR, MIN_YEAR, Int32, Int64, Text
from app.dashboards import service
from app.scenes.pages import behaviour_label
from app.web.dependencies import page_router, require_viewer
from app.web.disclosure import csv_response
from app.web.i18n import N_, date_, gettext, mass, number
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()
Authority = Annotated[Viewer, Depends(require_viewer("authority"))]
AUDIT_PAGE = 50
PALETTE = ("#0b6e4f", "#1f5fa8", "#b35c00", "#7a3e9d", "#a8323e", "#2f7f86", "#6b6b6b", "#8a6d00")


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---- the period of a dashboard ---------------------------------------------------------------------------


def _day(value: str | None, default: date) -> tuple[date, str | None]:
    if not value or not value.strip():
        return default, None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        return default, gettext("Enter a date such as %(example)s.") % {"example": default.isoformat()}
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return default, gettext("Enter a date between the years %(first)s and %(last)s.") % {
            "first": MIN_YEAR,
            "last": MAX_YEAR,
        }
    return day, None


def _period(first: str | None, last: str | None, days: int) -> tuple[date, date, dict[str, str]]:
    """The local days asked for (default: the last ``days`` days up to today) and an error per field."""
    errors: dict[str, str] = {}
    to, error = _day(last, clock.today())
    if error:
        errors["to"] = error
    start, error = _day(first, to - timedelta(days=days - 1))
    if error:
        errors["from"] = error
    if not errors and start > to:
        errors["to"] = gettext("The last day must not be before the first.")
    elif not errors and (to - start).days + 1 > service.MAX_DAYS:
        errors["to"] = gettext("A period can span at most %(days)s days (a year).") % {
            "days": service.MAX_DAYS
        }
    return start, to, errors


# ---- the dashboards --------------------------------------------------------------------------------------

SERIES = {
    "records-by-type": N_("Records and reductions per day by behaviour type"),
    "records-by-operator": N_("Records and reductions per day by operator"),
    "points": N_("Carbon points per day"),
    "expiring": N_("Points about to expire (the next 30 days)"),
    "mall": N_("Mall activity by merchant"),
    "cer": N_("Certified emission reductions per day (t CO₂e)"),
}


def _kg(grams: int) -> float:
    return round(grams / 1000, 1)


def _stacked(days: list[date], rows: list[service.RecordsRow], value) -> list[dict[str, Any]]:
    """One dataset per key (behaviour type or operator), a value per day (zeros where none)."""
    index = {day: i for i, day in enumerate(days)}
    names: dict[str, str] = {}
    data: dict[str, list[float]] = {}
    for r in rows:
        names.setdefault(r.key, r.name)
        data.setdefault(r.key, [0] * len(days))[index[r.day]] = value(r)
    keys = sorted(data, key=lambda k: (-sum(data[k]), names[k]))
    return [
        {"label": names[k], "data": data[k], "color": PALETTE[i % len(PALETTE)]} for i, k in enumerate(keys)
    ]


def _chart(chart_type: str, labels: list[str], datasets: list[dict[str, Any]], **options: Any) -> dict:
    """A chart for ``web/dashboard-charts.js``; ``empty`` when it has nothing to draw (the page says so)."""
    empty = not any(value for ds in datasets for value in ds["data"])
    return {"type": chart_type, "labels": labels, "datasets": datasets, "empty": empty, **options}


def _by_type(board: service.Dashboard) -> list[service.RecordsRow]:
    """The rows per behaviour type named as people read them (新能源汽车, not nev); the CSV keeps the code."""
    return [replace(r, name=behaviour_label(r.key)) for r in board.by_type]


def _charts(board: service.Dashboard) -> dict[str, dict[str, Any]]:
    days = [date_(d, "MMMd") for d in board.days]
    expiring_days = [
        board.expiring_first + timedelta(days=i)
        for i in range((board.expiring_last - board.expiring_first).days + 1)
    ]
    expiring = {e.day: e.points for e in board.expiring}
    return {
        "records-by-type": _chart(
            "bar",
            days,
            _stacked(board.days, _by_type(board), lambda r: r.records),
            stacked=True,
            integer=True,
            y=gettext("Records"),
        ),
        "records-by-operator": _chart(
            "bar",
            days,
            _stacked(board.days, board.by_operator, lambda r: _kg(r.reduction_g)),
            stacked=True,
            y=gettext("Reductions (kg CO₂e)"),
        ),
        "points": _chart(
            "bar",
            days,
            [
                {
                    "label": gettext("Points issued"),
                    "data": [p.points_earned for p in board.points],
                    "color": PALETTE[0],
                },
                {
                    "label": gettext("Points spent"),
                    "data": [p.points_spent for p in board.points],
                    "color": PALETTE[2],
                },
                {
                    "label": gettext("Points expired"),
                    "data": [p.points_expired for p in board.points],
                    "color": PALETTE[6],
                },
            ],
            integer=True,
            y=gettext("Points"),
        ),
        "expiring": _chart(
            "bar",
            [date_(d, "MMMd") for d in expiring_days],
            [
                {
                    "label": gettext("Points expiring"),
                    "data": [expiring.get(d, 0) for d in expiring_days],
                    "color": PALETTE[2],
                }
            ],
            integer=True,
            y=gettext("Points"),
        ),
        "mall": _chart(
            "bar",
            [m.merchant for m in board.mall],
            [
                {
                    "label": gettext("Points spent in orders"),
                    "data": [m.points for m in board.mall],
                    "color": PALETTE[1],
                }
            ],
            horizontal=True,
            integer=True,
            y=gettext("Points"),
        ),
        "cer": _chart(
            "bar",
            days,
            [
                {"label": gettext("Issued"), "data": [c.issued for c in board.cer], "color": PALETTE[0]},
                {
                    "label": gettext("Transferred"),
                    "data": [c.transferred for c in board.cer],
                    "color": PALETTE[1],
                },
                {"label": gettext("Retired"), "data": [c.retired for c in board.cer], "color": PALETTE[3]},
            ],
            integer=True,
            y=gettext("t CO₂e"),
        ),
    }


def _tables(board: service.Dashboard) -> dict[str, dict[str, Any]]:
    """Each chart's figures as people read them: headers and formatted rows (the first cell heads its row)."""
    records = lambda rows: [  # noqa: E731
        [date_(r.day), r.name, number(r.records), mass(r.reduction_g)] for r in rows
    ]
    return {
        "records-by-type": {
            "headers": [gettext("Day"), gettext("Behaviour type"), gettext("Records"), gettext("Reductions")],
            "rows": records(_by_type(board)),
        },
        "records-by-operator": {
            "headers": [gettext("Day"), gettext("Operator"), gettext("Records"), gettext("Reductions")],
            "rows": records(board.by_operator),
        },
        "points": {
            "headers": [
                gettext("Day"),
                gettext("Points issued"),
                gettext("Points spent"),
                gettext("Points expired"),
            ],
            "rows": [
                [date_(p.day), number(p.points_earned), number(p.points_spent), number(p.points_expired)]
                for p in board.points
            ],
        },
        "expiring": {
            "headers": [gettext("Expires on"), gettext("Points"), gettext("Accounts")],
            "rows": [[date_(e.day), number(e.points), number(e.accounts)] for e in board.expiring],
        },
        "mall": {
            "headers": [
                gettext("Merchant"),
                gettext("Orders"),
                gettext("Points spent"),
                gettext("Redeemed"),
                gettext("Cancelled"),
                gettext("Expired unused"),
                gettext("Points refunded"),
            ],
            "rows": [
                [
                    m.merchant,
                    number(m.orders),
                    number(m.points),
                    number(m.redeemed),
                    number(m.cancelled),
                    number(m.expired),
                    number(m.refunded_points),
                ]
                for m in board.mall
            ],
        },
        "cer": {
            "headers": [
                gettext("Day"),
                gettext("Issued (t)"),
                gettext("Transferred (t)"),
                gettext("Retired (t)"),
            ],
            "rows": [
                [date_(c.day), number(c.issued), number(c.transferred), number(c.retired)] for c in board.cer
            ],
        },
    }


def _totals(board: service.Dashboard) -> list[tuple[str, str]]:
    return [
        (gettext("Records"), number(sum(r.records for r in board.by_type))),
        (gettext("Reductions"), mass(sum(r.reduction_g for r in board.by_type))),
        (gettext("Points issued"), number(sum(p.points_earned for p in board.points))),
        (gettext("Points spent"), number(sum(p.points_spent for p in board.points))),
        (gettext("Points expired"), number(sum(p.points_expired for p in board.points))),
        (gettext("Points expiring in the next 30 days"), number(sum(e.points for e in board.expiring))),
        (gettext("CER issued (t)"), number(sum(c.issued for c in board.cer))),
        (gettext("CER retired (t)"), number(sum(c.retired for c in board.cer))),
    ]


@router.get("/console/dashboards", name="console_dashboards")
async def dashboards(
    request: Request,
    session: Session,
    viewer: Authority,
    from_: Annotated[Text | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[Text | None, Query(max_length=40)] = None,
) -> Response:
    first, last, errors = _period(from_, to, service.DEFAULT_DAYS)
    values = {
        "from": (from_ or "") if errors.get("from") else first.isoformat(),
        "to": (to or "") if errors.get("to") else last.isoformat(),
    }
    context: dict[str, Any] = {"values": values, "errors": errors, "sections": []}
    if not errors:
        board = await service.dashboard(session, first, last)
        charts, tables = _charts(board), _tables(board)
        query = urlencode(values)
        context.update(
            board=board,
            totals=_totals(board),
            sections=[
                {
                    "id": key,
                    "title": gettext(title),
                    "chart": charts[key],
                    "table": tables[key],
                    "csv_url": f"/console/dashboards/{key}.csv?{query}",
                }
                for key, title in SERIES.items()
            ],
        )
    return render(request, "dashboards/dashboards.html", context, status_code=400 if errors else 200)


def _csv_rows(key: str, board: service.Dashboard) -> tuple[list[str], list[list[Any]]]:
    """The exact columns of each series' CSV: codes, ids, ISO days and plain integers (grams, tonnes)."""
    if key == "records-by-type":
        return ["day", "behaviour_type", "records", "reduction_g"], [
            [r.day.isoformat(), r.key, r.records, r.reduction_g] for r in board.by_type
        ]
    if key == "records-by-operator":
        return ["day", "operator_id", "operator", "records", "reduction_g"], [
            [r.day.isoformat(), r.key, r.name, r.records, r.reduction_g] for r in board.by_operator
        ]
    if key == "points":
        return ["day", "issued", "spent", "expired"], [
            [p.day.isoformat(), p.points_earned, p.points_spent, p.points_expired] for p in board.points
        ]
    if key == "expiring":
        return ["day", "points", "accounts"], [
            [e.day.isoformat(), e.points, e.accounts] for e in board.expiring
        ]
    if key == "mall":
        header = [
            "merchant_id",
            "merchant",
            "orders",
            "points",
            "redeemed",
            "cancelled",
            "expired",
            "refunded_points",
        ]
        return header, [
            [
                str(m.merchant_id),
                m.merchant,
                m.orders,
                m.points,
                m.redeemed,
                m.cancelled,
                m.expired,
                m.refunded_points,
            ]
            for m in board.mall
        ]
    return ["day", "issued_t", "transferred_t", "retired_t"], [
        [c.day.isoformat(), c.issued, c.transferred, c.retired] for c in board.cer
    ]


@router.get("/console/dashboards/{series}.csv")
async def dashboard_csv(
    request: Request,
    session: Session,
    viewer: Authority,
    series: Text,
    from_: Annotated[Text | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[Text | None, Query(max_length=40)] = None,
) -> Response:
    if series not in SERIES:
        raise HTTPException(404)
    first, last, errors = _period(from_, to, service.DEFAULT_DAYS)
    if errors:
        return Response(
            "\n".join(errors.values()) + "\n", status_code=400, media_type="text/plain; charset=utf-8"
        )
    board = await service.dashboard(session, first, last)
    header, rows = _csv_rows(series, board)
    if series == "expiring":
        first, last = board.expiring_first, board.expiring_last
    return csv_response(f"{series}-{first.isoformat()}-{last.isoformat()}.csv", header, rows)


# ---- the audit log -----------------------------------------------------------------------------------------

AUDIT_FIELDS = ("actor", "action", "subject_type", "subject_id", "from", "to")


def _audit_range(first: str, last: str) -> tuple[datetime | None, datetime | None, dict[str, str]]:
    """From the start of the first local day to the end of the last; either may be left open."""
    errors: dict[str, str] = {}
    zone = clock.zone()
    since = until = None
    if first:
        day, error = _day(first, clock.today())
        if error:
            errors["from"] = error
        since = datetime.combine(day, time(0), zone)
    if last:
        day, error = _day(last, clock.today())
        if error:
            errors["to"] = error
        until = datetime.combine(day + timedelta(days=1), time(0), zone)
    if not errors and since and until and since >= until:
        errors["to"] = gettext("The last day must not be before the first.")
    return since, until, errors


@router.get("/console/audit", name="console_audit")
async def audit_log(
    request: Request,
    session: Session,
    viewer: Authority,
    actor: Annotated[Text | None, Query(max_length=200)] = None,
    action: Annotated[Text | None, Query(max_length=100)] = None,
    subject_type: Annotated[Text | None, Query(max_length=50)] = None,
    subject_id: Annotated[Text | None, Query(max_length=100)] = None,
    from_: Annotated[Text | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[Text | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
) -> Response:
    raw = {
        "actor": (actor or "").strip(),
        "action": (action or "").strip(),
        "subject_type": (subject_type or "").strip(),
        "subject_id": (subject_id or "").strip(),
        "from": (from_ or "").strip(),
        "to": (to or "").strip(),
    }
    since, until, errors = _audit_range(raw["from"], raw["to"])
    result: dict[str, Any] = {"items": [], "next_cursor": None}
    if not errors:
        query = audit.Search(
            actor=raw["actor"] or None,
            action=raw["action"] or None,
            subject_type=raw["subject_type"] or None,
            subject_id=raw["subject_id"] or None,
            since=since,
            until=until,
        )
        result = await audit.search(session, query, AUDIT_PAGE, cursor)
    names = await service.actor_names(session, [e.actor for e in result["items"]])
    kept = {k: v for k, v in raw.items() if v}
    nxt = result["next_cursor"]
    return render(
        request,
        "dashboards/audit.html",
        {
            "values": raw,
            "errors": errors,
            "entries": result["items"],
            "names": names,
            "next_url": f"/console/audit?{urlencode({**kept, 'cursor': nxt})}" if nxt else None,
            "first_url": (f"/console/audit?{urlencode(kept)}" if kept else "/console/audit")
            if cursor
            else None,
            "searched": bool(kept),
        },
        status_code=400 if errors else 200,
    )


SUBJECT_PAGES = {
    "user": "/console/people/{}",
    "organization": "/console/organizations/{}",
    "scene": "/console/scenes/{}",
    "methodology": "/console/methodologies/{}",
    "exchange_rule": "/console/exchange-rules/{}",
    "expert": "/console/experts/{}",
    "review_panel": "/console/panels/{}",
    "cer_project": "/console/cer/{}",
}
"""The console's page of an audit entry's subject, by its type (the id in its place)."""


@router.get("/console/audit/{chain}/{seq}", name="console_audit_entry")
async def audit_entry(
    request: Request, session: Session, viewer: Authority, chain: Int32, seq: Int64
) -> Response:
    entry = await audit.get_entry(session, chain, seq)
    if entry is None:
        raise HTTPException(404)
    data = json.dumps(entry.data, ensure_ascii=False, indent=2, sort_keys=True)
    names = await service.actor_names(session, [entry.actor])
    page = SUBJECT_PAGES.get(entry.subject_type)
    return render(
        request,
        "dashboards/audit_entry.html",
        {
            "entry": entry,
            "data": data,
            "names": names,
            "subject_page": page.format(quote(entry.subject_id, safe="")) if page else None,
        },
    )


# ---- health ----------------------------------------------------------------------------------------------

# What the values of each ledger check's example rows are (the check's query returns them in this order).
LEDGER_COLUMNS: dict[str, tuple[str, ...]] = {
    "account balance equals the sum of its entries": (N_("Account"), N_("Balance"), N_("Sum of its entries")),
    "account balance equals the sum of its lots' remainders": (
        N_("Account"),
        N_("Balance"),
        N_("Sum of its lots' remainders"),
    ),
    "entries exist only for accounts": (N_("Account"),),
    "no lot is negative or over-full": (N_("Lot"), N_("Remaining"), N_("Credited")),
    "no account is negative": (N_("Account"), N_("Balance")),
    "each entry's balance_after follows the one before it": (
        N_("Entry"),
        N_("Account"),
        N_("Balance after"),
        N_("Running total"),
    ),
    "each entry's allocations add up to its amount": (N_("Entry"), N_("Amount"), N_("Allocated")),
    "allocations belong to the entry's own account": (N_("Entry"), N_("Lot")),
    "each lot's remainder equals what was put in minus what was taken": (
        N_("Lot"),
        N_("Remaining"),
        N_("Put in minus taken"),
        N_("Credited"),
        N_("Credited by earnings"),
    ),
    "lifetime points equal the points of the accepted records": (
        N_("Account"),
        N_("Lifetime points"),
        N_("Points of its records"),
    ),
}
LEDGER_NAMES = {
    "account balance equals the sum of its entries": N_(
        "Each account's balance equals the sum of its entries"
    ),
    "account balance equals the sum of its lots' remainders": N_(
        "Each account's balance equals what is left in its lots"
    ),
    "entries exist only for accounts": N_("Every entry belongs to an account"),
    "no lot is negative or over-full": N_("No lot is negative or holds more than was put in"),
    "no account is negative": N_("No account is negative"),
    "each entry's balance_after follows the one before it": N_(
        "Each entry's balance after follows the one before it"
    ),
    "each entry's allocations add up to its amount": N_(
        "Each entry's allocations to lots add up to its amount"
    ),
    "allocations belong to the entry's own account": N_("Allocations stay within the entry's own account"),
    "each lot's remainder equals what was put in minus what was taken": N_(
        "Each lot's remainder equals what was put in minus what was taken"
    ),
    "lifetime points equal the points of the accepted records": N_(
        "Each account's lifetime points equal the points of its accepted records"
    ),
}
_AUDIT_POSITION = re.compile(r"\b(\d+):(\d+)\b")


def _health_view(health: service.Health) -> dict[str, Any]:
    ledger = []
    for check in health.ledger:
        labels = [gettext(c) for c in LEDGER_COLUMNS.get(check.name, ())]
        examples = [
            [
                (labels[i] if i < len(labels) else gettext("Value %(n)s") % {"n": i + 1}, str(v))
                for i, v in enumerate(row)
            ]
            for row in check.examples
        ]
        ledger.append(
            {
                "name": gettext(LEDGER_NAMES[check.name]) if check.name in LEDGER_NAMES else check.name,
                "check": check.name,
                "ok": check.ok,
                "examples": examples,
            }
        )
    broken = []
    for problem in health.audit_broken:
        match = _AUDIT_POSITION.search(problem)
        broken.append(
            {
                "text": problem,
                "url": f"/console/audit/{match.group(1)}/{match.group(2)}" if match else None,
                "chain": match.group(1) if match else None,
                "seq": match.group(2) if match else None,
            }
        )
    return {
        "ran_at": health.started_at,
        "ok": health.ok,
        "ledger": ledger,
        "ledger_ms": number(round(health.ledger_seconds * 1000)),
        "audit_entries": health.audit_entries,
        "audit_broken": broken,
        "audit_ms": number(round(health.audit_seconds * 1000)),
    }


@router.get("/console/health", name="console_health")
async def health(request: Request, viewer: Authority) -> Response:
    return render(request, "dashboards/health.html", {"result": None})


@router.post("/console/health")
async def run_health(request: Request, session: Session, viewer: Authority) -> Response:
    result = await service.run_health(session)
    return render(request, "dashboards/health.html", {"result": _health_view(result)})


# ---- the sandbox clock -------------------------------------------------------------------------------------

CLOCK_UNITS = (("days", N_("days")), ("hours", N_("hours")))
CLOCK_LIMITS = {"days": 3650, "hours": 87600}


async def _clock_page(
    request: Request,
    session: Session,
    sandbox: clock.SandboxClock | None,
    values: dict[str, str],
    error: str | None,
    status: int,
) -> Response:
    offset = sandbox.offset if sandbox else timedelta(0)
    updated_by = sandbox.updated_by if sandbox else None
    if updated_by:
        updated_by = (await service.actor_names(session, [updated_by])).get(updated_by, updated_by)
    return render(
        request,
        "dashboards/clock.html",
        {
            "allowed": clock.sandbox_allowed(),
            "sandbox": sandbox,
            "platform_now": sandbox.platform_now if sandbox else clock.now(),
            "offset_days": offset.days,
            "offset_hours": offset.seconds // 3600,
            "offset_minutes": offset.seconds % 3600 // 60,
            "values": values,
            "units": [(k, gettext(label)) for k, label in CLOCK_UNITS],
            "error": error,
            "updated_by": updated_by,
        },
        status_code=status,
    )


REFUSED = N_(
    "The platform's clock can be moved only in the local and test environments. In production it always "
    "shows the real time."
)


@router.get("/console/clock", name="console_clock")
async def clock_page(request: Request, session: Session, viewer: Authority) -> Response:
    sandbox = await clock.read_sandbox(session) if clock.sandbox_allowed() else None
    return await _clock_page(request, session, sandbox, {"amount": "", "unit": "days"}, None, 200)


@router.post("/console/clock/advance")
async def clock_advance(
    request: Request,
    session: Session,
    viewer: Authority,
    amount: Annotated[Text, Form(max_length=20)] = "",
    unit: Annotated[Text, Form(max_length=10)] = "days",
) -> Response:
    if not clock.sandbox_allowed():
        return await _clock_page(request, session, None, {}, gettext(REFUSED), 403)
    values = {"amount": amount.strip(), "unit": unit if unit in CLOCK_LIMITS else "days"}
    limit = CLOCK_LIMITS[values["unit"]]
    error = None
    if not values["amount"].isdigit() or not 1 <= int(values["amount"]) <= limit:
        error = gettext("Enter a whole number from 1 to %(limit)s.") % {"limit": number(limit)}
    else:
        try:
            await clock.advance(
                session, timedelta(**{values["unit"]: int(values["amount"])}), viewer.principal.actor
            )
        except clock.InvalidAdvance:
            error = gettext("The clock can be moved at most 3,650 days ahead in all. Reset it first.")
    if error:
        return await _clock_page(request, session, await clock.read_sandbox(session), values, error, 400)
    return _see_other("/console/clock")


@router.post("/console/clock/reset")
async def clock_reset(request: Request, session: Session, viewer: Authority) -> Response:
    if not clock.sandbox_allowed():
        return await _clock_page(request, session, None, {}, gettext(REFUSED), 403)
    await clock.reset(session, viewer.principal.actor)
    return _see_other("/console/clock")
