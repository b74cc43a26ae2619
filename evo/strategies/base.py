"""What a strategy family is: typed genes with bounds, and a vectorbt reference signal builder.

A genome is a float vector in gene order (what pymoo varies). `GeneSpace`
turns it into a canonical, hashable parameter dict and back. Canonical means a
genome that decodes to the same parameters always hashes the same, which is
what makes duplicate elimination and the evaluation cache exact.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Iterable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from evo.config import TRADING_GENES as TRADING_NAMES

Params = Mapping[str, Any]

#: the longest look-back window a gene may ask for, in bars
MAX_WINDOW = 10_000_000


@dataclass(frozen=True)
class Gene:
    """One parameter of a family: its type, its bounds and an optional grid step."""

    name: str
    kind: Literal["int", "float"]
    low: float
    high: float
    step: float | None = None
    doc: str = ""
    #: True when the gene is a look-back window in bars; data must be longer.
    window: bool = False
    #: the widest [low, high] a run may give the gene (its kernels' domain); default: windows from 1 bar,
    #: other genes within +-1e9
    limits: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"gene {self.name!r}: bounds must be finite, got [{self.low}, {self.high}]")
        if not self.low < self.high:
            raise ValueError(f"gene {self.name!r}: low {self.low} must be below high {self.high}")
        if self.kind == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"gene {self.name!r}: integer gene needs integer bounds")
        lo, hi = self.domain
        if self.low < lo or self.high > hi:
            what = "a window of at least 1 bar" if self.window and self.low < lo else f"within [{lo:g}, {hi:g}]"
            raise ValueError(f"gene {self.name!r}: bounds [{self.low:g}, {self.high:g}] must be {what}")

    @property
    def domain(self) -> tuple[float, float]:
        if self.limits is not None:
            return self.limits
        return (1.0, float(MAX_WINDOW)) if self.window else (-1e9, 1e9)

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Clip to bounds and round to the gene's grid (integers, or `step`)."""
        x = np.clip(x, self.low, self.high)
        if self.kind == "int":
            return np.round(x)
        if self.step:
            x = self.low + np.round((x - self.low) / self.step) * self.step
            # strip the float noise of low + k*step so equal grid points are equal bits
            x = np.clip(np.round(x, 12), self.low, self.high)
        return x

    def value(self, x: float) -> int | float:
        return int(x) if self.kind == "int" else float(x)


#: The stop-loss and take-profit every built-in family ends with (the engine reads them by name).
STOP_NAMES = ("sl_stop", "tp_stop")
STOP_GENES = (
    Gene("sl_stop", "float", 0.005, 0.2, step=0.001, doc="stop-loss, fraction of entry price", limits=(0.0, 1.0)),
    Gene("tp_stop", "float", 0.005, 0.5, step=0.001, doc="take-profit, fraction of entry price", limits=(0.0, 100.0)),
)



def switch(name: str, doc: str) -> Gene:
    """A condition switched on (1) or off (0)."""
    return Gene(name, "int", 0, 1, doc=doc, limits=(0.0, 1.0))


#: The genes with which a family evolves how it trades (`Family.trading` declares which it supports; the
#: run's `strategy.trading` which it evolves), appended after the family's own genes in this order.
#: `Family.sim_params` turns them into the engine's per-genome records.
TRADING_GENES: dict[str, Gene] = {
    g.name: g for g in (
        Gene("direction", "int", 0, 2, doc="0: long only, 1: short only, 2: both (entries go long, exits go short, "
             "an opposite signal reverses the position)", limits=(0.0, 2.0)),
        Gene("size", "float", 0.1, 1.0, step=0.05, doc="the fraction of the cash an entry commits",
             limits=(0.01, 1.0)),
        switch("sl_trail", "1: the stop-loss trails the best price since the entry"),
    )
}
assert tuple(TRADING_GENES) == TRADING_NAMES  # the config's names, in gene order
#: every trading gene: what the built-in families support
TRADING = frozenset(TRADING_GENES)


