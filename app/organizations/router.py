import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from app.auth.dependencies import AnyCaller, Authority, Public, Session, require
from app.auth.principal import Principal
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Int64, Text
from app.organizations import service
from app.organizations.exceptions import (
    DuplicateOrganization,
    InvalidKey,
    InvalidRedirectUri,
    InvalidTransition,
    KeyExists,
    KeyNotFound,
    NotAnOperator,
    NotAnOperatorOrganization,
    NotYourOrganization,
    OrganizationNotFound,
    RedirectUriExists,
    RedirectUriNotFound,
    UsernameTaken,
)
from app.organizations.schemas import (
    AllowedScopesUpdate,
    Decision,
    KeyCreate,
    KeyRead,
    OrganizationCreate,
    OrganizationRead,
    RedirectUriCreate,
    RedirectUriRead,
    TrustedEnrolmentUpdate,
)

router = APIRouter(prefix="/v1/organizations", route_class=CommitRoute, tags=["organizations"])
OrgAdmin = Annotated[Principal, Depends(require(admin=True))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationRead,
    dependencies=[Public],
    responses=responses(DuplicateOrganization, UsernameTaken),
    summary="Apply to register an organisation",
    description="Anyone may apply. The organisation starts `pending`; its admin can log in once the "
    "authority approves it.",
)
async def apply(data: OrganizationCreate, session: Session):
    return await service.apply(session, data)


@router.get(
    "",
    response_model=Page[OrganizationRead],
    responses=responses(InvalidCursor),
    summary="List organisations (authority)",
)
async def list_organizations(
    session: Session,
    _: Authority,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[Literal["pending", "approved", "rejected", "suspended"] | None, Query()] = None,
    kind: Annotated[
        Literal["operator", "merchant", "scene_operator", "verifier", "buyer"] | None, Query()
    ] = None,
):
    return await service.list_(session, status=status, kind=kind, limit=limit, cursor=cursor)


@router.get(
    "/{org_id}",
    response_model=OrganizationRead,
    responses=responses(OrganizationNotFound),
    summary="An organisation (the authority: any; staff and operators: their own)",
    description="Another organisation's id answers 404, as if it did not exist.",
)
async def get_organization(org_id: uuid.UUID, session: Session, principal: AnyCaller):
    return await service.get_for(session, principal, org_id)


def _decision_route(decision: str, summary: str):
    async def decide(org_id: uuid.UUID, session: Session, principal: Authority, body: Decision | None = None):
        return await service.decide(session, principal, org_id, decision, body.reason if body else None)

    router.add_api_route(
        f"/{{org_id}}/{decision}",
        decide,
        methods=["POST"],
        response_model=OrganizationRead,
        responses=responses(OrganizationNotFound, InvalidTransition),
        summary=summary,
        name=f"organization_{decision}",
    )


_decision_route("approve", "Approve an application (authority)")
_decision_route("reject", "Reject an application (authority)")
_decision_route("suspend", "Suspend an organisation: its tokens stop working at once (authority)")
_decision_route("reinstate", "Lift a suspension (authority)")


@router.put(
    "/{org_id}/allowed-scopes",
    response_model=OrganizationRead,
    responses=responses(OrganizationNotFound, NotAnOperatorOrganization),
    summary="Set what an operator may ask people for (authority; audited)",
    description="The OAuth scopes the operator may request at `/oauth/authorize` (a request for any other is "
    "sent back with `error=invalid_scope`), and that the user tokens a trusted operator mints itself carry: "
    "`behaviours:submit`, `account:read`, `mall` (ordering in the platform mall). New operators may ask for "
    "`behaviours:submit account:read`. Tokens already issued keep their scopes until they expire; the next "
    "refresh narrows them to what is allowed now. An unknown scope name is 422; an organisation that is not "
    "an operator is 409 `organization_not_operator`. Recorded in the audit log with the reason.",
)
async def set_allowed_scopes(
    org_id: uuid.UUID, data: AllowedScopesUpdate, session: Session, authority: Authority
):
    return await service.set_allowed_scopes(session, authority, org_id, data.scopes, data.reason)


