"""Holdout, verdict and walk-forward: evolution never sees the holdout, and the verdict tells luck from an edge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evo.config import validate
from tests.helpers import dump_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def write_market(path, close, seed=0):
    rng = np.random.default_rng(seed)
    n = len(close)
    idx = pd.date_range("2020-01-01", periods=n, freq="1h")
    o = np.concatenate([[close[0]], close[:-1]])
    h = np.maximum(o, close) * (1 + np.abs(rng.normal(0, 0.001, n)))
    lo = np.minimum(o, close) * (1 - np.abs(rng.normal(0, 0.001, n)))
    v = rng.uniform(1000, 2000, n)
    pd.DataFrame({"open": o, "high": h, "low": lo, "close": close, "volume": v}, index=idx).to_csv(path, index_label="date")
    return path


def cfg_for(path, **over):
    d = {
        "name": "v",
        "seed": 3,
        "data": {"paths": [str(path)]},
        "strategy": {"family": "rsi_pullback", "bounds": {"slow_window": [20, 100]}},
        "constraints": [{"metric": "n_trades", "op": ">=", "value": 10}],
        "algorithm": {"pop_size": 32, "generations": 8},
    }
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    return validate(d)


def random_walk(n, seed):
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))


def planted(n, seed):
    """A 60-bar cycle under a little noise: RSI mean reversion can learn it."""
    t = np.arange(n)
    return 100 * np.exp(0.03 * np.sin(2 * np.pi * t / 60) + np.cumsum(np.random.default_rng(seed).normal(0, 0.002, n)))


def test_random_walk_gets_no_evidence_of_edge(tmp_path, db_url):
    from evo.view import summary
    from evo.flows.evolve import evolve

    evolve(config=cfg_for(write_market(tmp_path / "rw.csv", random_walk(3000, 123))), db_url=db_url)
    v = summary.summary("v", db_url)["verdict"]
    assert v["verdict"] == "no evidence of edge"
    assert v["deflated_sharpe"] < 0.95
    assert v["n_trials"] > 100  # the deflation counted the strategies tried
    assert v["sharpe_annualized"] > 2  # the best in-sample Sharpe looked good: luck, which the verdict saw through
    # which tests refused: the deflation and the reality check against buy-and-hold on the holdout
    assert "deflated Sharpe ratio" in v["refused_by"] and v["spa_pvalue"] > v["spa_alpha"]


def test_planted_pattern_gets_edge_and_holds_out_of_sample(tmp_path, sqlite_url):
    from evo.view import summary
    from evo.flows.evolve import evolve

    db_url = sqlite_url
    evolve(config=cfg_for(write_market(tmp_path / "cycle.csv", planted(3000, 123))), db_url=db_url)
    s = summary.summary("v", db_url)
    v = s["verdict"]
    assert v["verdict"] == "edge" and v["deflated_sharpe"] >= 0.95
    # the in-sample winner keeps winning across CSCV's splits, and it beats buy-and-hold on the holdout
    assert v["pbo"] <= 0.05 and v["spa_pvalue"] <= v["spa_alpha"] and v["refused_by"] == []
    best = next(e for e in s["pareto"] if e["genome_hash"] == v["candidate"])
    assert best["oos_metrics"]["sharpe_ratio"] > 1 and best["oos_metrics"]["total_return"] > 0


def test_evolution_never_sees_the_holdout(tmp_path):
    """Two markets equal before the split and different after it: identical evolution, different holdout scores."""
    from evo.view import summary
    from evo.flows.evolve import evolve

    a = random_walk(2000, 7)
    b = a.copy()
    split = 2000 - 600  # holdout 0.3
    b[split:] = b[split - 1] * np.exp(np.cumsum(np.random.default_rng(99).normal(0, 0.01, 2000 - split)))
    cfg = dict(algorithm={"pop_size": 16, "generations": 4})
    runs = {}
    for tag, close in (("a", a), ("b", b)):
        url = f"sqlite:///{tmp_path}/{tag}.db"
        evolve(config=cfg_for(write_market(tmp_path / f"{tag}.csv", close, seed=1), **cfg), db_url=url)
        runs[tag] = (dump_run(url, "v"), summary.summary("v", url))
    (da, sa), (db, sb) = runs["a"], runs["b"]
    assert da["generations"] == db["generations"]  # same survivors and rng, generation by generation
    assert sa["verdict"]["holdout"] == sb["verdict"]["holdout"] == [split, 2000]
    oos_a = [e["oos_metrics"]["total_return"] for e in sa["pareto"]]
    oos_b = [e["oos_metrics"]["total_return"] for e in sb["pareto"]]
    assert oos_a != oos_b


def test_holdout_metrics_equal_vectorbt_on_the_holdout_window(tmp_path):
    from evo import strategies
    from evo.view import summary
    from evo.config import EvaluationConfig
    from evo.market import get_market
    from evo.engine import evaluate
    from evo.search.objectives import METRICS
    from evo.run.opening import reopen
    from evo.flows.evolve import evolve

    url = f"sqlite:///{tmp_path}/h.db"
    cfg = cfg_for(write_market(tmp_path / "h.csv", random_walk(2000, 11)), algorithm={"pop_size": 16, "generations": 3})
    evolve(config=cfg, db_url=url)
    s = summary.summary("v", url)
    ctx, _ = reopen("v", database=url)
    params = [e["genes"] for e in s["pareto"]]
    ref = evaluate(get_market(cfg.data), strategies.get("rsi_pullback"), params,
                   EvaluationConfig(engine="vectorbt"), window=ctx.oos_window)
    got = np.array([[e["oos_metrics"][m] if e["oos_metrics"][m] is not None else np.nan for m in METRICS]
                    for e in s["pareto"]])
    np.testing.assert_allclose(got, ref.metrics, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert ctx.oos_window == (1400, 2000) and ctx.window == (0, 1400)


@pytest.mark.parametrize("mode,warm", [("rolling", True), ("anchored", False)])
def test_walk_forward_stitches_the_test_windows(tmp_path, mode, warm):
    from evo.view import summary
    from evo.config import EvaluationConfig
    from evo.market import get_market
    from evo import strategies
    from evo.engine import evaluate
    from evo.search.objectives import METRICS
    from evo.flows.walkforward import walk_forward
    from evo.config.codec import decode

    url = f"sqlite:///{tmp_path}/wf.db"
    cfg = cfg_for(write_market(tmp_path / "wf.csv", planted(3000, 5)), algorithm={"pop_size": 12, "generations": 3},
                  validation={"holdout": 0.4, "walk_forward": {"folds": 3, "mode": mode, "warm_start": warm}})
    r = walk_forward(config=cfg, name="wf", db_url=url)
    assert [f["test"] for f in r["folds"]] == [[1800, 2200], [2200, 2600], [2600, 3000]]
    expected_train = {"rolling": [[0, 1800], [400, 2200], [800, 2600]], "anchored": [[0, 1800], [0, 2200], [0, 2600]]}
    assert [f["train"] for f in r["folds"]] == expected_train[mode]
    # each fold's chosen strategy, scored on its test window by vectorbt
    market = get_market(cfg.data)
    for f in r["folds"]:
        ref = evaluate(market, strategies.get("rsi_pullback"), [f["genes"]], EvaluationConfig(engine="vectorbt"),
                       window=tuple(f["test"])).metrics[0]
        got = np.array([decode(f["test_window"][m]) for m in METRICS])  # null is NaN, 'inf' an infinity
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, equal_nan=True)
    # each fold reports the PBO of its own evolution (CSCV over what it tried on its training window)
    for f in r["folds"]:
        fold_verdict = summary.summary(f"wf/wf{f['fold']}", url)["verdict"]
        assert 0 <= f["pbo"] <= 1 and f["pbo"] == fold_verdict["pbo"]
        assert fold_verdict["pbo_detail"]["phenotypes"] >= 2
    st = r["stitched"]
    assert st["bars"] == 1200
    np.testing.assert_allclose(1 + st["total_return"], np.prod([1 + f["test_window"]["total_return"] for f in r["folds"]]),
                               rtol=1e-9)
    assert summary.summary("wf", url)["walk_forward"]["stitched"] == st
    if warm:  # fold 2 started from fold 1's final survivors
        d1, d2 = dump_run(url, "wf/wf1"), dump_run(url, "wf/wf2")
        last1 = {m[2] for m in d1["members"] if m[0] == 3 and m[1] == "survivor"}
        first2 = {m[2] for m in d2["members"] if m[0] == 1 and m[1] == "offspring"}
        assert last1 <= first2
    # re-running finds every fold done and reports the same
    assert walk_forward(config=cfg, name="wf", db_url=url)["stitched"] == st


def test_holdout_each_generation_is_stored_but_never_steers(tmp_path):
    from sqlalchemy import create_engine, text

    from evo.flows.evolve import evolve

    path = write_market(tmp_path / "e.csv", random_walk(2000, 3))
    base = cfg_for(path, algorithm={"pop_size": 12, "generations": 3})
    each = cfg_for(path, algorithm={"pop_size": 12, "generations": 3}, validation={"oos_each_generation": True})
    urls = {k: f"sqlite:///{tmp_path}/{k}.db" for k in ("base", "each")}
    evolve(config=base, db_url=urls["base"])
    evolve(config=each, db_url=urls["each"])
    assert dump_run(urls["base"], "v") == dump_run(urls["each"], "v")  # the holdout never fed back
    eng = create_engine(urls["each"])
    with eng.connect() as c:
        gens = [r[0] for r in c.execute(text("SELECT generation FROM validations WHERE kind = 'holdout' ORDER BY generation"))]
    eng.dispose()
    assert gens == [1, 2, 3]
