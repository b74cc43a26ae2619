"""Paper books: members of a run traded forward on new bars, and their ledger, one row per member, symbol
and bar, written once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'paper_books',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('members', sa.JSON(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('start', sa.String(length=40), nullable=False),
        sa.Column('last_bar', sa.String(length=40), nullable=True),
        sa.Column('history', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_paper_books_run_id_runs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_paper_books')),
        sa.UniqueConstraint('name', name=op.f('uq_paper_books_name')),
    )
    op.create_table(
        'paper_ledger',
        sa.Column('book_id', sa.Integer(), nullable=False),
        sa.Column('member', sa.String(length=64), nullable=False),
        sa.Column('symbol', sa.String(length=200), nullable=False),
        sa.Column('bar', sa.String(length=40), nullable=False),
        sa.Column('fill', sa.Double(), nullable=False),
        sa.Column('price', sa.Double(), nullable=True),
        sa.Column('position', sa.Double(), nullable=False),
        sa.Column('cash', sa.Double(), nullable=False),
        sa.Column('equity', sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(['book_id'], ['paper_books.id'], name=op.f('fk_paper_ledger_book_id_paper_books'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('book_id', 'member', 'symbol', 'bar', name=op.f('pk_paper_ledger')),
    )


def downgrade() -> None:
    op.drop_table('paper_ledger')
    op.drop_table('paper_books')
