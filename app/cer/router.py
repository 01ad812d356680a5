import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import StreamingResponse

from app.auth.dependencies import Authority, Operator, Public, Session, Verifier, public, require
from app.auth.principal import Principal
from app.cer import evidence, prices, registry, service
from app.cer.exceptions import (
    BeneficiaryRequired,
    CertificateNotFound,
    FutureDate,
    InsufficientUnits,
    InvalidDate,
    InvalidDocumentLink,
    InvalidPeriod,
    InvalidPrice,
    InvalidProjectState,
    InvalidRange,
    InvalidRecipient,
    InvalidSelection,
    InvalidSerial,
    NoEligibleRecords,
    NotAssignedVerifier,
    NotATradingDay,
    NotAVerifier,
    NotEnoughPrices,
    NotFiled,
    NotOwner,
    ObjectionAlreadyAnswered,
    ObjectionNotFound,
    ObjectionsUnanswered,
    OverlappingProject,
    ProjectNotFound,
    PublicityClosed,
    PublicityNotOver,
    SelfVerification,
    SerialNotFound,
    UnitsNotHeld,
    UnitsRetired,
    UnitsRevoked,
    UnknownMethodology,
    UnknownOrganization,
    VerifiedExceedsClaimed,
)
from app.cer.schemas import (
    AccountRead,
    AnswerIn,
    BatchRead,
    CalendarDay,
    CalendarEntryIn,
    CertificatePublic,
    ClawbackIn,
    ClawbackRead,
    FilingIn,
    IssuanceRead,
    ObjectionCreate,
    ObjectionRead,
    PriceIn,
    PriceRead,
    ProjectCreate,
    ProjectRead,
    ProjectRecord,
    ProjectStatusLit,
    PublicRetirement,
    RecordSample,
    ReferencePrice,
    ReportCheck,
    RetirementCreate,
    RetirementRead,
    ReviewOpen,
    Totals,
    TraceRead,
    TransferCreate,
    TransferRead,
    VerificationIn,
    VerifierAssign,
)
from app.core.errors import responses
from app.core.pagination import Cursor, InvalidCursor, Limit, Page
from app.core.routing import CommitRoute
from app.core.types import Day, Int32, Text
from app.experts.exceptions import UnknownField
from app.organizations.exceptions import OrganizationNotFound
from app.reviews.exceptions import InvalidPanel, NotEnoughExperts, PanelAlreadyOpen, ReviewNotPassed
from app.reviews.schemas import PanelRead

router = APIRouter(prefix="/v1/cer", route_class=CommitRoute, tags=["cer"])
public_router = APIRouter(prefix="/v1/public/cer", route_class=CommitRoute, tags=["public"])
certificates_router = APIRouter(prefix="/v1/public/certificates", route_class=CommitRoute, tags=["public"])

Involved = Annotated[Principal, Depends(require("authority", "operator", "verifier"))]
Holder = Annotated[Principal, Depends(require("operator", "buyer"))]
HolderOrAuthority = Annotated[Principal, Depends(require("authority", "operator", "buyer"))]
StatusFilter = ProjectStatusLit | None
BlockStatusFilter = Literal["held", "retired", "revoked"] | None
_SELECTION = (InvalidSerial, InvalidSelection, InsufficientUnits, UnitsNotHeld, UnitsRetired, UnitsRevoked)


# --- projects -------------------------------------------------------------------------------


@router.post(
    "/projects",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectRead,
    responses=responses(
        InvalidPeriod, UnknownMethodology, UnknownOrganization, OverlappingProject, NoEligibleRecords
    ),
    summary="Create a project from your records of a period (operator, as project owner)",
    description="Aggregates, in one set-based statement, your accepted behaviour records whose methodology "
    "code is listed and that started within the period (local days; the period must be over). Left out: "
    "records before the cut-off date (setting `cer_cutoff_date`, 2020-09-22, JX 12), records at scenes outside "
    "the platform's region (`region_code` prefix of the scene's district; records without a scene count as in "
    "the region) and records already in a project — a record is in at most one project, ever. The report "
    "(totals by methodology version and month) and its SHA-256 are computed by the platform. Publicity starts "
    "at once and lasts 7 working days after today (`publicity_ends_on`). A period and methodology overlapping "
    "one of your earlier projects: 409 `overlapping_project`; nothing eligible: 409 `no_eligible_records`.",
)
async def create_project(data: ProjectCreate, session: Session, principal: Operator):
    return await service.create(session, principal, data)


