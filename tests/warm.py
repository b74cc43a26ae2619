"""Compile the numba kernels once, in one process, before the test workers start.

numba caches compiled kernels on disk; on a clean clone every pytest-xdist worker would otherwise compile
the same kernels at the same time. `make test` runs this first: one generation of every family on two
symbols, with both engines, the portfolio reducer and the trading genes, fills the cache.
"""

from __future__ import annotations

import tempfile
import time

from evo import strategies
from evo.config import validate
from evo.flows.evolve import drive
from evo.flows.orchestration import Plain

USER_FAMILIES = ["tests.user_families:SmaCross"]


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="evo-warm-") as tmp:
        for k, family in enumerate(strategies.names() + USER_FAMILIES):
            for reducer in ("mean", "portfolio"):
                for engine in ("fast", "vectorbt"):
                    cfg = validate({
                        "name": f"warm-{k}-{reducer}-{engine}",
                        "data": {"synthetic": {"n_bars": 800, "symbols": ["A", "B"]}},
                        "strategy": {"family": family},
                        "constraints": [],
                        "algorithm": {"pop_size": 6, "generations": 2},
                        "evaluation": {"reducer": reducer, "engine": engine},
                    })
                    drive(cfg, None, None, f"sqlite:///{tmp}/warm.db", None, False, Plain())
    print(f"numba kernels compiled or loaded in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
