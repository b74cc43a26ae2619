"""What a run found, for people and for scripts: `evo show`, `evo runs`, the final table."""

from __future__ import annotations

import math

from evo.store import Store


def _clean(v):
    """JSON has no NaN or infinity: NaN becomes null, infinities stay readable strings."""
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _store(db: str | None) -> Store:
    from evo.runs import open_store

    return open_store(db)


def list_runs(db: str | None) -> list[dict]:
    store = _store(db)
    return [
        {
            "name": r.name,
            "status": r.status,
            "generations_done": done,
            "generations_target": r.generations_target,
            "family": r.family,
            "data_fingerprint": r.data_fingerprint,
            "created_at": r.created_at.isoformat(),
        }
        for r, done in store.list_runs()
    ]


def pareto(store: Store, run_id: int, number: int, objectives: list[dict]) -> list[dict]:
    """The first front of a generation's survivors, best first objective first."""
    from evo.algorithm import decode_floats

    rows = [m for m in store.members_of(run_id, number, "survivor") if m["rank"] == 0]
    out = [
        {
            "genes": m["genes"],
            "metrics": m["metrics"],
            "objectives": decode_floats(m["objectives"]).tolist(),
        }
        for m in rows
    ]
    if out:
        first = objectives[0]
        out.sort(key=lambda e: e["objectives"][0], reverse=first["direction"] == "max")
    return out


def summary(name: str, db: str | None) -> dict:
    from evo.runs import RunError

    store = _store(db)
    run = store.get_run(name)
    if run is None:
        raise RunError(f"no run named {name!r} in {store.masked_url}")
    last = store.last_generation(run.id)
    objectives = [{"metric": o["metric"], "direction": o["direction"]} for o in run.config["objectives"]]
    return _clean(
        {
            "name": run.name,
            "status": run.status,
            "generations_done": last.number if last else 0,
            "generations_target": run.generations_target,
            "family": run.family,
            "seed": run.seed,
            "data_fingerprint": run.data_fingerprint,
            "database": store.masked_url,
            "objectives": objectives,
            "constraints": run.config.get("constraints", []),
            "last_generation": last.stats if last else None,
            "pareto": pareto(store, run.id, last.number, objectives) if last else [],
        }
    )


def print_summary(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    import sys

    # rich assumes 80 columns when not on a terminal; the tables need a little more
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(
        f"[bold]{s['name']}[/]  {s['status']}  generation {s['generations_done']}/{s['generations_target']}  "
        f"family {s['family']}  data {s['data_fingerprint'][:12]}"
    )
    if not s["pareto"]:
        console.print("no strategy satisfies the constraints yet (empty Pareto set)")
    else:
        # two narrow tables (metrics, then genes) rather than one that wraps in an 80-column terminal
        obj = [o["metric"] for o in s["objectives"]]
        rest = [m for m in METRIC_LABELS if m not in obj]
        t = Table(title=f"Pareto set: {len(s['pareto'])} strategies (objectives first)", title_justify="left")
        t.add_column("#", justify="right", style="dim")
        for o in s["objectives"]:
            t.add_column(f"{METRIC_LABELS[o['metric']]} ({o['direction']})", justify="right", style="bold")
        for m in rest:
            t.add_column(METRIC_LABELS[m], justify="right")
        for i, e in enumerate(s["pareto"], 1):
            t.add_row(str(i), *[_fmt(e["metrics"][m]) for m in obj + rest])
        console.print(t)
        genes = list(s["pareto"][0]["genes"])
        g = Table(title="genes", title_justify="left")
        g.add_column("#", justify="right", style="dim")
        for name in genes:
            g.add_column(name, justify="right")
        for i, e in enumerate(s["pareto"], 1):
            g.add_row(str(i), *[_fmt(e["genes"][name]) for name in genes])
        console.print(g)
    console.print(f"stored in {s['database']} as run '{s['name']}'  (evo show {s['name']} --json)")


METRIC_LABELS = {
    "total_return": "return",
    "sharpe_ratio": "sharpe",
    "sortino_ratio": "sortino",
    "max_drawdown": "max_dd",
    "n_trades": "trades",
    "win_rate": "win",
    "exposure": "exposure",
}


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def pareto_markdown(s: dict, report_path: str | None = None) -> str:
    """The Pareto set as a markdown table (the flow's final artifact)."""
    lines = [
        f"# {s['name']}: Pareto set after generation {s['generations_done']}",
        "",
        f"family `{s['family']}`, data `{s['data_fingerprint'][:12]}`, database `{s['database']}`",
        "",
    ]
    if report_path:
        lines += [f"[HTML report]({report_path})", ""]
    if not s["pareto"]:
        return "\n".join(lines + ["No strategy satisfies the constraints."])
    obj = [o["metric"] for o in s["objectives"]]
    genes = list(s["pareto"][0]["genes"])
    head = ["#"] + [f"{METRIC_LABELS[m]} ({o['direction']})" for m, o in zip(obj, s["objectives"])] + \
        [METRIC_LABELS[m] for m in METRIC_LABELS if m not in obj] + genes
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for i, e in enumerate(s["pareto"], 1):
        cells = [str(i)] + [_fmt(e["metrics"][m]) for m in obj] + \
            [_fmt(e["metrics"][m]) for m in METRIC_LABELS if m not in obj] + [_fmt(e["genes"][g]) for g in genes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