@router.get(
    "/projects",
    response_model=Page[ProjectRead],
    responses=responses(InvalidCursor),
    summary="Projects: all (authority), or those you own or verify",
    description="Newest first.",
)
async def list_projects(
    session: Session,
    principal: Involved,
    status: StatusFilter = None,
    owner_org_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_(
        session, principal, status=status, owner_org_id=owner_org_id, limit=limit, cursor=cursor
    )


@router.get(
    "/projects/{project_id}",
    response_model=ProjectRead,
    responses=responses(ProjectNotFound),
    summary="A project (authority, its owner or its verifier)",
)
async def get_project(project_id: uuid.UUID, session: Session, principal: Involved):
    return await service.read(session, principal, project_id)


_RECORDS_CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of records, or with `format=csv` all of them as CSV (a header row; streamed)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/projects/{project_id}/records",
    response_model=Page[ProjectRecord],
    responses={**_RECORDS_CSV, **responses(ProjectNotFound, InvalidCursor)},
    summary="The records a project counts, pseudonymous (authority, its owner, its verifier)",
    description="By the platform's record number. Each record: its operator and the signed batch it came in, "
    "behaviour type, times, quantities, reduction, methodology version, status and cap code — and `person`, "
    "a per-project pseudonym (the same for one person's records in this project, unrelated across projects); "
    "no user id, phone or external user id. `format=csv`: every record as CSV with the columns "
    + ", ".join(f"`{c}`" for c in evidence.CSV_COLUMNS)
    + ". Anyone else: 404 `project_not_found`.",
)
async def project_records(
    project_id: uuid.UUID,
    session: Session,
    principal: Involved,
    format: Annotated[Literal["json", "csv"], Query(description="`csv`: every record as CSV")] = "json",
    limit: Limit = 50,
    cursor: Cursor = None,
):
    if format == "csv":
        source = await evidence.csv_source(session, principal, project_id)
        return StreamingResponse(
            evidence.records_csv(source),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="cer-project-{source}-records.csv"'},
        )
    return await evidence.records(session, principal, project_id, limit=limit, cursor=cursor)


@router.get(
    "/projects/{project_id}/records/sample",
    response_model=RecordSample,
    responses=responses(ProjectNotFound),
    summary="A reproducible random sample of a project's records, for spot checks (authority, owner, verifier)",
    description='The `size` records whose SHA-256 of `"{seed}:{id}"` (UTF-8, lowercase hex; `id` the '
    "platform's record number) sorts first, in that order, each with its `draw_key`. The same seed always "
    "gives the same records, and anyone holding the record list can recompute the draw. `size` 1–1000, "
    "`seed` 1–100 characters (otherwise 422 `validation_error`).",
)
async def project_records_sample(
    project_id: uuid.UUID,
    session: Session,
    principal: Involved,
    seed: Annotated[Text, Query(min_length=1, max_length=100, description="Any text; note it to redraw")],
    size: Annotated[Int32, Query(ge=1, le=1000, description="How many records (1–1000)")] = 25,
):
    return await evidence.sample(session, principal, project_id, seed=seed, size=size)


