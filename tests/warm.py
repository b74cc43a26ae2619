"""Compile the numba kernels once, in one process, before the test workers start.

numba caches compiled kernels on disk; on a clean clone every pytest-xdist worker would otherwise compile
the same kernels at the same time. `make test` runs this first: one generation of every family on two
symbols, with both engines, both kinds of reducer and the trading genes, fills the cache. The two
largest kernels, a column's simulation and a shared-cash group's, are compiled at once in two processes
(one per core), one per kind of reducer.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from evo import strategies
from evo.config import validate
from evo.flows.evolve import drive
from evo.flows.orchestration import Plain

USER_FAMILIES = ["tests.user_families:SmaCross"]


#: processes that compile at once
PARTS = 2


#: what each process warms: the simulation of one column, and that of a shared-cash group (the two largest
#: kernels, which every family's run shares), each then with every family and engine
REDUCERS = ("mean", "portfolio")


def warm(part: int) -> None:
    """One generation of every family in every configuration of the part-th reducer."""
    families = strategies.names() + USER_FAMILIES
    with tempfile.TemporaryDirectory(prefix="evo-warm-") as tmp:
        for k, family in enumerate(families):
            for reducer in REDUCERS[part::PARTS]:
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


def main() -> None:
    if len(sys.argv) > 1:
        warm(int(sys.argv[1]))
        return
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.warm", str(p)]) for p in range(PARTS)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"warming the kernels failed: exit codes {codes}")
    print(f"numba kernels compiled or loaded in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
