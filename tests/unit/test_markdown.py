"""The Pareto artifact's markdown: every metric and gene shown, in tables narrow enough for the Prefect UI."""
import re

from evo.config.metrics import TABLE
from evo.view.summary import MD_COLUMNS, METRIC_LABELS, pareto_markdown


def _summary(n_genes: int, holdout: bool) -> dict:
    names = [m.name for m in TABLE]
    row = {"genes": {f"g{k}": k for k in range(n_genes)}, "metrics": {m: 0.5 + i for i, m in enumerate(names)}, "genomes": 2}
    if holdout:
        row["oos_metrics"] = {m: -1.5 - i for i, m in enumerate(names)}
    return {"name": "r", "generations_done": 3, "family": "f", "data_fingerprint": "0" * 64, "database": "db",
            "objectives": [{"metric": "sharpe_ratio", "direction": "max"}, {"metric": "max_drawdown", "direction": "min"},
                           {"metric": "total_return", "direction": "max"}],
            "pareto": [{"id": "0a1b2c3d", **row}, {"id": "0a1b2c3e", **row}]}


def _tables(md: str) -> list[list[str]]:
    """Each table's header cells."""
    lines = md.splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for i, line in enumerate(lines)
            if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---")]


def test_every_metric_and_gene_appears_once_in_tables_of_at_most_md_columns():
    for n_genes in (1, 8, 9, 17):
        for holdout in (False, True):
            md = pareto_markdown(_summary(n_genes, holdout))
            heads = _tables(md)
            assert max(len(h) for h in heads) <= MD_COLUMNS
            assert max(line.count("|") for line in md.splitlines()) <= MD_COLUMNS + 1
            cells = [c for h in heads for c in h if c not in ("id", "genomes")]
            labels = [re.sub(r" \((max|min)\)$", "", c) for c in cells]
            for label in METRIC_LABELS.values():  # every metric in the in-sample tables, once
                assert labels.count(label) == 1, label
            assert sum(c.startswith("g") and c[1:].isdigit() for c in cells) == n_genes
            if holdout:  # an objective's in-sample and holdout columns stay side by side
                assert "Sharpe in | Sharpe holdout" in md or "sharpe in | sharpe holdout" in md.lower()
            for h in heads:  # each table repeats the row's id column
                assert h[0] == "id"
            rows = [line for line in md.splitlines() if line.startswith("| 0a1b2c3")]
            assert len(rows) == 2 * len(heads)  # every table names its rows by the members' ids
            assert sum(r.startswith("| 0a1b2c3e |") for r in rows) == len(heads)
