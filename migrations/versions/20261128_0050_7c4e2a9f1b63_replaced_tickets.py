"""replaced tickets: hashes of ticket secrets that a newer one replaced

Revision ID: 7c4e2a9f1b63
Revises: c4d1e8a7b290
Create Date: 2026-11-28 00:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c4e2a9f1b63'
down_revision = 'c4d1e8a7b290'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('replaced_tickets',
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('replaced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_replaced_tickets_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('secret_hash', name=op.f('pk_replaced_tickets'))
    )
    with op.batch_alter_table('replaced_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replaced_tickets_registration_id'), ['registration_id'], unique=False)


def downgrade():
    with op.batch_alter_table('replaced_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replaced_tickets_registration_id'))

    op.drop_table('replaced_tickets')
