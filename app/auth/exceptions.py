from app.core.errors import DomainError, Forbidden, Unauthorized


class InvalidGrant(DomainError):
    status, code, title = 400, "invalid_grant", "Invalid credentials"


class UnsupportedGrant(DomainError):
    status, code, title = 400, "unsupported_grant_type", "Unsupported grant type"


class InvalidClient(Unauthorized):
    code, title = "invalid_client", "Client authentication failed"


class AssertionReplayed(Unauthorized):
    code, title = "assertion_replayed", "This client assertion was already used"


class NotAuthenticated(Unauthorized):
    code, title = "not_authenticated", "Authentication required"


class InvalidToken(Unauthorized):
    code, title = "invalid_token", "Invalid or expired token"


class RoleForbidden(Forbidden):
    code, title = "forbidden_role", "Your role may not do this"


class OrganizationNotActive(Forbidden):
    code, title = "organization_not_active", "The organisation is not approved or is suspended"
