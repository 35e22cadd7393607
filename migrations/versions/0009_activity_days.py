"""activity_days: one row per member and community-local day active (messages, check-ins, orders)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 11:45:00.000000
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


def downgrade() -> None:
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_days_community_day')
    op.drop_table('activity_days')
