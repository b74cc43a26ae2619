"""Trade fingerprints: a 64-bit hash of a strategy's orders on its window (bar, side, size), computed by
the fast kernels in the same pass and by the vectorbt engine from its order records.

Equal orders give equal fingerprints (whatever the genomes), different orders different ones: checked
against vectorbt's own order records, not against our hashes of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evo import strategies
from evo.config import DataConfig, EvaluationConfig, SyntheticData
from evo.market import load_market
from evo.engine import evaluate, fast, nb
from evo.engine.enums import Prices, Signals

COSTS = dict(init_cash=10_000.0, fees=0.001, slippage=0.0005)


@pytest.fixture(scope="module")
def market():
    return load_market(DataConfig(synthetic=SyntheticData(n_bars=2500, seed=31, symbols=["A", "B"])))


def orders_of(pf, n_columns: int) -> list[tuple]:
    """Each column's filled orders as vectorbt records them: ((bar, side, size), ...) in bar order."""
    o = pd.DataFrame(pf.orders.values).sort_values(["col", "idx"])
    return [tuple((int(r.idx), int(r.side), float(r.size)) for r in o[o.col == c].itertuples())
            for c in range(n_columns)]


def vbt_orders(market, fam, params, settings, asset) -> list[tuple]:
    """The orders of every genome on one symbol, from vectorbt given the family's reference signals and
    the documented trading options."""
    from tests.unit.test_family_parity import vbt_trading_kwargs

    import vectorbt as vbt

    frame = market.frame(asset)
    out = []
    for p in params:
        e, x = fam.reference_signals(frame, p)
        ohlc = {f: frame[f] for f in ("open", "high", "low")} if settings.ohlc_stops else {}
        pf = vbt.Portfolio.from_signals(frame["close"], e, x, freq=market.freq, **COSTS, **ohlc,
                                        **vbt_trading_kwargs(p, settings.init_cash))
        out.append(orders_of(pf, 1)[0])
    return out


def test_genomes_with_identical_trades_share_a_fingerprint(market):
    """composite genomes that differ only in genes that cannot act (a disabled condition's threshold, a
    take-profit of +4000 % that never fires) trade identically: same fingerprint, in both engines."""
    fam = strategies.get("composite")
    space = fam.space({"tp_stop": (40.0, 100.0)})
    rng = np.random.default_rng(3)
    X = space.repair(space.xl + rng.random((6, space.n_var)) * (space.xu - space.xl))
    X[:, space.index("e_bb")] = 0  # bb_alpha only acts through e_bb (x_bb reads the middle band)
    X = space.repair(X)
    twins = X.copy()
    twins[:, space.index("bb_alpha")] = np.where(X[:, space.index("bb_alpha")] < 2.0, 2.4, 1.1)
    twins[:, space.index("tp_stop")] = np.where(X[:, space.index("tp_stop")] < 70, 90.0, 50.0)
    params = space.decode(np.vstack([X, space.repair(twins)]))
    assert len(set(space.hashes(space.encode(params)))) == 12  # twelve different genomes
    settings = EvaluationConfig(**COSTS)
    ev = evaluate(market, fam, params, settings)
    ref = evaluate(market, fam, params, EvaluationConfig(engine="vectorbt", **COSTS))
    np.testing.assert_array_equal(ev.fingerprints[:6], ev.fingerprints[6:])
    np.testing.assert_array_equal(ev.asset_fingerprints, ref.asset_fingerprints)
    assert len(set(ev.fingerprints[:6].tolist())) == 6
    for a in range(market.n_assets):  # the trades really are the same, and there are trades
        orders = vbt_orders(market, fam, params, settings, a)
        assert orders[:6] == orders[6:]
        assert sum(len(o) > 4 for o in orders[:6]) >= 4


