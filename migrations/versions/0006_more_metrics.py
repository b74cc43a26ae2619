"""Twelve more metrics of each evaluation, after the metric table (evo.config.metrics): returns statistics
(annualised return and volatility, Calmar, Omega, downside risk), trade statistics (profit factor,
expectancy, SQN, best and worst trade), the longest drawdown in bars and the fees paid. NULL for
evaluations stored before them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

#: the metric columns this revision adds, in the metric table's order
COLUMNS = (
    'annualized_return', 'annualized_volatility', 'calmar_ratio', 'omega_ratio', 'downside_risk',
    'profit_factor', 'expectancy', 'sqn', 'best_trade', 'worst_trade', 'max_drawdown_duration', 'total_fees_paid',
)


def upgrade() -> None:
    with op.batch_alter_table('evaluations') as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluations') as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
