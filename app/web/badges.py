"""Statuses shown as badges: each with its label (translated when shown) and a tone for its colour.

Domains' statuses share one table so the same word always looks the same; a status missing here
is shown as it is, in the neutral tone.
"""

from dataclasses import dataclass

from app.web.i18n import N_, gettext

GOOD, WAITING, BAD, NEUTRAL = "good", "waiting", "bad", "neutral"

STATUSES: dict[str, tuple[str, str]] = {
    "pending": (N_("Pending"), WAITING),
    "submitted": (N_("Submitted"), WAITING),
    "under_review": (N_("Under review"), WAITING),
    "approved": (N_("Approved"), GOOD),
    "rejected": (N_("Rejected"), BAD),
    "suspended": (N_("Suspended"), BAD),
    "active": (N_("Active"), GOOD),
    "paused": (N_("Paused"), WAITING),
    "ended": (N_("Ended"), NEUTRAL),
    "published": (N_("Published"), GOOD),
    "draft": (N_("Draft"), NEUTRAL),
    "publicity": (N_("In publicity"), WAITING),
    "issued": (N_("Issued"), GOOD),
    "held": (N_("Held"), GOOD),
    "retired": (N_("Retired from use"), NEUTRAL),  # a methodology or exchange-rule version (废止, not 注销)
    "revoked": (N_("Revoked"), BAD),
    "valid": (N_("Valid"), GOOD),
    "flagged": (N_("Flagged"), BAD),
    "redeemed": (N_("Redeemed"), NEUTRAL),
    "expired": (N_("Expired"), NEUTRAL),
    "cancelled": (N_("Cancelled"), NEUTRAL),
    "open": (N_("Open"), WAITING),
    "pass": (N_("Passed"), GOOD),
    "fail": (N_("Failed"), BAD),
    "inactive": (N_("Inactive"), NEUTRAL),
    "disabled": (N_("Disabled"), BAD),
    "delivered": (N_("Delivered"), GOOD),
    "failed": (N_("Not delivered"), BAD),
}


@dataclass(frozen=True)
class Badge:
    label: str
    tone: str


def status_badge(status: str) -> Badge:
    label, tone = STATUSES.get(status, (status, NEUTRAL))
    return Badge(gettext(label) if status in STATUSES else label, tone)
