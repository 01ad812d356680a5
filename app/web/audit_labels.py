"""The audit log's actions and subject types in words, with their codes beside them.

Every action the platform records (``audit.record(action=...)``) and every subject type has its words
here, so the authority reads 核证减排量已签发 where the log holds ``cer.issued``; the code stays shown,
small and exact, because the audit search filters by it. A code missing here is shown as the code alone
(``tests/web/test_audit_labels.py`` fails when an action in the source has no words).
"""

from markupsafe import Markup

from app.web.i18n import N_, gettext

ACTIONS: dict[str, str] = {
    # organisations, their keys and redirect addresses
    "organization.applied": N_("Organisation applied to join"),
    "organization.approve": N_("Organisation's application approved"),
    "organization.reject": N_("Organisation's application rejected"),
    "organization.suspend": N_("Organisation suspended"),
    "organization.reinstate": N_("Organisation reinstated"),
    "organization.allowed_scopes_set": N_("Operator's allowed scopes set"),
    "organization.trusted_enrolment_set": N_("Operator's trusted enrolment set"),
    "key.registered": N_("Signing key registered"),
    "key.revoked": N_("Signing key revoked"),
    "redirect_uri.registered": N_("Redirect address registered"),
    "redirect_uri.removed": N_("Redirect address removed"),
    # scenes
    "scene.created": N_("Scene created"),
    "scene.edited": N_("Scene edited"),
    "scene.submitted": N_("Scene submitted for review"),
    "scene.review_opened": N_("Expert review of the scene opened"),
    "scene.approved": N_("Scene application approved"),
    "scene.rejected": N_("Scene application rejected"),
    "scene.suspend": N_("Scene suspended"),
    "scene.reinstate": N_("Scene reinstated"),
    "scene.revoke": N_("Scene revoked"),
    "scene.change_proposed": N_("Change to the scene proposed"),
    "scene.change_approved": N_("Change to the scene approved"),
    "scene.change_rejected": N_("Change to the scene rejected"),
    # methodologies and exchange rules
    "methodology.create": N_("Methodology version drafted"),
    "methodology.update": N_("Methodology version edited"),
    "methodology.submit": N_("Methodology version submitted for review"),
    "methodology.publish": N_("Methodology version published"),
    "methodology.period_closed": N_("Methodology version's period closed"),
    "methodology.retire": N_("Methodology version retired from use"),
    "exchange_rule.create": N_("Exchange rule version drafted"),
    "exchange_rule.update": N_("Exchange rule version edited"),
    "exchange_rule.submit": N_("Exchange rule version submitted for review"),
    "exchange_rule.publish": N_("Exchange rule version published"),
    "exchange_rule.period_closed": N_("Exchange rule version's period closed"),
    "exchange_rule.retire": N_("Exchange rule version retired from use"),
    # experts and their reviews
    "expert.created": N_("Expert added to the pool"),
    "expert.updated": N_("Expert's details updated"),
    "review.panel_opened": N_("Review panel formed"),
    "review.conflict_declared": N_("Expert declared a conflict of interest"),
    "review.no_conflict_declared": N_("Expert declared no conflict of interest"),
    "review.opinion_submitted": N_("Expert's opinion submitted"),
    "review.decided": N_("Review panel's conclusion decided"),
    # certified emission reductions
    "cer.project_created": N_("CER project created"),
    "cer.objection_filed": N_("Objection lodged"),
    "cer.objection_answered": N_("Objection answered"),
    "cer.project_submitted": N_("CER project submitted for verification"),
    "cer.verifier_assigned": N_("Verifier assigned"),
    "cer.project_verified": N_("CER project verified"),
    "cer.review_opened": N_("Expert review of the CER project opened"),
    "cer.project_filed": N_("CER project filed"),
    "cer.project_rejected": N_("CER project rejected"),
    "cer.issued": N_("CER issued"),
    "cer.transferred": N_("CER transferred"),
    "cer.retired": N_("CER retired"),
    "cer.clawback": N_("CER clawed back"),
    "cer.calendar_set": N_("Working-day calendar set"),
    "cer.price_recorded": N_("Reference price recorded"),
    # points and the mall
    "points.batch_credited": N_("Batch of points credited"),
    "points.redeemed": N_("Points redeemed"),
    "points.refunded": N_("Points refunded to the person"),
    "points.clawback": N_("Points clawed back from the person"),
    "points.expired": N_("Points lapsed"),
    "mall.voucher_redeemed": N_("Voucher redeemed by the merchant"),
    "mall.order_cancelled": N_("Mall order cancelled"),
    "mall.vouchers_expired": N_("Vouchers lapsed"),
    "mall.operator_redemption": N_("Points spent with an operator"),
    "mall.operator_redemption_reversed": N_("Spending with an operator reversed"),
    # people and their entrustments
    "entrustment.granted": N_("Entrustment granted"),
    "entrustment.confirmed": N_("Entrustment confirmed"),
    "entrustment.asserted_again": N_("Entrustment asserted again by the operator"),
    "entrustment.withdrawn": N_("Entrustment withdrawn"),
    "user.exported": N_("Personal data exported"),
    "user.deleted": N_("Account deleted"),
    "user_token.minted": N_("User token issued to a trusted operator"),
    # webhooks
    "webhook.subscription_created": N_("Webhook subscription created"),
    "webhook.subscription_paused": N_("Webhook subscription paused"),
    "webhook.subscription_resumed": N_("Webhook subscription resumed"),
    "webhook.secret_rotated": N_("Webhook secret replaced"),
    "webhook.subscription_deleted": N_("Webhook subscription deleted"),
    "webhook_subscription.disabled": N_("Webhook subscription disabled after failed deliveries"),
    "webhook_delivery.redeliver": N_("Webhook deliveries sent again"),
    # the sandbox clock
    "clock.advance": N_("Platform clock moved forward"),
    "clock.reset": N_("Platform clock reset"),
}

