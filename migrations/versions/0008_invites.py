"""invites: invite_links, invite_codes, invite_intents, referrals

Members' links; deep-link codes; an inviter named before the join; how each person came, and what
became of the invite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 09:00:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

LIVE = sa.text('revoked_at IS NULL')


def upgrade() -> None:
    op.create_table('invite_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.BigInteger(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('creates_join_request', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('url')
    )
    with op.batch_alter_table('invite_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invite_links_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('uq_invite_link_live', ['community_id', 'owner_id', 'creates_join_request'],
                              unique=True, sqlite_where=LIVE, postgresql_where=LIVE)

    op.create_table('invite_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code'),
    sa.UniqueConstraint('community_id', 'user_id', name='uq_invite_code_member')
    )
    op.create_table('invite_intents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('inviter_id', sa.BigInteger(), nullable=False),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['inviter_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'user_id', name='uq_invite_intent')
    )
    with op.batch_alter_table('invite_intents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invite_intents_inviter_id'), ['inviter_id'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('invitee_id', sa.BigInteger(), nullable=False),
    sa.Column('inviter_id', sa.BigInteger(), nullable=True),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('bonus_to', sa.BigInteger(), nullable=True),
    sa.Column('joined_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('qualified_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rewarded_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('left_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by', sa.BigInteger(), nullable=True),
    sa.Column('reviewed_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], ),
    sa.ForeignKeyConstraint(['invitee_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['inviter_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['link_id'], ['invite_links.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'invitee_id', name='uq_referral')
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_link_joined', ['link_id', 'joined_at'], unique=False)
        batch_op.create_index('ix_referrals_inviter', ['community_id', 'inviter_id', 'state'], unique=False)
        batch_op.create_index('ix_referrals_state', ['community_id', 'state', 'id'], unique=False)
        batch_op.create_index('ix_referrals_bonus', ['community_id', 'bonus_to'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_bonus')
        batch_op.drop_index('ix_referrals_state')
        batch_op.drop_index('ix_referrals_inviter')
        batch_op.drop_index('ix_referrals_link_joined')

    op.drop_table('referrals')
    with op.batch_alter_table('invite_intents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invite_intents_inviter_id'))

    op.drop_table('invite_intents')
    op.drop_table('invite_codes')
    with op.batch_alter_table('invite_links', schema=None) as batch_op:
        batch_op.drop_index('uq_invite_link_live')
        batch_op.drop_index(batch_op.f('ix_invite_links_owner_id'))

    op.drop_table('invite_links')
