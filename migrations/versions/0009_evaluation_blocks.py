"""Each behaviour's block sums of returns on its key's training window, on one of its evaluations,
written as evaluation computes them: the probability of backtest overfitting (CSCV) at the end of a run
reads them instead of simulating every behaviour again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('evaluations') as batch:
        batch.add_column(sa.Column('blocks', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluations') as batch:
        batch.drop_column('blocks')
