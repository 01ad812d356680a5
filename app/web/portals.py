"""Each role's own pages (its portal) and the name they go by, in one map: where staff land after signing in,
the header's link, the account page's button and the way back from the webhooks pages all read it, so a role's
portal is named the same everywhere."""

from app.auth.principal import Principal
from app.web.i18n import N_, gettext

PORTALS: dict[str, tuple[str, str]] = {
    "scene_operator": ("/scene-operator", N_("Your scenes")),
    "merchant": ("/merchant", N_("Back office")),
    "expert": ("/expert", N_("Your review panels")),
    "authority": ("/console", N_("Authority console")),
    "operator": ("/operator", N_("Operator console")),
    "verifier": ("/verifier", N_("Projects to verify")),
}
ACCOUNT = ("/organization", N_("Your account"))
"""The page of an organisation whose role has no portal (a buyer), or whose application is still decided on."""


def portal(principal: Principal | None) -> tuple[str, str] | None:
    """The portal of a signed-in principal, its name translated: the role's own pages, the organisation's account
    page for other staff of an organisation, none for a person or nobody."""
    if principal is None:
        return None
    if principal.role in PORTALS:
        href, label = PORTALS[principal.role]
    elif principal.org_id is not None:
        href, label = ACCOUNT
    else:
        return None
    return href, gettext(label)
