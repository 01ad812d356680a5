"""order request: an order with its key, events, audit entry and stored response in one statement

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 13:00:00.000000
"""

from alembic import op

from app.core import migrate

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# audit_append: the audit log's append (app.core.audit.flush calls it): lock the chain's head (a locking read
# answers its newest committed version), chain the entries' hashes from it, insert them and move the head.
# ``p_rows``: each entry's canonical JSON without its first three members (previous hash, chain, seq: known only
# under the lock), which are prefixed here exactly as app.core.audit.entry_hash writes them (hex, integers), so
# the hash is the same SHA-256 of the same UTF-8 text and app.core.audit.verify re-computes it in Python.
APPEND = r"""
CREATE FUNCTION audit_append(p_chain int, p_rows json) RETURNS void VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  moved int;
BEGIN
  WITH RECURSIVE head AS MATERIALIZED (
    SELECT h.seq, h.hash FROM audit_chain_heads h WHERE h.chain = p_chain FOR UPDATE
  ), pending AS (
    SELECT * FROM json_to_recordset(p_rows) AS r(n int, rest text, at timestamptz, actor text, action text,
      subject_type text, subject_id text, data jsonb)
  ), chained (n, seq, prev_hash, hash) AS (
    SELECT 0, head.seq, NULL::text, head.hash::text FROM head
    UNION ALL
    SELECT p.n, c.seq + 1, c.hash::text, encode(sha256(convert_to(
      '["' || c.hash || '",' || p_chain || ',' || (c.seq + 1) || ',' || substr(p.rest, 2), 'UTF8')), 'hex')
    FROM chained c JOIN pending p ON p.n = c.n + 1
  ), added AS (
    INSERT INTO audit_entries (chain, seq, at, actor, action, subject_type, subject_id, data, prev_hash, hash)
    SELECT p_chain, c.seq, p.at, p.actor, p.action, p.subject_type, p.subject_id, p.data, c.prev_hash, c.hash
    FROM chained c JOIN pending p ON p.n = c.n RETURNING audit_entries.seq, audit_entries.hash
  )
  UPDATE audit_chain_heads h SET seq = last.seq, hash = last.hash
  FROM (SELECT a.seq, a.hash FROM added a ORDER BY a.seq DESC LIMIT 1) last WHERE h.chain = p_chain;
  GET DIAGNOSTICS moved = ROW_COUNT;
  IF moved <> 1 THEN
    RAISE EXCEPTION 'audit chain % has no head row (the migrations create each)', p_chain;
  END IF;
END
$fn$
"""

# idempotency_store: the response stored under its key (app.core.idempotency.STORE_SQL calls it, at the end of
# every write request with a key; so does mall_order_request).
STORE = r"""
CREATE FUNCTION idempotency_store(
  p_scope text, p_key text, p_fingerprint text, p_status_code int, p_body bytea, p_content_type text,
  p_created_at timestamptz, p_expires_at timestamptz
) RETURNS void VOLATILE LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO idempotency_records AS r (scope, key, fingerprint, status_code, body, content_type, created_at,
                                        expires_at)
  VALUES (p_scope, p_key, p_fingerprint, p_status_code, p_body, p_content_type, p_created_at, p_expires_at)
  ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
    status_code = EXCLUDED.status_code, body = EXCLUDED.body, content_type = EXCLUDED.content_type,
    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at;
END
$fn$
"""

