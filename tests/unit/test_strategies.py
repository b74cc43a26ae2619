"""Gene spaces and the rsi_pullback family's reference signals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evo.config.errors import FamilyError

from evo import strategies
from evo.config import SyntheticData
from evo.market.synthetic import synthetic_frames
from evo.strategies.base import Gene, genome_hash


@pytest.fixture(scope="module")
def ohlcv():
    return synthetic_frames(SyntheticData(n_bars=1200, seed=4))["SYN"]


def test_get_unknown_family_names_the_known_ones():
    with pytest.raises(FamilyError, match="rsi_pullback"):
        strategies.get("nope")


def test_gene_snap_integers_steps_and_bounds():
    g = Gene("w", "int", 5, 30)
    np.testing.assert_array_equal(g.snap(np.array([4.2, 5.49, 5.5, 29.7, 31.0])), [5, 5, 6, 30, 30])
    s = Gene("t", "float", 0.005, 0.2, step=0.001)
    out = s.snap(np.array([0.0217, 0.00549, 0.3]))
    np.testing.assert_array_equal(out, [0.022, 0.005, 0.2])
    # equal grid points are equal bits whatever the float noise of the input
    assert s.snap(np.array([0.1 + 0.2 - 0.3 + 0.05]))[0] == s.snap(np.array([0.05]))[0]
    with pytest.raises(ValueError):
        Gene("bad", "int", 5, 5)
    with pytest.raises(ValueError):
        Gene("bad", "int", 1.5, 9)


def test_space_repair_decode_encode_and_fast_below_slow():
    fam = strategies.get("rsi_pullback")
    space = fam.space({"slow_window": (20, 60)})
    rng = np.random.default_rng(0)
    X = space.xl + rng.random((200, space.n_var)) * (space.xu - space.xl)
    R = space.repair(X)
    f, s = space.index("fast_window"), space.index("slow_window")
    assert (R[:, f] < R[:, s]).all()
    assert (R >= space.xl).all() and (R <= space.xu).all()
    np.testing.assert_array_equal(space.repair(R), R)  # idempotent
    params = space.decode(R)
    assert isinstance(params[0]["rsi_window"], int) and isinstance(params[0]["sl_stop"], float)
    np.testing.assert_array_equal(space.encode(params), R)
    assert space.max_window() == 60


def test_space_refuses_unknown_gene_and_inverted_bounds():
    fam = strategies.get("rsi_pullback")
    with pytest.raises(ValueError, match="unknown gene"):
        fam.space({"nope": (1, 2)})
    with pytest.raises(ValueError, match="rsi_window"):
        fam.space({"rsi_window": (30, 5)})


def test_genome_hash_is_canonical():
    a = {"x": 1, "y": 0.1}
    assert genome_hash(a) == genome_hash({"y": 0.1, "x": 1})
    assert genome_hash(a) != genome_hash({"x": 1, "y": 0.1000000001})
    assert genome_hash(a) != genome_hash({"x": 2, "y": 0.1})


def _rsi(close: pd.Series, n: int) -> pd.Series:
    d = close.diff()
    up = d.clip(lower=0).rolling(n).mean()
    down = (-d.clip(upper=0)).rolling(n).mean()
    return 100 - 100 / (1 + up / down)


def test_reference_signals_follow_the_documented_rules(ohlcv):
    """Independent pandas computation of the docstring's rules."""
    fam = strategies.get("rsi_pullback")
    space = fam.space()
    rng = np.random.default_rng(2)
    X = space.repair(space.xl + rng.random((25, space.n_var)) * (space.xu - space.xl))
    params = space.decode(X)
    entries, exits = fam.reference_signals(ohlcv, params)
    assert entries.shape == (len(ohlcv), 25) and entries.dtypes.eq(bool).all()
    c, v = ohlcv["close"], ohlcv["volume"]
    n_entries = 0
    for j, p in enumerate(params):
        rsi = _rsi(c, p["rsi_window"])
        fast, slow = c.rolling(p["fast_window"]).mean(), c.rolling(p["slow_window"]).mean()
        vol_ma = v.rolling(p["vol_window"]).mean()
        e = (rsi < p["rsi_lower"]) & (fast > slow) & (v >= p["vol_mult"] * vol_ma)
        x = (rsi > p["rsi_upper"]) | (fast < slow)
        # ignore bars where a value sits within float noise of its threshold
        near = ((rsi - p["rsi_lower"]).abs() < 1e-9) | ((rsi - p["rsi_upper"]).abs() < 1e-9) | ((fast - slow).abs() < 1e-9)
        np.testing.assert_array_equal(entries[j].to_numpy()[~near], e.to_numpy()[~near], err_msg=f"entries col {j}")
        np.testing.assert_array_equal(exits[j].to_numpy()[~near], x.to_numpy()[~near], err_msg=f"exits col {j}")
        n_entries += int(e.sum())
    assert n_entries > 0  # the comparison was not between two empty signal sets


