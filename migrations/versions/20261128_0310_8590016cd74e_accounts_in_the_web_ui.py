"""accounts in the web UI: set-password links, log-in lockout, the audit log

``set_password_tokens`` keeps the SHA-256 of each one-time set-password link; users gain
``failed_logins`` / ``locked_until`` (the per-account lockout admins see and lift) and
``session_version`` (part of the session's user id: raised to end an account's sessions);
``audit_log`` records every change to accounts and roles; verification_codes' purpose
CHECK gains ``password_reset`` (忘记密码, scope ``u<user id>``).

Revision ID: 8590016cd74e
Revises: b5e2d7c1a9f4
Create Date: 2026-11-28 03:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8590016cd74e'
down_revision = 'b5e2d7c1a9f4'
branch_labels = None
depends_on = None

OLD_PURPOSES = "purpose IN ('lost_ticket', 'register', 'self_check_in')"
NEW_PURPOSES = "purpose IN ('lost_ticket', 'register', 'self_check_in', 'password_reset')"


def upgrade():
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.Enum('created', 'updated', 'disabled', 'enabled', 'locked', 'unlocked', 'link_issued', 'password_set_by_link', 'password_changed', 'password_reset_by_code', name='auditaction', native_enum=False, length=30), nullable=False),
    sa.Column('target_user_id', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('created', 'updated', 'disabled', 'enabled', 'locked', 'unlocked', 'link_issued', 'password_set_by_link', 'password_changed', 'password_reset_by_code')", name=op.f('ck_audit_log_action')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_log_actor_id_users')),
    sa.ForeignKeyConstraint(['target_user_id'], ['users.id'], name=op.f('fk_audit_log_target_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index('ix_audit_log_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_target_user_id'), ['target_user_id'], unique=False)

    op.create_table('set_password_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('expires_at > created_at', name=op.f('ck_set_password_tokens_expires_after_created')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_set_password_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_set_password_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_set_password_tokens_token_hash'))
    )
    with op.batch_alter_table('set_password_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_set_password_tokens_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_verification_codes_purpose'), type_='check')
        batch_op.create_check_constraint(op.f('ck_verification_codes_purpose'), NEW_PURPOSES)


def downgrade():
    # 忘记密码 codes live 5 minutes: the old schema has no place for them.
    op.execute("DELETE FROM verification_codes WHERE purpose = 'password_reset'")
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_verification_codes_purpose'), type_='check')
        batch_op.create_check_constraint(op.f('ck_verification_codes_purpose'), OLD_PURPOSES)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')

    with op.batch_alter_table('set_password_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_set_password_tokens_user_id'))

    op.drop_table('set_password_tokens')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_target_user_id'))
        batch_op.drop_index('ix_audit_log_created_at')
        batch_op.drop_index(batch_op.f('ix_audit_log_actor_id'))

    op.drop_table('audit_log')