class GeneSpace:
    """A family's genes with the run's bounds: encode, decode, repair, hash."""

    def __init__(self, family: "Family", genes: Sequence[Gene]):
        self.family = family
        self.genes = tuple(genes)
        self.names = tuple(g.name for g in self.genes)
        self.xl = np.array([g.low for g in self.genes], dtype=np.float64)
        self.xu = np.array([g.high for g in self.genes], dtype=np.float64)

    @property
    def n_var(self) -> int:
        return len(self.genes)

    def repair(self, X: np.ndarray) -> np.ndarray:
        """`family.repair(X, space)`: genomes snapped to the grid and made valid by the family's rule."""
        return self.family.repair(X, self)

    def snap(self, X: np.ndarray) -> None:
        """Snap every gene of X (in place) to its bounds and grid."""
        for j, g in enumerate(self.genes):
            X[:, j] = g.snap(X[:, j])

    def _columns(self, X: np.ndarray, order) -> list[list]:
        """Gene columns as Python ints and floats (what `Gene.value` gives), for the genes in `order`."""
        X = np.atleast_2d(X)
        return [X[:, j].astype(np.int64).tolist() if self.genes[j].kind == "int" else X[:, j].tolist() for j in order]

    def decode(self, X: np.ndarray) -> list[dict[str, int | float]]:
        cols = self._columns(X, range(self.n_var))
        return [dict(zip(self.names, row)) for row in zip(*cols)]

    def _json(self, X: np.ndarray, order, separators: tuple[str, str]) -> list[str]:
        """Each genome as json.dumps of its parameter dict with the keys in `order`, formatted from the
        columns (a generation has thousands of genomes). Finite values only: json spells NaN its own way."""
        item, key = separators
        template = "{{" + item.join(json.dumps(self.names[j]).replace("{", "{{").replace("}", "}}") + key + "{}"
                                    for j in order) + "}}"
        return [template.format(*row) for row in zip(*self._columns(X, order))]

    def hashes(self, X: np.ndarray) -> list[str]:
        """`genome_hash(p)` of each decoded genome, without building the dicts (the same canonical JSON)."""
        if not np.isfinite(X).all():
            return [genome_hash(p) for p in self.decode(X)]
        order = sorted(range(self.n_var), key=self.names.__getitem__)
        return [hashlib.sha256(t.encode()).hexdigest() for t in self._json(X, order, (",", ":"))]

    def genes_json(self, X: np.ndarray) -> list[str]:
        """`json.dumps(p)` of each decoded genome, genes in gene order: how the store keeps them."""
        if not np.isfinite(X).all():
            return [json.dumps(p) for p in self.decode(X)]
        return self._json(X, range(self.n_var), (", ", ": "))

    def encode(self, params: Sequence[Params]) -> np.ndarray:
        missing = [n for n in self.names if any(n not in p for p in params)]
        if missing:
            raise ValueError(f"parameters missing genes {missing} of family {self.family.name!r}")
        return np.array([[float(p[n]) for n in self.names] for p in params], dtype=np.float64)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def max_window(self) -> int:
        return int(max((g.high for g in self.genes if g.window), default=1))


