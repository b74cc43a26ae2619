"""Behaviour is unchanged by the redesign: the same config and seed give the same checkpoints, generation
by generation, as the code before it (commit 5cf860c) stored in tests/data/checkpoints_5cf860c.json.

Five runs cover every family, LHS and random sampling, offspring fewer than the population, a per-gene
mutation probability, a worst-case reducer over two symbols and three objectives.
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


@pytest.mark.parametrize("name", sorted(STORED["runs"]))
def test_checkpoints_equal_those_stored_before_the_redesign(tmp_path, name):
    case = STORED["runs"][name]
    url = f"sqlite:///{tmp_path}/evo.db"
    drive(validate(case["config"]), None, None, url, None, False, Plain())
    store = Store(url)
    run = store.get_run(name)
    got = [store.generation(run.id, n).checkpoint for n in range(1, run.generations_target + 1)]
    store.dispose()
    assert len(got) == len(case["checkpoints"])
    for n, (a, b) in enumerate(zip(got, case["checkpoints"]), start=1):
        assert a == b, f"generation {n} differs"
