"""caller standing: a change that can stop a caller's requests notifies every process on commit

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 12:20:00.000000
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# app.core.callers: each process keeps a caller's checked standing until it hears of a change. These
# statement-level triggers send NOTIFY caller_standing (delivered at commit, never for a rollback; one per
# transaction however many rows) for every write that can take a caller's standing away.
WATCHED = {
    'organizations': 'status',
    'staff_users': 'disabled_at, org_id',
    'users': 'deleted_at',
    'entrustments': 'withdrawn_at',
    'oauth_refresh_tokens': 'revoked_at',
}


def upgrade() -> None:
    op.execute(
        "CREATE FUNCTION notify_caller_standing() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('caller_standing', ''); RETURN NULL; END $$"
    )
    for table, columns in WATCHED.items():
        op.execute(
            f"CREATE TRIGGER {table}_caller_standing AFTER UPDATE OF {columns} OR DELETE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION notify_caller_standing()"
        )


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_caller_standing ON {table}")
    op.execute("DROP FUNCTION notify_caller_standing()")
