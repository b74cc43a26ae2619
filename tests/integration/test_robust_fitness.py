"""Robust fitness (algorithm.robustness.aggregate): what NSGA-II sees is the aggregate over a genome and its K
seeded neighbours, computed here on vectorbt's metrics of the same genomes; a generation evaluates K + 1
genomes per offspring less those the store already holds (counted here from the neighbours drawn anew); and a
run killed and resumed ends identical to an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import numpy as np
import pytest

from tests.conftest import small_config
from tests.helpers import EVO, MARK, dump_run, evo, evo_env, integrity_problems, rows, write_config

K = 3
RADIUS = 0.2
#: a small grid, so that neighbours repeat each other, the offspring and genomes of earlier generations
NARROW = {"rsi_window": [5, 8], "fast_window": [3, 6], "slow_window": [20, 24], "vol_window": [5, 8],
          "rsi_lower": [30, 31], "rsi_upper": [60, 61], "vol_mult": [0.5, 0.6], "sl_stop": [0.01, 0.012],
          "tp_stop": [0.01, 0.012]}


def robust_config(aggregate: str, generations: int = 4, name: str = "t"):
    return small_config(name=name, data={"synthetic": {"n_bars": 900, "freq": "1h", "seed": 11}},
                        strategy={"family": "rsi_pullback", "trading": [], "bounds": NARROW},
                        algorithm={"pop_size": 8, "generations": generations,
                                   "robustness": {"neighbours": K, "radius": RADIUS, "aggregate": aggregate}},
                        # the end-of-run statistics are not what these tests look at: the least they allow
                        validation={"monte_carlo_resamples": 10, "cscv_blocks": 2})


def _drive(cfg, url):
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    drive(cfg, None, None, url, None, False, Plain())


def _near(space, seed: int, x: np.ndarray, genome_hash: str) -> np.ndarray:
    """A genome's K neighbours, seeded as the README says: the run's seed, stream 4, the genome hash."""
    from evo.oos import robustness

    rng = np.random.default_rng([seed, 4, int(genome_hash[:15], 16)])
    return robustness.neighbours(space, x, K, RADIUS, 0.1, rng)


def _decode(genes) -> dict:
    return genes if isinstance(genes, dict) else json.loads(genes)


def _evaluations(url: str, key: str) -> dict:
    """genome hash -> metrics blob of every evaluation stored under `key`."""
    return {h: bytes(m) for h, m in rows(url, (
        "select i.genome_hash, e.metrics from evaluations e join individuals i on i.id = e.individual_id "
        "join evaluation_keys k on k.id = e.key_id where k.key = :k"), k=key)}


@pytest.mark.parametrize("aggregate", ["worst", "median"])
def test_aggregated_F_equals_vectorbt_and_each_generation_evaluates_K_plus_1_less_the_cache(db_url, aggregate):
    from evo.config.metrics import SLOT
    from evo.engine import evaluate
    from evo.market import get_market
    from evo.run import process
    from evo.run.opening import reopen
    from evo.search.algorithm import decode_checkpoint
    from evo.store import Store

    cfg = robust_config(aggregate)
    url = db_url  # SQLite and PostgreSQL (whose commit copies the neighbours' rows in bulk)
    _drive(cfg, url)
    ctx, _ = reopen("t", database=url)
    space = process.space_for(ctx)
    store = Store(url)
    stats = store.generation_stats(ctx.run_id)

    # the count: every offspring and its K neighbours, each distinct genome evaluated once, unless stored before
    seen: set[str] = set()
    within = 0
    for s in stats:
        off = rows(url, ("select i.genome_hash, i.genes from members m join individuals i on i.id = m.individual_id "
                         "where m.role = 'offspring' and m.generation = :g"), g=s.generation)
        slots = []
        for h, genes in off:
            near = _near(space, cfg.seed, space.encode([_decode(genes)])[0], h)
            slots += [h, *space.hashes(near)]
        assert len(slots) == (K + 1) * s.n_offspring
        new = set(slots) - seen
        assert (s.evaluated, s.cache_hits) == (len(new), len(slots) - len(new)), s.generation
        within += len(set(slots)) < len(slots)
        seen |= new
    assert within  # genomes repeated in one generation were evaluated once (store hits: the run "again" below)
    stored = _evaluations(url, ctx.evaluation_key)
    assert set(stored) == seen  # every neighbour is stored, nothing else under the training key
    assert sum(s.evaluated for s in stats) == len(stored)
    from evo.view.summary import summary

    cache = summary("t", url)["cache"]  # what `evo show` reports: every genome evaluated or reused
    assert (cache["evaluated"], cache["hits"]) == (len(stored), (K + 1) * sum(s.n_offspring for s in stats) - len(stored))
    assert len(stored) > 2 * cfg.algorithm.pop_size * cfg.algorithm.generations  # neighbours were evaluated

    # F and G NSGA-II saw, as checkpointed: the aggregate over the genome and its neighbours, from vectorbt
    ck = decode_checkpoint(store.generation(ctx.run_id, stats[-1].generation).checkpoint, space.n_var, ctx.n_obj,
                           ctx.n_constr)
    hashes = space.hashes(ck.pop.X)
    market = get_market(cfg.data)
    family = process.family_for(ctx)
    reference = cfg.evaluation.model_copy(update={"engine": "vectorbt"})
    for x, h, F, G in zip(ck.pop.X, hashes, ck.pop.F, ck.pop.G):
        genomes = np.vstack([x, _near(space, cfg.seed, x, h)])
        m = evaluate(market, family, space.decode(genomes), reference, window=ctx.window).metrics
        values = np.column_stack([m[:, SLOT["sharpe_ratio"]], m[:, SLOT["max_drawdown"]]])  # both maximised
        values = np.where(np.isfinite(values), values, -np.inf)  # undefined: the worst
        agg = values.min(axis=0) if aggregate == "worst" else np.median(values, axis=0)
        np.testing.assert_allclose(F, -agg, rtol=1e-9, atol=1e-12)
        trades_ok = m[:, SLOT["n_trades"]] >= 3
        defined = np.isfinite(values).all(axis=1)
        own = trades_ok[0] and defined[0]
        feasible = own and (trades_ok.all() and defined.all() if aggregate == "worst"
                            else np.median(3 - m[:, SLOT["n_trades"]]) <= 0 and np.isfinite(agg).all())
        assert bool((G <= 0).all()) == feasible
        # the stored metrics stay the genome's own
        own_metrics = np.frombuffer(stored[h], dtype="<f8")
        assert own_metrics[SLOT["sharpe_ratio"]] == pytest.approx(m[0, SLOT["sharpe_ratio"]], rel=1e-9)
    store.dispose()

    # the cache works per genome: the same run under another name evaluates nothing in its first generation
    _drive(robust_config(aggregate, generations=1, name="again"), url)
    store = Store(url)
    again = store.generation_stats(store.get_run("again").id)[0]
    store.dispose()
    assert (again.evaluated, again.cache_hits) == (0, (K + 1) * again.n_offspring)


def _killed(args, tmp_path, hold: str) -> None:
    """`evo ARGS` held at `hold` (evo.run.faults), then SIGKILLed."""
    marker = tmp_path / "hold.txt"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([EVO, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=evo_env(tmp_path, EVO_TEST_HOLD=hold, EVO_TEST_HOLD_FILE=str(marker),
                                        **{MARK: uuid.uuid4().hex}), start_new_session=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, f"never reached {hold}"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_killed_and_resumed_equals_uninterrupted(tmp_path, prefect_server):
    cfg = robust_config("worst", generations=4)
    path = write_config(tmp_path / "run.toml", cfg)
    url = f"sqlite:///{tmp_path}/evo.db"
    _killed(["run", str(path), "--db", url], tmp_path, "between@1")  # generation 1 committed
    _killed(["resume", "t", "--db", url], tmp_path, "persist@3")  # inside generation 3's open transaction
    assert integrity_problems(url) == []
    res = evo(["resume", "t", "--db", url], tmp_path, api_url=prefect_server.api_url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert integrity_problems(url) == []

    ref = f"sqlite:///{tmp_path}/ref.db"
    _drive(cfg, ref)
    a, b = dump_run(ref, "t"), dump_run(url, "t")
    assert [n for n, _ in b["generations"]] == [1, 2, 3, 4]
    assert a["generations"] == b["generations"]  # checkpoints: survivors' X, aggregated F, G, rng
    assert a["members"] == b["members"]
    key = rows(ref, "select evaluation_key from runs")[0][0]
    assert _evaluations(ref, key) == _evaluations(url, key)  # the neighbours' evaluations too
