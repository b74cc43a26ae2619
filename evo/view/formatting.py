"""One-line summaries for the flow's log: a generation's progress and the verdict."""

from __future__ import annotations

from evo.store import GenerationStats


def progress_line(target: int, stats: GenerationStats) -> str:
    best = "  ".join(f"{m}={v:.4g}" if v is not None else f"{m}=n/a" for m, v in stats.best.items())
    rate = stats.evaluated / stats.eval_seconds if stats.eval_seconds > 0 else 0.0
    return (
        f"generation {stats.generation}/{target}  best {best}  hv={stats.hypervolume:.4g}  "
        f"feasible {stats.n_feasible}  evaluated {stats.evaluated} (+{stats.cache_hits} cached) "
        f"in {len(stats.chunks.sizes)} chunk(s)  {rate:.0f} strategies/s  {stats.seconds:.2f}s"
    )


def verdict_line(v: dict) -> str:
    line = f"verdict: {v['verdict']} (deflated Sharpe ratio {v['deflated_sharpe']:.3f}, {v.get('n_trials', 0)} strategies tried"
    if "sharpe_annualized" in v:
        line += f", best in-sample Sharpe {v['sharpe_annualized']:.2f}"
    if v.get("pbo") is not None:
        line += f", PBO {v['pbo']:.3f}"
    if v.get("spa_pvalue") is not None:
        line += f", SPA p {v['spa_pvalue']:.3f} against buy-and-hold"
    if v.get("refused_by"):
        line += "; refused by " + ", ".join(v["refused_by"])
    return line + ")"