def test_reference_signals_single_dict_matches_the_batch(ohlcv):
    fam = strategies.get("rsi_pullback")
    space = fam.space()
    params = space.decode(space.repair(np.array([space.xl + 0.3 * (space.xu - space.xl), space.xl + 0.6 * (space.xu - space.xl)])))
    E, X = fam.reference_signals(ohlcv, params)
    e1, x1 = fam.reference_signals(ohlcv, params[1])
    assert isinstance(e1, pd.Series)
    np.testing.assert_array_equal(e1.to_numpy(), E[1].to_numpy())
    np.testing.assert_array_equal(x1.to_numpy(), X[1].to_numpy())
    sl, tp = fam.stops(params)
    np.testing.assert_array_equal(sl, [p["sl_stop"] for p in params])
    np.testing.assert_array_equal(tp, [p["tp_stop"] for p in params])


# ---------------------------------------------------------------------------------------------
# the families added after rsi_pullback: their rules do what their docstrings say


def _random_genomes(fam, n, seed, bounds=None):
    space = fam.space(bounds)
    rng = np.random.default_rng(seed)
    return space, space.repair(space.xl + rng.random((n, space.n_var)) * (space.xu - space.xl))


def _signals(fam, space, X, ohlcv):
    """Reference signals (bars x strategies) of genomes X, checked equal to the fast kernel's."""
    from evo.engine import indicators
    from evo.market import FIELDS

    params = space.decode(X)
    E, Xr = fam.reference_signals(ohlcv, params)
    E, Xr = E.to_numpy(), Xr.to_numpy()
    arrays = {f: np.ascontiguousarray(ohlcv[f].to_numpy(dtype=np.float64)) for f in FIELDS}
    cache = indicators.build(fam.indicators, arrays, X, space.names)
    e = np.empty((len(X), len(ohlcv)), bool)
    x = np.empty_like(e)
    fam.fast_signals(cache, X, space.names, arrays, e, x)
    np.testing.assert_array_equal(e, E.T)
    np.testing.assert_array_equal(x, Xr.T)
    return params, E, Xr


def _near(a, b, tol=1e-9):
    """Bars where a sits within float noise of b (independent pandas code may round differently)."""
    return (np.abs(np.asarray(a) - np.asarray(b)) < tol * np.maximum(1.0, np.abs(np.asarray(b))))


@pytest.mark.parametrize("name", ["mean_reversion", "trend", "breakout", "composite"])
def test_new_families_are_registered_and_documented(name):
    fam = strategies.get(name)
    assert name in strategies.names() and fam.name == name
    doc = type(fam).__doc__
    assert "entry" in doc and "exit" in doc and "Repair" in doc
    gene_names = [g.name for g in fam.genes]
    assert {"sl_stop", "tp_stop"} <= set(gene_names)
    assert all(g.kind == "int" for g in fam.genes if g.window)
    assert all(g.step for g in fam.genes if g.kind == "float")
    assert {i.gene for i in fam.indicators} <= set(gene_names)


def test_mean_reversion_rules(ohlcv):
    fam = strategies.get("mean_reversion")
    space, X = _random_genomes(fam, 20, seed=5)
    params, E, Xr = _signals(fam, space, X, ohlcv)
    c = ohlcv["close"]
    n_entries = 0
    for j, p in enumerate(params):
        middle = c.rolling(p["bb_window"]).mean()
        lower = middle - p["bb_alpha"] * c.rolling(p["bb_window"]).std(ddof=0)  # BBANDS: ddof=0
        rsi = _rsi(c, p["rsi_window"])
        e = (c < lower) & (rsi < p["rsi_lower"])
        x = (c > middle) | (rsi > p["rsi_upper"])
        near = _near(c, lower) | _near(c, middle) | _near(rsi, p["rsi_lower"]) | _near(rsi, p["rsi_upper"])
        np.testing.assert_array_equal(E[~near, j], e.to_numpy()[~near], err_msg=f"entries col {j}")
        np.testing.assert_array_equal(Xr[~near, j], x.to_numpy()[~near], err_msg=f"exits col {j}")
        n_entries += int(e.sum())
    assert n_entries > 0
    # below the lower band is below the middle, and oversold is not overbought: never both
    assert not (E & Xr).any()
    # a wider band (larger alpha) only removes entries
    a = space.index("bb_alpha")
    wide = X.copy()
    wide[:, a] = space.xu[a]
    _, E_wide, _ = _signals(fam, space, wide, ohlcv)
    assert not (E_wide & ~E).any() and E_wide.sum() < E.sum()


