"""verification codes, replaced tickets, phone reveals, activities.sms_verification

Revision ID: 7c4d2e9a1f60
Revises: 3ecd30290c24
Create Date: 2026-11-28 00:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c4d2e9a1f60'
down_revision = '3ecd30290c24'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sms_verification', sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table('verification_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=11), nullable=False),
    sa.Column('purpose', sa.Enum('lost_ticket', 'register', name='verificationpurpose', native_enum=False, create_constraint=False, length=20), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("purpose IN ('lost_ticket', 'register')", name=op.f('ck_verification_codes_purpose')),
    sa.CheckConstraint('tries >= 0 AND tries <= 5', name=op.f('ck_verification_codes_tries')),
    sa.CheckConstraint('expires_at > created_at', name=op.f('ck_verification_codes_expires_after_created')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_codes'))
    )
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.create_index('ix_verification_codes_lookup', ['phone', 'purpose', 'scope', 'id'], unique=False)
        batch_op.create_index('ix_verification_codes_phone_created', ['phone', 'created_at'], unique=False)

    op.create_table('verification_phones',
    sa.Column('phone', sa.String(length=11), nullable=False),
    sa.Column('last_requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('phone', name=op.f('pk_verification_phones'))
    )

    op.create_table('replaced_tickets',
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('replaced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_replaced_tickets_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('secret_hash', name=op.f('pk_replaced_tickets'))
    )
    with op.batch_alter_table('replaced_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replaced_tickets_registration_id'), ['registration_id'], unique=False)

    op.create_table('phone_reveals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=True),
    sa.Column('registration_id', sa.Integer(), nullable=True),
    sa.Column('subject_name', sa.String(length=50), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(cadre_id IS NULL) <> (registration_id IS NULL)', name=op.f('ck_phone_reveals_one_subject')),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadres.id'], name=op.f('fk_phone_reveals_cadre_id_cadres'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_phone_reveals_registration_id_registrations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_phone_reveals_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_reveals'))
    )
    with op.batch_alter_table('phone_reveals', schema=None) as batch_op:
        batch_op.create_index('ix_phone_reveals_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_reveals_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('phone_reveals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_reveals_user_id'))
        batch_op.drop_index('ix_phone_reveals_created_at')
    op.drop_table('phone_reveals')
    with op.batch_alter_table('replaced_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replaced_tickets_registration_id'))
    op.drop_table('replaced_tickets')
    op.drop_table('verification_phones')
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_verification_codes_phone_created')
        batch_op.drop_index('ix_verification_codes_lookup')
    op.drop_table('verification_codes')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_column('sms_verification')
