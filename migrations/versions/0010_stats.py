"""statistics: funnel_days, community_hours, indexes for the stats screens

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('funnel_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('step', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'day', 'product_id', 'step', name='uq_funnel_day')
    )
    op.create_table('community_hours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'day', 'hour', name='uq_community_hour')
    )
    with op.batch_alter_table('membership_events', schema=None) as batch_op:
        batch_op.create_index('ix_membership_events_person', ['community_id', 'user_id', 'at'], unique=False)
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_days_community_day')
        batch_op.create_index('ix_activity_days_community_day_user', ['community_id', 'day', 'user_id'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_community_created', ['community_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_community_created')
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_days_community_day_user')
        batch_op.create_index('ix_activity_days_community_day', ['community_id', 'day'], unique=False)
    with op.batch_alter_table('membership_events', schema=None) as batch_op:
        batch_op.drop_index('ix_membership_events_person')
    op.drop_table('community_hours')
    op.drop_table('funnel_days')
