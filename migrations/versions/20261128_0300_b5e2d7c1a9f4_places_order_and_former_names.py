"""places in the web UI: a sort position for towns, former names of towns, villages, campaigns

Towns are listed by ``position`` then code everywhere (0 for every existing town: the order
stays the code order until an admin sets one). Renames keep the old names, as departments
do, so that old rosters still match.

Revision ID: b5e2d7c1a9f4
Revises: b5e2d7a1c904
Create Date: 2026-11-28 03:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b5e2d7c1a9f4'
down_revision = 'b5e2d7a1c904'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('towns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('former_names', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('villages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('former_names', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('former_names', sa.Text(), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('former_names')
    with op.batch_alter_table('villages', schema=None) as batch_op:
        batch_op.drop_column('former_names')
    with op.batch_alter_table('towns', schema=None) as batch_op:
        batch_op.drop_column('former_names')
        batch_op.drop_column('position')
