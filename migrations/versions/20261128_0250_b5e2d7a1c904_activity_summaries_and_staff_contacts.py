"""activity summaries (活动总结) and staff contacts

An activity's summary with its experts and photos (the photos' files live in the file
storage, keyed by ``storage_key``); a staff account gains an e-mail address and a phone for
set-password links and 忘记密码, and ``must_change_password``.

Revision ID: b5e2d7a1c904
Revises: e7a3c5d91b04
Create Date: 2026-11-28 02:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5e2d7a1c904'
down_revision = 'e7a3c5d91b04'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('activity_summaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('people_reached', sa.Integer(), nullable=False),
    sa.Column('materials_distributed', sa.Integer(), nullable=False),
    sa.Column('consultations', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('consultations >= 0 AND consultations <= 1000000', name=op.f('ck_activity_summaries_consultations')),
    sa.CheckConstraint('materials_distributed >= 0 AND materials_distributed <= 1000000', name=op.f('ck_activity_summaries_materials_distributed')),
    sa.CheckConstraint('people_reached >= 0 AND people_reached <= 1000000', name=op.f('ck_activity_summaries_people_reached')),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_summaries_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_activity_summaries_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_summaries')),
    sa.UniqueConstraint('activity_id', name=op.f('uq_activity_summaries_activity_id'))
    )
    op.create_table('summary_experts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('summary_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=100), nullable=False),
    sa.Column('field', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['summary_id'], ['activity_summaries.id'], name=op.f('fk_summary_experts_summary_id_activity_summaries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_summary_experts'))
    )
    with op.batch_alter_table('summary_experts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_summary_experts_summary_id'), ['summary_id'], unique=False)

    op.create_table('summary_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('summary_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=200), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('position >= 0 AND position < 9', name=op.f('ck_summary_photos_position')),
    sa.ForeignKeyConstraint(['summary_id'], ['activity_summaries.id'], name=op.f('fk_summary_photos_summary_id_activity_summaries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_summary_photos')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_summary_photos_storage_key')),
    sa.UniqueConstraint('summary_id', 'position', name='uq_summary_photos_position')
    )
    with op.batch_alter_table('summary_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_summary_photos_summary_id'), ['summary_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('phone', sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_unique_constraint(batch_op.f('uq_users_email'), ['email'])
        batch_op.create_unique_constraint(batch_op.f('uq_users_phone'), ['phone'])



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_phone'), type_='unique')
        batch_op.drop_constraint(batch_op.f('uq_users_email'), type_='unique')
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('phone')
        batch_op.drop_column('email')

    with op.batch_alter_table('summary_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_summary_photos_summary_id'))

    op.drop_table('summary_photos')
    with op.batch_alter_table('summary_experts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_summary_experts_summary_id'))

    op.drop_table('summary_experts')
    op.drop_table('activity_summaries')
