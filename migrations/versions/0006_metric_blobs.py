"""Evaluations hold their metrics by name: a float64 blob per evaluation (and per symbol) plus a reference
to the metric set that names its values, and an integer reference to its evaluation key.

A metric column per metric needed a migration for every new metric, and an evaluation stored before a
metric existed read NaN for it. With the names stored beside the values, an evaluation whose set lacks a
current metric is simply computed again. The 64-character key repeated on every row (and in its unique
index) becomes a reference to one `evaluation_keys` row.

The evaluations already stored keep their seven metrics, under the set of those seven names.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
import json

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

#: the metric columns of revisions 0001-0005, in their order
OLD_METRICS = ("total_return", "sharpe_ratio", "sortino_ratio", "max_drawdown", "n_trades", "win_rate", "exposure")
#: rows converted per round trip
BATCH = 5000


def _blob(values) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def _per_asset_blob(v) -> bytes | None:
    if v is None:
        return None
    v = json.loads(v) if isinstance(v, str) else v  # SQLite hands JSON back as text
    return _blob(np.asarray(v, dtype=np.float64).reshape(-1))


def upgrade() -> None:
    conn = op.get_bind()
    op.create_table(
        'evaluation_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_keys')),
        sa.UniqueConstraint('key', name=op.f('uq_evaluation_keys_key')),
    )
    op.create_table(
        'metric_sets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('names', sa.String(length=4000), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_sets')),
        sa.UniqueConstraint('names', name=op.f('uq_metric_sets_names')),
    )
    conn.execute(sa.text("INSERT INTO metric_sets (names) VALUES (:n)"), {"n": json.dumps(list(OLD_METRICS))})
    set_id = conn.execute(sa.text("SELECT id FROM metric_sets")).scalar_one()
    conn.execute(sa.text("INSERT INTO evaluation_keys (key) SELECT DISTINCT evaluation_key FROM evaluations"))
    with op.batch_alter_table('evaluations') as batch:
        batch.add_column(sa.Column('key_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('metric_set_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('metrics_blob', sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column('per_asset_blob', sa.LargeBinary(), nullable=True))
    conn.execute(sa.text(
        "UPDATE evaluations SET metric_set_id = :s, key_id = "
        "(SELECT k.id FROM evaluation_keys k WHERE k.key = evaluations.evaluation_key)"), {"s": set_id})
    cols = ", ".join(OLD_METRICS)
    last = 0
    while True:
        rows = conn.execute(sa.text(
            f"SELECT id, per_asset, {cols} FROM evaluations WHERE id > :last ORDER BY id LIMIT {BATCH}"),
            {"last": last}).mappings().all()
        if not rows:
            break
        conn.execute(
            sa.text("UPDATE evaluations SET metrics_blob = :m, per_asset_blob = :p WHERE id = :i"),
            [{"i": r["id"], "m": _blob([np.nan if r[c] is None else r[c] for c in OLD_METRICS]),
              "p": _per_asset_blob(r["per_asset"])} for r in rows],
        )
        last = rows[-1]["id"]
    with op.batch_alter_table('evaluations') as batch:
        batch.drop_constraint('uq_evaluations_individual_key', type_='unique')
        for c in (*OLD_METRICS, 'evaluation_key', 'per_asset'):
            batch.drop_column(c)
        batch.alter_column('key_id', existing_type=sa.Integer(), nullable=False)
        batch.alter_column('metric_set_id', existing_type=sa.Integer(), nullable=False)
        batch.alter_column('metrics_blob', new_column_name='metrics', existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column('per_asset_blob', new_column_name='per_asset', existing_type=sa.LargeBinary())
        batch.create_foreign_key(op.f('fk_evaluations_key_id_evaluation_keys'), 'evaluation_keys', ['key_id'], ['id'])
        batch.create_foreign_key(op.f('fk_evaluations_metric_set_id_metric_sets'), 'metric_sets',
                                 ['metric_set_id'], ['id'])
        batch.create_unique_constraint('uq_evaluations_individual_key', ['individual_id', 'key_id'])


def downgrade() -> None:
    """Back to a column per metric of the seven; a metric an evaluation's set lacks becomes NULL, and
    metrics beyond the seven are dropped."""
    conn = op.get_bind()
    with op.batch_alter_table('evaluations') as batch:
        for c in OLD_METRICS:
            batch.add_column(sa.Column(c, sa.Double(), nullable=True))
        batch.add_column(sa.Column('evaluation_key', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('per_asset_json', sa.JSON(), nullable=True))
    conn.execute(sa.text(
        "UPDATE evaluations SET evaluation_key = (SELECT k.key FROM evaluation_keys k WHERE k.id = evaluations.key_id)"))
    sets = {r["id"]: json.loads(r["names"]) for r in conn.execute(sa.text("SELECT id, names FROM metric_sets")).mappings()}
    last = 0
    while True:
        rows = conn.execute(sa.text(
            f"SELECT id, metric_set_id, metrics, per_asset FROM evaluations WHERE id > :last ORDER BY id LIMIT {BATCH}"),
            {"last": last}).mappings().all()
        if not rows:
            break
        params = []
        for r in rows:
            names = sets[r["metric_set_id"]]
            values = dict(zip(names, np.frombuffer(r["metrics"], dtype="<f8").tolist()))
            p = {"i": r["id"], **{c: (None if values.get(c) is None or values[c] != values[c] else values[c])
                                  for c in OLD_METRICS}}
            pa = None
            if r["per_asset"] is not None:
                block = np.frombuffer(r["per_asset"], dtype="<f8").reshape(-1, len(names))
                pa = json.dumps([[row[names.index(c)] if c in names else None for c in OLD_METRICS]
                                 for row in block.tolist()])
            params.append({**p, "pa": pa})
        assigns = ", ".join(f"{c} = :{c}" for c in OLD_METRICS)
        conn.execute(sa.text(f"UPDATE evaluations SET {assigns}, per_asset_json = :pa WHERE id = :i"), params)
        last = rows[-1]["id"]
    with op.batch_alter_table('evaluations') as batch:
        batch.drop_constraint('uq_evaluations_individual_key', type_='unique')
        batch.drop_constraint(op.f('fk_evaluations_key_id_evaluation_keys'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_evaluations_metric_set_id_metric_sets'), type_='foreignkey')
        for c in ('key_id', 'metric_set_id', 'metrics', 'per_asset'):
            batch.drop_column(c)
        batch.alter_column('evaluation_key', existing_type=sa.String(length=64), nullable=False)
        batch.alter_column('per_asset_json', new_column_name='per_asset', existing_type=sa.JSON())
        batch.create_unique_constraint('uq_evaluations_individual_key', ['individual_id', 'evaluation_key'])
    op.drop_table('metric_sets')
    op.drop_table('evaluation_keys')
