"""Organisation registration (public) and the signed-in staff's account page.

``/register`` takes what ``POST /v1/organizations`` takes (kind, name, credit code, the admin account)
and calls the same :func:`app.organizations.service.apply`; ``/organization`` shows the signed-in
account's organisation and its application status, with the way to the portal of its kind.
"""

from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.auth.dependencies import Session
from app.core.types import Text
from app.organizations import service
from app.organizations.exceptions import DuplicateOrganization, UsernameTaken
from app.organizations.schemas import OrganizationCreate
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext
from app.web.portals import PORTALS, portal
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router()

KINDS = (
    (
        "scene_operator",
        N_("Scene operator"),
        N_("A venue (café, canteen, shop, public building) where people act low-carbon."),
    ),
    ("merchant", N_("Merchant"), N_("Sells goods and services in the rewards mall for carbon points.")),
    ("operator", N_("App operator"), N_("Runs an app that records people's low-carbon behaviours.")),
    ("verifier", N_("Verifier"), N_("A third-party body that verifies certified-reduction projects.")),
    (
        "buyer",
        N_("Buyer"),
        N_("Receives certified emission reductions and retires them for carbon neutrality."),
    ),
)
KIND_NAMES = {kind: name for kind, name, _ in KINDS}

FIELD_ERRORS = {
    "kind": N_("Choose what kind of organisation you are."),
    "name": N_("Enter the organisation's registered name (at most 200 characters)."),
    "credit_code": N_(
        "Enter the 18-character unified social credit code (digits and capital letters, without I, O, S, V, Z)."
    ),
    "username": N_("Choose a username of 3 to 100 characters: letters, digits and . _ @ - only."),
    "password": N_("Choose a password of at least 8 characters."),
}


def _form(values: dict[str, str] | None = None, errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "kinds": [(kind, gettext(name), gettext(hint)) for kind, name, hint in KINDS],
        "form": {"kind": "", "name": "", "credit_code": "", "username": "", **(values or {})},
        "errors": errors or {},
    }


@router.get("/register", name="register")
async def register_form(
    request: Request, kind: Annotated[Text | None, Query(max_length=30)] = None
) -> Response:
    return render(request, "organizations/register.html", _form({"kind": kind if kind in KIND_NAMES else ""}))


@router.post("/register")
async def register(
    request: Request,
    session: Session,
    kind: Annotated[Text, Form(max_length=30)] = "",
    name: Annotated[Text, Form(max_length=1000)] = "",
    credit_code: Annotated[Text, Form(max_length=100)] = "",
    username: Annotated[Text, Form(max_length=200)] = "",
    password: Annotated[Text, Form(max_length=400)] = "",
    password_again: Annotated[Text, Form(max_length=400)] = "",
) -> Response:
    values = {
        "kind": kind,
        "name": name.strip(),
        "credit_code": credit_code.strip().upper(),
        "username": username.strip(),
    }
    errors: dict[str, str] = {}
    try:
        data = OrganizationCreate.model_validate(
            {
                "kind": values["kind"],
                "name": values["name"],
                "credit_code": values["credit_code"],
                "admin": {"username": values["username"], "password": password},
            }
        )
    except ValidationError as exc:
        data = None
        for error in exc.errors():
            field = str(error["loc"][-1])
            errors.setdefault(field, gettext(FIELD_ERRORS.get(field, N_("Check this value."))))
    if "credit_code" not in errors and not service.credit_code_check_digit_ok(values["credit_code"]):
        errors["credit_code"] = gettext(
            "This credit code's last character does not match the others: check it against the business licence."
        )
    if password != password_again:
        errors["password_again"] = gettext("The two passwords are not the same.")
    if data is not None and not errors:
        try:
            await service.apply(session, data)
        except DuplicateOrganization:
            errors["credit_code"] = gettext(
                "An organisation of this kind with this credit code has already applied or is registered."
            )
        except UsernameTaken:
            errors["username"] = gettext("This username is taken: choose another.")
        else:
            return RedirectResponse(f"/register/done?kind={data.kind}", status_code=303)
    return render(request, "organizations/register.html", _form(values, errors), status_code=400)


@router.get("/register/done", name="register_done")
async def registered(request: Request, kind: Annotated[Text | None, Query(max_length=30)] = None) -> Response:
    kind_name = gettext(KIND_NAMES[kind]) if kind in KIND_NAMES else None
    return render(request, "organizations/registered.html", {"kind_name": kind_name})


@router.get("/organization", name="organization")
async def organization(
    request: Request, session: Session, viewer: Annotated[Viewer, Depends(require_viewer())]
) -> Response:
    principal = viewer.principal
    org = None if principal.org_id is None else await service.get_for(session, principal, principal.org_id)
    return render(
        request,
        "organizations/account.html",
        {
            "org": org,
            "kind_name": gettext(KIND_NAMES[org.kind])
            if org is not None and org.kind in KIND_NAMES
            else None,
            "portal": portal(principal) if principal.role in PORTALS else None,  # not this page itself
            "role": principal.role,
            "is_admin": principal.is_org_admin,
        },
    )
