"""Each evaluation's trade fingerprint: a 64-bit hash of its orders (bars, sides, sizes) on its window, so
that genomes that trade alike are one behaviour (phenotype). NULL for evaluations stored before it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('evaluations') as batch:
        batch.add_column(sa.Column('trades', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluations') as batch:
        batch.drop_column('trades')
