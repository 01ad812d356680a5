"""people decide: operators trusted to enrol on their own word, the scopes an operator may ask for,
what a person granted, and the person's own sessions on the platform

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 08:20:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column('organizations', sa.Column('trusted_enrolment', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('organizations', sa.Column('allowed_scopes', sa.String(length=200), server_default='behaviours:submit account:read', nullable=False))
    op.add_column('entrustments', sa.Column('scope', sa.String(length=200), nullable=True))
    op.create_table('person_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('last_seen_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('ip', S(length=64), nullable=False),
    sa.Column('user_agent', S(length=300), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_person_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person_sessions')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_person_sessions_token_sha256'))
    )
    op.create_index(op.f('ix_person_sessions_expires_at'), 'person_sessions', ['expires_at'], unique=False)
    op.create_index(op.f('ix_person_sessions_user_id'), 'person_sessions', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_person_sessions_user_id'), table_name='person_sessions')
    op.drop_index(op.f('ix_person_sessions_expires_at'), table_name='person_sessions')
    op.drop_table('person_sessions')
    op.drop_column('entrustments', 'scope')
    op.drop_column('organizations', 'allowed_scopes')
    op.drop_column('organizations', 'trusted_enrolment')
