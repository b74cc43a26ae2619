"""One row per behaviour: genomes that trade exactly alike (the same trade fingerprint) are one phenotype.

Evolution keeps copies out of the survivors (algorithm.distinct_trades, on by default), the Pareto set
shows each phenotype once with the count of genomes behind it, and the deflated Sharpe ratio counts
distinct phenotypes as its trials.
"""

from __future__ import annotations

import numpy as np
import pytest

from evo.search.population import Population
from evo.search.algorithm import Optimizer, new_rng
from evo.config import AlgorithmConfig, validate
from evo.run.generation import copies_of

pytestmark = pytest.mark.slow


def test_copies_are_the_repeats_of_an_earlier_fingerprint():
    assert copies_of([5, 7, 5, None, None, 7, 9]).tolist() == [False, False, True, False, False, True, False]


def test_copies_compete_only_when_too_few_others_remain():
    from evo import strategies

    space = strategies.get("rsi_pullback").space()
    opt = Optimizer(space, 2, 1, AlgorithmConfig(pop_size=4, sampling="random"))
    rng = np.random.default_rng(1)
    X = space.repair(space.xl + rng.random((6, space.n_var)) * (space.xu - space.xl))
    F = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0], [3.0, 3.0], [0.5, 0.5]])  # 2 copies 0
    G = np.zeros((6, 1))
    copies = np.array([False, False, True, False, False, False])
    pop = Population.of(X, F=F, G=G, hash=[f"h{i}" for i in range(6)])
    s = opt.select(None, pop, new_rng(3), copies)
    # generation 1 keeps everyone: the copy last, below the last front, with crowding 0
    assert len(s) == 6 and np.array_equal(s.X[-1], X[2]) and s.hash[-1] == "h2"  # its identity comes along
    assert s.rank[-1] == np.nanmax(s.rank[:-1]) + 1 and s.crowding[-1] == 0
    # a later generation: four places for five distinct genomes and a copy; the copy is not kept
    parents = opt.select(None, pop[:2], new_rng(3))
    s = opt.select(parents, pop[2:], new_rng(4), np.array([False, False, True, False, False, False]))
    assert len(s) == 4 and not any(np.array_equal(x, X[2]) for x in s.X) and "h2" not in s.hash.tolist()


def _demo(tmp_path, distinct: bool):
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain
    from evo.view.summary import summary

    cfg = validate({"name": "demo", "algorithm": {"pop_size": 64, "generations": 6, "distinct_trades": distinct}})
    url = f"sqlite:///{tmp_path}/{distinct}.db"
    drive(cfg, None, None, url, None, False, Plain())
    from evo.store import Store

    store = Store(url)
    run = store.get_run("demo")
    survivors = store.members_of(run.id, 6, "survivor")
    return summary("demo", url), survivors, store, run


def test_the_demo_keeps_one_genome_per_behaviour(tmp_path):
    """The embedded default (the demo's config): with distinct_trades its survivors trade differently
    from each other; without it (pymoo's NSGA-II) several genomes on the front trade alike, and the
    Pareto set shows them as one row with their count."""
    s_on, surv_on, _, _ = _demo(tmp_path, True)
    s_off, surv_off, store, run = _demo(tmp_path, False)
    ranked_on = [m.trades for m in surv_on if m.rank == 0]
    assert len(ranked_on) == len(set(ranked_on)) and None not in ranked_on
    ranked_off = [m.trades for m in surv_off if m.rank == 0]
    assert len(ranked_off) > len(set(ranked_off)), "the default run was expected to hold copies on its front"
    # one row per behaviour, the genomes counted
    for s in (s_on, s_off):
        fps = [e["trades"] for e in s["pareto"]]
        assert len(fps) == len(set(fps))
    assert sum(e["genomes"] for e in s_off["pareto"]) == len(ranked_off) > len(s_off["pareto"])
    # the verdict's trials are distinct behaviours: fewer than the distinct genomes evaluated
    trials = store.trial_metrics(run.id, "sharpe_ratio")
    genomes = store.count_rows()["evaluations"]
    assert 0 < len(trials) < genomes
    assert s_off["verdict"]["n_trials"] == int(np.isfinite(trials).sum())  # the verdict counts the finite ones
