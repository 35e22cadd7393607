"""activity by day: activity_days, members' rhythm (first and last active day, days active), membership_events

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

import models.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('checkins', sa.Integer(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('first_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'user_id', 'day', name='uq_activity_day')
    )
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.create_index('ix_activity_days_community_day', ['community_id', 'day'], unique=False)
    op.create_table('membership_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('change', sa.String(length=8), nullable=False),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('membership_events', schema=None) as batch_op:
        batch_op.create_index('ix_membership_events_community_at', ['community_id', 'at'], unique=False)
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_active_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('last_active_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('active_days', sa.Integer(), server_default='0', nullable=False))
    # What is known of the past: the last day seen (in UTC), as one day active.
    day = "date(last_active_at)" if op.get_bind().dialect.name == "sqlite" \
        else "CAST(last_active_at AT TIME ZONE 'UTC' AS DATE)"
    op.execute(f"UPDATE members SET first_active_on = {day}, last_active_on = {day}, active_days = 1 "
               "WHERE last_active_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('active_days')
        batch_op.drop_column('last_active_on')
        batch_op.drop_column('first_active_on')
    with op.batch_alter_table('membership_events', schema=None) as batch_op:
        batch_op.drop_index('ix_membership_events_community_at')
    op.drop_table('membership_events')
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_days_community_day')
    op.drop_table('activity_days')
