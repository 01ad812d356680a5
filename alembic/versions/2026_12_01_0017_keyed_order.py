"""keyed order: an order's Idempotency-Key checked by the order's own call, one round trip fewer

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 07:00:00.000000
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# mall_place_keyed_order: idempotency_begin (migration 0015), then mall_place_order (0012) only if the key is
# free (its transaction-scoped lock taken) and unused (no record): an order's key and the order in one call.
# Each is a statement of this VOLATILE function, so the order's statements take their snapshots after the
# key's lock is held, as they did when they were the request's next round trip. The key_ columns are what
# idempotency_begin answered (app.core.idempotency.Deferred.settle reads them); the others mall_place_order's,
# null when the key stopped the order.
KEYED = r"""
CREATE FUNCTION mall_place_keyed_order(
  p_lock bigint, p_scope text, p_key text,
  p_item_id uuid, p_user_id uuid, p_operator_id uuid, p_quantity int, p_now timestamptz,
  p_order_id uuid, p_digest bytea, p_sealed bytea, p_first_slot int
) RETURNS TABLE (
  key_locked boolean, key_fingerprint text, key_status_code int, key_body bytea, key_content_type text,
  outcome text, merchant_id uuid, title text, points_price bigint, per_user_limit int,
  sale_starts_at timestamptz, sale_ends_at timestamptz, operator_ids uuid[],
  expiry_policy text, status text, stock int, points bigint, expires_at timestamptz,
  entry_id bigint, held int
) VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  k record;
BEGIN
  SELECT b.locked, b.fingerprint, b.status_code, b.body, b.content_type INTO k
    FROM idempotency_begin(p_lock, p_scope, p_key, p_now) b;
  IF NOT k.locked OR k.fingerprint IS NOT NULL THEN
    key_locked := k.locked; key_fingerprint := k.fingerprint; key_status_code := k.status_code;
    key_body := k.body; key_content_type := k.content_type;
    RETURN NEXT;
    RETURN;
  END IF;
  RETURN QUERY
    SELECT true, NULL::text, NULL::int, NULL::bytea, NULL::text, o.*
      FROM mall_place_order(p_item_id, p_user_id, p_operator_id, p_quantity, p_now,
                            p_order_id, p_digest, p_sealed, p_first_slot) o;
END
$fn$
"""


def upgrade() -> None:
    op.execute(KEYED)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION mall_place_keyed_order(bigint, text, text, uuid, uuid, uuid, int, timestamptz,"
        " uuid, bytea, bytea, int)"
    )
