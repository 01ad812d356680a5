from fastapi import APIRouter, Response, status

from app.auth import service as auth_service
from app.auth.dependencies import Operator, Session
from app.auth.router import TokenResponse
from app.core.errors import responses
from app.core.routing import CommitRoute
from app.users import me, service
from app.users.dependencies import PersonSession
from app.users.exceptions import (
    AlreadyEntrusted,
    ExternalIdTaken,
    InvalidConsent,
    InvalidIdentifier,
    NotEntrusted,
    PersonConfirmationRequired,
)
from app.users.schemas import Enrolment, EnrolUser, ExternalUserId, Withdrawal

router = APIRouter(route_class=CommitRoute, tags=["users"])


@router.post(
    "/v1/operator/users",
    response_model=Enrolment,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": Enrolment, "description": "Enrolled before with the same data: nothing changed"},
        **responses(
            PersonConfirmationRequired, InvalidIdentifier, InvalidConsent, ExternalIdTaken, AlreadyEntrusted
        ),
    },
    summary="Enrol a person on your word (only operators the authority trusts for it)",
    description=(
        "Only for an operator the authority marked trusted for enrolment (`trusted_enrolment`, for example the "
        "city's real-name government app); any other operator gets 403 `person_confirmation_required`: people "
        "confirm their entrustment themselves at `/oauth/authorize` (see the walkthrough). Each use is audited. "
        "The phone number is normalised to E.164 and replaced by a keyed hash; it is never stored. The same "
        "person enrolled by two operators is one account (same `user_id`). Enrolling again with the same data "
        "changes nothing and answers 200 with `created: false`."
    ),
)
async def enrol(data: EnrolUser, session: Session, operator: Operator, response: Response):
    result = await service.enrol(session, operator, data)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result


@router.delete(
    "/v1/operator/users/{external_user_id}",
    response_model=Withdrawal,
    responses=responses(NotEntrusted),
    summary="The person withdrew the entrustment: no more submissions for them",
    description=(
        "From now on every record of this person from you is `not_entrusted`, whenever the behaviour "
        "happened, and their user tokens issued through you stop. Enrolling them again is a new "
        "entrustment: its `consent.accepted_at` must be after this withdrawal (else 422 `invalid_consent`), "
        "and it counts behaviours from that moment on."
    ),
)
async def withdraw(external_user_id: ExternalUserId, session: Session, operator: Operator):
    return await service.withdraw(session, operator, external_user_id)


@router.post(
    "/v1/operator/users/{external_user_id}/tokens",
    response_model=TokenResponse,
    responses=responses(PersonConfirmationRequired, NotEntrusted),
    summary="A short-lived user token for your app to call /v1/me/… (only operators trusted for enrolment)",
    description=(
        "Only for an operator the authority marked trusted for enrolment; the token carries `azp` (you) and "
        "`scope`: your `allowed_scopes`. Each use is audited. Any other operator gets 403 "
        "`person_confirmation_required` and gets user tokens with the refresh token of the authorization code "
        "flow (`grant_type=refresh_token`), with the scopes the person granted."
    ),
)
async def user_token(external_user_id: ExternalUserId, session: Session, operator: Operator):
    return await auth_service.issue_user_token(session, operator, external_user_id)


PERSON_ONLY = (
    " Only the person may call this, signed in on the platform itself: the `carbon_me` cookie of a session "
    "opened at `/me/sign-in` (phone number and one-time code), the page `/me` offers the same. A bearer token "
    "— an operator's user token above all — is refused with 403 `platform_session_required`."
)


@router.get(
    "/v1/me/export",
    summary="Everything the platform holds about me (data export)",
    description="The person's entrustments, account, ledger, accepted behaviours, orders in the platform's "
    "mall (with their voucher codes) and redemptions in operators' own malls, as JSON (each list newest first, "
    "up to 10,000 items)." + PERSON_ONLY,
)
async def export(session: Session, person: PersonSession) -> dict:
    return await me.export(session, person)


@router.delete(
    "/v1/me",
    summary="Delete my account",
    description="The account is anonymised (the identity hash is erased and entrustments end); the ledger's "
    "totals and the certified-reduction accounting stay intact. Tokens and sessions stop working at once."
    + PERSON_ONLY
    + " The call also needs the CSRF token of a platform page in `X-CSRF-Token` (403 `csrf_failed`).",
)
async def delete_me(session: Session, person: PersonSession) -> dict:
    # the body as it always was; documenting AccountDeletion would publish ``deleted_at`` in the schema
    return (await me.delete_account(session, person)).model_dump()
