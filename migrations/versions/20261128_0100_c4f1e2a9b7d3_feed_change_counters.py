"""feed change counters

Revision ID: c4f1e2a9b7d3
Revises: c4d1e8a7b290
Create Date: 2026-11-28 01:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4f1e2a9b7d3'
down_revision = 'c4d1e8a7b290'
branch_labels = None
depends_on = None


def upgrade():
    # No rows: a scope without a row has counter 0; the first change of each makes it.
    op.create_table('feed_changes',
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('counter', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('counter >= 0', name=op.f('ck_feed_changes_counter')),
    sa.PrimaryKeyConstraint('scope', name=op.f('pk_feed_changes'))
    )


def downgrade():
    op.drop_table('feed_changes')
