"""Family's one public API and its hooks: what the base class does once for every family.

Gene extraction (kernel_genes), the fused capability, snapping around `_repair`, and one definition
of the stops; a subclass that overrides a public method is refused when it is created.
"""

from __future__ import annotations

import numpy as np
import pytest

from evo import strategies
from evo.engine import indicators
from evo.config import SyntheticData
from evo.market import FIELDS
from evo.market.synthetic import synthetic_frames
from evo.strategies import Family, Gene, declaration_problem
from evo.strategies.base import PUBLIC_API
from tests.user_families import SmaCross


class Recorder(SmaCross):
    """SmaCross whose kernel hook records the gene matrix the base class hands it."""

    name = "recorder"
    genes = (
        Gene("fast_window", "int", 3, 30, window=True),
        Gene("a", "float", 0.0, 1.0, step=0.25),
        Gene("slow_window", "int", 20, 120, window=True),
        Gene("b", "float", 10.0, 20.0, step=0.5),
    )
    kernel_genes = ("b", "a")
    seen: list = []

    def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
        Recorder.seen.append(genes)
        super()._fast_signals(cache, genes, arrays, entries, exits)


def _arrays(n_bars=400):
    frame = synthetic_frames(SyntheticData(n_bars=n_bars, seed=3))["SYN"]
    return {f: np.ascontiguousarray(frame[f].to_numpy(dtype=np.float64)) for f in FIELDS}


def test_the_kernel_receives_its_declared_genes_whatever_the_gene_order():
    fam = Recorder()
    space = fam.space()
    rng = np.random.default_rng(0)
    X = space.repair(space.xl + rng.random((9, space.n_var)) * (space.xu - space.xl))
    arrays = _arrays()
    # the same genomes with the genes in another order: the kernel must see the same matrix
    perm = [3, 0, 2, 1]
    for XX, names in ((X, space.names), (X[:, perm], tuple(space.names[j] for j in perm))):
        cache = indicators.build(fam.indicators, arrays, XX, names)
        e = np.empty((len(X), len(arrays["close"])), bool)
        fam.fast_signals(cache, XX, names, arrays, e, np.empty_like(e))
    first, second = Recorder.seen[-2:]
    expected = X[:, [space.index("b"), space.index("a")]]
    for got in (first, second):
        np.testing.assert_array_equal(got, expected)
        assert got.flags.c_contiguous and got.dtype == np.float64
    with pytest.raises(ValueError, match=r"reads genes \['b'\]"):
        fam.fast_signals(cache, X[:, :2], space.names[:2], arrays, e, np.empty_like(e))


@pytest.mark.parametrize("name", strategies.names())
def test_builtin_kernels_read_the_genes_they_declare(name):
    """Each built-in kernel's gene matrix holds its declared genes: changing a gene that is not
    declared (nor a window) changes no signal, changing a declared one changes some."""
    fam = strategies.get(name)
    assert declaration_problem(type(fam)) is None
    space = fam.space()
    rng = np.random.default_rng(1)
    X = space.repair(space.xl + rng.random((40, space.n_var)) * (space.xu - space.xl))
    arrays = _arrays(1500)
    windows = {i.gene for i in fam.indicators}

    def signals(XX):
        cache = indicators.build(fam.indicators, arrays, XX, space.names)
        e = np.empty((len(XX), len(arrays["close"])), bool)
        x = np.empty_like(e)
        fam.fast_signals(cache, XX, space.names, arrays, e, x)
        return e, x

    base = signals(X)
    for g in space.genes:
        if g.name in windows:
            continue
        moved = X.copy()
        j = space.index(g.name)
        moved[:, j] = np.where(moved[:, j] == g.low, g.high, g.low)
        changed = any((a != b).any() for a, b in zip(signals(space.repair(moved)), base))
        assert changed == (g.name in fam.kernel_genes), g.name


def test_overriding_a_public_method_is_refused_naming_the_hook():
    for public, hook in (("fast_signals", "_fast_signals"), ("repair", "_repair"),
                         ("reference_signals", "_signals"), ("fast_metrics", "_fast_metrics")):
        with pytest.raises(TypeError, match=rf"overrides Family\.{public}, which is public API.*{hook}"):
            type("Bad", (SmaCross,), {public: lambda self, *a: None})
    assert set(PUBLIC_API) >= {"space", "repair", "reference_signals", "fast_signals", "fast_metrics",
                               "sim_params", "stops", "stop_arrays"}


def test_fused_is_a_declared_capability():
    class Lying(SmaCross):
        name = "lying"
        fused = True

    assert "_fast_metrics" in declaration_problem(Lying)
    with pytest.raises(TypeError, match="no fused kernel"):
        SmaCross().fast_metrics(None, np.zeros((1, 4)), [g.name for g in SmaCross.genes], {}, (), None, None, 1)
    assert [n for n in strategies.names() if strategies.get(n).fused] == ["rsi_pullback"]

    class Unknown(SmaCross):
        name = "unknown"
        kernel_genes = ("nope",)

    assert "['nope']" in declaration_problem(Unknown)


def test_repair_snaps_around_the_family_rule():
    class Crossing(SmaCross):
        """A rule that leaves the grid and the bounds: the base class snaps it back."""

        name = "crossing"

        def _repair(self, X, space):
            X[:, space.index("sl_stop")] += 0.0031
            X[:, space.index("slow_window")] = 1e6
            return X

    fam = Crossing(trading=())
    space = fam.space()
    X = np.array([[7.4, 50.2, 0.0123, 0.1]])
    R = fam.repair(X)
    assert R.tolist() == [[7.0, 120.0, 0.015, 0.1]]  # snapped (sl 0.010 + 0.0031 -> 0.015 on its grid)
    assert X.tolist() == [[7.4, 50.2, 0.0123, 0.1]]  # a copy
    np.testing.assert_array_equal(space.repair(X), R)


def test_stops_and_stop_arrays_are_one_definition():
    class NoTakeProfit(SmaCross):
        name = "no_take_profit"
        genes = SmaCross.genes[:3]

    for fam in (NoTakeProfit(), strategies.get("trend")):
        space = fam.space()
        X = space.repair(space.xl + np.random.default_rng(2).random((5, space.n_var)) * (space.xu - space.xl))
        a = fam.stop_arrays(X, space.names)
        b = fam.stops(space.decode(X))
        for x, y in zip(a, b):
            assert isinstance(y, np.ndarray) and y.dtype == np.float64
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a[0], X[:, space.index("sl_stop")])
        assert np.isnan(a[1]).all() == (fam.name == "no_take_profit")


def test_a_family_without_indicators_or_kernel_genes_still_works():
    class Always(Family):
        """Enter on every bar, never exit."""

        name = "always"
        genes = (Gene("sl_stop", "float", 0.01, 0.1, step=0.01),)
        indicators = ()

        def _fast_signals(self, cache, genes, arrays, entries, exits) -> None:
            assert genes.shape == (len(entries), 0)
            entries[:] = True
            exits[:] = False

        def _signals(self, ohlcv, params):
            n = len(ohlcv)
            return np.ones((n, len(params)), bool), np.zeros((n, len(params)), bool)

    strategies.check_parity(Always())
