"""order.created events: the outbox's statement as a function, so an order's own call writes its events

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 12:00:00.000000
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# webhook_emit: the events, and one pending delivery per active subscription of the recipient that wants
# the type; an event whose id exists already (a job that ran twice) is skipped with its deliveries (they join
# only the rows the INSERT returns). Answers the ids written. app.webhooks.repository.EMIT_SQL calls it, and
# so does an order's statement (app.mall.repository.PLACE_SQL) for its order.created events, whose recipient
# (the item's merchant) and facts (title, points, the voucher's expiry) only that statement knows.
EMIT = r"""
CREATE FUNCTION webhook_emit(
  p_ids uuid[], p_org_ids uuid[], p_types text[], p_subject_types text[], p_subject_ids text[],
  p_payloads jsonb[], p_now timestamptz
) RETURNS SETOF uuid VOLATILE LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN QUERY
    WITH ev AS (
      INSERT INTO webhook_events (id, org_id, type, subject_type, subject_id, payload, created_at)
      SELECT e.id, e.org_id, e.type, e.subject_type, e.subject_id, e.payload, p_now
      FROM unnest(p_ids, p_org_ids, p_types, p_subject_types, p_subject_ids, p_payloads)
        AS e(id, org_id, type, subject_type, subject_id, payload)
      ON CONFLICT (id) DO NOTHING
      RETURNING webhook_events.id, webhook_events.org_id, webhook_events.type
    ), deliveries AS (
      INSERT INTO webhook_deliveries (event_id, subscription_id, status, attempts, next_attempt_at, created_at)
      SELECT ev.id, s.id, 'pending', 0, p_now, p_now
      FROM ev JOIN webhook_subscriptions s
        ON s.org_id = ev.org_id AND s.status = 'active' AND s.event_types ? ev.type
    )
    SELECT ev.id FROM ev;
END
$fn$
"""

# json_time: a time in UTC as our JSON writes it (orjson: microseconds only when there are some), ending in
# ``p_utc``: '+00:00' in events' payloads (Python's isoformat), 'Z' in the API's answers (OPT_UTC_Z); for JSON
# made in SQL. PL/pgSQL, not SQL: a SQL function that cannot be inlined (to_char is only stable) is parsed and
# planned again at each call.
TIME = r"""
CREATE FUNCTION json_time(p_at timestamptz, p_utc text) RETURNS text STABLE LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN extract(microseconds FROM p_at)::bigint % 1000000 = 0 THEN ''
            ELSE to_char(p_at AT TIME ZONE 'UTC', '.US') END
    || p_utc;
END
$fn$
"""


def upgrade() -> None:
    op.execute(EMIT)
    op.execute(TIME)


def downgrade() -> None:
    op.execute("DROP FUNCTION json_time(timestamptz, text)")
    op.execute("DROP FUNCTION webhook_emit(uuid[], uuid[], text[], text[], text[], jsonb[], timestamptz)")