# mall_order_request: a person's order request whole, in one statement (so, on the direct path, in one round
# trip without BEGIN or COMMIT: the statement is its own transaction):
# 1. the Idempotency-Key (when ``p_lock`` is given): idempotency_begin (migration 0015); a key in use, or one
#    with a record, answers the key_ columns and nothing else is done;
# 2. the order: mall_place_order (migration 0012), in a subtransaction undone when it refuses (what it did
#    before the refusal — points spent, stock taken — goes with it); a refusal answers its row;
# 3. placed: the order.created events (webhook_emit, migration 0018; the first recipient, when null, is the
#    item's merchant, and every payload gets the merchant, title, points and voucher expiry), the audit entry
#    (audit_append; ``p_audit`` is the entry's rows as app.core.audit sends them, a format() template whose %1$s
#    and %2$s are the spend's ledger entry id and points), the response (``p_body``: the answer's JSON as a
#    format() template; %1$s…%6$s: merchant id, title, unit price, points, voucher expiry, expiry policy) and,
#    with a key, the response stored under it (201, until ``p_stored_until``).
# Each is a statement of this VOLATILE function, taking its snapshot after the key's lock is held. It replaces
# mall_place_keyed_order (migration 0017), dropped here.
REQUEST = r"""
CREATE FUNCTION mall_order_request(
  p_lock bigint, p_scope text, p_key text, p_fingerprint text, p_stored_until timestamptz,
  p_item_id uuid, p_user_id uuid, p_operator_id uuid, p_quantity int, p_now timestamptz,
  p_order_id uuid, p_digest bytea, p_sealed bytea, p_first_slot int,
  p_event_ids uuid[], p_event_orgs uuid[], p_event_types text[], p_event_subject_types text[],
  p_event_subject_ids text[], p_event_payloads text[],
  p_audit_chain int, p_audit text, p_body text
) RETURNS TABLE (
  key_locked boolean, key_fingerprint text, key_status_code int, key_body bytea, key_content_type text,
  outcome text, merchant_id uuid, title text, points_price bigint, per_user_limit int,
  sale_starts_at timestamptz, sale_ends_at timestamptz, operator_ids uuid[],
  expiry_policy text, status text, stock int, points bigint, expires_at timestamptz,
  entry_id bigint, held int, body bytea
) VOLATILE LANGUAGE plpgsql AS $fn$
DECLARE
  k record;
  o record;
  v_body bytea;
BEGIN
  IF p_lock IS NOT NULL THEN
    SELECT b.locked, b.fingerprint, b.status_code, b.body, b.content_type INTO k
      FROM idempotency_begin(p_lock, p_scope, p_key, p_now) b;
    key_locked := k.locked;
    IF NOT k.locked OR k.fingerprint IS NOT NULL THEN
      key_fingerprint := k.fingerprint; key_status_code := k.status_code;
      key_body := k.body; key_content_type := k.content_type;
      RETURN NEXT;
      RETURN;
    END IF;
  END IF;

  BEGIN
    SELECT * INTO o FROM mall_place_order(p_item_id, p_user_id, p_operator_id, p_quantity, p_now,
                                          p_order_id, p_digest, p_sealed, p_first_slot);
    IF o.outcome <> 'placed' THEN
      RAISE EXCEPTION USING ERRCODE = 'P0M02';  -- undo what the order did before it was refused
    END IF;
  EXCEPTION WHEN SQLSTATE 'P0M02' THEN
    NULL;  -- o keeps what mall_place_order answered
  END;
  outcome := o.outcome; merchant_id := o.merchant_id; title := o.title; points_price := o.points_price;
  per_user_limit := o.per_user_limit; sale_starts_at := o.sale_starts_at; sale_ends_at := o.sale_ends_at;
  operator_ids := o.operator_ids; expiry_policy := o.expiry_policy; status := o.status; stock := o.stock;
  points := o.points; expires_at := o.expires_at; entry_id := o.entry_id; held := o.held;
  IF o.outcome <> 'placed' THEN
    RETURN NEXT;
    RETURN;
  END IF;

  PERFORM webhook_emit(
    p_event_ids,
    ARRAY(SELECT coalesce(e.org, o.merchant_id) FROM unnest(p_event_orgs) WITH ORDINALITY AS e(org, n) ORDER BY e.n),
    p_event_types, p_event_subject_types, p_event_subject_ids,
    ARRAY(SELECT e.known::jsonb || jsonb_build_object('merchant_id', o.merchant_id, 'title', o.title,
                   'points', o.points, 'voucher_expires_at', json_time(o.expires_at, '+00:00'))
          FROM unnest(p_event_payloads) WITH ORDINALITY AS e(known, n) ORDER BY e.n),
    p_now);
  PERFORM audit_append(p_audit_chain, format(p_audit, o.entry_id, o.points)::json);
  v_body := convert_to(format(p_body, to_json(o.merchant_id)::text, to_json(o.title)::text, o.points_price,
                            o.points, '"' || json_time(o.expires_at, 'Z') || '"', to_json(o.expiry_policy)::text),
                     'UTF8');
  IF p_lock IS NOT NULL THEN
    PERFORM idempotency_store(p_scope, p_key, p_fingerprint, 201, v_body, 'application/json', p_now,
                              p_stored_until);
  END IF;
  body := v_body;
  RETURN NEXT;
END
$fn$
"""


KEYED = (
    "mall_place_keyed_order(bigint, text, text, uuid, uuid, uuid, int, timestamptz, uuid, bytea, bytea, int)"
)


def upgrade() -> None:
    op.execute(APPEND)
    op.execute(STORE)
    op.execute(REQUEST)
    op.execute(f"DROP FUNCTION {KEYED}")


def downgrade() -> None:
    op.execute(migrate.earlier("0017").KEYED)
    op.execute(
        "DROP FUNCTION mall_order_request(bigint, text, text, text, timestamptz, uuid, uuid, uuid, int,"
        " timestamptz, uuid, bytea, bytea, int, uuid[], uuid[], text[], text[], text[], text[], int, text, text)"
    )
    op.execute("DROP FUNCTION idempotency_store(text, text, text, int, bytea, text, timestamptz, timestamptz)")
    op.execute("DROP FUNCTION audit_append(int, json)")