def test_trend_rules_and_repair(ohlcv):
    fam = strategies.get("trend")
    space, X = _random_genomes(fam, 200, seed=6, bounds={"fast_window": (3, 60), "slow_window": (20, 60)})
    f, s = space.index("fast_window"), space.index("slow_window")
    assert (X[:, f] < X[:, s]).all()  # repaired, also where the narrowed bounds overlap
    both_at_top = space.xl.copy()
    both_at_top[[f, s]] = 60
    R = space.repair(both_at_top)
    assert (R[0, f], R[0, s]) == (59, 60)  # slow cannot go up: fast goes down
    space, X = _random_genomes(fam, 20, seed=6)
    params, E, Xr = _signals(fam, space, X, ohlcv)
    c = ohlcv["close"]
    for j, p in enumerate(params):
        fast = c.ewm(span=p["fast_window"], adjust=False, min_periods=p["fast_window"]).mean()
        slow = c.ewm(span=p["slow_window"], adjust=False, min_periods=p["slow_window"]).mean()
        near = _near(fast, slow)
        np.testing.assert_array_equal(Xr[~near, j], (fast < slow).to_numpy()[~near], err_msg=f"exits col {j}")
        # entries are the uptrend bars the volatility filter lets through
        assert not (E[:, j] & ~(fast > slow).to_numpy()).any()
    assert not (E & Xr).any()
    # the volatility filter: a looser max_vol only adds entries; wide open, entry = fast > slow
    m = space.index("max_vol")
    loose = X.copy()
    loose[:, m] = space.xu[m]
    _, E_loose, X_loose = _signals(fam, space, loose, ohlcv)
    assert not (E & ~E_loose).any()
    np.testing.assert_array_equal(X_loose, Xr)
    open_space = fam.space({"max_vol": (0.005, 10.0)})
    wide_open = open_space.encode(params)
    wide_open[:, m] = 10.0
    _, E_open, X_open = _signals(fam, open_space, wide_open, ohlcv)
    fast, slow = _ema_pair(c, params)
    np.testing.assert_array_equal(E_open, fast > slow)
    np.testing.assert_array_equal(X_open, fast < slow)
    strict = X.copy()
    strict[:, m] = space.xl[m]
    _, E_strict, _ = _signals(fam, space, strict, ohlcv)
    assert E_strict.sum() < E.sum()


def _ema_pair(c, params):
    """(fast, slow) EMAs of every parameter set, (2, bars, n), from vectorbt."""
    import vectorbt as vbt

    fast = np.column_stack([vbt.MA.run(c, p["fast_window"], ewm=True).ma.to_numpy() for p in params])
    slow = np.column_stack([vbt.MA.run(c, p["slow_window"], ewm=True).ma.to_numpy() for p in params])
    return np.stack([fast, slow])


def test_breakout_rules(ohlcv):
    fam = strategies.get("breakout")
    space, X = _random_genomes(fam, 20, seed=7)
    params, E, Xr = _signals(fam, space, X, ohlcv)
    c, h, lo = ohlcv["close"], ohlcv["high"], ohlcv["low"]
    tr = pd.concat([h - lo, (h - c.shift()).abs(), (lo - c.shift()).abs()], axis=1).max(axis=1)
    n_entries = 0
    for j, p in enumerate(params):
        upper = h.rolling(p["entry_window"]).max().shift(1)
        lower = lo.rolling(p["exit_window"]).min().shift(1)
        atr = tr.ewm(span=p["atr_window"], adjust=False, min_periods=p["atr_window"]).mean()
        level = upper + p["atr_mult"] * atr
        e, x = c > level, c < lower
        near = _near(c, level)
        np.testing.assert_array_equal(E[~near, j], e.to_numpy()[~near], err_msg=f"entries col {j}")
        np.testing.assert_array_equal(Xr[:, j], x.to_numpy(), err_msg=f"exits col {j}")  # no arithmetic: exact
        assert not E[: p["entry_window"], j].any() and not Xr[: p["exit_window"], j].any()  # shifted channel
        n_entries += int(e.sum())
    assert n_entries > 0
    assert not (E & Xr).any()  # above the previous high and below the previous low: impossible
    # a larger ATR margin only removes entries; no margin is the plain Donchian breakout
    k = space.index("atr_mult")
    plain = X.copy()
    plain[:, k] = 0.0
    _, E_plain, X_plain = _signals(fam, space, plain, ohlcv)
    assert not (E & ~E_plain).any() and E_plain.sum() > E.sum()
    np.testing.assert_array_equal(X_plain, Xr)


