from app.core.errors import Conflict, DomainError, Forbidden, NotFound


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


class PersonConfirmationRequired(Forbidden):
    """An operator the authority does not trust to enrol on its own word: the person confirms themselves."""

    code, title = "person_confirmation_required", "The person confirms their entrustment themselves"

    def __init__(self, detail: str | None = None, **kw):
        super().__init__(
            detail
            or "people confirm their own entrustment: send the person to /oauth/authorize (the authorization "
            "code flow with PKCE, see docs/walkthrough.md) and get their user tokens with your refresh token; "
            "only operators the authority marks trusted for enrolment may enrol people on their own word",
            **kw,
        )