@pytest.mark.slow
def test_fingerprints_are_equal_exactly_when_the_orders_are(market):
    """A population in which some genomes trade alike and most do not: fingerprint equality is order
    equality, pair by pair, on each symbol."""
    fam = strategies.get("trend")
    space = fam.space({"max_vol": (0.05, 0.1), "tp_stop": (0.2, 0.5)})
    rng = np.random.default_rng(7)
    X = space.repair(space.xl + rng.random((40, space.n_var)) * (space.xu - space.xl))
    # copies that differ in genes that rarely act: a volatility cap seldom reached, a distant take-profit
    near = X[:20].copy()
    near[:, space.index("max_vol")] = space.xu[space.index("max_vol")] - near[:, space.index("max_vol")] + 0.05
    near[:, space.index("tp_stop")] = 0.7 - near[:, space.index("tp_stop")]
    X = space.repair(np.vstack([X, near]))
    params = space.decode(X)
    settings = EvaluationConfig(**COSTS)
    ev = evaluate(market, fam, params, settings)
    alike = unlike = 0
    for a in range(market.n_assets):
        orders = vbt_orders(market, fam, params, settings, a)
        fps = ev.asset_fingerprints[a]
        for i in range(len(params)):
            for j in range(i + 1, len(params)):
                same = orders[i] == orders[j]
                assert (fps[i] == fps[j]) == same, (a, i, j)
                alike += same
                unlike += not same
    assert alike >= 5 and unlike > 1000  # both kinds of pairs were compared


def test_changing_one_trade_changes_the_fingerprint():
    """One order moved by a bar, resized, or of the other side (same bars and sizes), or one trade more:
    another fingerprint. A signal that places no order (an entry while in the position) changes nothing.
    Fixed amounts and no costs, so that each variant changes one thing only."""
    import vectorbt as vbt

    n = 400
    rng = np.random.default_rng(5)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))),
                      index=pd.date_range("2022-01-01", periods=n, freq="1h"))
    costs = dict(init_cash=1e6, fees=0.0, slippage=0.0)
    e = rng.random(n) < 0.03
    x = rng.random(n) < 0.03
    first_exit = np.flatnonzero(x & (np.cumsum(e) > 0))[0]
    moved = x.copy()
    moved[first_exit], moved[first_exit + 1] = False, True
    extra = e.copy()
    extra[-2] = True
    # an entry on a bar while the position is open (and no exit): vectorbt places no order
    held = vbt.Portfolio.from_signals(close, e, x, size=10.0, freq="1h", **costs).assets().to_numpy() > 0
    redundant = e.copy()
    redundant[next(i for i in range(1, n) if held[i - 1] and held[i] and not x[i] and not e[i])] = True
    variants = {
        "base": (e, x, dict()),
        "exit a bar later": (e, moved, dict()),
        "another size": (e, x, dict(size=12.0)),
        "the other side": (e, x, dict(direction="shortonly")),
        "one trade more": (extra, x, dict()),
        "redundant entry": (redundant, x, dict()),
    }
    fps, records = {}, {}
    for name, (ee, xx, kw) in variants.items():
        kw = {"size": 10.0, "size_type": "amount", "direction": "longonly", **kw}
        params = fast.make_params(1, **kw)
        sim = fast.sim_settings(freq="1h", **costs)
        c = close.to_numpy()
        no = np.empty((1, 0), dtype=np.bool_)
        _, fp, _ = nb.simulate_signals_nb(fast.frozen(Prices(c, c, c, c)), fast.owned(Signals(ee[None], xx[None], no, no)),
                                       fast.frozen(params), sim, 1)
        fps[name] = int(fp[0])
        records[name] = orders_of(vbt.Portfolio.from_signals(close, ee, xx, freq="1h", **costs, **kw), 1)[0]
    base = records["base"]
    assert records["redundant entry"] == base and fps["redundant entry"] == fps["base"]
    # each variant changed exactly what it is named after
    assert [o[0] for o in records["exit a bar later"]] != [o[0] for o in base]
    assert [o[1:] for o in records["exit a bar later"]] == [o[1:] for o in base]
    assert [o[:2] for o in records["another size"]] == [o[:2] for o in base]
    assert [(o[0], o[2]) for o in records["the other side"]] == [(o[0], o[2]) for o in base]
    assert records["one trade more"][:len(base)] == base and len(records["one trade more"]) == len(base) + 1
    others = [k for k in variants if k not in ("base", "redundant entry")]
    assert len({fps[k] for k in ["base", *others]}) == len(others) + 1


def test_the_combined_fingerprint_chains_the_assets_in_order():
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint64)
    combined = nb.combine_fingerprints_nb(a)
    assert len(set(combined.tolist())) == 3
    np.testing.assert_array_equal(nb.combine_fingerprints_nb(a[:, [0, 0]]), combined[[0, 0]])
    swapped = nb.combine_fingerprints_nb(a[::-1])
    assert (swapped != combined).all()  # the same orders on other assets are another portfolio
    b = a.copy()
    b[1, 2] = 7
    assert nb.combine_fingerprints_nb(b)[2] != combined[2] and (nb.combine_fingerprints_nb(b)[:2] == combined[:2]).all()