@router.get(
    "/projects/{project_id}/batches",
    response_model=Page[BatchRead],
    responses=responses(ProjectNotFound, InvalidCursor),
    summary="The signed batches a project's records came in, each signature verified now (authority, owner, verifier)",
    description="By time of receipt. Each batch's detached JWS is verified again, at the time of this request, "
    "over the body stored byte for byte, with the key its operator registered under the batch's `kid` (a key "
    "revoked since is still used, and its revocation shown): `verified` with its `reason` (`verified`, "
    "`body_hash_mismatch`, `unknown_key`, `malformed_signature`, `algorithm_not_allowed`, "
    "`invalid_signature`), the body's SHA-256, the batch's counts and how many of its records the project "
    "counts. 20 a page unless `limit` says otherwise (at most 200).",
)
async def project_batches(
    project_id: uuid.UUID,
    session: Session,
    principal: Involved,
    limit: Limit = 20,
    cursor: Cursor = None,
):
    return await evidence.batches(session, principal, project_id, limit=limit, cursor=cursor)


@router.get(
    "/projects/{project_id}/objections",
    response_model=list[ObjectionRead],
    responses=responses(ProjectNotFound),
    summary="The objections filed during publicity, with the objectors' contacts (authority, owner)",
)
async def list_objections(project_id: uuid.UUID, session: Session, principal: Involved):
    return await service.list_objections(session, principal, project_id)


@router.post(
    "/projects/{project_id}/objections/{objection_id}/answer",
    response_model=ObjectionRead,
    responses=responses(ProjectNotFound, NotOwner, ObjectionNotFound, ObjectionAlreadyAnswered),
    summary="Answer an objection (the owner, once); the answer is public",
)
async def answer_objection(
    project_id: uuid.UUID, objection_id: uuid.UUID, data: AnswerIn, session: Session, principal: Operator
):
    return await service.answer_objection(session, principal, project_id, objection_id, data.answer)


@router.post(
    "/projects/{project_id}/submit",
    response_model=ProjectRead,
    responses=responses(
        ProjectNotFound, NotOwner, InvalidProjectState, PublicityNotOver, ObjectionsUnanswered
    ),
    summary="Submit the project for verification (the owner)",
    description="Once the publicity is over (after `publicity_ends_on`) and every objection is answered; "
    "otherwise 409 `publicity_not_over` / `objections_unanswered`.",
)
async def submit_project(project_id: uuid.UUID, session: Session, principal: Operator):
    return await service.submit(session, principal, project_id)


@router.post(
    "/projects/{project_id}/verifier",
    response_model=ProjectRead,
    responses=responses(ProjectNotFound, InvalidProjectState, NotAVerifier, SelfVerification),
    summary="Assign the third-party verifier (authority)",
    description="An approved organisation of kind `verifier`. It may not be the project's owner nor the "
    "organisation declared as the report's compiler (`compiled_by_org_id`): 409 `self_verification` (JX 15). "
    "Allowed again while the verification is pending, to replace the verifier.",
)
async def assign_verifier(
    project_id: uuid.UUID, data: VerifierAssign, session: Session, principal: Authority
):
    return await service.assign_verifier(session, principal, project_id, data.verifier_org_id)


@router.post(
    "/projects/{project_id}/verification",
    response_model=ProjectRead,
    responses=responses(
        ProjectNotFound, NotAssignedVerifier, InvalidProjectState, VerifiedExceedsClaimed, InvalidDocumentLink
    ),
    summary="Record the verification (the assigned verifier)",
    description="Verified grams may not exceed the claimed ones (422 `verified_exceeds_claimed`); the "
    "statement and the document links are published with the project.",
)
async def record_verification(
    project_id: uuid.UUID, data: VerificationIn, session: Session, principal: Verifier
):
    return await service.record_verification(session, principal, project_id, data)


@router.post(
    "/projects/{project_id}/review",
    status_code=status.HTTP_201_CREATED,
    response_model=PanelRead,
    responses=responses(
        ProjectNotFound, InvalidProjectState, UnknownField, InvalidPanel, NotEnoughExperts, PanelAlreadyOpen
    ),
    summary="Open the expert review of a verified project (authority)",
    description="Draws the panel from the field `verification`, never an expert affiliated with the owner, "
    "the verifier or the report's compiler. Opinions and the decision go through `/v1/reviews/{id}/…`; "
    "`pass` makes the project `reviewed`, `fail` `rejected`.",
)
async def review_project(
    project_id: uuid.UUID, session: Session, principal: Authority, data: ReviewOpen | None = None
):
    return await service.open_review(session, principal, project_id, data or ReviewOpen())


