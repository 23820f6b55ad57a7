"""sessions held or cancelled

Revision ID: 5e1d2c7a9b30
Revises: 7f3c2a91d5e4
Create Date: 2026-11-27 21:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1d2c7a9b30'
down_revision = '7f3c2a91d5e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('activity_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))

    # Until now cancelling an activity cancelled all its sessions, held ones too, and
    # their attendance stopped counting. From now on it cancels only the sessions that
    # had not begun: record that for the activities cancelled before this revision, so
    # the sessions they had held count again.
    op.execute(
        """
        UPDATE activity_sessions SET cancelled_at = (
            SELECT COALESCE(activities.cancelled_at, activities.updated_at)
            FROM activities WHERE activities.id = activity_sessions.activity_id)
        WHERE cancelled_at IS NULL
          AND EXISTS (
            SELECT 1 FROM activities
            WHERE activities.id = activity_sessions.activity_id
              AND activities.status = 'cancelled'
              AND activity_sessions.starts_at > COALESCE(activities.cancelled_at, activities.updated_at))
        """
    )


def downgrade():
    with op.batch_alter_table('activity_sessions', schema=None) as batch_op:
        batch_op.drop_column('cancelled_at')
