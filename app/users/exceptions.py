from app.core.errors import Conflict, DomainError, NotFound


class InvalidIdentifier(DomainError):
    status, code, title = 422, "invalid_identifier", "Invalid identifier"


class NotEntrusted(NotFound):
    code, title = "not_entrusted", "This person has not entrusted this operator"


class ExternalIdTaken(Conflict):
    code, title = "external_user_id_taken", "This external user id belongs to another person"


class AlreadyEntrusted(Conflict):
    code, title = "already_entrusted", "This person already entrusted this operator under another external id"


class InvalidConsent(DomainError):
    status, code, title = 422, "invalid_consent", "Invalid consent"
