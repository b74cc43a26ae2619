"""Each generation records the evaluation key its members were evaluated under.

A run's data can change between scheduled continuations (its survivors are then
re-evaluated on the new data), so the run's current key no longer describes its
earlier generations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('generations') as batch:
        batch.add_column(sa.Column('evaluation_key', sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE generations SET evaluation_key = "
        "(SELECT runs.evaluation_key FROM runs WHERE runs.id = generations.run_id)"
    )
    with op.batch_alter_table('generations') as batch:
        batch.alter_column('evaluation_key', existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('generations') as batch:
        batch.drop_column('evaluation_key')
