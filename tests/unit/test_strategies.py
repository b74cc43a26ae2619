"""Gene spaces and the rsi_pullback family's reference signals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evo import strategies
from evo.config import SyntheticData
from evo.data import synthetic_frames
from evo.strategies.base import Gene, genome_hash


@pytest.fixture(scope="module")
def ohlcv():
    return synthetic_frames(SyntheticData(n_bars=1200, seed=4))["SYN"]


def test_get_unknown_family_names_the_known_ones():
    with pytest.raises(KeyError, match="rsi_pullback"):
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
