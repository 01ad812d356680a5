from app.core.errors import DomainError, Forbidden, Unauthorized


class InvalidGrant(DomainError):
    status, code, title = 400, "invalid_grant", "Invalid credentials"
    variants = (
        "code_expired",
        "code_reused",
        "invalid_code_verifier",
        "redirect_uri_mismatch",
        "refresh_token_expired",
        "refresh_token_reused",
        "token_revoked",
        "entrustment_withdrawn",
    )


class GrantRevoked(InvalidGrant):
    """A replayed code or refresh token: what it issued before is revoked, and the revocation stands."""

    keep_changes = True


class InvalidTokenRequest(DomainError):
    status, code, title = 400, "invalid_request", "A parameter of the token request is missing or malformed"


class UnsupportedGrant(DomainError):
    status, code, title = 400, "unsupported_grant_type", "Unsupported grant type"


class InvalidClient(Unauthorized):
    code, title = "invalid_client", "Client authentication failed"
    variants = (
        "malformed_assertion",
        "unknown_client",
        "unknown_kid",
        "key_revoked",
        "invalid_claims",
        "invalid_audience",
        "invalid_signature",
        "invalid_jwk",
        "algorithm_not_allowed",
        "assertion_expired",
        "assertion_not_yet_valid",
        "assertion_too_long",
        "unauthorized_client",
    )


class AssertionReplayed(Unauthorized):
    code, title = "assertion_replayed", "This client assertion was already used"


class NotAuthenticated(Unauthorized):
    code, title = "not_authenticated", "Authentication required"


class InvalidToken(Unauthorized):
    code, title = "invalid_token", "Invalid or expired token"
    variants = ("token_expired", "entrustment_withdrawn", "token_revoked")


class RoleForbidden(Forbidden):
    code, title = "forbidden_role", "Your role may not do this"


class ScopeRequired(Forbidden):
    """A user token without the scope a route needs; the problem names it (``scope``)."""

    code, title = "scope_required", "The person did not grant this application what this needs"


class AdminRequired(RoleForbidden):
    code = "admin_required"


class OrganizationNotActive(Forbidden):
    code, title = "organization_not_active", "The organisation is not approved or is suspended"
