"""check-in cards in groups: checkin_cards, checkin_notices (digest), checkin_chats (send times)

The daily card; results owed to members the bot cannot write to, sent as a digest; each group's
last leaderboard, digest and hint.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:20:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkin_cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('rendered', sa.Text(), nullable=True),
    sa.Column('refresh_due', sa.Boolean(), nullable=False),
    sa.Column('edited_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'day', name='uq_checkin_card_day')
    )
    op.create_table('checkin_chats',
    sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('top_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('digest_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('hint_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.PrimaryKeyConstraint('community_id')
    )
    op.create_table('checkin_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('bonus', sa.Integer(), nullable=False),
    sa.Column('coupon', sa.Boolean(), nullable=False),
    sa.Column('streak', sa.Integer(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'user_id', 'day', name='uq_checkin_notice_day')
    )
    with op.batch_alter_table('checkin_notices', schema=None) as batch_op:
        batch_op.create_index('ix_checkin_notices_pending', ['community_id', 'sent_at', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('checkin_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_checkin_notices_pending')

    op.drop_table('checkin_notices')
    op.drop_table('checkin_chats')
    op.drop_table('checkin_cards')
