"""The person's own page on the platform (``/me``): sign in with phone and one-time code, see the points and
every operator entrusted, withdraw an entrustment, export everything, delete the account.

The sign-in sends the code as the authorization pages do (same rate limits, same outbox); the code's id
waits in a short-lived cookie signed for this browser. A number with no account learns so only after its
code was confirmed: nobody can ask the page whether a number has an account. Accounts are never created
here: entrusting an app opens one.
"""

import base64
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from app.auth.dependencies import Session, client_ip
from app.auth.pages import SCOPE_LABELS
from app.core import sms
from app.core.config import get_settings
from app.core.errors import RateLimited
from app.core.pagination import Cursor
from app.core.types import Int64, Text
from app.mall.exceptions import VoucherCancelled, VoucherExpired, VoucherRedeemed
from app.scenes.pages import behaviour_label
from app.users import me, sessions
from app.users import service as users_service
from app.users.exceptions import InvalidIdentifier, NotEntrusted
from app.web import csrf, paging
from app.web.badges import status_badge
from app.web.dependencies import is_https, page_router
from app.web.i18n import N_, mass, number, quantity
from app.web.i18n import datetime_ as show_time
from app.web.i18n import gettext as _
from app.web.middleware import cookie_header
from app.web.templating import render

router = page_router()

CODE_COOKIE = "carbon_me_code"
CONFIRMED_BY = {
    users_service.Confirmation.person_otp: N_("You, with a code sent to your phone"),
    users_service.Confirmation.operator_asserted: N_(
        "The app's word (you did not confirm it on the platform)"
    ),
}


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


PRIVATE = {"Cache-Control": "no-store"}


def _private(request: Request, template: str, context: dict, status_code: int = 200) -> Response:
    """A page of the person's own data (``PRIVATE``): never kept by the browser or a proxy."""
    response = render(request, template, context, status_code=status_code)
    response.headers.update(PRIVATE)
    return response


# ---- the session and the pending code -------------------------------------------------------------------


async def _person(request: Request, session: Session) -> sessions.Person | None:
    token = request.cookies.get(sessions.COOKIE)
    person = await sessions.resolve(session, token) if token else None
    if token and person is None:
        request.state.forget_person = True
    return person


def _to_sign_in(request: Request) -> RedirectResponse:
    response = _see_other("/me/sign-in")
    if getattr(request.state, "forget_person", False):
        _clear(request, response, sessions.COOKIE)
    return response


def _clear(request: Request, response: Response, name: str) -> None:
    response.headers.append("set-cookie", cookie_header(name, "", https=is_https(request), max_age=0))