@router.put(
    "/{org_id}/trusted-enrolment",
    response_model=OrganizationRead,
    responses=responses(OrganizationNotFound, NotAnOperatorOrganization),
    summary="Trust an operator to enrol people on its own word, or stop trusting it (authority; audited)",
    description="Off by default: people confirm their own entrustment through `/oauth/authorize`, and "
    "`POST /v1/operator/users` and `POST /v1/operator/users/{id}/tokens` answer 403 "
    "`person_confirmation_required`. Turn it on only for an operator that verifies people itself, for example "
    "the city's real-name government app; each of its enrolments and minted tokens is audited. An "
    "organisation that is not an operator is 409 `organization_not_operator`. Recorded in the audit log with "
    "the reason.",
)
async def set_trusted_enrolment(
    org_id: uuid.UUID, data: TrustedEnrolmentUpdate, session: Session, authority: Authority
):
    return await service.set_trusted_enrolment(session, authority, org_id, data.trusted, data.reason)


@router.post(
    "/{org_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyRead,
    responses=responses(InvalidKey, KeyExists, NotYourOrganization, NotAnOperator),
    summary="Register a public key (the organisation's admin)",
    description="The key signs client assertions (`POST /v1/auth/token`) and behaviour batches "
    "(`X-Content-Signature`). Its `kid` is the RFC 7638 thumbprint. The platform never holds a private key.",
)
async def register_key(org_id: uuid.UUID, data: KeyCreate, session: Session, principal: OrgAdmin):
    return await service.register_key(session, principal, org_id, data.jwk)


@router.get(
    "/{org_id}/keys",
    response_model=list[KeyRead],
    responses=responses(NotYourOrganization),
    summary="The organisation's registered keys, revoked ones included (the organisation's admin)",
)
async def list_keys(org_id: uuid.UUID, session: Session, principal: OrgAdmin):
    return await service.list_keys(session, principal, org_id)


@router.delete(
    "/{org_id}/keys/{kid}",
    response_model=KeyRead,
    responses=responses(KeyNotFound, NotYourOrganization),
    summary="Revoke a key: assertions and batches signed with it are refused from now on",
)
async def revoke_key(org_id: uuid.UUID, kid: Text, session: Session, principal: OrgAdmin):
    return await service.revoke_key(session, principal, org_id, kid)


@router.post(
    "/{org_id}/redirect-uris",
    status_code=status.HTTP_201_CREATED,
    response_model=RedirectUriRead,
    responses=responses(InvalidRedirectUri, RedirectUriExists, NotYourOrganization, NotAnOperator),
    summary="Register a redirect URI for the authorization code flow (the operator's admin)",
    description="People who authorise your app at `/oauth/authorize` are sent back only to a URI registered "
    "here, compared as an exact string (RFC 9700 §4.1.3). `https` only in production; outside it also "
    "`http` on a loopback address. Audited; the authority sees every operator's list.",
)
async def add_redirect_uri(org_id: uuid.UUID, data: RedirectUriCreate, session: Session, principal: OrgAdmin):
    return await service.add_redirect_uri(session, principal, org_id, data.uri)


@router.get(
    "/{org_id}/redirect-uris",
    response_model=list[RedirectUriRead],
    responses=responses(NotYourOrganization),
    summary="An operator's registered redirect URIs (its admin, the authority)",
)
async def list_redirect_uris(
    org_id: uuid.UUID,
    session: Session,
    principal: Annotated[Principal, Depends(require("authority", "operator"))],
):
    return await service.list_redirect_uris(session, principal, org_id)


@router.delete(
    "/{org_id}/redirect-uris/{uri_id}",
    response_model=RedirectUriRead,
    responses=responses(RedirectUriNotFound, NotYourOrganization, NotAnOperator),
    summary="Remove a redirect URI: the authorization flow no longer returns to it (the operator's admin)",
)
async def remove_redirect_uri(org_id: uuid.UUID, uri_id: Int64, session: Session, principal: OrgAdmin):
    return await service.remove_redirect_uri(session, principal, org_id, uri_id)
