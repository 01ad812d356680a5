from app.core.errors import Conflict, InvalidInput, NotFound


class SceneNotFound(NotFound):
    code, title = "scene_not_found", "No such scene"


class InvalidTransition(Conflict):
    code, title = "invalid_transition", "The scene is not in a state that allows this"


class ChangeUnderReview(Conflict):
    code, title = "change_under_review", "A change to this scene is under expert review"


class UnknownCategory(InvalidInput):
    code, title = "unknown_category", "Not a scene category"


class CoordinatesOutOfRange(InvalidInput):
    code, title = "coordinates_out_of_range", "Latitude must be within ±90 and longitude within ±180"


class InvalidDivisionCode(InvalidInput):
    code, title = "invalid_division_code", "Not a valid administrative division code"


class UnknownBehaviourType(InvalidInput):
    code, title = "unknown_behaviour_type", "Not a behaviour type scenes may record"


class InvalidEvidenceLink(InvalidInput):
    code, title = "invalid_evidence_link", "Evidence links must be http(s) URLs"


class IncompleteNearQuery(InvalidInput):
    code, title = "near_query_incomplete", "A near-me query needs both lat and lng"


class InvalidRadius(InvalidInput):
    code, title = "invalid_radius", "radius_m must be between 1 and 50,000 metres"
