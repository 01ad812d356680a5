"""Experts, review panels and scenes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:56:14.367170
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('experts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('fields', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('affiliation_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('affiliation_norm', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('affiliation_org_id', sa.Uuid(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('staff_user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('cardinality(fields) > 0', name=op.f('ck_experts_has_field')),
    sa.ForeignKeyConstraint(['affiliation_org_id'], ['organizations.id'], name=op.f('fk_experts_affiliation_org_id_organizations')),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_experts_staff_user_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experts')),
    sa.UniqueConstraint('staff_user_id', name=op.f('uq_experts_staff_user_id'))
    )
    op.create_index(op.f('ix_experts_affiliation_norm'), 'experts', ['affiliation_norm'], unique=False)
    op.create_index(op.f('ix_experts_affiliation_org_id'), 'experts', ['affiliation_org_id'], unique=False)
    op.create_index('ix_experts_fields', 'experts', ['fields'], unique=False, postgresql_using='gin')
    op.create_table('review_panels',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('subject_type', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('subject_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('seed', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('algorithm', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('candidates', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('chosen', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('excluded', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('exclude_affiliations', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('opened_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('pass', 'fail')", name=op.f('ck_review_panels_outcome_known')),
    sa.CheckConstraint('quorum BETWEEN 1 AND size', name=op.f('ck_review_panels_quorum_within_size')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_panels'))
    )
    op.create_index(op.f('ix_review_panels_status'), 'review_panels', ['status'], unique=False)
    op.create_index('ix_review_panels_subject', 'review_panels', ['subject_type', 'subject_id', 'created_at'], unique=False)
    op.create_index('uq_review_panels_subject_open', 'review_panels', ['subject_type', 'subject_id'], unique=True, postgresql_where=sa.text("status = 'open'"))
    op.create_table('review_panel_members',
    sa.Column('panel_id', sa.Uuid(), nullable=False),
    sa.Column('expert_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("verdict IS NULL OR verdict IN ('pass', 'fail')", name=op.f('ck_review_panel_members_verdict_known')),
    sa.CheckConstraint('score IS NULL OR score BETWEEN 0 AND 100', name=op.f('ck_review_panel_members_score_range')),
    sa.ForeignKeyConstraint(['expert_id'], ['experts.id'], name=op.f('fk_review_panel_members_expert_id_experts')),
    sa.ForeignKeyConstraint(['panel_id'], ['review_panels.id'], name=op.f('fk_review_panel_members_panel_id_review_panels')),
    sa.PrimaryKeyConstraint('panel_id', 'expert_id', name=op.f('pk_review_panel_members'))
    )
    op.create_index('ix_review_panel_members_expert', 'review_panel_members', ['expert_id', 'panel_id'], unique=False)


    op.create_table('scenes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('operator_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('city_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('lat', sa.Double(), nullable=False),
    sa.Column('lng', sa.Double(), nullable=False),
    sa.Column('lat_cell', sa.Integer(), sa.Computed('floor(lat * 100)::integer', persisted=True), nullable=True),
    sa.Column('opening_hours', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('behaviour_types', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('evidence_links', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('label_code', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('review_panel_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("category IN ('business_premises', 'public_place', 'public_institution')", name=op.f('ck_scenes_category_known')),
    sa.CheckConstraint('lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180', name=op.f('ck_scenes_coordinates')),
    sa.ForeignKeyConstraint(['operator_id'], ['organizations.id'], name=op.f('fk_scenes_operator_id_organizations')),
    sa.ForeignKeyConstraint(['review_panel_id'], ['review_panels.id'], name=op.f('fk_scenes_review_panel_id_review_panels')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenes')),
    sa.UniqueConstraint('label_code', name=op.f('uq_scenes_label_code'))
    )
    op.create_index('ix_scenes_behaviour_types', 'scenes', ['behaviour_types'], unique=False, postgresql_using='gin')
    op.create_index('ix_scenes_city_district', 'scenes', ['city_code', 'district_code'], unique=False)
    op.create_index('ix_scenes_near', 'scenes', ['lat_cell', 'lng'], unique=False, postgresql_where=sa.text("status = 'approved'"))
    op.create_index('ix_scenes_operator_created', 'scenes', ['operator_id', 'created_at'], unique=False)
    op.create_index('ix_scenes_public_label', 'scenes', ['label_code'], unique=False, postgresql_where=sa.text("status = 'approved'"))
    op.create_index(op.f('ix_scenes_status'), 'scenes', ['status'], unique=False)
    op.create_table('scene_changes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('scene_id', sa.Uuid(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('proposed', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('review_panel_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['review_panel_id'], ['review_panels.id'], name=op.f('fk_scene_changes_review_panel_id_review_panels')),
    sa.ForeignKeyConstraint(['scene_id'], ['scenes.id'], name=op.f('fk_scene_changes_scene_id_scenes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scene_changes'))
    )
    op.create_index(op.f('ix_scene_changes_scene_id'), 'scene_changes', ['scene_id'], unique=False)
    op.create_index('uq_scene_changes_live', 'scene_changes', ['scene_id'], unique=True, postgresql_where=sa.text("status IN ('submitted', 'under_review')"))
    op.execute("CREATE SEQUENCE scene_label_seq")


def downgrade() -> None:
    op.execute("DROP SEQUENCE scene_label_seq")
    op.drop_index('uq_scene_changes_live', table_name='scene_changes', postgresql_where=sa.text("status IN ('submitted', 'under_review')"))
    op.drop_index(op.f('ix_scene_changes_scene_id'), table_name='scene_changes')
    op.drop_table('scene_changes')
    op.drop_index(op.f('ix_scenes_status'), table_name='scenes')
    op.drop_index('ix_scenes_public_label', table_name='scenes', postgresql_where=sa.text("status = 'approved'"))
    op.drop_index('ix_scenes_operator_created', table_name='scenes')
    op.drop_index('ix_scenes_near', table_name='scenes', postgresql_where=sa.text("status = 'approved'"))
    op.drop_index('ix_scenes_city_district', table_name='scenes')
    op.drop_index('ix_scenes_behaviour_types', table_name='scenes', postgresql_using='gin')
    op.drop_table('scenes')
    op.drop_index('ix_review_panel_members_expert', table_name='review_panel_members')
    op.drop_table('review_panel_members')
    op.drop_index('uq_review_panels_subject_open', table_name='review_panels', postgresql_where=sa.text("status = 'open'"))
    op.drop_index('ix_review_panels_subject', table_name='review_panels')
    op.drop_index(op.f('ix_review_panels_status'), table_name='review_panels')
    op.drop_table('review_panels')
    op.drop_index('ix_experts_fields', table_name='experts', postgresql_using='gin')
    op.drop_index(op.f('ix_experts_affiliation_org_id'), table_name='experts')
    op.drop_index(op.f('ix_experts_affiliation_norm'), table_name='experts')
    op.drop_table('experts')