@router.post(
    "/projects/{project_id}/filing",
    response_model=ProjectRead,
    responses=responses(ProjectNotFound, InvalidProjectState, ReviewNotPassed),
    summary="The filing decision (备案, authority)",
    description="`filed` needs the expert review passed (409 `review_not_passed`); `rejected` ends the project.",
)
async def file_project(project_id: uuid.UUID, data: FilingIn, session: Session, principal: Authority):
    return await service.file(session, principal, project_id, data.outcome, data.reason)


@router.post(
    "/projects/{project_id}/issue",
    status_code=status.HTTP_201_CREATED,
    response_model=IssuanceRead,
    responses=responses(ProjectNotFound, NotFiled, InvalidProjectState),
    summary="Issue the project's certified reductions to the owner's account (authority)",
    description="floor((verified grams + the owner's carried remainder) / 10^6) tonnes, with serials "
    "continuing the registry's sequence in one block `{prefix}-{vintage}-{start}-{end}` (vintage: the year "
    "the period ends). The grams below a tonne carry forward to the owner's next issuance. Before filing: "
    "409 `not_filed`.",
)
async def issue_project(project_id: uuid.UUID, session: Session, principal: Authority):
    return await registry.issue(session, principal, project_id)


@router.post(
    "/projects/{project_id}/clawback",
    response_model=ClawbackRead,
    responses=responses(ProjectNotFound, InvalidProjectState),
    summary="Claw back a fraudulent project's units and freeze it (authority, JX 26)",
    description="Units of the project still held by anyone are revoked; retired ones stay retired and are "
    "flagged (their certificates show `fraud_flagged`); the owner's carried remainder is forfeited.",
)
async def clawback_project(project_id: uuid.UUID, data: ClawbackIn, session: Session, principal: Authority):
    return await registry.clawback(session, principal, project_id, data.reason)


# --- accounts, transfers, retirements -------------------------------------------------------


@router.post(
    "/accounts",
    response_model=AccountRead,
    summary="Open your registry account (operator, buyer)",
    description="Idempotent; an account is also opened on the first issuance or transfer received.",
)
async def open_account(session: Session, principal: Holder):
    return await registry.open_account(session, principal)


@router.get("/accounts/me", response_model=AccountRead, summary="Your holdings, by block")
async def my_account(
    session: Session,
    principal: Holder,
    status: BlockStatusFilter = None,
):
    assert principal.org_id is not None
    return await registry.account(session, principal.org_id, status=status)


@router.get(
    "/accounts/{org_id}",
    response_model=AccountRead,
    responses=responses(OrganizationNotFound),
    summary="An organisation's holdings (authority)",
)
async def org_account(
    org_id: uuid.UUID,
    session: Session,
    principal: Authority,
    status: BlockStatusFilter = None,
):
    return await registry.account(session, org_id, status=status)


@router.post(
    "/transfers",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferRead,
    responses=responses(InvalidRecipient, *_SELECTION),
    summary="Register a transfer of units to another account (a trade settled on an exchange)",
    description="`tonnes` alone moves your oldest units first; `serials` names the blocks or parts of blocks "
    "to move (blocks are split, counts stay exact). More than you hold: 409 `insufficient_units`; retired, "
    "revoked or someone else's units: 409 `units_retired` / `units_revoked` / `units_not_held`.",
)
async def transfer(data: TransferCreate, session: Session, principal: Holder):
    return await registry.transfer(session, principal, data)


@router.get(
    "/transfers",
    response_model=Page[TransferRead],
    responses=responses(InvalidCursor),
    summary="Transfers from or to you (all for the authority), newest first",
)
async def list_transfers(
    session: Session, principal: HolderOrAuthority, limit: Limit = 50, cursor: Cursor = None
):
    return await registry.list_transfers(session, principal, limit=limit, cursor=cursor)


