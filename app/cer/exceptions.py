from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class ProjectNotFound(NotFound):
    code, title = "project_not_found", "No such CER project"


class ObjectionNotFound(NotFound):
    code, title = "objection_not_found", "No such objection"


class CertificateNotFound(NotFound):
    code, title = "certificate_not_found", "No such certificate"


class SerialNotFound(NotFound):
    code, title = "serial_not_found", "No unit has this serial"


class InvalidPeriod(InvalidInput):
    code, title = "invalid_period", "The project period is not acceptable"


class UnknownMethodology(InvalidInput):
    code, title = "unknown_methodology", "Not a methodology code of the catalogue"


class UnknownOrganization(InvalidInput):
    code, title = "unknown_organization", "No such approved organisation"


class OverlappingProject(Conflict):
    code, title = (
        "overlapping_project",
        "Another project of this owner covers part of the period and methodologies",
    )


class NoEligibleRecords(Conflict):
    code, title = "no_eligible_records", "No behaviour record is eligible for this project"


class InvalidProjectState(Conflict):
    code, title = "invalid_project_state", "The project is not in a state that allows this"


class PublicityNotOver(Conflict):
    code, title = "publicity_not_over", "The publicity period has not ended yet"


class PublicityClosed(Conflict):
    code, title = "publicity_closed", "The project is not in publicity: objections are closed"


class ObjectionsUnanswered(Conflict):
    code, title = "objections_unanswered", "Every objection must be answered first"


class ObjectionAlreadyAnswered(Conflict):
    code, title = "objection_already_answered", "This objection has been answered"


class NotOwner(Forbidden):
    code, title = "not_project_owner", "Only the project owner may do this"


class NotAVerifier(InvalidInput):
    code, title = "not_a_verifier", "The organisation is not an approved third-party verifier"


class SelfVerification(Conflict):
    code, title = "self_verification", "A verifier may not verify a report it compiled or its own project"


class NotAssignedVerifier(Forbidden):
    code, title = (
        "not_assigned_verifier",
        "Only the verifier assigned to the project may record its verification",
    )


class VerifiedExceedsClaimed(InvalidInput):
    code, title = "verified_exceeds_claimed", "Verified reductions cannot exceed those claimed"


class NotFiled(Conflict):
    code, title = "not_filed", "The project has not been filed by the authority"


class InvalidSerial(InvalidInput):
    code, title = "invalid_serial", "Not a serial of this registry"


class InvalidSelection(InvalidInput):
    code, title = "invalid_selection", "The unit selection is not consistent"


class InsufficientUnits(Conflict):
    code, title = "insufficient_units", "The account holds fewer units than asked for"


class UnitsNotHeld(Conflict):
    code, title = "units_not_held", "Some selected units are not held by this account"


class UnitsRetired(Conflict):
    code, title = "units_retired", "Some selected units are retired and can never move again"


class UnitsRevoked(Conflict):
    code, title = "units_revoked", "Some selected units were revoked"


class InvalidRecipient(InvalidInput):
    code, title = "invalid_recipient", "The recipient cannot hold CERs"


class BeneficiaryRequired(InvalidInput):
    code, title = "beneficiary_required", "A retirement names its beneficiary"


class InvalidPrice(InvalidInput):
    code, title = "invalid_price", "Give one positive price: price_fen or price (yuan, 2 decimals at most)"


class NotATradingDay(InvalidInput):
    code, title = "not_a_trading_day", "The national carbon market does not trade on that day"


class NotEnoughPrices(Conflict):
    code, title = "not_enough_prices", "Fewer than 10 trading days have a recorded closing price"


class InvalidDate(InvalidInput):
    code, title = "invalid_date", "The date is outside what the registry handles (1990–2199)"


class InvalidRange(InvalidInput):
    code, title = "invalid_range", "from … to must span 1 to 366 days"


class FutureDate(InvalidInput):
    code, title = "future_date", "A closing price is recorded once the day is over"


class InvalidDocumentLink(InvalidInput):
    code, title = "invalid_document_link", "Document links must be http(s) URLs"
