"""the caller checked by the order's own statement: a person whose standing this process does not know orders in
one round trip, not two

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 07:00:00.000000
"""

from alembic import op

from app.core import migrate

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# Every authenticated request checks its caller's standing (app.auth.service.authenticate): for a person's token,
# the person not deleted, their operator approved, a live entrustment of that operator and, for a token of the
# authorization code flow, its refresh family not revoked. A process keeps a positive answer until a change is heard
# of (app.core.callers); a request whose caller is not kept read it first, on a connection of its own, before an
# order's statement. Now the order's statement checks it first (user_caller_may_act, the same conditions, read by
# the same indexes): ``p_check_caller`` true and the caller refused, it answers 'caller_refused' having done nothing
# (the Idempotency-Key not even looked at, as when the request was refused before its statement), and the service
# reads the standing as every route does, to answer why. mall_order_request is migration 0024's with that check
# alone (made below from its text, each change checked to apply once).

REQUEST_ARGS = (
    "bigint, text, text, text, timestamptz, uuid, uuid, uuid, int, timestamptz, uuid, bytea, bytea, int,"
    " uuid[], uuid[], text[], text[], text[], text[], int, text, text, boolean"
)

MAY_ACT = r"""
CREATE FUNCTION user_caller_may_act(p_user_id uuid, p_operator_id uuid, p_family uuid) RETURNS boolean
STABLE LANGUAGE sql AS $fn$
  SELECT EXISTS (
           SELECT 1 FROM users u, organizations o
            WHERE u.id = p_user_id AND o.id = p_operator_id AND u.deleted_at IS NULL AND o.status = 'approved'
              AND EXISTS (SELECT 1 FROM entrustments e
                           WHERE e.user_id = u.id AND e.operator_id = o.id AND e.withdrawn_at IS NULL))
     AND (p_family IS NULL
          OR NOT EXISTS (SELECT 1 FROM oauth_refresh_tokens
                          WHERE family_id = p_family AND revoked_at IS NOT NULL))
$fn$
"""
"""Whether a person's token may act: what ``app.auth.service`` checks of one (``users.repository.standings``
and ``auth.repository.family_revoked``), true or false."""


def order_request() -> str:
    return migrate.changed(
        migrate.earlier("0024").order_request(),
        (
            "p_body text, p_wait boolean\n)",
            "p_body text, p_wait boolean,\n  p_check_caller boolean, p_caller_family uuid\n)",
        ),
        (
            "BEGIN\n  IF p_lock IS NOT NULL THEN",
            "BEGIN\n"
            "  IF p_check_caller AND NOT user_caller_may_act(p_user_id, p_operator_id, p_caller_family) THEN\n"
            "    outcome := 'caller_refused';  -- nothing done: the service reads the standing to say why\n"
            "    RETURN NEXT;\n"
            "    RETURN;\n"
            "  END IF;\n"
            "  IF p_lock IS NOT NULL THEN",
        ),
    )


def upgrade() -> None:
    op.execute(MAY_ACT)
    op.execute(f"DROP FUNCTION mall_order_request({REQUEST_ARGS})")
    op.execute(order_request())


def downgrade() -> None:
    op.execute(f"DROP FUNCTION mall_order_request({REQUEST_ARGS}, boolean, uuid)")
    op.execute("DROP FUNCTION user_caller_may_act(uuid, uuid, uuid)")
    op.execute(migrate.earlier("0024").order_request())