def _composite_genome(space, base, entry=(), entry_logic=0, exit=(), exit_logic=0):
    from evo.strategies.composite import ENTRY_SWITCHES, EXIT_SWITCHES

    X = base.copy()
    for g in ENTRY_SWITCHES + EXIT_SWITCHES:
        X[:, space.index(g)] = 1.0 if g in entry + exit else 0.0
    X[:, space.index("entry_logic")] = entry_logic
    X[:, space.index("exit_logic")] = exit_logic
    return X


def _composite_conditions(ohlcv, params):
    """Each condition of the composite docstring on its own, from vectorbt indicators: name -> (bars, n)."""
    import vectorbt as vbt

    c, v = ohlcv["close"], ohlcv["volume"]
    col = lambda f: np.column_stack([np.asarray(f(p), dtype=np.float64) for p in params])  # noqa: E731
    rsi = col(lambda p: vbt.RSI.run(c, p["rsi_window"]).rsi)
    fast = col(lambda p: vbt.MA.run(c, p["fast_window"]).ma)
    slow = col(lambda p: vbt.MA.run(c, p["slow_window"]).ma)
    middle = col(lambda p: vbt.BBANDS.run(c, p["bb_window"], alpha=p["bb_alpha"]).middle)
    lower = col(lambda p: vbt.BBANDS.run(c, p["bb_window"], alpha=p["bb_alpha"]).lower)
    dc_high = col(lambda p: ohlcv["high"].vbt.rolling_max(p["dc_entry_window"]).vbt.fshift(1))
    dc_low = col(lambda p: ohlcv["low"].vbt.rolling_min(p["dc_exit_window"]).vbt.fshift(1))
    vol_ma = col(lambda p: vbt.MA.run(v, p["vol_window"]).ma)
    cc, vv = c.to_numpy()[:, None], v.to_numpy()[:, None]
    lo_, up_ = np.array([p["rsi_lower"] for p in params]), np.array([p["rsi_upper"] for p in params])
    return {
        "e_rsi": rsi < lo_, "e_trend": fast > slow, "e_bb": cc < lower, "e_breakout": cc > dc_high,
        "e_volume": vv > vol_ma,
        "x_rsi": rsi > up_, "x_trend": fast < slow, "x_bb": cc > middle, "x_breakdown": cc < dc_low,
    }


def test_composite_one_condition_alone_is_that_condition(ohlcv):
    from evo.strategies.composite import ENTRY_SWITCHES, EXIT_SWITCHES

    fam = strategies.get("composite")
    space, base = _random_genomes(fam, 6, seed=8)
    cond = _composite_conditions(ohlcv, space.decode(base))
    for e_sw, x_sw in zip(ENTRY_SWITCHES, EXIT_SWITCHES + (EXIT_SWITCHES[0],)):
        for logic in (0, 1):  # with one condition AND and OR agree
            X = _composite_genome(space, base, (e_sw,), logic, (x_sw,), 1 - logic)
            _, E, Xr = _signals(fam, space, X, ohlcv)
            np.testing.assert_array_equal(E, cond[e_sw], err_msg=e_sw)
            np.testing.assert_array_equal(Xr, cond[x_sw], err_msg=x_sw)
            assert cond[e_sw].any() and cond[x_sw].any()


