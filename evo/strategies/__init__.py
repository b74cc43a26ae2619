"""Strategy families by name: `evo.strategies.get("rsi_pullback")`, or a user family by import path,
`evo.strategies.get("package.module:ClassName")`.

A user family is a `Family` subclass (genes, `indicators`, `kernel_genes` and the hooks `_signals` and
`_fast_signals`). Before
it is accepted its fast signals are checked against its reference signals, bit for bit, on a
small seeded synthetic market; the check runs once per process and family.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from typing import Iterable

import numpy as np

from evo.config.errors import FamilyError
from evo.strategies.base import TRADING_GENES, Family, Gene, GeneSpace, genome_hash
from evo.strategies.breakout import Breakout
from evo.strategies.composite import Composite
from evo.strategies.mean_reversion import MeanReversion
from evo.strategies.rsi_pullback import RsiPullback
from evo.strategies.trend import Trend

_FAMILIES: dict[str, type[Family]] = {
    cls.name: cls for cls in (RsiPullback, MeanReversion, Trend, Breakout, Composite)
}

#: the parity check of a user family: market, genomes
CHECK_SEED = 20240601
CHECK_GENOMES = 8
CHECK_MIN_BARS = 1000

_verified: dict[str, type[Family]] = {}
_verify_lock = threading.Lock()


def names() -> list[str]:
    """The built-in families (user families are not listed)."""
    return sorted(_FAMILIES)


def get(name: str, trading: Iterable[str] | None = None) -> Family:
    """The family registered under `name`, or the user family `package.module:ClassName`, evolving the
    trading genes `trading` (default: every one it supports; a run's `strategy.trading`).

    An unknown built-in name, a user family that cannot be imported, is not a usable `Family`, or
    whose fast signals differ from its reference signals raise FamilyError with a one-line message
    (naming the known families); trading genes the family does not support raise ValueError.
    """
    if ":" in name:
        return _user_family(name)(trading)
    try:
        cls = _FAMILIES[name]
    except KeyError:
        raise FamilyError(
            f"unknown strategy family {name!r}; known: {', '.join(names())} "
            "(or a user family as 'package.module:ClassName')"
        ) from None
    return cls(trading)


# ---------------------------------------------------------------------------------------------
# user families


def _one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _user_family(spec: str) -> type[Family]:
    cls = _verified.get(spec)
    if cls is not None:
        return cls
    with _verify_lock:  # one check per process even when threads ask at once
        cls = _verified.get(spec)
        if cls is None:
            cls = _load(spec)
            check_parity(cls(), spec)
            _verified[spec] = cls
    return cls


def _import(module_name: str):
    """Import a user family's module: from the import path, else from the current folder.

    The current folder is never put on sys.path (a tasks.py or pandas.py there would shadow real
    modules); only the family's own top-level module or package is looked up there, and only when
    no module of that name is importable otherwise.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        top = module_name.partition(".")[0]
        if e.name != top:
            raise
        spec = importlib.machinery.PathFinder.find_spec(top, [os.getcwd()])
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[top] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(top, None)
            raise
        return importlib.import_module(module_name)


def _load(spec: str) -> type[Family]:
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name or ":" in class_name:
        raise FamilyError(f"strategy family {spec!r}: expected 'package.module:ClassName'")
    try:
        module = _import(module_name)
    except Exception as e:  # ModuleNotFoundError, or the module itself failing to import
        hint = " (is it in the current folder or on PYTHONPATH?)" if isinstance(e, ModuleNotFoundError) else ""
        raise FamilyError(
            f"strategy family {spec!r}: cannot import module {module_name!r}: {type(e).__name__}: {_one_line(e)}{hint}"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise FamilyError(f"strategy family {spec!r}: module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Family)) or cls is Family:
        raise FamilyError(f"strategy family {spec!r}: {class_name} is not a subclass of evo.strategies.Family")
    genes = getattr(cls, "genes", None)
    if not isinstance(genes, (tuple, list)) or not genes or not all(isinstance(g, Gene) for g in genes):
        raise FamilyError(f"strategy family {spec!r}: {class_name}.genes must be a non-empty tuple of Gene")
    if len({g.name for g in genes}) != len(genes):
        raise FamilyError(f"strategy family {spec!r}: {class_name}.genes has duplicate names")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise FamilyError(f"strategy family {spec!r}: {class_name}.name must be a non-empty string")
    if cls._signals is Family._signals:
        raise FamilyError(f"strategy family {spec!r}: {class_name} has no reference signals (_signals)")
    if cls._fast_signals is Family._fast_signals:
        raise FamilyError(
            f"strategy family {spec!r}: {class_name} has no fast_signals kernel, which the fast engine "
            "(the default) needs; declare `indicators` and implement the hook `_fast_signals`"
        )
    problem = declaration_problem(cls)
    if problem:
        raise FamilyError(f"strategy family {spec!r}: {class_name}{problem}")
    return cls


def declaration_problem(cls: type[Family]) -> str | None:
    """What is wrong with a family's declarations (kernel_genes, fused, trading), or None."""
    names = {g.name for g in cls.genes}
    taken = sorted(names & set(TRADING_GENES))
    if taken:
        return f".genes has {taken}, which are trading genes: declare them in `trading` instead"
    trading = getattr(cls, "trading", None)
    if not isinstance(trading, frozenset) or not trading <= set(TRADING_GENES):
        return f".trading must be a frozenset of {sorted(TRADING_GENES)}"
    kernel = getattr(cls, "kernel_genes", None)
    if not isinstance(kernel, tuple) or not all(isinstance(g, str) for g in kernel):
        return ".kernel_genes must be a tuple of gene names"
    unknown = [g for g in kernel if g not in names]
    if unknown:
        return f".kernel_genes names {unknown}, which are not among its genes"
    if not isinstance(cls.fused, bool):
        return ".fused must be True or False"
    if cls.fused and cls._fast_metrics is Family._fast_metrics:
        return " declares fused = True but does not implement the hook _fast_metrics"
    return None


def check_frame(space: GeneSpace, seed: int = CHECK_SEED):
    """The synthetic market of the parity check: one symbol, long enough for the largest window."""
    from evo.config import SyntheticData
    from evo.market.synthetic import synthetic_frames

    n_bars = max(CHECK_MIN_BARS, 3 * space.max_window() + 300)
    return synthetic_frames(SyntheticData(n_bars=n_bars, seed=seed))["SYN"]


def check_parity(family: Family, label: str | None = None, *, seed: int = CHECK_SEED,
                 n_genomes: int = CHECK_GENOMES) -> None:
    """Raise ImportError unless `fast_signals` equals `reference_signals` bit for bit.

    On a seeded synthetic market long enough for the largest window, for `n_genomes` seeded
    random repaired genomes plus the repaired lower and upper bounds of the genes. The fast
    kernel runs twice, into buffers filled with False and with True, so that a bar it leaves
    unwritten is a difference too. The message names the family, the genome, and the first
    differing bar (entries or exits).
    """
    from evo.engine import indicators
    from evo.market import FIELDS
    from evo.engine.fast import kernel_lock

    label = label or family.name
    where = f"strategy family {label!r}"
    try:
        space = family.space()
        frame = check_frame(space, seed)
        n_bars = len(frame)
        arrays = {f: np.ascontiguousarray(frame[f].to_numpy(dtype=np.float64)) for f in FIELDS}
        rng = np.random.default_rng(seed)
        raw = np.vstack([space.xl, space.xu, space.xl + rng.random((n_genomes, space.n_var)) * (space.xu - space.xl)])
        X = space.repair(raw)
        params = space.decode(X)
        ref_e, ref_x = family.reference_signals(frame, params)
        ref_e, ref_x = ref_e.to_numpy().T, ref_x.to_numpy().T
        fast = []
        with kernel_lock:  # numba's parallel kernels must not run from two threads at once
            cache = indicators.build(family.indicators, arrays, X, space.names)
            for fill in (False, True):
                e = np.full((len(X), n_bars), fill, dtype=np.bool_)
                x = np.full((len(X), n_bars), fill, dtype=np.bool_)
                family.fast_signals(cache, X, space.names, arrays, e, x)
                fast.append((e, x))
    except Exception as exc:
        raise FamilyError(f"{where}: parity check could not run: {type(exc).__name__}: {_one_line(exc)}") from None
    for what, ref in (("entries", ref_e), ("exits", ref_x)):
        if ref.dtype != np.bool_ or ref.shape != (len(X), n_bars):
            raise FamilyError(
                f"{where}: reference {what} must be booleans of shape (bars, strategies), "
                f"got {ref.dtype} {ref.shape[::-1]}"
            )
    for s in range(len(X)):
        first = None  # (bar, which, fast value, reference value)
        for e, x in fast:
            for what, got, ref in (("entries", e[s], ref_e[s]), ("exits", x[s], ref_x[s])):
                diff = np.flatnonzero(got != ref)
                if diff.size and (first is None or diff[0] < first[0]):
                    first = (int(diff[0]), what, bool(got[diff[0]]), bool(ref[diff[0]]))
        if first is not None:
            i, what, got, want = first
            raise FamilyError(
                f"{where} refused: fast_signals differ from reference_signals for genome {params[s]} "
                f"at bar {i} ({frame.index[i]}) in {what}: fast {got}, reference {want}"
            )


__all__ = ["Family", "Gene", "GeneSpace", "check_frame", "check_parity", "declaration_problem", "genome_hash", "get",
           "names"]
