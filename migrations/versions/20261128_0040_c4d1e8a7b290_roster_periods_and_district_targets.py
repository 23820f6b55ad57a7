"""roster periods and district targets

Every cadre gets one roster period from what the cadres table holds (town, village, posts,
active_from, left_on), so coverage of earlier years stays as it was.

Revision ID: c4d1e8a7b290
Revises: 8c4d2e6f1a73
Create Date: 2026-11-28 00:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d1e8a7b290'
down_revision = '8c4d2e6f1a73'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cadre_periods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cadre_id', sa.Integer(), nullable=False),
    sa.Column('town_id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('posts', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.CheckConstraint('ends_on IS NULL OR ends_on >= starts_on', name=op.f('ck_cadre_periods_ends_after_start')),
    sa.ForeignKeyConstraint(['cadre_id'], ['cadres.id'], name=op.f('fk_cadre_periods_cadre_id_cadres'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['town_id'], ['towns.id'], name=op.f('fk_cadre_periods_town_id_towns')),
    sa.ForeignKeyConstraint(['village_id'], ['villages.id'], name=op.f('fk_cadre_periods_village_id_villages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cadre_periods')),
    sa.UniqueConstraint('cadre_id', 'starts_on', name='uq_cadre_periods_cadre_start')
    )
    with op.batch_alter_table('cadre_periods', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cadre_periods_cadre_id'), ['cadre_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cadre_periods_town_id'), ['town_id'], unique=False)
        batch_op.create_index('uq_cadre_periods_open', ['cadre_id'], unique=True, sqlite_where=sa.text('ends_on IS NULL'), postgresql_where=sa.text('ends_on IS NULL'))

    op.create_table('district_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('target_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('target_percent >= 0 AND target_percent <= 100', name=op.f('ck_district_targets_percent')),
    sa.CheckConstraint('year >= 2000 AND year <= 2100', name=op.f('ck_district_targets_year')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_district_targets')),
    sa.UniqueConstraint('year', name=op.f('uq_district_targets_year'))
    )

    # Data: each cadre's one period so far is what the cadres table says.
    op.execute(
        "INSERT INTO cadre_periods (cadre_id, town_id, village_id, posts, starts_on, ends_on)"
        " SELECT id, town_id, village_id, posts, active_from, left_on FROM cadres"
    )


def downgrade():
    op.drop_table('district_targets')
    with op.batch_alter_table('cadre_periods', schema=None) as batch_op:
        batch_op.drop_index('uq_cadre_periods_open', sqlite_where=sa.text('ends_on IS NULL'), postgresql_where=sa.text('ends_on IS NULL'))
        batch_op.drop_index(batch_op.f('ix_cadre_periods_town_id'))
        batch_op.drop_index(batch_op.f('ix_cadre_periods_cadre_id'))

    op.drop_table('cadre_periods')
