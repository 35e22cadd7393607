"""campaigns: win-back campaigns, their runs, and each member a run chose (arm, coupon, send)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 09:00:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('owner_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_community_id'), ['community_id'], unique=False)

    op.create_table('campaign_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('scheduled_on', sa.Date(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('started_by', sa.BigInteger(), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('scanned', sa.Integer(), nullable=False),
    sa.Column('drifting', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.JSON(), nullable=False),
    sa.Column('runner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('progress_chat_id', sa.BigInteger(), nullable=True),
    sa.Column('progress_message_id', sa.Integer(), nullable=True),
    sa.Column('started_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'scheduled_on', name='uq_campaign_run_day')
    )
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_runs_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('uq_campaign_run_sending', ['campaign_id'], unique=True,
                              sqlite_where=sa.text("status = 'sending'"), postgresql_where=sa.text("status = 'sending'"))

    op.create_table('campaign_sends',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('arm', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('risk', sa.Float(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_ends_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['campaign_runs.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'user_id', name='uq_campaign_send')
    )
    with op.batch_alter_table('campaign_sends', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_sends_member', ['community_id', 'user_id', 'assigned_at'], unique=False)
        batch_op.create_index('ix_campaign_sends_run_status', ['run_id', 'status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('campaign_sends', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_sends_run_status')
        batch_op.drop_index('ix_campaign_sends_member')

    op.drop_table('campaign_sends')
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_campaign_run_sending')
        batch_op.drop_index(batch_op.f('ix_campaign_runs_campaign_id'))

    op.drop_table('campaign_runs')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_community_id'))

    op.drop_table('campaigns')
