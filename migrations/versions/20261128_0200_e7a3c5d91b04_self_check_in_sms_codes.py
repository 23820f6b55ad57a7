"""self check-in with an SMS code: a verification purpose for roster cadres

A roster cadre the roster has no ID number for (or who prefers it) checks themself in with
a code sent to their roster phone: verification_codes' purpose CHECK gains
``self_check_in`` (scope: ``s<session id>``).

Revision ID: e7a3c5d91b04
Revises: c4f1e2a9b7d3
Create Date: 2026-11-28 02:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e7a3c5d91b04'
down_revision = 'c4f1e2a9b7d3'
branch_labels = None
depends_on = None

OLD_PURPOSES = "purpose IN ('lost_ticket', 'register')"
NEW_PURPOSES = "purpose IN ('lost_ticket', 'register', 'self_check_in')"


def upgrade():
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_verification_codes_purpose'), type_='check')
        batch_op.create_check_constraint(op.f('ck_verification_codes_purpose'), NEW_PURPOSES)


def downgrade():
    # Self check-in codes live 5 minutes and are kept a day: the old schema has no place
    # for them, and nobody loses anything but a code not yet used.
    op.execute("DELETE FROM verification_codes WHERE purpose = 'self_check_in'")
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_verification_codes_purpose'), type_='check')
        batch_op.create_check_constraint(op.f('ck_verification_codes_purpose'), OLD_PURPOSES)