SUBJECT_TYPES: dict[str, str] = {
    "organization": N_("Organisation"),
    "user": N_("Person"),
    "scene": N_("Scene"),
    "methodology": N_("Methodology version"),
    "exchange_rule": N_("Exchange rule version"),
    "expert": N_("Expert"),
    "review_panel": N_("Review panel"),
    "cer_project": N_("CER project"),
    "cer_account": N_("CER account"),
    "cer_calendar": N_("Working-day calendar"),
    "cer_price": N_("Reference price"),
    "batch": N_("Batch"),
    "expiry": N_("Points expiry run"),
    "mall_order": N_("Mall order"),
    "mall_expiry": N_("Voucher expiry run"),
    "webhook_subscription": N_("Webhook subscription"),
    "platform_clock": N_("Platform clock"),
}


def _code(code: str, kind: str) -> Markup:
    """The code in monospace, breakable after each dot (long codes in a narrow column)."""
    parts = Markup(".<wbr>").join(code.split("."))
    return Markup('<code class="{}-code">{}</code>').format(kind, parts)


def _labelled(table: dict[str, str], code: str | None, kind: str) -> Markup:
    if not code:
        return Markup("")
    if code not in table:
        return Markup("<code>{}</code>").format(code)
    words = gettext(table[code])
    return Markup('<span class="audit-label">{} <small>{}</small></span>').format(words, _code(code, kind))


def audit_action(code: str | None) -> Markup:
    """``{{ e.action|audit_action }}``: 核证减排量已签发 ``cer.issued``."""
    return _labelled(ACTIONS, code, "action")


def audit_subject(code: str | None) -> Markup:
    """``{{ e.subject_type|audit_subject }}``: 核证减排量项目 ``cer_project``."""
    return _labelled(SUBJECT_TYPES, code, "subject")
