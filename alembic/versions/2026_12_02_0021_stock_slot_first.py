"""stock slot first: an order reads one stock slot, not all of them, and sums the item's stock only to refuse

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 07:00:00.000000
"""

from alembic import op

from app.core import migrate

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# mall_place_order as migration 0012 made it read every stock slot of a limited item twice an order (64 for a
# stock of 640 units or more): once to sum the item's stock for its rules, once to find a free slot, sorting
# them all by (slot + p_first_slot) % 64. Now:
# - the stock is summed only when the order is refused (any refusal: the rules are then named in the same order
#   as before, so an item out of stock is still refused as such before the person's points are looked at: the
#   service re-checks the item's rules on the returned row, stock included); an item with no unit left in any
#   slot is refused before the points are spent (one slot read while it has some: the first with units);
# - the free slot is first looked for at slot ``p_first_slot`` alone (one index probe; it is random, so the
#   orders of an item spread over its slots as before), and only if that slot is held, short or missing (an
#   item with fewer slots) over all of them as before.
# The rest is unchanged: the same lock order (the person's account → the item's stock slots → the per-person
# counter), the same outcomes, the same writes.
PLACE_ORDER = r"""
CREATE OR REPLACE FUNCTION mall_place_order(
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
  v_total bigint; v_bought int; v_refusal text; v_sold_out boolean;
BEGIN
  SELECT i.merchant_id, i.title, i.points_price, i.per_user_limit, i.sale_starts_at, i.sale_ends_at,
         i.operator_ids, i.expiry_policy, i.status, i.stock_limited, i.voucher_valid_days,
         i.stock_limited AND NOT EXISTS (SELECT FROM mall_item_stock s WHERE s.item_id = i.id AND s.remaining > 0)
    INTO v_merchant, v_title, v_price, v_limit, v_starts, v_ends, v_operators, v_policy, v_status,
         v_limited, v_days, v_sold_out
    FROM mall_items i WHERE i.id = p_item_id;
  IF NOT FOUND THEN
    outcome := 'refused';
    RETURN;
  END IF;
  merchant_id := v_merchant; title := v_title; points_price := v_price; per_user_limit := v_limit;
  sale_starts_at := v_starts; sale_ends_at := v_ends; operator_ids := v_operators;
  expiry_policy := v_policy; status := v_status;

  <<attempt>>
  BEGIN
    -- the item's rules, as app.mall.service._check_buyable names them; of its stock only whether it is sold out
    -- (the stock is summed below if the order is refused, and the service names the rule)
    IF v_status IN ('paused', 'ended') OR (v_ends IS NOT NULL AND p_now >= v_ends)
       OR (v_starts IS NOT NULL AND p_now < v_starts)
       OR (v_operators IS NOT NULL AND NOT coalesce(p_operator_id = ANY (v_operators), false))
       OR (v_limit IS NOT NULL AND p_quantity > v_limit) OR v_sold_out THEN
      v_refusal := 'refused';
      EXIT attempt;
    END IF;
    v_points := v_price * p_quantity;
    v_expires := p_now + make_interval(hours => 24 * v_days);
    points := v_points;
    expires_at := v_expires;

    -- the points: lock the account, then the soonest-expiring lots first (the ledger's debit)
    SELECT a.balance INTO v_balance FROM point_accounts a WHERE a.user_id = p_user_id FOR UPDATE;
    IF coalesce(v_balance, 0) < v_points THEN
      v_refusal := 'insufficient_points';
      EXIT attempt;
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
      v_refusal := 'insufficient_points';
      EXIT attempt;
    END IF;
    entry_id := v_entry;

    -- the stock: the random first slot if nobody holds it, else a slot nobody holds in the order from it;
    -- failing that, wait for slots in slot order
    IF v_limited THEN
      BEGIN
        UPDATE mall_item_stock s SET remaining = s.remaining - p_quantity
        FROM (SELECT f.slot FROM mall_item_stock f WHERE f.item_id = p_item_id AND f.slot = p_first_slot
              AND f.remaining >= p_quantity FOR UPDATE SKIP LOCKED) slot
        WHERE s.item_id = p_item_id AND s.slot = slot.slot AND s.remaining >= p_quantity
        RETURNING s.slot INTO v_slot;
        IF v_slot IS NULL THEN
          WITH slot AS (
            SELECT s.slot FROM mall_item_stock s WHERE s.item_id = p_item_id AND s.remaining >= p_quantity
            ORDER BY (s.slot + p_first_slot) % 64 LIMIT 1 FOR UPDATE SKIP LOCKED
          )
          UPDATE mall_item_stock s SET remaining = s.remaining - p_quantity FROM slot
          WHERE s.item_id = p_item_id AND s.slot = slot.slot AND s.remaining >= p_quantity
          RETURNING s.slot INTO v_slot;
        END IF;
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
            v_refusal := 'out_of_stock';
            EXIT attempt;
          END IF;
          -- more than any single slot holds: every slot of the item, locked in slot order
          SELECT coalesce(sum(x.remaining), 0) INTO v_total FROM (
            SELECT s.remaining FROM mall_item_stock s WHERE s.item_id = p_item_id ORDER BY s.slot FOR UPDATE
          ) x;
          IF v_total < p_quantity THEN
            v_refusal := 'out_of_stock';
            EXIT attempt;
          END IF;
          WITH running AS (
            SELECT s.slot, s.remaining, sum(s.remaining) OVER (ORDER BY s.slot) AS upto
            FROM mall_item_stock s WHERE s.item_id = p_item_id
          )
          UPDATE mall_item_stock s
          SET remaining = s.remaining - least(r.remaining, p_quantity - (r.upto - r.remaining))
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
      v_refusal := 'per_user_limit';
      EXIT attempt;
    END IF;
    INSERT INTO mall_orders (id, item_id, merchant_id, user_id, operator_id, title, quantity, unit_price, points,
      status, expiry_policy, voucher_digest, voucher_sealed, voucher_expires_at, spend_entry_id, created_at)
    VALUES (p_order_id, p_item_id, v_merchant, p_user_id, p_operator_id, v_title, p_quantity, v_price, v_points,
      'issued', v_policy, p_digest, p_sealed, v_expires, v_entry, p_now);
    outcome := 'placed';
    RETURN;
  END attempt;

  -- refused (the caller undoes what was done): the item's stock, and the item's rules first if it is short
  IF v_limited THEN
    SELECT coalesce(sum(s.remaining), 0)::int INTO v_stock FROM mall_item_stock s WHERE s.item_id = p_item_id;
    IF v_refusal = 'per_user_limit' THEN
      v_stock := v_stock + p_quantity;  -- the units this order took: the stock it found was enough
    ELSIF v_stock < p_quantity THEN
      v_refusal := 'refused';
    END IF;
    stock := v_stock;
  END IF;
  outcome := v_refusal;
END
$fn$
"""


def upgrade() -> None:
    op.execute(PLACE_ORDER)


def downgrade() -> None:
    op.execute(migrate.earlier("0012").PLACE_ORDER.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
