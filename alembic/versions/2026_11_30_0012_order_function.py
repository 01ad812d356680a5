"""order function: placing a mall order in one round trip (item rules, points, stock, per-person count, order)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 10:00:00.000000
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# mall_place_order: what app.mall.service.place_order did in five statements (the item, the account's
# lock, the FIFO debit, a savepoint, stock + per-person count + order), in one call and in the same
# order, so the lock order stays: the person's account → the item's stock slots → the per-person counter.
# It never raises for a refusal: ``outcome`` says which rule refused ('refused' for the item's own rules,
# which the service re-checks on the returned item to name them), and the request's transaction is rolled
# back by the caller. The points part is the ledger's debit (app.points.repository.DEBIT_SQL) unchanged.
PLACE_ORDER = r"""
CREATE FUNCTION mall_place_order(
  p_item_id uuid, p_user_id uuid, p_operator_id uuid, p_quantity int, p_now timestamptz,
  p_order_id uuid, p_digest bytea, p_sealed bytea, p_first_slot int,
  OUT outcome text, OUT merchant_id uuid, OUT title text, OUT points_price bigint, OUT per_user_limit int,
  OUT sale_starts_at timestamptz, OUT sale_ends_at timestamptz, OUT operator_ids uuid[],
  OUT expiry_policy text, OUT status text, OUT stock int, OUT points bigint, OUT expires_at timestamptz,
  OUT entry_id bigint, OUT held int
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_merchant uuid; v_title text; v_price bigint; v_limit int; v_starts timestamptz; v_ends timestamptz;
  v_operators uuid[]; v_policy text; v_status text; v_limited boolean; v_days int; v_stock int;
  v_points bigint; v_expires timestamptz; v_balance bigint; v_entry bigint; v_slot smallint;
  v_total bigint; v_bought int;
BEGIN
  SELECT i.merchant_id, i.title, i.points_price, i.per_user_limit, i.sale_starts_at, i.sale_ends_at,
         i.operator_ids, i.expiry_policy, i.status, i.stock_limited, i.voucher_valid_days
    INTO v_merchant, v_title, v_price, v_limit, v_starts, v_ends, v_operators, v_policy, v_status,
         v_limited, v_days
    FROM mall_items i WHERE i.id = p_item_id;
  IF NOT FOUND THEN
    outcome := 'refused';
    RETURN;
  END IF;
  IF v_limited THEN
    SELECT coalesce(sum(s.remaining), 0)::int INTO v_stock FROM mall_item_stock s WHERE s.item_id = p_item_id;
  END IF;
  merchant_id := v_merchant; title := v_title; points_price := v_price; per_user_limit := v_limit;
  sale_starts_at := v_starts; sale_ends_at := v_ends; operator_ids := v_operators;
  expiry_policy := v_policy; status := v_status; stock := v_stock;

  -- the item's rules, as app.mall.service._check_buyable names them
  IF v_status IN ('paused', 'ended') OR (v_ends IS NOT NULL AND p_now >= v_ends)
     OR (v_starts IS NOT NULL AND p_now < v_starts)
     OR (v_operators IS NOT NULL AND NOT coalesce(p_operator_id = ANY (v_operators), false))
     OR (v_stock IS NOT NULL AND v_stock < p_quantity)
     OR (v_limit IS NOT NULL AND p_quantity > v_limit) THEN
    outcome := 'refused';
    RETURN;
  END IF;
  v_points := v_price * p_quantity;
  v_expires := p_now + make_interval(hours => 24 * v_days);
  points := v_points;
  expires_at := v_expires;

  -- the points: lock the account, then the soonest-expiring lots first (the ledger's debit)
  SELECT a.balance INTO v_balance FROM point_accounts a WHERE a.user_id = p_user_id FOR UPDATE;
  IF coalesce(v_balance, 0) < v_points THEN
    outcome := 'insufficient_points';
    RETURN;
  END IF;
  WITH candidates AS (
    SELECT l.id, l.remaining, sum(l.remaining) OVER (ORDER BY l.expires_at, l.id) AS running FROM point_lots l
    WHERE l.user_id = p_user_id AND l.remaining > 0 AND l.expires_at > p_now
  ), chosen AS (
    SELECT c.id, least(c.remaining, v_points - (c.running - c.remaining))::bigint AS take FROM candidates c
    WHERE c.running - c.remaining < v_points
  ), enough AS (
    SELECT coalesce(sum(ch.take), 0) = v_points AS ok FROM chosen ch
  ), lots AS (
    UPDATE point_lots l SET remaining = l.remaining - ch.take FROM chosen ch, enough e
    WHERE e.ok AND l.id = ch.id RETURNING l.id, ch.take
  ), entry AS (
    INSERT INTO ledger_entries (user_id, kind, amount, balance_after, ref_type, ref_id, memo, created_at)
    SELECT p_user_id, 'redeem', -v_points, v_balance - v_points, 'mall_order', p_order_id::text,
      p_quantity || ' × ' || v_title, p_now FROM enough e WHERE e.ok RETURNING id
  ), allocations AS (
    INSERT INTO lot_allocations (entry_id, lot_id, user_id, amount)
    SELECT entry.id, lots.id, p_user_id, lots.take FROM entry, lots
  ), account AS (
    UPDATE point_accounts a SET balance = a.balance - v_points
    WHERE a.user_id = p_user_id AND (SELECT e.ok FROM enough e)
  )
  SELECT entry.id INTO v_entry FROM entry;
  IF v_entry IS NULL THEN
    outcome := 'insufficient_points';
    RETURN;
  END IF;
  entry_id := v_entry;

  -- the stock: a slot nobody holds, from a random first slot; failing that, wait for slots in slot order
  IF v_limited THEN
    BEGIN
      WITH slot AS (
        SELECT s.slot FROM mall_item_stock s WHERE s.item_id = p_item_id AND s.remaining >= p_quantity
        ORDER BY (s.slot + p_first_slot) % 64 LIMIT 1 FOR UPDATE SKIP LOCKED
      )
      UPDATE mall_item_stock s SET remaining = s.remaining - p_quantity FROM slot
      WHERE s.item_id = p_item_id AND s.slot = slot.slot AND s.remaining >= p_quantity
      RETURNING s.slot INTO v_slot;
      IF v_slot IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P0M01';  -- undo: a slot found short once free stays locked otherwise
      END IF;
    EXCEPTION WHEN SQLSTATE 'P0M01' THEN
      v_slot := NULL;
    END;
    IF v_slot IS NULL THEN
      -- every wait is for a higher slot than any held: no cycle with another waiter
      BEGIN
        WITH slot AS (
          SELECT s.slot FROM mall_item_stock s WHERE s.item_id = p_item_id AND s.remaining >= p_quantity
          ORDER BY s.slot LIMIT 1 FOR UPDATE
        )
        UPDATE mall_item_stock s SET remaining = s.remaining - p_quantity FROM slot
        WHERE s.item_id = p_item_id AND s.slot = slot.slot AND s.remaining >= p_quantity
        RETURNING s.slot INTO v_slot;
        IF v_slot IS NULL AND p_quantity > 1 THEN
          RAISE EXCEPTION USING ERRCODE = 'P0M01';  -- release those locks before locking every slot
        END IF;
      EXCEPTION WHEN SQLSTATE 'P0M01' THEN
        v_slot := NULL;
      END;
      IF v_slot IS NULL THEN
        IF p_quantity = 1 THEN
          outcome := 'out_of_stock';
          RETURN;
        END IF;
        -- more than any single slot holds: every slot of the item, locked in slot order
        SELECT coalesce(sum(x.remaining), 0) INTO v_total FROM (
          SELECT s.remaining FROM mall_item_stock s WHERE s.item_id = p_item_id ORDER BY s.slot FOR UPDATE
        ) x;
        IF v_total < p_quantity THEN
          outcome := 'out_of_stock';
          RETURN;
        END IF;
        WITH running AS (
          SELECT s.slot, s.remaining, sum(s.remaining) OVER (ORDER BY s.slot) AS upto
          FROM mall_item_stock s WHERE s.item_id = p_item_id
        )
        UPDATE mall_item_stock s SET remaining = s.remaining - least(r.remaining, p_quantity - (r.upto - r.remaining))
        FROM running r
        WHERE s.item_id = p_item_id AND s.slot = r.slot AND r.remaining > 0 AND r.upto - r.remaining < p_quantity;
      END IF;
    END IF;
  END IF;

  -- the person's units of this item (a conditional upsert), then the order
  INSERT INTO mall_purchases AS p (item_id, user_id, quantity) VALUES (p_item_id, p_user_id, p_quantity)
  ON CONFLICT ON CONSTRAINT pk_mall_purchases DO UPDATE SET quantity = p.quantity + EXCLUDED.quantity
  WHERE v_limit IS NULL OR p.quantity + EXCLUDED.quantity <= v_limit
  RETURNING p.quantity INTO v_bought;
  IF v_bought IS NULL THEN
    SELECT p.quantity INTO held FROM mall_purchases p WHERE p.item_id = p_item_id AND p.user_id = p_user_id;
    outcome := 'per_user_limit';
    RETURN;
  END IF;
  INSERT INTO mall_orders (id, item_id, merchant_id, user_id, operator_id, title, quantity, unit_price, points,
    status, expiry_policy, voucher_digest, voucher_sealed, voucher_expires_at, spend_entry_id, created_at)
  VALUES (p_order_id, p_item_id, v_merchant, p_user_id, p_operator_id, v_title, p_quantity, v_price, v_points,
    'issued', v_policy, p_digest, p_sealed, v_expires, v_entry, p_now);
  outcome := 'placed';
END
$fn$
"""


def upgrade() -> None:
    op.execute(PLACE_ORDER)


def downgrade() -> None:
    op.execute(
        'DROP FUNCTION mall_place_order(uuid, uuid, uuid, int, timestamptz, uuid, bytea, bytea, int)'
    )
