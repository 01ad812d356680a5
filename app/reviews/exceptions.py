from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class ReviewNotFound(NotFound):
    code, title = "review_not_found", "No such review panel"


class NotEnoughExperts(Conflict):
    code, title = "not_enough_experts", "Fewer eligible experts than the panel needs"


class PanelAlreadyOpen(Conflict):
    code, title = "panel_already_open", "This subject already has an open review panel"


class PanelClosed(Conflict):
    code, title = "panel_closed", "The panel has been decided"


class OpinionAlreadySubmitted(Conflict):
    code, title = "opinion_already_submitted", "You already gave your opinion on this panel"


class NotOnPanel(Forbidden):
    code, title = "not_on_panel", "You are not a member of this panel"


class OpinionsMissing(Conflict):
    code, title = "opinions_missing", "Not enough opinions are in to decide"


class ReviewNotPassed(Conflict):
    code, title = "review_not_passed", "The subject's latest expert review has not passed"


class InvalidPanel(InvalidInput):
    code, title = "invalid_panel", "The panel's size, quorum or seed is not acceptable"


class SubjectManagedElsewhere(InvalidInput):
    code, title = "subject_managed_elsewhere", "Reviews of this subject type are opened through its own route"


class NotAnExpert(Forbidden):
    code, title = "not_an_expert", "Only experts have panels of their own"


class DeclarationRequired(Conflict):
    code, title = (
        "declaration_required",
        "Declare whether you have a conflict of interest with the subject first",
    )
    variants = ("conflict_declared",)


class AlreadyDeclared(Conflict):
    code, title = "already_declared", "You already made your declaration on this panel"
