"""the ledger's entries found by when they were entered: a BRIN index on ledger_entries.created_at

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 18:10:00.000000
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

# The home page's charts and the authority's dashboards sum the entries of a range of days (points earned, spent,
# expired a day): without an index on the time they read every entry ever written, which grows with the city.
# Entries are appended in time order, so a block range index (a few pages for millions of rows, next to nothing
# to keep up to date on insert) finds a range's blocks, as the records' and orders' own BRIN indexes do.


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_created_brin", "ledger_entries", ["created_at"], unique=False, postgresql_using="brin"
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_created_brin", table_name="ledger_entries", postgresql_using="brin")
