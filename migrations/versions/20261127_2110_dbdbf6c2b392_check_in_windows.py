"""check-in windows: not_now scans and organizers' overrides

Revision ID: dbdbf6c2b392
Revises: 0d7eac1dd0d9
Create Date: 2026-11-27 21:10:00

A scan outside its session's check-in window answers the new result ``not_now``
(scan_log's result CHECK gains it); an organizer who checks someone in anyway gives a
reason, kept on the check-in and in the scan log (``window_override_reason``).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'dbdbf6c2b392'
down_revision = '0d7eac1dd0d9'
branch_labels = None
depends_on = None

OLD_RESULTS = "result IN ('ok', 'already_checked_in', 'invalid', 'wrong_activity', 'cancelled', 'waitlisted', 'undone')"
NEW_RESULTS = "result IN ('ok', 'already_checked_in', 'invalid', 'wrong_activity', 'cancelled', 'waitlisted', 'not_now', 'undone')"


def upgrade():
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('window_override_reason', sa.String(length=200), nullable=True))

    with op.batch_alter_table('scan_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('window_override_reason', sa.String(length=200), nullable=True))
        batch_op.drop_constraint(op.f('ck_scan_log_result'), type_='check')
        batch_op.create_check_constraint(op.f('ck_scan_log_result'), NEW_RESULTS)


def downgrade():
    # Scans logged as not_now become invalid ones (the old schema has no such result).
    op.execute("UPDATE scan_log SET result = 'invalid' WHERE result = 'not_now'")
    with op.batch_alter_table('scan_log', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_scan_log_result'), type_='check')
        batch_op.create_check_constraint(op.f('ck_scan_log_result'), OLD_RESULTS)
        batch_op.drop_column('window_override_reason')

    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_column('window_override_reason')
