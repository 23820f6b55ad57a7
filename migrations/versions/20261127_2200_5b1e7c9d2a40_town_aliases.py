"""town aliases

Revision ID: 5b1e7c9d2a40
Revises: 381bb446cac5
Create Date: 2026-11-27 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b1e7c9d2a40'
down_revision = '381bb446cac5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('town_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('town_id', sa.Integer(), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['town_id'], ['towns.id'], name=op.f('fk_town_aliases_town_id_towns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_town_aliases')),
    sa.UniqueConstraint('alias', name=op.f('uq_town_aliases_alias'))
    )
    with op.batch_alter_table('town_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_town_aliases_town_id'), ['town_id'], unique=False)


def downgrade():
    with op.batch_alter_table('town_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_town_aliases_town_id'))

    op.drop_table('town_aliases')