@router.post(
    "/retirements",
    status_code=status.HTTP_201_CREATED,
    response_model=RetirementRead,
    responses=responses(BeneficiaryRequired, *_SELECTION),
    summary="Retire (注销) units for the carbon neutrality of an event, organisation or person",
    description="The units leave circulation for good; the beneficiary and purpose are recorded and a "
    "certificate is issued: `GET /v1/public/certificates/{number}` (content and its SHA-256) and `.pdf` (with a "
    "QR code to that URL). No beneficiary: 422 `beneficiary_required`.",
)
async def retire(data: RetirementCreate, session: Session, principal: Holder):
    return await registry.retire(session, principal, data)


@router.get(
    "/retirements",
    response_model=Page[RetirementRead],
    responses=responses(InvalidCursor),
    summary="Your retirements (all for the authority), newest first",
)
async def list_retirements(
    session: Session, principal: HolderOrAuthority, limit: Limit = 50, cursor: Cursor = None
):
    return await registry.list_retirements(session, principal, limit=limit, cursor=cursor)


@router.get(
    "/trace/{serial}",
    response_model=TraceRead,
    responses=responses(InvalidSerial, SerialNotFound),
    summary="Trace a unit back to its project, records, methodology versions and signed batches (authority)",
    description="`serial`: one unit (`{prefix}-{vintage}-{n}`) or a block (its first unit is traced). Each "
    "batch shows its key id, stored body hash and whether the stored body still hashes to it.",
)
async def trace(
    serial: Text,
    session: Session,
    principal: Authority,
    records_limit: Annotated[Int32, Query(ge=0, le=1000)] = 100,
    batches_limit: Annotated[Int32, Query(ge=1, le=5000)] = 500,
):
    return await registry.trace(session, serial, records_limit=records_limit, batches_limit=batches_limit)


# --- calendar and prices --------------------------------------------------------------------


@router.post(
    "/calendar",
    response_model=CalendarDay,
    responses=responses(InvalidDate),
    summary="Declare a working day or a day off (authority)",
    description="For years the Chinese calendar package does not know yet (or to correct it): the "
    "table wins for the dates it has. Publicity ends and trading days follow it.",
)
async def set_calendar_day(data: CalendarEntryIn, session: Session, principal: Authority):
    return await prices.set_day(session, principal, data)


@router.get(
    "/calendar",
    response_model=list[CalendarDay],
    responses=responses(InvalidRange, InvalidDate),
    dependencies=[Public],
    summary="Working and trading days between two dates, and who says so (anyone)",
)
async def get_calendar(
    session: Session, from_: Annotated[Day, Query(alias="from")], to: Annotated[Day, Query()]
):
    return await prices.days(session, from_, to)


@router.post(
    "/prices",
    response_model=PriceRead,
    responses=responses(InvalidPrice, NotATradingDay, FutureDate, InvalidDate),
    summary="Record the national carbon market's closing price of a day (authority, HB 17)",
    description='`price_fen` (integer) or `price` (yuan as a decimal string, e.g. "78.45"). Weekends and '
    "holidays: 422 `not_a_trading_day`. Recording a day again corrects it (audited).",
)
async def record_price(data: PriceIn, session: Session, principal: Authority):
    return await prices.record_price(session, principal, data)


@router.get(
    "/prices",
    response_model=list[PriceRead],
    dependencies=[Public],
    summary="Recorded closing prices between two dates, newest first (anyone)",
)
async def list_prices(
    session: Session, from_: Annotated[Day, Query(alias="from")], to: Annotated[Day, Query()]
):
    return await prices.list_prices(session, from_, to)


@router.get(
    "/reference-price",
    response_model=ReferencePrice,
    responses=responses(NotEnoughPrices, InvalidDate),
    dependencies=[Public],
    summary="The reference price on a date: the average close of the 10 previous trading days (anyone)",
    description="Trading days are strictly before `on`; each needs a recorded price, otherwise 409 "
    "`not_enough_prices` naming the missing days.",
)
async def reference_price(session: Session, on: Day):
    return await prices.reference_price(session, on)


