"""Who may call what: the function-level authorisation table (OWASP API5), one row per operation.

Written by hand from the API contract, not read from the code, so a route whose dependency
drifts from its intended audience fails ``test_api5_function_level``. Every operation of the
OpenAPI document must have a row (``test_api9_inventory``): a new route means a new row here.

``ORG_ADMIN`` routes take an organisation's admin account; the suite's operator acts with a
client-credentials token, which is not an admin account, so it is refused there.
"""

ANONYMOUS = "anonymous"
ALL_ROLES = frozenset(
    {
        "anonymous",
        "authority",
        "operator",
        "merchant",
        "scene_operator",
        "verifier",
        "buyer",
        "expert",
        "user",
    }
)
PUBLIC = ALL_ROLES
SIGNED_IN = ALL_ROLES - {ANONYMOUS}
AUTHORITY = frozenset({"authority"})
OPERATOR = frozenset({"operator"})
USER = frozenset({"user"})
EXPERT = frozenset({"expert"})
SCENE_OPERATOR = frozenset({"scene_operator"})
MERCHANT = frozenset({"merchant"})
VERIFIER = frozenset({"verifier"})
BUYER = frozenset({"buyer"})
ORG_ADMIN = frozenset({"merchant", "scene_operator", "verifier", "buyer"})
WEBHOOK_ORGS = frozenset({"operator", "merchant", "scene_operator", "verifier", "buyer"})
# The person's own session on the platform (the /me cookie), which no token is: every token is refused (403
# platform_session_required), anonymous callers 401. tests/users/test_me_pages.py calls these with the session.
PERSON_SESSION: frozenset[str] = frozenset()

