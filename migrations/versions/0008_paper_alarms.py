"""Paper books remember which members' drift has been announced, so that a breach a tick did not announce
(a tick run by hand, or a served tick killed before it announced) is announced by the next served tick.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('paper_books') as batch:
        batch.add_column(sa.Column('alarms', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('paper_books') as batch:
        batch.drop_column('alarms')
