"""staff e-mail: outbox events for set-password and reset e-mails, and the account

The e-mail channel for staff accounts: outbox_messages' event CHECK gains
``set_password``, ``password_reset`` and ``staff_email``; ``user_id`` names the staff
account an e-mail is for (its address is ``recipient``, as for an SMS the phone), so a
newer link replaces one still waiting. The channel ``email`` was allowed from the start.

Revision ID: f3302814f60a
Revises: 8590016cd74e
Create Date: 2026-11-28 03:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f3302814f60a'
down_revision = '8590016cd74e'
branch_labels = None
depends_on = None

OLD_EVENTS = (
    "event IN ('confirmed', 'waitlisted', 'promoted', 'changed', 'cancelled', 'reminder', "
    "'broadcast', 'invitation', 'verification')"
)
NEW_EVENTS = (
    "event IN ('confirmed', 'waitlisted', 'promoted', 'changed', 'cancelled', 'reminder', "
    "'broadcast', 'invitation', 'verification', 'set_password', 'password_reset', "
    "'staff_email')"
)


def upgrade():
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_messages_user_id'), ['user_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_outbox_messages_user_id_users'), 'users', ['user_id'], ['id'],
            ondelete='SET NULL',
        )
        batch_op.drop_constraint(op.f('ck_outbox_messages_event'), type_='check')
        batch_op.create_check_constraint(op.f('ck_outbox_messages_event'), NEW_EVENTS)


def downgrade():
    # The old schema has no place for staff e-mails: they go (sent or not, nothing a
    # registrant is owed).
    op.execute(
        "DELETE FROM outbox_messages "
        "WHERE event IN ('set_password', 'password_reset', 'staff_email')"
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_outbox_messages_event'), type_='check')
        batch_op.create_check_constraint(op.f('ck_outbox_messages_event'), OLD_EVENTS)
        batch_op.drop_constraint(batch_op.f('fk_outbox_messages_user_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_user_id'))
        batch_op.drop_column('user_id')
