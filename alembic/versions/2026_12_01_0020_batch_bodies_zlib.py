"""batch bodies zlib: a signed batch's body kept as the API compressed it (zlib), not compressed again

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 23:00:00.000000
"""

import zlib

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# A batch's body (the signed JSON, ~300 KB for 1,000 records) is kept for ever. PostgreSQL compressed it with
# pglz when the row was written: ~3.6 ms of its CPU to ~72 KB. The API now compresses it with zlib at level 1
# (~1 ms, ~36 KB; app.points.bodies) and PostgreSQL keeps those bytes as they come (STORAGE EXTERNAL: out of
# line, not compressed again). ``body_encoding`` says which a row holds: 'identity' (the body as received, as
# every row before this migration) or 'zlib'. Existing rows are not rewritten.


def upgrade() -> None:
    op.add_column(
        "behaviour_batches",
        sa.Column("body_encoding", sa.String(length=10), server_default="identity", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_behaviour_batches_body_encoding_known"),
        "behaviour_batches",
        "body_encoding IN ('identity', 'zlib')",
        postgresql_not_valid=True,
    )
    op.execute("ALTER TABLE behaviour_batches ALTER COLUMN body SET STORAGE EXTERNAL")
    # checked for the rows already there after this transaction's locks are gone: a checked constraint added
    # with them would read every batch while ingestion waits; validating lets writers pass
    with op.get_context().autocommit_block():
        op.execute(
            "ALTER TABLE behaviour_batches VALIDATE CONSTRAINT ck_behaviour_batches_body_encoding_known"
        )


def downgrade() -> None:
    connection = op.get_bind()
    stored = connection.execute(
        sa.text("SELECT id, body FROM behaviour_batches WHERE body_encoding = 'zlib'")
    )
    for batch_id, body in stored:
        connection.execute(
            sa.text("UPDATE behaviour_batches SET body = :body WHERE id = :id"),
            {"id": batch_id, "body": zlib.decompress(body)},
        )
    op.execute("ALTER TABLE behaviour_batches ALTER COLUMN body SET STORAGE EXTENDED")
    op.drop_constraint(op.f("ck_behaviour_batches_body_encoding_known"), "behaviour_batches")
    op.drop_column("behaviour_batches", "body_encoding")
