"""Errors of the methodology and exchange-rule catalogue, each with its stable ``code``."""

from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class MethodologyNotFound(NotFound):
    code, title = "methodology_not_found", "No such methodology version"


class ExchangeRuleNotFound(NotFound):
    code, title = "exchange_rule_not_found", "No such exchange-rule version"


class NoRuleInForce(NotFound):
    code, title = "no_rule_in_force", "No exchange-rule version is in force at this moment"


class VersionImmutable(Conflict):
    code, title = "version_immutable", "Only a draft can be edited; change means a new version"


class InvalidTransition(Conflict):
    code, title = "invalid_transition", "The version is not in a state that allows this"


class OverlappingPeriod(Conflict):
    code, title = "overlapping_effective_period", "The effective period overlaps another published version"


class CodeTypeMismatch(Conflict):
    code, title = (
        "code_behaviour_type_mismatch",
        "Every version of a methodology code has the same behaviour type",
    )


class VersionExists(Conflict):
    code, title = "version_exists", "This version number is taken"


class InvalidBehaviourType(InvalidInput):
    code, title = "invalid_behaviour_type", "Behaviour types are lower-case snake_case, 2–50 characters"


class InvalidCode(InvalidInput):
    code, title = (
        "invalid_code",
        "Methodology codes are lower-case letters, digits, '.', '_' or '-', 2–50 characters",
    )


class InvalidFactor(InvalidInput):
    code, title = "invalid_factor", "Emission factors are grams CO2e per unit: baseline > 0, project ≥ 0"


class IncompleteFactors(InvalidInput):
    code, title = (
        "incomplete_factors",
        "Give both baseline and project factors, or the net reduction per unit",
    )


class InconsistentNetFactor(InvalidInput):
    code, title = (
        "inconsistent_net_factor",
        "The net factor must equal baseline − project when all three are given",
    )


class BaselineBelowProject(InvalidInput):
    code, title = "baseline_below_project", "The baseline emits less than the project: nothing is reduced"


class NonPositiveNetFactor(InvalidInput):
    code, title = "non_positive_net_factor", "The net reduction per unit must be greater than zero"


class InvalidBounds(InvalidInput):
    code, title = (
        "invalid_bounds",
        "Plausibility bounds must be > 0, and the daily one at least the per-record one",
    )


class NaiveDatetime(InvalidInput):
    code, title = "naive_datetime", "Times must carry a UTC offset (RFC 3339)"


class InvalidPeriod(InvalidInput):
    code, title = "invalid_effective_period", "effective_to must be later than effective_from"


class NonPositiveRate(InvalidInput):
    code, title = "non_positive_rate", "points_per_gram must be greater than zero"


class InvalidCap(InvalidInput):
    code, title = "invalid_cap", "Daily caps are whole points greater than zero"


class InvalidLifetime(InvalidInput):
    code, title = "invalid_lifetime", "The lot lifetime is a whole number of days, at least 1"


class LifetimeTooLong(InvalidInput):
    code, title = "lifetime_too_long", "Points expire at most 10 years (3650 days) after crediting (SZ 22)"


class DraftsHidden(Forbidden):
    """Listing drafts or versions under review needs the authority's token."""

    code, title = "drafts_not_public", "Only published and retired versions are public"
