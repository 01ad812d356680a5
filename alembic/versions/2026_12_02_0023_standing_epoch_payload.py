"""caller standing: each notification names its transaction, so every process can agree on where it stands

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 15:40:00.000000
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# app.core.callers: the notification a standing change sends at commit now carries its transaction's id
# (pg_current_xact_id: 64 bits, never used twice by a cluster). Every listener hears the notifications in commit
# order, so processes whose last one heard is the same one agree on which changes they know of: a standing one of
# them found good since may be trusted by the others (app.auth.service, through the workers' shared table).
# Within one transaction every notification has the same payload, so PostgreSQL still sends one a transaction.


def upgrade() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION notify_caller_standing() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('caller_standing', pg_current_xact_id()::text); RETURN NULL; END $$"
    )


def downgrade() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION notify_caller_standing() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('caller_standing', ''); RETURN NULL; END $$"
    )
