"""The verdict's statistics on a real run: PBO equals CSCV computed here, from the paper's definition, on
the vectorbt returns of every behaviour the run tried; SPA and the Monte Carlo figures are stored per run
and per Pareto member and reproduce; a verdict stored before these statistics still shows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evo.config import validate
from tests.integration.test_validation import random_walk, write_market
from tests.unit.test_cscv import paper_cscv


def _run(tmp_path, **over):
    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    paths = [str(write_market(tmp_path / f"s{k}.csv", random_walk(900, 40 + k), seed=k)) for k in range(2)]
    d = {"name": "stats", "seed": 5, "data": {"paths": paths},
         "strategy": {"family": "rsi_pullback", "bounds": {"slow_window": [20, 60]}},
         "constraints": [{"metric": "n_trades", "op": ">=", "value": 3}],
         "algorithm": {"pop_size": 12, "generations": 3},
         "validation": {"cscv_blocks": 8, "monte_carlo_resamples": 200}}
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v}
    cfg = validate(d)
    url = f"sqlite:///{tmp_path}/stats.db"
    drive(cfg, None, None, url, None, False, Plain())
    return cfg, url


@pytest.mark.slow
@pytest.mark.parametrize("reducer", ["mean", "worst"])
def test_pbo_equals_cscv_on_vectorbts_returns_of_every_behaviour_tried(tmp_path, reducer):
    from evo import strategies
    from evo.engine import vbt as vbt_engine
    from evo.market import get_market
    from evo.run.opening import reopen
    from evo.view.summary import summary
    from tests.helpers import rows

    cfg, url = _run(tmp_path, evaluation={"reducer": reducer})
    v = summary("stats", url)["verdict"]
    ctx, _ = reopen("stats", database=url)
    start, stop = ctx.window
    market = get_market(cfg.data)
    family = strategies.get("rsi_pullback")
    genes = [g if isinstance(g, dict) else json.loads(g) for _, g in rows(url, (
        "select distinct i.id, i.genes from individuals i join members m on m.individual_id = i.id "
        "where m.role = 'offspring' order by i.id"))]
    per_symbol, prints = [], []
    for a in range(market.n_assets):
        ohlcv = market.frame(a).iloc[:stop]
        entries, exits = family.reference_signals(ohlcv, genes)
        pf = vbt_engine.portfolio(ohlcv["close"].iloc[start:], entries.to_numpy()[start:], exits.to_numpy()[start:],
                                  init_cash=cfg.evaluation.init_cash, fees=cfg.evaluation.fees,
                                  slippage=cfg.evaluation.slippage, freq=market.freq,
                                  params=family.sim_params(family.space().encode(genes), family.space().names,
                                                           cfg.evaluation.init_cash),
                                  ohlc=ohlcv.iloc[start:])
        per_symbol.append(pf.returns().to_numpy().T)  # [genomes, bars]
        prints.append(vbt_engine.fingerprints(pf, len(genes)))
    returns = np.stack(per_symbol, axis=1)  # [genomes, symbols, bars]
    # a behaviour is a set of trades (vectorbt's orders on every symbol); the first genome stored stands for it
    first = {}
    for i, key in enumerate(zip(*prints)):
        first.setdefault(key, i)
    distinct = np.array(sorted(first.values()))
    pbo, slope, loss, logits = paper_cscv(returns[distinct], 8, reducer)
    assert v["pbo_detail"]["phenotypes"] == len(distinct)
    assert v["pbo"] == pytest.approx(pbo, abs=1e-12)
    assert v["pbo_degradation"] == pytest.approx(slope, abs=1e-12)
    assert v["pbo_prob_loss"] == pytest.approx(loss, abs=1e-12)
    assert sum(v["pbo_detail"]["logit_histogram"]["counts"]) == len(logits) == 70


@pytest.mark.slow
def test_pbo_of_the_portfolio_reducer_ranks_the_shared_cash_portfolios(tmp_path):
    """reducer 'portfolio': each behaviour is one shared-cash portfolio over both symbols, its returns
    vectorbt's grouped returns (from_signals with group_by and cash_sharing)."""
    from evo import strategies
    from evo.engine import vbt as vbt_engine
    from evo.market import get_market
    from evo.run.opening import reopen
    from evo.view.summary import summary
    from tests.helpers import rows

    cfg, url = _run(tmp_path, evaluation={"reducer": "portfolio"})
    v = summary("stats", url)["verdict"]
    ctx, _ = reopen("stats", database=url)
    start, stop = ctx.window
    frames = [get_market(cfg.data).frame(a) for a in range(2)]
    family = strategies.get("rsi_pullback")
    genes = [g if isinstance(g, dict) else json.loads(g) for _, g in rows(url, (
        "select distinct i.id, i.genes from individuals i join members m on m.individual_id = i.id "
        "where m.role = 'offspring' order by i.id"))]
    n = len(genes)
    signals = [family.reference_signals(f.iloc[:stop], genes) for f in frames]
    wide = lambda arrays: np.stack(arrays, axis=2)[start:].reshape(stop - start, n * 2)  # noqa: E731
    index = frames[0].index[start:stop]
    prices = {f: pd.DataFrame(np.tile(np.column_stack([fr[f].to_numpy()[start:stop] for fr in frames]), n), index=index)
              for f in ("open", "high", "low", "close")}
    records = np.repeat(family.sim_params(family.space().encode(genes), family.space().names, cfg.evaluation.init_cash, 2), 2)
    pf = vbt_engine.portfolio(prices["close"], wide([e.to_numpy() for e, _ in signals]), wide([x.to_numpy() for _, x in signals]),
                              init_cash=cfg.evaluation.init_cash, fees=cfg.evaluation.fees, slippage=cfg.evaluation.slippage,
                              freq=frames[0].index.freq or "1h", params=records,
                              ohlc={f: prices[f] for f in ("open", "high", "low")},
                              group_by=np.repeat(np.arange(n), 2), cash_sharing=True)
    returns = pf.returns().to_numpy().T[:, None, :]  # [genomes, 1, bars]
    prints = vbt_engine.fingerprints(pf, n * 2).reshape(n, 2)
    first = {}
    for i, key in enumerate(map(tuple, prints)):
        first.setdefault(key, i)
    distinct = np.array(sorted(first.values()))
    pbo, slope, loss, _ = paper_cscv(returns[distinct], 8)
    assert v["pbo_detail"]["phenotypes"] == len(distinct)
    assert v["pbo"] == pytest.approx(pbo, abs=1e-12) and v["pbo_degradation"] == pytest.approx(slope, abs=1e-12)
    assert v["pbo_prob_loss"] == pytest.approx(loss, abs=1e-12)