def test_composite_or_is_a_superset_of_and(ohlcv):
    from evo.strategies.composite import ENTRY_SWITCHES, EXIT_SWITCHES

    fam = strategies.get("composite")
    space, base = _random_genomes(fam, 6, seed=9)
    cond = _composite_conditions(ohlcv, space.decode(base))
    for entry, exit in [
        (("e_rsi", "e_bb"), ("x_rsi", "x_bb")),
        (("e_trend", "e_volume"), ("x_trend", "x_breakdown")),
        (ENTRY_SWITCHES, EXIT_SWITCHES),
    ]:
        _, E_and, X_and = _signals(fam, space, _composite_genome(space, base, entry, 0, exit, 0), ohlcv)
        _, E_or, X_or = _signals(fam, space, _composite_genome(space, base, entry, 1, exit, 1), ohlcv)
        assert not (E_and & ~E_or).any() and not (X_and & ~X_or).any()
        assert E_or.sum() > E_and.sum() and X_or.sum() > X_and.sum()
        # exactly the AND and the OR of the enabled conditions
        np.testing.assert_array_equal(E_and, np.logical_and.reduce([cond[g] for g in entry]))
        np.testing.assert_array_equal(E_or, np.logical_or.reduce([cond[g] for g in entry]))
        np.testing.assert_array_equal(X_and, np.logical_and.reduce([cond[g] for g in exit]))
        np.testing.assert_array_equal(X_or, np.logical_or.reduce([cond[g] for g in exit]))


def test_composite_equals_mean_reversion_when_composed_like_it(ohlcv):
    """close < lower AND rsi oversold; close > middle OR rsi overbought: the mean_reversion rules."""
    comp, mr = strategies.get("composite"), strategies.get("mean_reversion")
    mr_space, mr_X = _random_genomes(mr, 8, seed=10)
    space, base = _random_genomes(comp, 8, seed=10)
    for g in ("bb_window", "bb_alpha", "rsi_window", "rsi_lower", "rsi_upper", "sl_stop", "tp_stop"):
        base[:, space.index(g)] = mr_X[:, mr_space.index(g)]
    X = _composite_genome(space, base, ("e_rsi", "e_bb"), 0, ("x_rsi", "x_bb"), 1)
    _, E, Xr = _signals(comp, space, X, ohlcv)
    _, E_mr, X_mr = _signals(mr, mr_space, mr_X, ohlcv)
    np.testing.assert_array_equal(E, E_mr)
    np.testing.assert_array_equal(Xr, X_mr)
    assert E.any()


def test_composite_repair_switches_a_condition_on_and_none_means_never(ohlcv):
    from evo.strategies.composite import ENTRY_SWITCHES, EXIT_SWITCHES

    fam = strategies.get("composite")
    space, base = _random_genomes(fam, 4, seed=11)
    X = _composite_genome(space, base, (), 0, (), 1)
    R = space.repair(X)
    on = lambda sw: R[:, [space.index(g) for g in sw]]  # noqa: E731
    np.testing.assert_array_equal(on(ENTRY_SWITCHES), np.tile([1, 0, 0, 0, 0], (4, 1)))
    np.testing.assert_array_equal(on(EXIT_SWITCHES), np.tile([1, 0, 0, 0], (4, 1)))
    np.testing.assert_array_equal(space.repair(R), R)  # idempotent
    # random genomes: at least one condition on each side after repair, fast < slow
    _, Rr = _random_genomes(fam, 300, seed=12)
    for sw in (ENTRY_SWITCHES, EXIT_SWITCHES):
        assert (Rr[:, [space.index(g) for g in sw]].sum(axis=1) >= 1).all()
    assert (Rr[:, space.index("fast_window")] < Rr[:, space.index("slow_window")]).all()
    # an unrepaired genome with nothing on: no signal at all, in the kernel as in the reference
    for logic in (0, 1):
        _, E, Xr = _signals(fam, space, _composite_genome(space, base, (), logic, (), logic), ohlcv)
        assert not E.any() and not Xr.any()


@pytest.mark.parametrize("family", ["rsi_pullback", "composite", "breakout", "tests.user_families:HostileSmaCross"])
def test_fast_decode_and_hashes_equal_the_definitions(family):
    """GeneSpace.decode / .hashes build from columns what Gene.value and genome_hash define per genome."""
    from evo import strategies
    from evo.strategies.base import genome_hash

    space = strategies.get(family).space()
    rng = np.random.default_rng(5)
    X = space.repair(space.xl + rng.random((300, space.n_var)) * (space.xu - space.xl))
    X = np.vstack([X, space.repair(np.vstack([space.xl, space.xu]))])
    slow = [{g.name: g.value(x[j]) for j, g in enumerate(space.genes)} for x in X]
    fast = space.decode(X)
    assert fast == slow and all(type(a[k]) is type(b[k]) for a, b in zip(fast, slow) for k in a)
    assert space.hashes(X) == [genome_hash(p) for p in slow]
    import json

    assert space.genes_json(X) == [json.dumps(p) for p in slow]