# Routes outside /v1: operations (liveness, readiness, metrics) and the JWKS at its well-known path.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/.well-known/jwks.json"})

ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/v1/auth/token"): PUBLIC,
    ("GET", "/.well-known/jwks.json"): PUBLIC,
    # organisations
    ("POST", "/v1/organizations"): PUBLIC,
    ("GET", "/v1/organizations"): AUTHORITY,
    ("GET", "/v1/organizations/{org_id}"): SIGNED_IN,  # object-level: the authority, or the org itself
    ("POST", "/v1/organizations/{org_id}/approve"): AUTHORITY,
    ("POST", "/v1/organizations/{org_id}/reject"): AUTHORITY,
    ("POST", "/v1/organizations/{org_id}/suspend"): AUTHORITY,
    ("POST", "/v1/organizations/{org_id}/reinstate"): AUTHORITY,
    ("PUT", "/v1/organizations/{org_id}/allowed-scopes"): AUTHORITY,
    ("PUT", "/v1/organizations/{org_id}/trusted-enrolment"): AUTHORITY,
    ("POST", "/v1/organizations/{org_id}/keys"): ORG_ADMIN,
    ("GET", "/v1/organizations/{org_id}/keys"): ORG_ADMIN,
    ("DELETE", "/v1/organizations/{org_id}/keys/{kid}"): ORG_ADMIN,
    ("POST", "/v1/organizations/{org_id}/redirect-uris"): ORG_ADMIN,  # then: an operator's own admin
    ("GET", "/v1/organizations/{org_id}/redirect-uris"): AUTHORITY
    | OPERATOR,  # object-level: the authority, its admin
    ("DELETE", "/v1/organizations/{org_id}/redirect-uris/{uri_id}"): ORG_ADMIN,
    # methodologies and exchange rules: the authority writes, anyone reads
    ("POST", "/v1/methodologies"): AUTHORITY,
    ("GET", "/v1/methodologies"): PUBLIC,
    ("GET", "/v1/methodologies/{version_id}"): PUBLIC,
    ("PATCH", "/v1/methodologies/{version_id}"): AUTHORITY,
    ("POST", "/v1/methodologies/{version_id}/submit"): AUTHORITY,
    ("POST", "/v1/methodologies/{version_id}/publish"): AUTHORITY,
    ("POST", "/v1/methodologies/{version_id}/retire"): AUTHORITY,
    ("POST", "/v1/exchange-rules"): AUTHORITY,
    ("GET", "/v1/exchange-rules"): PUBLIC,
    ("GET", "/v1/exchange-rules/current"): PUBLIC,
    ("GET", "/v1/exchange-rules/{version_id}"): PUBLIC,
    ("PATCH", "/v1/exchange-rules/{version_id}"): AUTHORITY,
    ("POST", "/v1/exchange-rules/{version_id}/submit"): AUTHORITY,
    ("POST", "/v1/exchange-rules/{version_id}/publish"): AUTHORITY,
    ("POST", "/v1/exchange-rules/{version_id}/retire"): AUTHORITY,
    # people, entrustment, points
    ("POST", "/v1/operator/users"): OPERATOR,
    ("DELETE", "/v1/operator/users/{external_user_id}"): OPERATOR,
    ("POST", "/v1/operator/users/{external_user_id}/tokens"): OPERATOR,
    ("GET", "/v1/operator/users/{external_user_id}/account"): OPERATOR,
    ("POST", "/v1/operator/behaviour-batches"): OPERATOR,
    ("GET", "/v1/operator/behaviour-batches"): OPERATOR,  # the operator's client token or its staff's
    ("GET", "/v1/operator/behaviour-batches/{batch_id}"): OPERATOR,  # object-level: only its own (404)
    ("GET", "/v1/me/export"): PERSON_SESSION,
    ("DELETE", "/v1/me"): PERSON_SESSION,
    ("GET", "/v1/me/account"): USER,
    ("GET", "/v1/me/ledger"): USER,
    ("GET", "/v1/me/behaviours"): USER,
    ("POST", "/v1/points/accounts/{user_id}/clawback"): AUTHORITY,
    # expert pool and review panels
    ("POST", "/v1/experts"): AUTHORITY,
    ("GET", "/v1/experts"): AUTHORITY,
    ("GET", "/v1/experts/{expert_id}"): AUTHORITY,
    ("PATCH", "/v1/experts/{expert_id}"): AUTHORITY,
    ("GET", "/v1/public/experts"): PUBLIC,
    ("POST", "/v1/reviews"): AUTHORITY,
    ("GET", "/v1/reviews"): AUTHORITY | EXPERT,
    ("GET", "/v1/reviews/{panel_id}"): AUTHORITY | EXPERT,
    ("GET", "/v1/reviews/{panel_id}/draw"): PUBLIC,
    ("POST", "/v1/reviews/{panel_id}/opinions"): EXPERT,
    ("POST", "/v1/reviews/{panel_id}/declaration"): EXPERT,
    ("POST", "/v1/reviews/{panel_id}/decision"): AUTHORITY,
    # scenes
    ("POST", "/v1/scenes"): SCENE_OPERATOR,
    ("GET", "/v1/scenes"): AUTHORITY | SCENE_OPERATOR,
    ("GET", "/v1/scenes/{scene_id}"): AUTHORITY | SCENE_OPERATOR,
    ("PATCH", "/v1/scenes/{scene_id}"): SCENE_OPERATOR,
    ("POST", "/v1/scenes/{scene_id}/submit"): SCENE_OPERATOR,
    ("POST", "/v1/scenes/{scene_id}/review"): AUTHORITY,
    ("POST", "/v1/scenes/{scene_id}/suspend"): AUTHORITY,
    ("POST", "/v1/scenes/{scene_id}/reinstate"): AUTHORITY,
    ("POST", "/v1/scenes/{scene_id}/revoke"): AUTHORITY,
    ("GET", "/v1/public/scenes"): PUBLIC,
    ("GET", "/v1/public/scenes/behaviour-types"): PUBLIC,
    ("GET", "/v1/public/scenes/{scene_id}"): PUBLIC,
    # rewards mall
    ("GET", "/v1/mall/items"): PUBLIC,
    ("GET", "/v1/mall/items/{item_id}"): PUBLIC,
    ("POST", "/v1/mall/items"): MERCHANT,
    ("PATCH", "/v1/mall/items/{item_id}"): MERCHANT,
    ("POST", "/v1/mall/items/{item_id}/pause"): MERCHANT,
    ("POST", "/v1/mall/items/{item_id}/resume"): MERCHANT,
    ("POST", "/v1/mall/items/{item_id}/end"): MERCHANT,
    ("GET", "/v1/merchant/items"): MERCHANT,
    ("POST", "/v1/merchant/vouchers/{code}/redeem"): MERCHANT,
    ("GET", "/v1/merchant/orders"): MERCHANT,
    ("GET", "/v1/merchant/statement"): MERCHANT,
    ("GET", "/v1/merchant/reports/used-points"): MERCHANT,
    ("POST", "/v1/me/orders"): USER,
    ("GET", "/v1/me/orders"): USER,
    ("GET", "/v1/me/orders/{order_id}"): USER,
    ("GET", "/v1/me/orders/{order_id}/voucher.svg"): USER,
    ("GET", "/v1/me/orders/{order_id}/voucher.png"): USER,
    ("POST", "/v1/me/orders/{order_id}/cancel"): USER,
    ("POST", "/v1/me/operator-redemptions"): USER,
    ("POST", "/v1/operator/redemptions/{operator_order_id}/reverse"): OPERATOR,
    ("GET", "/v1/operator/redemptions"): OPERATOR,
    ("GET", "/v1/operator/reports/used-points"): OPERATOR,
    ("GET", "/v1/reports/used-points"): AUTHORITY,
    # certified emission reductions
    ("POST", "/v1/cer/projects"): OPERATOR,
    ("GET", "/v1/cer/projects"): AUTHORITY | OPERATOR | VERIFIER,
    ("GET", "/v1/cer/projects/{project_id}"): AUTHORITY | OPERATOR | VERIFIER,
    ("GET", "/v1/cer/projects/{project_id}/objections"): AUTHORITY | OPERATOR | VERIFIER,
    ("GET", "/v1/cer/projects/{project_id}/records"): AUTHORITY | OPERATOR | VERIFIER,
    ("GET", "/v1/cer/projects/{project_id}/records/sample"): AUTHORITY | OPERATOR | VERIFIER,
    ("GET", "/v1/cer/projects/{project_id}/batches"): AUTHORITY | OPERATOR | VERIFIER,
    ("POST", "/v1/cer/projects/{project_id}/objections/{objection_id}/answer"): OPERATOR,
    ("POST", "/v1/cer/projects/{project_id}/submit"): OPERATOR,
    ("POST", "/v1/cer/projects/{project_id}/verifier"): AUTHORITY,
    ("POST", "/v1/cer/projects/{project_id}/verification"): VERIFIER,
    ("POST", "/v1/cer/projects/{project_id}/review"): AUTHORITY,
    ("POST", "/v1/cer/projects/{project_id}/filing"): AUTHORITY,
    ("POST", "/v1/cer/projects/{project_id}/issue"): AUTHORITY,
    ("POST", "/v1/cer/projects/{project_id}/clawback"): AUTHORITY,
    ("POST", "/v1/cer/accounts"): OPERATOR | BUYER,
    ("GET", "/v1/cer/accounts/me"): OPERATOR | BUYER,
    ("GET", "/v1/cer/accounts/{org_id}"): AUTHORITY,
    ("POST", "/v1/cer/transfers"): OPERATOR | BUYER,
    ("GET", "/v1/cer/transfers"): AUTHORITY | OPERATOR | BUYER,
    ("POST", "/v1/cer/retirements"): OPERATOR | BUYER,
    ("GET", "/v1/cer/retirements"): AUTHORITY | OPERATOR | BUYER,
    ("GET", "/v1/cer/trace/{serial}"): AUTHORITY,
    ("POST", "/v1/cer/calendar"): AUTHORITY,
    ("GET", "/v1/cer/calendar"): PUBLIC,
    ("POST", "/v1/cer/prices"): AUTHORITY,
    ("GET", "/v1/cer/prices"): PUBLIC,
    ("GET", "/v1/cer/reference-price"): PUBLIC,
    ("GET", "/v1/public/cer/projects"): PUBLIC,
    ("GET", "/v1/public/cer/projects/{project_id}"): PUBLIC,
    ("GET", "/v1/public/cer/projects/{project_id}/report"): PUBLIC,
    ("GET", "/v1/public/cer/projects/{project_id}/objections"): PUBLIC,
    ("POST", "/v1/public/cer/projects/{project_id}/objections"): PUBLIC,
    ("GET", "/v1/public/cer/issuances"): PUBLIC,
    ("GET", "/v1/public/cer/retirements"): PUBLIC,
    ("GET", "/v1/public/cer/totals"): PUBLIC,
    ("GET", "/v1/public/certificates/{number}.pdf"): PUBLIC,
    ("GET", "/v1/public/certificates/{number}"): PUBLIC,
    # disclosure
    ("GET", "/v1/public/operators"): PUBLIC,
    ("GET", "/v1/public/merchants"): PUBLIC,
    ("GET", "/v1/public/scene-operators"): PUBLIC,
    ("GET", "/v1/public/verifiers"): PUBLIC,
    ("GET", "/v1/public/totals"): PUBLIC,
    # webhooks: the catalogue is public; subscriptions are read by the organisation's staff and changed by its
    # admin; events are read by the organisation's staff and operators' clients
    ("GET", "/v1/webhooks/event-types"): PUBLIC,
    ("POST", "/v1/webhooks/subscriptions"): ORG_ADMIN,
    ("GET", "/v1/webhooks/subscriptions"): WEBHOOK_ORGS,
    ("GET", "/v1/webhooks/subscriptions/{subscription_id}"): WEBHOOK_ORGS,
    ("POST", "/v1/webhooks/subscriptions/{subscription_id}/pause"): ORG_ADMIN,
    ("POST", "/v1/webhooks/subscriptions/{subscription_id}/resume"): ORG_ADMIN,
    ("POST", "/v1/webhooks/subscriptions/{subscription_id}/rotate-secret"): ORG_ADMIN,
    ("DELETE", "/v1/webhooks/subscriptions/{subscription_id}"): ORG_ADMIN,
    ("GET", "/v1/events"): WEBHOOK_ORGS,
    # webhook deliveries: any staff of the subscribing organisation (object-level: its own subscriptions)
    ("GET", "/v1/webhooks/subscriptions/{subscription_id}/deliveries"): WEBHOOK_ORGS,
    ("GET", "/v1/webhooks/subscriptions/{subscription_id}/deliveries/{delivery_id}"): WEBHOOK_ORGS,
    ("POST", "/v1/webhooks/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"): WEBHOOK_ORGS,
    ("POST", "/v1/webhooks/subscriptions/{subscription_id}/redeliver-failed"): WEBHOOK_ORGS,
}