def genome_hash(params: Params) -> str:
    """Canonical content hash of decoded parameters (sorted keys, exact float repr)."""
    blob = json.dumps({k: params[k] for k in sorted(params)}, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


#: the shortest id a genome is shown by: 8 hex digits of its hash
ID_LENGTH = 8


def id_length(hashes: Iterable[str], shortest: int = ID_LENGTH) -> int:
    """How many leading hex digits of a genome hash tell apart every hash in `hashes` (at least `shortest`):
    a run's ids are its genome hashes cut to this one length, so they stay unique in the run."""
    hashes = sorted(set(hashes))
    n = shortest
    # sorted, the longest prefix shared by any two hashes is shared by two neighbours
    for a, b in zip(hashes, hashes[1:]):
        common = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        n = max(n, common + 1)
    return n


#: Family's public API: a subclass implements the hooks below instead (see Family)
PUBLIC_API = ("space", "repair", "reference_signals", "fast_signals", "fast_metrics", "sim_params", "stops",
              "stop_arrays")


class Family:
    """Base class of a strategy family: one public API, and hooks a subclass implements.

    The way pymoo's Algorithm keeps `ask`/`tell` public and marks `_infill`/`_advance` "to be
    overwritten": the public methods below do the common work once (gene extraction, snapping,
    stops, the per-genome simulation records) and call the hooks; a subclass never overrides
    a public method (it is refused when the class is created).

    A subclass declares:
      name          the family's name
      genes         its genes (signal genes, then the stops `sl_stop`, `tp_stop`)
      indicators    what the fast engine precomputes once per distinct window (evo.engine.indicators)
      kernel_genes  the genes its numba kernel reads, in the kernel's order: the hooks receive them
                    as one contiguous (n, len(kernel_genes)) float64 matrix
      fused         True when it implements `_fast_metrics` (signals and simulation in one pass)
      trading       the trading genes it can evolve (TRADING_GENES: direction, size, sl_trail); none by
                    default. They change how its signals trade, never the signals (see `sim_params`).
      export_signals  optional: `_signals` for one genome written out with vectorbt, numpy and pandas
                    alone, for `evo export` (see the attribute)
    and implements the hooks:
      _signals(ohlcv, params) -> (entries, exits)     the reference: vectorbt indicators, (bars, n) each
      _fast_signals(cache, genes, arrays, entries, exits)
                                                      its numba kernel: fill entries/exits (n, bars)
      _fast_metrics(cache, genes, arrays, prices, params, sim, n_threads) -> metrics
                                                      optional (fused = True); see `fast_metrics`
      _repair(X, space) -> X                          optional: its rule on snapped genomes
    The rules go in the subclass docstring.
    """

    name: ClassVar[str]
    genes: ClassVar[tuple[Gene, ...]]
    #: what the fast engine precomputes once per distinct window (see evo.engine.indicators)
    indicators: ClassVar[tuple] = ()
    #: the genes the numba kernel reads, in its order
    kernel_genes: ClassVar[tuple[str, ...]] = ()
    #: the family implements `_fast_metrics`: the fast engine runs signals and simulation in one pass
    fused: ClassVar[bool] = False
    #: the trading genes it supports (keys of TRADING_GENES)
    trading: ClassVar[frozenset[str]] = frozenset()
    #: `_signals` for one genome as readable source that needs only vectorbt (`vbt`), numpy (`np`) and
    #: pandas (`pd`): a function `signals(ohlcv) -> (entries, exits)` of an OHLCV DataFrame (lower-case
    #: columns) returning boolean Series equal to the reference's, that reads each gene as a constant
    #: named by it in upper case (RSI_WINDOW). `evo export` writes it into a standalone script; None: the
    #: family cannot be exported.
    export_signals: ClassVar[str | None] = None

    def __init__(self, trading: Iterable[str] | None = None):
        """The family as a run evolves it: with the trading genes `trading` (default: all it supports)."""
        chosen = set(self.trading if trading is None else trading)
        unknown = sorted(chosen - set(TRADING_GENES))
        if unknown:
            raise ValueError(f"unknown trading gene(s) {unknown}; known: {', '.join(TRADING_GENES)}")
        unsupported = sorted(chosen - self.trading)
        if unsupported:
            raise ValueError(
                f"family {self.name!r} does not support the trading gene(s) {unsupported}; it supports "
                f"{', '.join(sorted(self.trading)) or 'none'}"
            )
        #: the trading genes this instance evolves, in gene order
        self.trading_genes: tuple[str, ...] = tuple(g for g in TRADING_GENES if g in chosen)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name in PUBLIC_API:
            if name in cls.__dict__ and cls.__dict__[name] is not Family.__dict__[name]:
                raise TypeError(
                    f"{cls.__name__} overrides Family.{name}, which is public API; implement its hook instead "
                    f"({HOOKS.get(name, 'see evo.strategies.Family')})"
                )

    # =========================================================================================
    # public API
    # =========================================================================================

    @property
    def all_genes(self) -> tuple[Gene, ...]:
        """The family's genes, then the trading genes it evolves."""
        return (*self.genes, *(TRADING_GENES[g] for g in self.trading_genes))

    def space(self, bounds: Mapping[str, Sequence[float]] | None = None) -> GeneSpace:
        """The gene space (`all_genes`) with some bounds narrowed (or widened) by the run config."""
        bounds = dict(bounds or {})
        unknown = sorted(set(bounds) - {g.name for g in self.all_genes})
        if unknown:
            raise ValueError(
                f"unknown gene(s) {unknown} for family {self.name!r}; "
                f"genes are {[g.name for g in self.all_genes]}"
            )
        genes = []
        for g in self.all_genes:
            if g.name in bounds:
                lo, hi = bounds[g.name]
                g = replace(g, low=float(lo), high=float(hi))  # __post_init__ re-validates
            genes.append(g)
        return GeneSpace(self, genes)

    def repair(self, X: np.ndarray, space: GeneSpace | None = None) -> np.ndarray:
        """Genomes made valid: every gene snapped to its bounds and grid, the family's rule (`_repair`)
        applied, and snapped again (the rule must not leave the bounds). A copy; X is not changed."""
        space = space if space is not None else self.space()
        X = np.array(X, dtype=np.float64, ndmin=2, copy=True)
        space.snap(X)
        X = self._repair(X, space)
        space.snap(X)
        return X

    def reference_signals(self, ohlcv: pd.DataFrame, params: Params | Sequence[Params]):
        """Entries and exits built from vectorbt indicators.

        `params` is one parameter dict (returns two boolean Series) or a
        sequence of them (returns two boolean DataFrames, one column each).
        """
        single = isinstance(params, Mapping)
        plist = [params] if single else list(params)
        entries, exits = self._signals(ohlcv, plist)
        entries = pd.DataFrame(entries, index=ohlcv.index)
        exits = pd.DataFrame(exits, index=ohlcv.index)
        if single:
            return entries[0].rename("entries"), exits[0].rename("exits")
        return entries, exits

    def fast_signals(self, cache, X: np.ndarray, names: Sequence[str], arrays: Mapping[str, np.ndarray],
                     entries: np.ndarray, exits: np.ndarray) -> None:
        """Fill entries/exits (n_strategies, n_bars) for genomes X (genes in `names` order) from the
        indicator cache (evo.engine.indicators.build) and the OHLCV `arrays`."""
        from evo.engine.inputs import frozen

        self._fast_signals(frozen(cache), frozen(self._kernel_genes(X, names)), frozen(dict(arrays)), entries, exits)

    def fast_metrics(self, cache, X: np.ndarray, names: Sequence[str], arrays: Mapping[str, np.ndarray],
                     prices: tuple, params: np.ndarray, sim, n_threads: int) -> np.ndarray:
        """(metrics (n, N_METRICS), trade fingerprints (n,) uint64, block sums (n, blocks, 2) of the blocks
        sim.edges cuts) of genomes X in one pass per strategy: signals into a per-thread buffer,
        then the simulation (evo/strategies/nb.py). Only for a family with `fused = True`; the fast
        engine computes the others' signals block by block with `fast_signals` and simulates each block.

        prices: evo.engine.enums.Prices, the open, high, low and close arrays for the simulation (the
        stops); params: one evo.engine.enums.params_dt record per genome; sim: evo.engine.enums.SimSettings.
        A fused kernel plugs the family's per-strategy signal function into the engine's driver
        (evo.engine.nb.simulate_columns_nb, see evo/strategies/nb.py).
        """
        if not self.fused:
            raise TypeError(f"family {self.name!r} has no fused kernel (fused = False): use fast_signals")
        from evo.engine.inputs import frozen

        return self._fast_metrics(frozen(cache), frozen(self._kernel_genes(X, names)), frozen(dict(arrays)),
                                  frozen(prices), frozen(params), sim, n_threads)

    def sim_params(self, X: np.ndarray, names: Sequence[str], init_cash: float, portfolio_assets: int = 0
                   ) -> np.ndarray:
        """How each genome trades: one evo.engine.enums.params_dt record per genome, from its stops and
        its trading genes (an absent one takes its default):

          direction  0 long only (default), 1 short only, 2 both: vectorbt's `direction`, so entries go
                     long and exits go short, and an entry of the other side reverses the position
                     (upon_opposite_entry='reversereduce'); the signals themselves never change.
          size       f, the fraction of the cash an entry commits: of the available cash when one-sided
                     (size_type 'percent'); of the initial cash with both (size_type 'value': vectorbt
                     cannot reverse a percent-sized position). Default: all in (size inf, 'amount').
          sl_trail   1: the stop-loss trails the highest high (lowest low short) since the entry.

        portfolio_assets: n > 0 when the genome trades n symbols as one portfolio with shared cash
        (evaluation.reducer 'portfolio'): equal allocation, each entry commits the value
        f x init_cash / n (f = 1 without a size gene), whatever the direction.
        """
        from evo.engine.enums import Direction, SizeType
        from evo.engine.fast import make_params

        n = len(X)
        direction = gene_column(X, names, "direction", Direction.LongOnly).astype(np.int64)
        f = gene_column(X, names, "size", np.nan)
        sl, tp = self.stop_arrays(X, names)
        if portfolio_assets:
            size = init_cash / portfolio_assets * np.where(np.isnan(f), 1.0, f)
            size_type = np.full(n, SizeType.Value)
        else:
            both = direction == Direction.Both
            size = np.where(np.isnan(f), np.inf, np.where(both, f * init_cash, f))
            size_type = np.where(np.isnan(f), SizeType.Amount, np.where(both, SizeType.Value, SizeType.Percent))
        return make_params(n, direction=direction, size=size, size_type=size_type, sl_stop=sl, tp_stop=tp,
                           sl_trail=gene_column(X, names, "sl_trail", 0.0) >= 0.5)

    def stop_arrays(self, X: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per-strategy stop-loss and take-profit fractions of genomes X (NaN: the family has no such
        gene, no stop)."""
        return tuple(gene_column(X, names, g, np.nan) for g in STOP_NAMES)  # type: ignore[return-value]

    def stops(self, params: Sequence[Params]) -> tuple[np.ndarray, np.ndarray]:
        """`stop_arrays` of decoded genomes (parameter dicts)."""
        names = [g for g in STOP_NAMES if any(g == x.name for x in self.genes)]
        X = np.array([[float(p[g]) for g in names] for p in params], dtype=np.float64).reshape(len(params), -1)
        return self.stop_arrays(X, names)

    def _kernel_genes(self, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """The columns of `kernel_genes`, in that order, as one contiguous matrix: what every kernel reads."""
        names = list(names)
        missing = [g for g in self.kernel_genes if g not in names]
        if missing:
            raise ValueError(f"family {self.name!r}: its kernel reads genes {missing}, which the genomes lack")
        return np.ascontiguousarray(X[:, [names.index(g) for g in self.kernel_genes]], dtype=np.float64)

    # =========================================================================================
    # hooks: TO BE OVERRIDDEN
    # =========================================================================================

    def _signals(self, ohlcv: pd.DataFrame, params: list[Params]) -> tuple[np.ndarray, np.ndarray]:
        """The reference: (entries, exits), booleans (n_bars, len(params)), from vectorbt indicators."""
        raise NotImplementedError

    def _fast_signals(self, cache, genes: np.ndarray, arrays: Mapping[str, np.ndarray], entries: np.ndarray,
                      exits: np.ndarray) -> None:
        """The numba kernel: fill entries/exits (n, n_bars). cache.values[cache.rows[s, j]] is indicator j
        of strategy s (in `indicators` order); genes[s] its `kernel_genes`; arrays the OHLCV series."""
        raise NotImplementedError(f"family {self.name!r} has no fast signal kernel")

    def _fast_metrics(self, cache, genes: np.ndarray, arrays: Mapping[str, np.ndarray], prices: tuple,
                      params: np.ndarray, sim, n_threads: int) -> np.ndarray:
        """The fused pass (with `fused = True`): metrics (n, N_METRICS), see `fast_metrics`."""
        raise NotImplementedError(f"family {self.name!r} has no fused kernel")

    def _repair(self, X: np.ndarray, space: GeneSpace) -> np.ndarray:
        """The family's rule on snapped genomes (e.g. fast window below slow window); identity by default."""
        return X


#: the hook behind each public method, for the message refusing an override
HOOKS = {
    "repair": "_repair(X, space)",
    "reference_signals": "_signals(ohlcv, params)",
    "fast_signals": "_fast_signals(cache, genes, arrays, entries, exits) and declare kernel_genes",
    "fast_metrics": "_fast_metrics(cache, genes, arrays, prices, params, sim, n_threads) and set fused = True",
}


def gene_column(X: np.ndarray, names: Sequence[str], gene: str, default: float) -> np.ndarray:
    """Gene `gene` of genomes X (genes in `names` order) as float64, or `default` for every genome
    when they have no such gene."""
    names = list(names)
    return X[:, names.index(gene)].astype(np.float64) if gene in names else np.full(len(X), default)


def column(params: Sequence[Params], name: str, dtype=np.float64) -> np.ndarray:
    """One gene across a list of parameter dicts, as an array."""
    return np.array([p[name] for p in params], dtype=dtype)


def as_2d(a: Any, n_rows: int) -> np.ndarray:
    """vectorbt returns a Series for one parameter and a DataFrame for many."""
    return np.asarray(a, dtype=np.float64).reshape(n_rows, -1)


def fast_below_slow(
    X: np.ndarray, space: GeneSpace, fast: str = "fast_window", slow: str = "slow_window"
) -> np.ndarray:
    """Order two window genes (fast < slow): swap crossed pairs, then separate equal ones by
    raising slow (or, at slow's upper bound, lowering fast). Families call it from `repair`."""
    f, s = space.index(fast), space.index(slow)
    crossed = X[:, f] > X[:, s]
    X[crossed, f], X[crossed, s] = X[crossed, s], X[crossed, f].copy()
    equal = X[:, f] == X[:, s]
    X[equal, s] = np.minimum(X[equal, s] + 1, space.xu[s])
    still = X[:, f] >= X[:, s]
    X[still, f] = X[still, s] - 1
    return X
