from app.core.errors import InvalidInput, NotFound


class ExpertNotFound(NotFound):
    code, title = "expert_not_found", "No such expert"


class UnknownField(InvalidInput):
    code, title = "unknown_field", "Not a field of expertise this platform knows"


class UnknownAffiliationOrg(InvalidInput):
    code, title = "unknown_affiliation_org", "The affiliation names an organisation that is not registered"
