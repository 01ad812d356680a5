"""workspaces: when an operator's key was last used, each rejected record's outcome kept with its batch, experts' declarations of no conflict of
interest, the sandbox clock outside production, and indexes for the audit viewer

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 08:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column('operator_keys', sa.Column('last_used_at', TS, nullable=True))
    op.add_column('behaviour_batches', sa.Column('rejections', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column('review_panel_members', sa.Column('declared_at', TS, nullable=True))
    op.add_column('review_panel_members', sa.Column('declaration', sa.Text(), nullable=True))
    op.create_index('ix_audit_entries_subject', 'audit_entries', ['subject_type', 'subject_id', 'at'], unique=False)
    op.create_index('ix_audit_entries_actor', 'audit_entries', ['actor', 'at'], unique=False)
    op.create_index('ix_audit_entries_at', 'audit_entries', ['at'], unique=False)
    op.create_table('platform_clock',
    sa.Column('id', sa.SmallInteger(), nullable=False),
    sa.Column('offset_seconds', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('updated_at', TS, nullable=False),
    sa.Column('updated_by', S(length=200), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_platform_clock_one_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_clock'))
    )


def downgrade() -> None:
    op.drop_table('platform_clock')
    op.drop_index('ix_audit_entries_at', table_name='audit_entries')
    op.drop_index('ix_audit_entries_actor', table_name='audit_entries')
    op.drop_index('ix_audit_entries_subject', table_name='audit_entries')
    op.drop_column('review_panel_members', 'declaration')
    op.drop_column('review_panel_members', 'declared_at')
    op.drop_column('behaviour_batches', 'rejections')
    op.drop_column('operator_keys', 'last_used_at')
