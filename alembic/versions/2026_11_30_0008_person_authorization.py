"""person authorization: operators' redirect URIs, one-time codes, the SMS outbox, OAuth requests,
codes and refresh tokens, and how an entrustment was confirmed

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 06:20:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('operator_redirect_uris',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('uri', S(length=2000), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_operator_redirect_uris_org_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_redirect_uris')),
    sa.UniqueConstraint('org_id', 'uri', name=op.f('uq_operator_redirect_uris_org_id_uri'))
    )
    op.create_table('sms_outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('recipient', S(length=40), nullable=False),
    sa.Column('body', S(length=500), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_outbox'))
    )
    op.create_index(op.f('ix_sms_outbox_recipient'), 'sms_outbox', ['recipient'], unique=False)
    op.create_table('one_time_codes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('identity_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('code_hmac', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('attempts', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('used_at', TS, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_one_time_codes'))
    )
    op.create_index(op.f('ix_one_time_codes_identity_hash'), 'one_time_codes', ['identity_hash'], unique=False)
    op.add_column('entrustments', sa.Column('confirmed_by', sa.String(length=20), server_default='operator_asserted', nullable=False))
    op.add_column('entrustments', sa.Column('confirmed_at', TS, nullable=True))
    op.create_table('oauth_authorization_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('browser_sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('redirect_uri', S(length=2000), nullable=False),
    sa.Column('scope', S(length=200), nullable=False),
    sa.Column('state', S(length=500), nullable=False),
    sa.Column('code_challenge', S(length=128), nullable=False),
    sa.Column('identity_hash', sa.LargeBinary(length=32), nullable=True),
    sa.Column('one_time_code_id', sa.Uuid(), nullable=True),
    sa.Column('verified_at', TS, nullable=True),
    sa.Column('decided_at', TS, nullable=True),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['organizations.id'], name=op.f('fk_oauth_authorization_requests_client_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_authorization_requests'))
    )
    op.create_index(op.f('ix_oauth_authorization_requests_expires_at'), 'oauth_authorization_requests', ['expires_at'], unique=False)
    op.create_table('oauth_authorization_codes',
    sa.Column('code_sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('redirect_uri', S(length=2000), nullable=False),
    sa.Column('code_challenge', S(length=128), nullable=False),
    sa.Column('identity_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('scope', S(length=200), nullable=False),
    sa.Column('agreement_version', S(length=50), nullable=False),
    sa.Column('consented_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('used_at', TS, nullable=True),
    sa.Column('family_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['organizations.id'], name=op.f('fk_oauth_authorization_codes_client_id_organizations')),
    sa.PrimaryKeyConstraint('code_sha256', name=op.f('pk_oauth_authorization_codes'))
    )
    op.create_index(op.f('ix_oauth_authorization_codes_expires_at'), 'oauth_authorization_codes', ['expires_at'], unique=False)
    op.create_table('oauth_refresh_tokens',
    sa.Column('token_sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('family_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('entrustment_id', sa.BigInteger(), nullable=False),
    sa.Column('scope', S(length=200), nullable=False),
    sa.Column('created_at', TS, nullable=False),
    sa.Column('expires_at', TS, nullable=False),
    sa.Column('rotated_at', TS, nullable=True),
    sa.Column('revoked_at', TS, nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['organizations.id'], name=op.f('fk_oauth_refresh_tokens_client_id_organizations')),
    sa.ForeignKeyConstraint(['entrustment_id'], ['entrustments.id'], name=op.f('fk_oauth_refresh_tokens_entrustment_id_entrustments')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_refresh_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('token_sha256', name=op.f('pk_oauth_refresh_tokens'))
    )
    op.create_index(op.f('ix_oauth_refresh_tokens_family_id'), 'oauth_refresh_tokens', ['family_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_oauth_refresh_tokens_family_id'), table_name='oauth_refresh_tokens')
    op.drop_table('oauth_refresh_tokens')
    op.drop_index(op.f('ix_oauth_authorization_codes_expires_at'), table_name='oauth_authorization_codes')
    op.drop_table('oauth_authorization_codes')
    op.drop_index(op.f('ix_oauth_authorization_requests_expires_at'), table_name='oauth_authorization_requests')
    op.drop_table('oauth_authorization_requests')
    op.drop_column('entrustments', 'confirmed_at')
    op.drop_column('entrustments', 'confirmed_by')
    op.drop_index(op.f('ix_one_time_codes_identity_hash'), table_name='one_time_codes')
    op.drop_table('one_time_codes')
    op.drop_index(op.f('ix_sms_outbox_recipient'), table_name='sms_outbox')
    op.drop_table('sms_outbox')
    op.drop_table('operator_redirect_uris')