def test_spa_and_monte_carlo_are_stored_and_reproduce(tmp_path):
    from evo.oos import bootstrap
    from evo.oos.scoring import asset_returns, buy_and_hold_returns
    from evo.run import process
    from evo.run.opening import reopen
    from evo.view.summary import summary

    cfg, url = _run(tmp_path)
    s = summary("stats", url)
    v = s["verdict"]
    assert 0 <= v["spa_pvalue_lower"] <= v["spa_pvalue"] <= v["spa_pvalue_upper"] <= 1
    ctx, _ = reopen("stats", database=url)
    X = process.space_for(ctx).encode([e["genes"] for e in s["pareto"]])
    # the stored p-values are arch's on the Pareto set's holdout returns against equal-weight buy-and-hold
    strategies = np.stack([asset_returns(ctx, x, ctx.oos_window) for x in X], axis=1)
    closes = [pd.read_csv(p)["close"].to_numpy()[ctx.oos_window[0]:ctx.oos_window[1]] for p in cfg.data.paths]
    bh = np.mean([np.concatenate([[0.0], c[1:] / c[:-1] - 1]) for c in closes], axis=0)
    np.testing.assert_allclose(buy_and_hold_returns(ctx, ctx.oos_window), bh, rtol=1e-12)
    again = bootstrap.spa(strategies, bh, block=cfg.validation.bootstrap_block,
                          reps=cfg.validation.monte_carlo_resamples, seed=np.random.default_rng([cfg.seed, 1]))
    assert again["spa_pvalue"] == v["spa_pvalue"]
    for i, e in enumerate(s["pareto"]):
        mc = e["monte_carlo"]["holdout"]
        assert mc["resamples"] == 200 and 0 <= mc["prob_loss"] <= 1 and mc["max_drawdown_q05"] <= mc["max_drawdown_median"] <= 0
        assert e["monte_carlo"]["in_sample"]["bars"] == ctx.window[1] - ctx.window[0]
    assert v["verdict"] == "no evidence of edge" and v["refused_by"]
    # the whole verdict, resamples and neighbours included, is the same for the same seed
    (tmp_path / "again").mkdir()
    _, url2 = _run(tmp_path / "again")
    s2 = summary("stats", url2)
    assert s2["verdict"] == v
    assert [(e["monte_carlo"], e["robustness"]) for e in s2["pareto"]] == [(e["monte_carlo"], e["robustness"]) for e in s["pareto"]]


