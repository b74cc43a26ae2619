"""`evo bench --baseline PYTHON`: this checkout's fast engine against another's, side by side.

Each side runs in a worker process of its own interpreter (this one, and PYTHON: another checkout's
environment, say the commit before a change), which builds the market and the genomes once, loads its
kernels, and then times one evaluation each time it is asked. The parent asks the two in turn, repeat
after repeat, so that the machine's drift hits both alike and they never share the cores; the figures
are medians, and the ratio is this side's throughput over the baseline's. The workers use only what
every version of the engine has (`fast.evaluate_arrays`, `evo.engine.evaluate`), and each reports a
digest of the metrics both versions compute (the table's first metrics) and of the trade fingerprints,
so equal digests show that the two give the same bits.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

#: what one worker runs: argv = case, strategies, bars, number of shared metrics; then a line per timing
_WORKER = r"""
import hashlib, json, sys, time
import numpy as np
from evo.flows.bench import engine as b
from evo.config import EvaluationConfig
from evo.engine import evaluate, fast

case, n, n_bars, n_shared = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if case == "portfolio":
    market = b._market(n_bars, n_assets=10)
    fam, space, X = b._genomes("rsi_pullback", n, 0, trading=None)
    params = space.decode(X)
    settings = EvaluationConfig(reducer="portfolio")
    run = lambda: evaluate(market, fam, params, settings)
    digest = lambda ev: (ev.metrics[:, :n_shared], ev.asset_fingerprints)
else:
    market = b._market(n_bars)
    arrays = {k: np.ascontiguousarray(v) for k, v in market.arrays(0).items()}
    trading, ohlc = ((), False) if case.endswith("long_only") else (None, True)
    fam, space, X = b._genomes("rsi_pullback", n, 0, trading=trading)
    settings = EvaluationConfig(ohlc_stops=ohlc)
    fps = np.empty(n, dtype=np.int64)
    run = lambda: (fast.evaluate_arrays(arrays, fam, X, space.names, settings, market.freq, fingerprints=fps), fps)
    digest = lambda out: (out[0][:, :n_shared], out[1])
    if case.startswith("bare_"):  # the simulation kernel alone, on signals computed beforehand
        import numba
        from evo.engine import enums, indicators, nb
        cache = indicators.build(fam.indicators, arrays, X, space.names)
        E = np.empty((n, n_bars), dtype=np.bool_)
        XS = np.empty_like(E)
        fam.fast_signals(cache, X, space.names, arrays, E, XS)
        params = fam.sim_params(X, space.names, settings.init_cash)
        sim = fast.sim_settings(init_cash=settings.init_cash, fees=settings.fees, slippage=settings.slippage,
                                freq=market.freq)
        c = arrays["close"]
        prices = (arrays["open"], arrays["high"], arrays["low"], c) if ohlc else (c, c, c, c)
        threads = numba.get_num_threads()
        if hasattr(enums, "Prices"):
            no = np.empty((n, 0), dtype=np.bool_)
            run = lambda: nb.simulate_signals_nb(enums.Prices(*prices), enums.Signals(E, XS, no, no), params, sim,
                                                 threads)
        else:
            no = np.empty((0, 0), dtype=np.bool_)
            run = lambda: nb.simulate_signals_nb(*prices, E, XS, no, no, params, sim, threads)
out = run()  # compile or load the kernels
h = hashlib.sha256()
for a in digest(out):
    h.update(np.ascontiguousarray(a).tobytes())
print(json.dumps({"ready": h.hexdigest()}), flush=True)
for line in sys.stdin:
    if line.strip() != "go":
        break
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}), flush=True)
"""

#: what each case measures
CASES = {
    "long_only": "full fitness, rsi_pullback long only, all in, stops from the close (the engine figure)",
    "all_features": "full fitness, every trading feature (direction, size, trailing), OHLC stops",
    "portfolio": "one shared-cash portfolio over 10 symbols, every trading feature, through evo.engine.evaluate",
    "bare_long_only": "the simulation kernel alone on the long-only case's signals",
    "bare_all_features": "the simulation kernel alone on the every-feature case's signals",
}
#: what `evo bench --baseline` compares
MAIN_CASES = ("long_only", "all_features", "portfolio")


class _Worker:
    def __init__(self, python: str, case: str, n: int, n_bars: int, n_shared: int):
        self.proc = subprocess.Popen(
            [python, "-c", _WORKER, case, str(n), str(n_bars), str(n_shared)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # every repeat computes its indicators, as a checkout without kept rows does
            env={**os.environ, "EVO_INDICATOR_CACHE_MB": "0"},
        )
        self.digest = self._read()["ready"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().strip().splitlines()
            raise RuntimeError(f"benchmark worker failed: {err[-1:] or 'no output'}")
        return json.loads(line)

    def time(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds of all the worker's threads) of one evaluation."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        r = self._read()
        return r["seconds"], r["cpu"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def compare_benchmark(baseline: str, cases=MAIN_CASES, n: int = 1000, n_bars: int = 87_600, repeats: int = 5,
                      n_shared: int = 7) -> dict:
    """Seconds of each case with this checkout's engine and the baseline interpreter's, interleaved, and
    throughput ratios (this over baseline). The portfolio case uses min(n, 100) strategies over 20,000
    bars (as `evo bench --portfolio`). n_shared: how many of the table's first metrics both versions
    compute (compared by digest)."""
    out = {"benchmark": "this checkout against a baseline, interleaved", "baseline": baseline, "repeats": repeats,
           "cases": {}}
    for case in cases:
        size = (min(n, 100), 20_000) if case == "portfolio" else (n, n_bars)
        workers = {side: _Worker(py, case, *size, n_shared) for side, py in (("this", sys.executable),
                                                                            ("baseline", baseline))}
        try:
            wall: dict = {side: [] for side in workers}
            cpu: dict = {side: [] for side in workers}
            for r in range(repeats):
                # alternate which goes first, so neither always runs on a cooler (or warmer) machine
                for side in (("this", "baseline") if r % 2 == 0 else ("baseline", "this")):
                    w, c = workers[side].time()
                    wall[side].append(w)
                    cpu[side].append(c)
        finally:
            for w in workers.values():
                w.close()
        this, base = statistics.median(wall["this"]), statistics.median(wall["baseline"])
        out["cases"][case] = {
            "what": CASES[case], "strategies": size[0], "bars": size[1],
            "this_seconds": this, "baseline_seconds": base, "this_runs": wall["this"],
            "baseline_runs": wall["baseline"], "throughput_ratio": base / this,
            # each repeat's pair ran back to back: its ratio cancels the machine's slower drifts
            "paired_ratio": statistics.median(b / t for t, b in zip(wall["this"], wall["baseline"])),
            "this_cpu_runs": cpu["this"], "baseline_cpu_runs": cpu["baseline"],
            "cpu_ratio": statistics.median(cpu["baseline"]) / statistics.median(cpu["this"]),
            "same_shared_metrics_and_fingerprints": workers["this"].digest == workers["baseline"].digest,
        }
    return out
