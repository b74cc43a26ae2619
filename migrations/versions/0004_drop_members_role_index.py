"""Drop ix_members_run_generation_role: the primary key (run_id, generation, individual_id, role)
already serves every query by run and generation, and each generation inserts thousands of members,
each of which paid for the second index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_members_run_generation_role', table_name='members')


def downgrade() -> None:
    op.create_index('ix_members_run_generation_role', 'members', ['run_id', 'generation', 'role'])
