from app.core.errors import Conflict, DomainError, Forbidden, NotFound


class OrganizationNotFound(NotFound):
    code, title = "organization_not_found", "No such organisation"


class InvalidTransition(Conflict):
    code, title = "invalid_transition", "The organisation is not in a state that allows this"


class DuplicateOrganization(Conflict):
    code, title = "organization_exists", "An organisation of this kind with this credit code exists"


class UsernameTaken(Conflict):
    code, title = "username_taken", "This username is taken"


class KeyNotFound(NotFound):
    code, title = "key_not_found", "No such key"


class KeyExists(Conflict):
    code, title = "key_exists", "This key is already registered"


class InvalidKey(DomainError):
    status, code, title = 422, "invalid_jwk", "The key is not an acceptable public JWK"
    variants = ("unsupported_key", "weak_key", "private_key_material")


class NotYourOrganization(Forbidden):
    code, title = "not_your_organization", "You act for another organisation"


class NotAnOperator(Forbidden):
    code, title = "not_an_operator", "Only operators register keys"


class InvalidRedirectUri(DomainError):
    status, code, title = 422, "invalid_redirect_uri", "Not an acceptable redirect URI"


class RedirectUriExists(Conflict):
    code, title = "redirect_uri_exists", "This redirect URI is already registered"


class RedirectUriNotFound(NotFound):
    code, title = "redirect_uri_not_found", "No such redirect URI"


class NotAnOperatorOrganization(Conflict):
    code, title = "organization_not_operator", "Only an operator has this setting"
