"""expiry in place: a lot is emptied without new index entries; the job remembers how far it has expired

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 17:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# A lot is written many times in its life (earnings of its day, spends, refunds, its expiry) and never
# changes its owner, expiry or id. With no index on `remaining` (the partial index's predicate was one) and
# room on its page, each such write is a heap-only update: no new entry in any of the lot's indexes. Lots of
# a day are written together and fall due together, so a page keeps half its room for their new versions
# (existing pages take the setting when the table is next rewritten, e.g. VACUUM FULL).


def upgrade() -> None:
    op.drop_index('ix_point_lots_expiring', table_name='point_lots', postgresql_where=sa.text('remaining > 0'))
    op.create_index('ix_point_lots_expires_at', 'point_lots', ['expires_at'], unique=False)
    op.execute('ALTER TABLE point_lots SET (fillfactor = 50)')
    op.create_table(
        'point_expiry_mark',
        sa.Column('id', sa.SmallInteger(), nullable=False),
        sa.Column('expired_through', sa.DateTime(timezone=True), nullable=False),
        sa.Column('marked_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_point_expiry_mark_one_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_point_expiry_mark')),
    )


def downgrade() -> None:
    op.drop_table('point_expiry_mark')
    op.execute('ALTER TABLE point_lots RESET (fillfactor)')
    op.drop_index('ix_point_lots_expires_at', table_name='point_lots')
    op.create_index('ix_point_lots_expiring', 'point_lots', ['expires_at'], unique=False, postgresql_where=sa.text('remaining > 0'))
