"""users.erased_at: when a user's profile was last erased, kept when they come back

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 07:42:51.495412
"""
from alembic import op
import sqlalchemy as sa
import models.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', models.types.UTCDateTime(timezone=True), nullable=True))
    # Users still erased were erased at their last update (the erasure writes it; any later write un-erases).
    op.execute(sa.text("UPDATE users SET erased_at = updated_at WHERE erased"))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