# --- disclosure -----------------------------------------------------------------------------


@public_router.get(
    "/projects",
    response_model=Page[ProjectRead],
    dependencies=[Public],
    responses=responses(InvalidCursor),
    summary="Every project, with its publicity status and report (public)",
)
async def public_projects(
    session: Session,
    status: StatusFilter = None,
    owner_org_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await service.list_(
        session, None, status=status, owner_org_id=owner_org_id, limit=limit, cursor=cursor
    )


@public_router.get(
    "/projects/{project_id}",
    response_model=ProjectRead,
    dependencies=[Public],
    responses=responses(ProjectNotFound),
    summary="A project (public)",
)
async def public_project(project_id: uuid.UUID, session: Session):
    return await service.read(session, None, project_id)


@public_router.get(
    "/projects/{project_id}/report",
    response_model=ReportCheck,
    dependencies=[Public],
    responses=responses(ProjectNotFound),
    summary="Recompute the project's report and compare its SHA-256 with the stored one (public)",
)
async def public_report(project_id: uuid.UUID, session: Session):
    return await service.check_report(session, None, project_id)


@public_router.get(
    "/projects/{project_id}/objections",
    response_model=list[ObjectionRead],
    dependencies=[Public],
    responses=responses(ProjectNotFound),
    summary="Objections and the owner's answers (public)",
)
async def public_objections(project_id: uuid.UUID, session: Session):
    return await service.list_objections(session, None, project_id)


@public_router.post(
    "/projects/{project_id}/objections",
    status_code=status.HTTP_201_CREATED,
    response_model=ObjectionRead,
    dependencies=[Public],
    responses=responses(ProjectNotFound, PublicityClosed),
    summary="Object to a project during its publicity (anyone)",
    description="The owner must answer every objection before submitting the project. After the "
    "publicity: 409 `publicity_closed`. `contact` is seen only by the owner and the authority.",
)
async def file_objection(project_id: uuid.UUID, data: ObjectionCreate, session: Session):
    return await service.file_objection(session, project_id, data, "public")


@public_router.get(
    "/issuances",
    response_model=Page[IssuanceRead],
    dependencies=[Public],
    responses=responses(InvalidCursor),
    summary="Every issuance, newest first (public)",
)
async def public_issuances(session: Session, limit: Limit = 50, cursor: Cursor = None):
    return await registry.list_issuances(session, limit=limit, cursor=cursor)


@public_router.get(
    "/retirements",
    response_model=Page[PublicRetirement],
    dependencies=[Public],
    responses=responses(InvalidCursor),
    summary="Every retirement with its certificate, newest first (public)",
)
async def public_retirements(session: Session, limit: Limit = 50, cursor: Cursor = None):
    return await registry.list_retirements(session, None, limit=limit, cursor=cursor)


@public_router.get(
    "/totals", response_model=Totals, dependencies=[Public], summary="Platform totals (public)"
)
async def public_totals(session: Session):
    return await registry.totals(session)


@certificates_router.get(
    "/{number}.pdf",
    response_class=Response,
    dependencies=[public(3600)],  # a certificate never changes
    responses={200: {"content": {"application/pdf": {}}}, **responses(CertificateNotFound)},
    summary="The certificate as PDF (public)",
)
async def certificate_pdf(number: Text, session: Session):
    row = await registry.certificate(session, number)
    return Response(
        row.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{row.certificate_number}.pdf"'},
    )


@certificates_router.get(
    "/{number}",
    response_model=CertificatePublic,
    dependencies=[public(3600)],
    responses=responses(CertificateNotFound),
    summary="Verify a retirement certificate (public): its content and SHA-256",
    description="Recompute SHA-256 over `content` as canonical JSON (sorted keys, separators `,` and `:`, "
    "UTF-8, non-ASCII kept) and compare with `content_sha256` and the hash printed on the PDF.",
)
async def certificate(number: Text, session: Session):
    return await registry.public_certificate(session, number)
