"""Behaviour is unchanged by the redesign: the same config and seed give the same checkpoints, generation
by generation, as the code before it (commit 5cf860c) stored in tests/data/checkpoints_5cf860c.json.

Five runs cover every family, LHS and random sampling, offspring fewer than the population, a per-gene
mutation probability, a worst-case reducer over two symbols and three objectives. The switches added since
(evaluation.ohlc_stops, strategy.trading, algorithm.distinct_trades) are set to what that code did: stops from
the close, no trading genes, every genome competing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evo.config import validate
from evo.flows.evolve import drive
from evo.flows.orchestration import Plain
from evo.store import Store

STORED = json.loads((Path(__file__).resolve().parents[1] / "data" / "checkpoints_5cf860c.json").read_text())
#: what the code of 5cf860c did, in the switches added since: stops fill from the close, no trading genes
BEFORE = {"evaluation": {"ohlc_stops": False}, "strategy": {"trading": []}, "algorithm": {"distinct_trades": False}}


def config_before(case: dict, before: dict = BEFORE) -> dict:
    c = json.loads(json.dumps(case["config"]))
    for section, values in before.items():
        c.setdefault(section, {}).update(values)
    return c


def checkpoints(tmp_path, config: dict) -> list:
    url = f"sqlite:///{tmp_path}/evo.db"
    drive(validate(config), None, None, url, None, False, Plain())
    store = Store(url)
    run = store.get_run(config["name"])
    got = [store.generation(run.id, n).checkpoint for n in range(1, run.generations_target + 1)]
    store.dispose()
    return got


@pytest.mark.parametrize("name", sorted(STORED["runs"]))
def test_checkpoints_equal_those_stored_before_the_redesign(tmp_path, name):
    case = STORED["runs"][name]
    got = checkpoints(tmp_path, config_before(case))
    assert len(got) == len(case["checkpoints"])
    for n, (a, b) in enumerate(zip(got, case["checkpoints"]), start=1):
        assert a == b, f"generation {n} differs"


@pytest.mark.parametrize("switch", [{"evaluation": {"ohlc_stops": False}}, {"strategy": {"trading": []}}])
def test_each_switch_alone_at_its_new_default_changes_the_evolution(tmp_path, switch):
    """The switches decide fitness: with only one of them set back, the stored checkpoints are not reproduced."""
    case = STORED["runs"]["rsi_pullback"]
    got = checkpoints(tmp_path, config_before(case, switch))
    assert got[-1] != case["checkpoints"][-1]