def _code_mac(request: Request, code_id: str) -> str:
    key = hmac.new(
        get_settings().identity_hash_key.encode(), b"carbon-points/me/code", hashlib.sha256
    ).digest()
    mac = hmac.new(key, f"{code_id}|{csrf.seed(request)}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _pending_code(request: Request) -> uuid.UUID | None:
    """The code this browser is signing in with (the cookie, checked against the browser's own seed)."""
    code_id, _, mac = request.cookies.get(CODE_COOKIE, "").partition(".")
    try:
        parsed = uuid.UUID(code_id)
    except ValueError:
        return None
    return parsed if hmac.compare_digest(mac, _code_mac(request, str(parsed))) else None


# ---- sign-in: phone, then the one-time code -------------------------------------------------------------


def _phone_page(
    request: Request, phone: str = "", error: str | None = None, status: int = 200, **extra: str
) -> Response:
    return render(
        request,
        "users/me_sign_in.html",
        {"phone": phone, "errors": {"phone": error} if error else {}},
        status_code=status,
        headers=extra or None,
    )


@router.get("/me/sign-in", name="me_sign_in")
async def sign_in_form(request: Request, session: Session) -> Response:
    if await _person(request, session) is not None:
        return _see_other("/me")
    response = _phone_page(request)
    if getattr(request.state, "forget_person", False):
        _clear(request, response, sessions.COOKIE)
    return response


@router.post("/me/sign-in")
async def send_code(
    request: Request, session: Session, phone: Annotated[Text, Form(max_length=40)] = ""
) -> Response:
    phone = phone.strip()
    if not phone:
        return _phone_page(request, phone, _("Enter your mobile phone number."), 400)
    try:
        sent = await users_service.send_code(session, phone, client_ip(request))
    except InvalidIdentifier:
        return _phone_page(request, phone, _("This is not a valid mobile phone number."), 400)
    except RateLimited as exc:
        message = _("Too many codes were asked for. Please wait a while and try again.")
        return _phone_page(
            request, phone, message, 429, **{"Retry-After": exc.headers.get("Retry-After", "60")}
        )
    except sms.SmsUnavailable:
        return _phone_page(
            request, phone, _("The text message could not be sent. Please try again later."), 503
        )
    response = _see_other("/me/sign-in/code")
    value = f"{sent.id}.{_code_mac(request, str(sent.id))}"
    max_age = get_settings().otp_ttl_seconds
    response.headers.append(
        "set-cookie", cookie_header(CODE_COOKIE, value, https=is_https(request), max_age=max_age)
    )
    return response


def _code_page(
    request: Request, error: str | None = None, status: int = 200, restart: bool = False
) -> Response:
    return render(
        request,
        "users/me_code.html",
        {"errors": {"code": error} if error else {}, "restart": restart},
        status_code=status,
    )


@router.get("/me/sign-in/code", name="me_code")
async def code_form(request: Request, session: Session) -> Response:
    code_id = _pending_code(request)
    if code_id is None:
        return _see_other("/me/sign-in")
    if not await users_service.code_usable(session, code_id):
        message = _("This code can no longer be used. Ask for a new one.")
        return _code_page(request, message, 410, restart=True)
    return _code_page(request)


@router.post("/me/sign-in/code")
async def check_code(
    request: Request, session: Session, code: Annotated[Text, Form(max_length=20)] = ""
) -> Response:
    code_id = _pending_code(request)
    if code_id is None:
        return _see_other("/me/sign-in")
    code = code.strip().replace(" ", "")
    if not code:
        return _code_page(request, _("Enter the 6-digit code from the text message."), 400)
    try:
        result = await sessions.sign_in(
            session,
            code_id,
            code,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
            replacing=request.cookies.get(sessions.COOKIE),
        )
    except sessions.NoAccount:
        page = render(request, "users/me_no_account.html")
        _clear(request, page, CODE_COOKIE)
        return page
    if isinstance(result, sessions.NewSession):
        response = _see_other("/me")
        _clear(request, response, CODE_COOKIE)
        response.headers.append(
            "set-cookie",
            cookie_header(
                sessions.COOKIE, result.token, https=is_https(request), max_age=result.max_age_seconds
            ),
        )
        return response
    request.state.keep_changes = True  # the attempt counts, though the page refuses
    if result.outcome == users_service.CodeOutcome.wrong:
        message = _("The code is wrong. Tries left: %(num)s.") % {"num": result.attempts_left}
        return _code_page(request, message, 400)
    if result.outcome == users_service.CodeOutcome.expired:
        message = _("The code has expired. Ask for a new one.")
    else:
        message = _("Too many wrong codes. Ask for a new one.")
    return _code_page(request, message, 400, restart=True)


@router.post("/me/sign-out", name="me_sign_out")
async def sign_out(request: Request, session: Session) -> Response:
    await sessions.sign_out(session, request.cookies.get(sessions.COOKIE))
    response = _see_other("/")
    _clear(request, response, sessions.COOKIE)
    return response


# ---- the person's page ----------------------------------------------------------------------------------


def _scope_labels(scopes: list[str]) -> list[str]:
    return [_(SCOPE_LABELS[s]) if s in SCOPE_LABELS else s for s in scopes]


@router.get("/me", name="me")
async def overview(request: Request, session: Session) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    result = await me.overview(session, person.principal)
    withdrawn_name = None
    done = request.query_params.get("withdrawn", "")
    if done.isdigit():
        withdrawn_name = next((e.operator_name for e in result.withdrawn if str(e.id) == done), None)
    return _private(
        request,
        "users/me.html",
        {
            "section": "overview",
            "account": result.account,
            "vouchers": result.vouchers,
            "live": result.live,
            "withdrawn": result.withdrawn,
            "withdrawn_name": withdrawn_name,
            "confirmed_by": {k: _(v) for k, v in CONFIRMED_BY.items()},
            "scope_labels": _scope_labels,
        },
    )


# ---- the person's history, behaviours and orders ----------------------------------------------------------

PAGE_SIZE = 20
ORDER_STATUSES = {
    "issued": N_("Not used yet"),
    "redeemed": N_("Used at the counter"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}


def _signed(points: int) -> Markup:
    sign = "+" if points > 0 else "−"  # a true minus sign
    kind = "gain" if points > 0 else "loss"
    return Markup('<span class="points-change points-change--{}">{}{}</span>').format(
        kind, sign, number(abs(points))
    )


def _bought(quantity: int | None, title: str | None) -> str:
    """``2 × Americano`` in the reader's language (the templates say it the same way)."""
    return _("%(quantity)s × %(title)s") % {"quantity": number(quantity), "title": title}


def _what(line: me.HistoryLine) -> Markup:
    """What moved the balance, in the reader's language: the kind of entry, then where it came from."""
    e, spend, source = line.entry, line.spend, line.source
    if e.kind == "earn":
        title, detail = (
            _("Low-carbon behaviours"),
            (_("Recorded by %(app)s") % {"app": source}) if source else "",
        )
    elif e.kind == "expire":
        title, detail = _("Points expired"), _("Points are valid for a limited time after they are earned.")
    elif e.kind == "clawback":
        title, detail = _("Taken back by the authority"), e.memo or ""
    elif spend is not None and spend.ref_type == "mall_order":
        bought = _bought(spend.quantity, spend.what)
        title = (_("Given back: %(what)s") % {"what": bought}) if e.kind == "refund" else bought
        detail = (_("Points mall · %(merchant)s") % {"merchant": source}) if source else _("Points mall")
    elif spend is not None:
        title = (
            (_("Given back by %(app)s") % {"app": source})
            if e.kind == "refund"
            else (_("Spent in %(app)s") % {"app": source})
        )
        detail = spend.what or ""
    else:
        title, detail = (_("Points given back") if e.kind == "refund" else _("Points spent")), e.memo or ""
    if not detail:
        return Markup("<strong>{}</strong>").format(title)
    return Markup('<strong>{}</strong><span class="cell-note">{}</span>').format(title, detail)


CAPPED = {
    "capped": N_("The day's points limit was reached"),  # points.models.CapCode, a StrEnum
    "quantity_capped": N_("Counted up to the day's limit"),
}


def history_rows(lines: list[me.HistoryLine]) -> list[list[Any]]:
    """The cells of a person's points history (``users/records.html``), for the person and for the authority."""
    return [
        [
            show_time(line.entry.created_at, "short"),
            _what(line),
            _signed(line.entry.amount),
            number(line.entry.balance_after),
        ]
        for line in lines
    ]


def behaviour_rows(lines: list[me.BehaviourLine]) -> list[list[Any]]:
    """The cells of a person's behaviours (``users/records.html``), for the person and for the authority."""
    return [
        [
            show_time(line.behaviour.started_at, "short"),
            behaviour_label(line.behaviour.type),
            quantity(line.behaviour.counted_quantity, line.behaviour.unit),
            mass(line.behaviour.reduction_g),
            Markup('{}<span class="cell-note">{}</span>').format(
                number(line.behaviour.points), _(CAPPED[line.behaviour.code])
            )
            if line.behaviour.code
            else number(line.behaviour.points),
            line.operator_name,
        ]
        for line in lines
    ]


async def _records_page(
    request: Request,
    session: Session,
    cursor: str | None,
    app: str | None,
    section: str,
    read: Callable[..., Awaitable[me.Page]],
    rows: Callable[[list[Any]], list[list[Any]]],
) -> Response:
    """A page of the person's own records (``/me/{section}``, ``users/me_{section}.html``), by cursor; ``app``
    one of the apps they entrusted to see only its records (anything else: every app's)."""
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    apps = await me.apps(session, person.user_id)
    chosen = next((operator for operator in apps if str(operator) == app), None)
    result = await read(session, person.user_id, PAGE_SIZE, cursor, operator_id=chosen)
    return _private(
        request,
        f"users/me_{section}.html",
        {
            "section": section,
            "rows": rows(result.items),
            "app": str(chosen) if chosen else "",
            "apps": [("", _("Every app"))] + [(str(k), name) for k, name in apps.items()],
            **paging.links(f"/me/{section}", {"app": chosen}, result.next_cursor, cursor),
        },
    )


AppFilter = Annotated[
    Text | None, Query(max_length=40, description="an entrusted app's id: only its records")
]


@router.get("/me/history", name="me_history")
async def history(
    request: Request, session: Session, cursor: Cursor = None, app: AppFilter = None
) -> Response:
    return await _records_page(request, session, cursor, app, "history", me.history, history_rows)


@router.get("/me/behaviours", name="me_behaviours")
async def behaviours(
    request: Request, session: Session, cursor: Cursor = None, app: AppFilter = None
) -> Response:
    return await _records_page(request, session, cursor, app, "behaviours", me.behaviours, behaviour_rows)


@router.get("/me/orders", name="me_orders")
async def orders(
    request: Request,
    session: Session,
    status: Annotated[Text | None, Query(max_length=20)] = None,
    cursor: Cursor = None,
) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    chosen = status if status in ORDER_STATUSES else None
    result = await me.orders(session, person.principal, chosen, PAGE_SIZE, cursor)
    rows = [
        [
            Markup('<a href="/me/orders/{}">{}</a>').format(
                line.order.id,
                _bought(line.order.quantity, line.order.title),
            ),
            line.merchant_name,
            number(line.order.points),
            Markup('<span class="badge badge--{}">{}</span>').format(
                status_badge(line.status).tone, _(ORDER_STATUSES[line.status])
            ),
            show_time(line.order.voucher.expires_at, "short"),
            show_time(line.order.created_at, "short"),
        ]
        for line in result.items
    ]
    statuses = [("", _("All"))] + [(k, _(label)) for k, label in ORDER_STATUSES.items()]
    return _private(
        request,
        "users/me_orders.html",
        {
            "section": "orders",
            "rows": rows,
            "status": chosen or "",
            "statuses": statuses,
            **paging.links("/me/orders", {"status": chosen}, result.next_cursor, cursor),
        },
    )


CANCEL_REFUSED = {
    VoucherRedeemed: N_("This order cannot be cancelled: its voucher was used at the counter."),
    VoucherCancelled: N_("This order was cancelled already; its points were given back."),
    VoucherExpired: N_("This order cannot be cancelled: its voucher has expired."),
}


def _order_page(request: Request, line: me.OrderLine, template: str, refusal: str | None = None) -> Response:
    return _private(
        request,
        template,
        {
            "section": "orders",
            "order": line.order,
            "merchant_name": line.merchant_name,
            "status": line.status,
            "status_label": _(ORDER_STATUSES[line.status]),
            "badge": status_badge(line.status).tone,
            "cancelled_now": request.query_params.get("cancelled") == "1" and line.status == "cancelled",
            "refusal": refusal,
        },
        status_code=409 if refusal else 200,
    )


@router.get("/me/orders/{order_id}", name="me_order")
async def order(request: Request, session: Session, order_id: uuid.UUID) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    line = await me.order(
        session, person.principal, order_id
    )  # another's or none: order_not_found, a 404 page
    return _order_page(request, line, "users/me_order.html")


@router.get("/me/orders/{order_id}/cancel", name="me_order_cancel")
async def cancel_form(request: Request, session: Session, order_id: uuid.UUID) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    line = await me.order(session, person.principal, order_id)
    if line.status != "issued":
        return _see_other(f"/me/orders/{order_id}")
    return _order_page(request, line, "users/me_order_cancel.html")


@router.post("/me/orders/{order_id}/cancel")
async def cancel(request: Request, session: Session, order_id: uuid.UUID) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    try:
        await me.cancel_order(session, person.principal, order_id)  # another's or none: a 404 page
    except (VoucherRedeemed, VoucherCancelled, VoucherExpired) as exc:
        # used, cancelled or expired meanwhile (at the counter, in the app, another tab): nothing changed
        line = await me.order(session, person.principal, order_id)
        return _order_page(request, line, "users/me_order.html", refusal=_(CANCEL_REFUSED[type(exc)]))
    return _see_other(f"/me/orders/{order_id}?cancelled=1")


@router.get("/me/orders/{order_id}/voucher.svg", name="me_voucher_qr")
async def voucher_qr(request: Request, session: Session, order_id: uuid.UUID) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    image = await me.voucher_qr(session, person.principal, order_id)
    return Response(image, media_type="image/svg+xml", headers=PRIVATE)


@router.get("/me/entrustments/{entrustment_id}/withdraw", name="me_withdraw")
async def withdraw_form(request: Request, session: Session, entrustment_id: Int64) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    view = await me.entrustment(session, person.user_id, entrustment_id)  # not_entrusted: a 404 page
    if not view.live:
        return _see_other("/me")
    return _private(
        request,
        "users/me_withdraw.html",
        {"entrustment": view, "scopes": _scope_labels(view.scopes)},
    )


@router.post("/me/entrustments/{entrustment_id}/withdraw")
async def withdraw(request: Request, session: Session, entrustment_id: Int64) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    view = await me.entrustment(session, person.user_id, entrustment_id)  # not_entrusted: a 404 page
    if not view.live:
        return _see_other("/me")
    try:
        await me.withdraw(session, person.principal, entrustment_id)
    except NotEntrusted:  # withdrawn meanwhile (another tab, the app itself)
        return _see_other("/me")
    return _see_other(f"/me?withdrawn={entrustment_id}")


@router.get("/me/export", name="me_export")
async def export(request: Request, session: Session) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    data = await me.export(session, person.principal)
    return JSONResponse(
        jsonable_encoder(data),  # as GET /v1/me/export answers it
        headers={
            "Content-Disposition": 'attachment; filename="carbon-account-export.json"',
            "Cache-Control": "no-store",
        },
    )


def _delete_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    return render(
        request, "users/me_delete.html", {"errors": {"confirm": error} if error else {}}, status_code=status
    )


@router.get("/me/delete", name="me_delete")
async def delete_form(request: Request, session: Session) -> Response:
    if await _person(request, session) is None:
        return _to_sign_in(request)
    return _delete_page(request)


@router.post("/me/delete")
async def delete(
    request: Request, session: Session, confirm: Annotated[Text, Form(max_length=10)] = ""
) -> Response:
    person = await _person(request, session)
    if person is None:
        return _to_sign_in(request)
    if confirm != "yes":
        return _delete_page(request, _("Tick the box to confirm that you want your account deleted."), 400)
    await me.delete_account(session, person.principal)
    response = _see_other("/me/deleted")
    _clear(request, response, sessions.COOKIE)
    return response


@router.get("/me/deleted", name="me_deleted")
async def deleted(request: Request) -> Response:
    return render(request, "users/me_deleted.html")
