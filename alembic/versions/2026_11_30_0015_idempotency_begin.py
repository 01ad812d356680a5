"""idempotency begin: a request's key locked and looked up in one round trip

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 20:00:00.000000
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# idempotency_begin: what app.core.idempotency.begin did in two statements (the key's transaction-scoped
# advisory lock tried, then its record looked up), in one call. The lookup must see a record committed by
# the request that held the lock until a moment ago: a statement of a VOLATILE function takes its own
# snapshot when it starts (READ COMMITTED), so the lookup, run after the lock is held, sees it, as the
# second statement did. ``locked`` false: another request holds the key (nothing looked up).
BEGIN = r"""
CREATE FUNCTION idempotency_begin(
  p_lock bigint, p_scope text, p_key text, p_now timestamptz,
  OUT locked boolean, OUT fingerprint text, OUT status_code int, OUT body bytea, OUT content_type text
) VOLATILE LANGUAGE plpgsql AS $fn$
BEGIN
  locked := pg_try_advisory_xact_lock(p_lock);
  IF NOT locked THEN
    RETURN;
  END IF;
  SELECT r.fingerprint, r.status_code, r.body, r.content_type
    INTO fingerprint, status_code, body, content_type
    FROM idempotency_records r
   WHERE r.scope = p_scope AND r.key = p_key AND r.expires_at > p_now;
END
$fn$
"""


def upgrade() -> None:
    op.execute(BEGIN)


def downgrade() -> None:
    op.execute("DROP FUNCTION idempotency_begin(bigint, text, text, timestamptz)")
