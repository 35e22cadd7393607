"""group-buys: campaigns, teams, and the order columns that tie an order to them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:42:02.633632
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import models.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('group_buys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('price', sa.Integer(), nullable=False),
    sa.Column('team_size', sa.Integer(), nullable=True),
    sa.Column('team_minutes', sa.Integer(), nullable=True),
    sa.Column('open_limit', sa.Integer(), nullable=False),
    sa.Column('join_limit', sa.Integer(), nullable=False),
    sa.Column('solo_allowed', sa.Boolean(), nullable=False),
    sa.Column('min_units', sa.Integer(), nullable=True),
    sa.Column('tiers', sa.Text(), nullable=False),
    sa.Column('member_limit', sa.Integer(), nullable=True),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('starts_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('final_price', sa.Integer(), nullable=True),
    sa.Column('closed_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('announce_due', sa.Boolean(), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('rendered', sa.Text(), nullable=True),
    sa.Column('refresh_due', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('group_buys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_buys_announce_due'), ['announce_due'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_buys_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_buys_product_id'), ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_buys_refresh_due'), ['refresh_due'], unique=False)
        batch_op.create_index('ix_group_buys_status_ends_at', ['status', 'ends_at'], unique=False)

    op.create_table('group_buy_teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_buy_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('opener_id', sa.BigInteger(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('price', sa.Integer(), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('opened_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('announce_due', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['group_buy_id'], ['group_buys.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_buy_id', 'number', name='uq_team_number')
    )
    with op.batch_alter_table('group_buy_teams', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_buy_teams_announce_due'), ['announce_due'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_buy_teams_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_group_buy_teams_group_buy_id'), ['group_buy_id'], unique=False)
        batch_op.create_index('ix_group_buy_teams_status_deadline', ['status', 'deadline_at'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_buy_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('invited_by', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('credit', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('credit_coupon_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_group_buy_id'), ['group_buy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_team_id'), ['team_id'], unique=False)
        batch_op.create_foreign_key('fk_orders_group_buy_id', 'group_buys', ['group_buy_id'], ['id'])
        batch_op.create_foreign_key('fk_orders_team_id', 'group_buy_teams', ['team_id'], ['id'])
        batch_op.create_foreign_key('fk_orders_credit_coupon_id', 'coupons', ['credit_coupon_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint('fk_orders_credit_coupon_id', type_='foreignkey')
        batch_op.drop_constraint('fk_orders_team_id', type_='foreignkey')
        batch_op.drop_constraint('fk_orders_group_buy_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_team_id'))
        batch_op.drop_index(batch_op.f('ix_orders_group_buy_id'))
        batch_op.drop_column('credit_coupon_id')
        batch_op.drop_column('credit')
        batch_op.drop_column('invited_by')
        batch_op.drop_column('team_id')
        batch_op.drop_column('group_buy_id')

    with op.batch_alter_table('group_buy_teams', schema=None) as batch_op:
        batch_op.drop_index('ix_group_buy_teams_status_deadline')
        batch_op.drop_index(batch_op.f('ix_group_buy_teams_group_buy_id'))
        batch_op.drop_index(batch_op.f('ix_group_buy_teams_community_id'))
        batch_op.drop_index(batch_op.f('ix_group_buy_teams_announce_due'))

    op.drop_table('group_buy_teams')
    with op.batch_alter_table('group_buys', schema=None) as batch_op:
        batch_op.drop_index('ix_group_buys_status_ends_at')
        batch_op.drop_index(batch_op.f('ix_group_buys_refresh_due'))
        batch_op.drop_index(batch_op.f('ix_group_buys_product_id'))
        batch_op.drop_index(batch_op.f('ix_group_buys_community_id'))
        batch_op.drop_index(batch_op.f('ix_group_buys_announce_due'))

    op.drop_table('group_buys')
