"""accounts in place: a person's account row rewritten on its own page, with no new index entry

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 00:15:00.000000
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Every credit, order, refund, expiry and clawback rewrites the person's account row (balance, lifetime
# totals); its only index is the primary key on `user_id`, which never changes, so each rewrite can be a
# heap-only update (no new index entry) if the row's page has room for the new version. Accounts are created
# together (a batch's new people, sorted) and a batch or the expiry job rewrites many of one page's rows in
# one transaction, before any old version can be pruned: at the default fillfactor (100) 15 % of a batch's
# account updates were heap-only (bench/ingest.py's people), at 50 all of them. Existing pages take the
# setting when the table is next rewritten (VACUUM FULL, pg_repack).


def upgrade() -> None:
    op.execute("ALTER TABLE point_accounts SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE point_accounts RESET (fillfactor)")
