"""broadcasts, invitation batches and SMS opt-outs

Revision ID: 8c4d2e6f1a73
Revises: 7c4d2e9a1f60
Create Date: 2026-11-28 00:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8c4d2e6f1a73'
down_revision = '7c4d2e9a1f60'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sms_preferences',
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('phone', name=op.f('pk_sms_preferences')),
    sa.UniqueConstraint('token', name=op.f('uq_sms_preferences_token'))
    )
    op.create_table('broadcasts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.CheckConstraint('length(text) BETWEEN 1 AND 200', name=op.f('ck_broadcasts_text_length')),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_broadcasts_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_broadcasts_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_broadcasts'))
    )
    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.create_index('ix_broadcasts_activity_created', ['activity_id', 'created_at'], unique=False)

    op.create_table('invitation_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('town_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('invited', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_invitation_batches_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_invitation_batches_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['town_id'], ['towns.id'], name=op.f('fk_invitation_batches_town_id_towns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation_batches'))
    )
    with op.batch_alter_table('invitation_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitation_batches_activity_id'), ['activity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitation_batches_town_id'), ['town_id'], unique=False)

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('broadcast_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('invitation_batch_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_messages_broadcast_id'), ['broadcast_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_invitation_batch_id'), ['invitation_batch_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_messages_broadcast_id_broadcasts'), 'broadcasts', ['broadcast_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_outbox_messages_invitation_batch_id_invitation_batches'), 'invitation_batches', ['invitation_batch_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_messages_invitation_batch_id_invitation_batches'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_outbox_messages_broadcast_id_broadcasts'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_invitation_batch_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_messages_broadcast_id'))
        batch_op.drop_column('invitation_batch_id')
        batch_op.drop_column('broadcast_id')

    with op.batch_alter_table('invitation_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitation_batches_town_id'))
        batch_op.drop_index(batch_op.f('ix_invitation_batches_activity_id'))

    op.drop_table('invitation_batches')
    with op.batch_alter_table('broadcasts', schema=None) as batch_op:
        batch_op.drop_index('ix_broadcasts_activity_created')

    op.drop_table('broadcasts')
    op.drop_table('sms_preferences')
