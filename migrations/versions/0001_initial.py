"""Initial schema: runs, generations, individuals, evaluations, members.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('individuals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family', sa.String(length=100), nullable=False),
    sa.Column('genome_hash', sa.String(length=64), nullable=False),
    sa.Column('genes', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_individuals')),
    sa.UniqueConstraint('family', 'genome_hash', name='uq_individuals_family_hash')
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('family', sa.String(length=100), nullable=False),
    sa.Column('data_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('evaluation_key', sa.String(length=64), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('generations_target', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=200), nullable=True),
    sa.Column('lease_expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    sa.UniqueConstraint('name', name=op.f('uq_runs_name'))
    )
    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('individual_id', sa.Integer(), nullable=False),
    sa.Column('evaluation_key', sa.String(length=64), nullable=False),
    sa.Column('total_return', sa.Double(), nullable=True),
    sa.Column('sharpe_ratio', sa.Double(), nullable=True),
    sa.Column('sortino_ratio', sa.Double(), nullable=True),
    sa.Column('max_drawdown', sa.Double(), nullable=True),
    sa.Column('n_trades', sa.Double(), nullable=True),
    sa.Column('win_rate', sa.Double(), nullable=True),
    sa.Column('exposure', sa.Double(), nullable=True),
    sa.Column('per_asset', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['individual_id'], ['individuals.id'], name=op.f('fk_evaluations_individual_id_individuals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations')),
    sa.UniqueConstraint('individual_id', 'evaluation_key', name='uq_evaluations_individual_key')
    )
    op.create_table('generations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('checkpoint', sa.JSON(), nullable=False),
    sa.Column('stats', sa.JSON(), nullable=False),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_generations_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generations')),
    sa.UniqueConstraint('run_id', 'number', name='uq_generations_run_number')
    )
    op.create_table('members',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('individual_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.Column('crowding', sa.Double(), nullable=True),
    sa.Column('objectives', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['individual_id'], ['individuals.id'], name=op.f('fk_members_individual_id_individuals')),
    sa.ForeignKeyConstraint(['run_id', 'generation'], ['generations.run_id', 'generations.number'], name='fk_members_generation', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'generation', 'individual_id', 'role', name=op.f('pk_members'))
    )
    op.create_index('ix_members_run_generation_role', 'members', ['run_id', 'generation', 'role'])



def downgrade() -> None:
    op.drop_index('ix_members_run_generation_role', table_name='members')

    op.drop_table('members')
    op.drop_table('generations')
    op.drop_table('evaluations')
    op.drop_table('runs')
    op.drop_table('individuals')