def test_a_verdict_stored_before_these_statistics_still_shows(tmp_path):
    from evo.store import Store
    from evo.view.summary import summary

    _, url = _run(tmp_path)
    store = Store(url)
    run = store.get_run("stats")
    number, result = store.latest_validation(run.id, "holdout")
    old = {k: val for k, val in result.items() if not k.startswith(("pbo", "spa")) and k not in ("refused_by", "not_run")}
    old["pareto"] = [{k: val for k, val in p.items() if k not in ("monte_carlo", "robustness")} for p in old["pareto"]]
    store.save_validation(run.id, "holdout", number, old)
    s = summary("stats", url)
    assert all(s["verdict"][k] is None for k in ("pbo", "pbo_degradation", "pbo_prob_loss", "spa_pvalue"))
    assert all(e["monte_carlo"] is None and e["robustness"] is None for e in s["pareto"])


@pytest.mark.slow
def test_neighbours_are_scored_as_vectorbt_scores_them(tmp_path):
    from evo import strategies
    from evo.config import EvaluationConfig
    from evo.engine import evaluate
    from evo.market import get_market
    from evo.oos import robustness
    from evo.run.opening import reopen
    from evo.view.summary import summary

    cfg, url = _run(tmp_path, algorithm={"robustness": {"neighbours": 5, "radius": 0.1}})
    s = summary("stats", url)
    ctx, _ = reopen("stats", database=url)
    from evo.run import process

    family = strategies.get("rsi_pullback")
    space = process.space_for(ctx)  # the run's gene bounds (slow_window 20-60)
    for e in s["pareto"]:
        near = robustness.neighbours(space, space.encode([e["genes"]])[0], 5, 0.1, cfg.algorithm.robustness.flip,
                                     np.random.default_rng([cfg.seed, 4, int(e["genome_hash"][:15], 16)]))
        ref = evaluate(get_market(cfg.data), family, space.decode(near), EvaluationConfig(engine="vectorbt"),
                       window=ctx.window).metrics
        want = robustness.spread(ref, cfg.objectives, cfg.constraints)
        got = e["robustness"]
        assert got["neighbours"] == 5 and got["feasible"] == want["feasible"]
        for m, w in want["objectives"].items():
            for k in ("median", "worst"):
                assert got["objectives"][m][k] == pytest.approx(w[k], rel=1e-9, abs=1e-12)


def test_pbo_reads_the_block_sums_evaluation_stored(tmp_path):
    """One blob per behaviour the run tried, written in the generations' own commits; PBO reads them and
    computes at the end only the sums of the few behaviours rounding put in doubt and of the chosen ones.
    A database from before they were stored gives the same PBO, every sum computed at the end; with
    validation.cscv_blocks = 0 no sums are computed or stored, and PBO is off."""
    from sqlalchemy import create_engine, text

    from evo.oos import scoring
    from evo.run.opening import reopen
    from evo.view.summary import summary
    from tests.helpers import scalar

    from evo.flows.evolve import drive
    from evo.flows.orchestration import Plain

    cfg, url = _run(tmp_path, evaluation={"reducer": "median"}, algorithm={"generations": 4})
    v = summary("stats", url)["verdict"]
    n = v["pbo_detail"]["phenotypes"]
    assert scalar(url, "select count(blocks) from evaluations") == n > 20
    assert scalar(url, "select count(distinct trades) from evaluations where blocks is not null") == n
    assert 0 < v["pbo_detail"]["computed_at_end"] < n
    # the same run under another name finds every evaluation, and the sums, in the cache
    drive(cfg.with_overrides(name="again"), None, None, url, None, False, Plain())
    w = summary("again", url)["verdict"]
    assert scalar(url, "select count(blocks) from evaluations") == n
    assert w["pbo_detail"] == v["pbo_detail"] and (w["pbo"], w["pbo_degradation"]) == (v["pbo"], v["pbo_degradation"])
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("update evaluations set blocks = null"))
    eng.dispose()
    ctx, store = reopen("stats", database=url)
    again = scoring.pbo(ctx)
    store.dispose()
    assert again["pbo_detail"]["computed_at_end"] == n
    assert (again["pbo"], again["pbo_degradation"], again["pbo_prob_loss"]) == (
        v["pbo"], pytest.approx(v["pbo_degradation"], abs=1e-12), v["pbo_prob_loss"])

    (tmp_path / "off").mkdir()
    _, url = _run(tmp_path / "off", validation={"cscv_blocks": 0})
    off = summary("stats", url)["verdict"]
    assert off["pbo"] is None and "cscv_blocks = 0" in off["pbo_detail"]["reason"]
    assert scalar(url, "select count(blocks) from evaluations") == 0
