"""What a run found, for people and for scripts: `evo show`, `evo runs`, the final tables, the Pareto markdown."""

from __future__ import annotations

from evo.config import codec
from evo.config.metrics import TABLE
from evo.oos.verdict import VERDICT_FIELDS
from evo.store import Store, open_store
from evo.view.text import markdown as md
from evo.view.text import markup


def _clean(v):
    """JSON for people and scripts: NaN as null, infinities as 'inf'/'-inf' (evo.config.codec)."""
    return codec.encode(v, nan=None)


def _store(database: str) -> Store:
    """Read only: a summary never creates or migrates a database."""
    return open_store(database, write=False)


def list_runs(database: str) -> list[dict]:
    from evo.run.lease import shown_status

    store = _store(database)
    return [
        {
            "name": r.name,
            "status": shown_status(store, r),
            "generations_done": done,
            "generations_target": r.generations_target,
            "family": r.family,
            "data_fingerprint": r.data_fingerprint,
            "created_at": r.created_at.isoformat(),
        }
        for r, done in store.list_runs()
    ]


def pareto(store: Store, run_id: int, number: int, objectives: list[dict]) -> list[dict]:
    """The first front of a generation's survivors, one entry per behaviour, best first objective first.

    Genomes whose trades are identical (the same trade fingerprint) are one behaviour: the entry shows
    the first of them, with `genomes` counting them all (genomes with an unknown fingerprint, stored by an
    older evo, count alone).
    """
    from evo.search.algorithm import decode_floats

    out: list[dict] = []
    by_trades: dict[int, dict] = {}
    for m in store.members_of(run_id, number, "survivor"):
        if m.rank != 0:
            continue
        t = m.trades
        if t is not None and t in by_trades:
            by_trades[t]["genomes"] += 1
            continue
        e = {
            "genome_hash": m.genome_hash,
            "genes": m.genes,
            "metrics": m.metrics,
            "objectives": decode_floats(m.objectives).tolist(),
            "trades": None if t is None else f"{t & (2**64 - 1):016x}",
            "genomes": 1,
        }
        if t is not None:
            by_trades[t] = e
        out.append(e)
    if out:
        first = objectives[0]
        out.sort(key=lambda e: e["objectives"][0], reverse=first["direction"] == "max")
    return out


def summary(name: str, database: str) -> dict:
    """What `evo show` prints, read from the database at the resolved URL `database`."""
    return describe(_store(database), name)


def describe(store: Store, name: str) -> dict:
    from evo.run.lease import shown_status
    from evo.run.opening import RunError

    run = store.get_run(name)
    if run is None:
        raise RunError(f"no run named {name!r} in {store.masked_url}")
    last = store.last_generation(run.id)
    objectives = [{"metric": o["metric"], "direction": o["direction"]} for o in run.config["objectives"]]
    front = pareto(store, run.id, last.number, objectives) if last else []
    if front:
        from evo.strategies.base import id_length

        n = id_length(store.hashes_of(run.id))
        front = [{"id": e["genome_hash"][:n], **e} for e in front]
    validation = store.latest_validation(run.id, "holdout")
    verdict = None
    if validation is not None and last is not None and validation[0] == last.number:
        result = validation[1]
        judged = {p["genome_hash"]: p for p in result.get("pareto", [])}
        for e in front:
            p = judged.get(e["genome_hash"], {})
            if p.get("out_of_sample") is not None:
                e["oos_metrics"] = p["out_of_sample"]
            e["monte_carlo"] = p.get("monte_carlo")
            e["robustness"] = p.get("robustness")
        verdict = {k: v for k, v in result.items() if k != "pareto"}
        for k in VERDICT_FIELDS:  # a verdict judged before these statistics existed shows them as null
            verdict.setdefault(k, None)
    stats = store.generation_stats(run.id)
    hits = sum(st.cache_hits for st in stats)
    total = sum(st.evaluated + st.cache_hits for st in stats)  # robust fitness: K + 1 genomes per offspring
    return _clean(
        {
            "name": run.name,
            "status": shown_status(store, run),
            "generations_done": last.number if last else 0,
            "generations_target": run.generations_target,
            "family": run.family,
            "seed": run.seed,
            "data_fingerprint": run.data_fingerprint,
            "database": store.masked_url,
            "objectives": objectives,
            "constraints": run.config.get("constraints", []),
            "last_generation": last.stats.to_json() if last else None,
            "cache": {"hits": hits, "evaluated": total - hits, "hit_rate": hits / total if total else 0.0},
            "verdict": verdict,
            "walk_forward": (store.latest_validation(run.id, "walk_forward") or (0, None))[1],
            "report": run.report_path,
            "pareto": front,
        }
    )


def print_summary(s: dict) -> None:
    from rich.table import Table

    from evo.view.text import console as make_console

    console = make_console()
    console.print(
        f"[bold]{markup(s['name'])}[/]  {s['status']}  generation {s['generations_done']}/{s['generations_target']}  "
        f"family {markup(s['family'])}  data {s['data_fingerprint'][:12]}"
    )
    if not s["pareto"]:
        console.print("no strategy satisfies the constraints yet (empty Pareto set)")
    else:
        # two narrow tables (metrics, then genes) rather than one that wraps in an 80-column terminal
        obj = [o["metric"] for o in s["objectives"]]
        rest = [m for m in METRIC_LABELS if m not in obj]
        genomes = sum(e.get("genomes", 1) for e in s["pareto"])
        t = Table(title=f"Pareto set: {len(s['pareto'])} distinct behaviours ({genomes} genomes), in sample",
                  title_justify="left")
        t.add_column("id", style="dim")
        t.add_column("genomes", justify="right", style="dim")
        for o in s["objectives"]:
            t.add_column(f"{METRIC_LABELS[o['metric']]} ({o['direction']})", justify="right", style="bold")
        for m in rest:
            t.add_column(METRIC_LABELS[m], justify="right")
        for e in s["pareto"]:
            t.add_row(e["id"], str(e.get("genomes", 1)), *[fmt(e["metrics"][m]) for m in obj + rest])
        console.print(t)
        if any("oos_metrics" in e for e in s["pareto"]):
            h = Table(title="holdout: the same strategies on bars evolution never saw (in sample -> holdout)",
                      title_justify="left")
            h.add_column("id", style="dim")
            shown = obj + [m for m in ("total_return", "n_trades") if m not in obj]
            for m in shown:
                h.add_column(f"{METRIC_LABELS[m]} in", justify="right")
                h.add_column(f"{METRIC_LABELS[m]} out", justify="right", style="bold")
            for e in s["pareto"]:
                oos = e.get("oos_metrics") or {}
                h.add_row(e["id"], *[c for m in shown for c in (fmt(e["metrics"][m]), fmt(oos.get(m)))])
            console.print(h)
        genes = list(s["pareto"][0]["genes"])
        g = Table(title="genes", title_justify="left")
        g.add_column("id", style="dim")
        for name in genes:
            g.add_column(markup(name), justify="right")
        for e in s["pareto"]:
            g.add_row(e["id"], *[fmt(e["genes"][name]) for name in genes])
        console.print(g)
    v = s.get("verdict")
    if v:
        style = "bold green" if v["verdict"] == "edge" else "bold yellow"
        extra = ""
        if v.get("holdout_start"):
            extra = f"; holdout from {v['holdout_start'][:19]} ({v['holdout'][1] - v['holdout'][0]} bars)"
        console.print(
            f"verdict: [{style}]{v['verdict']}[/] (deflated Sharpe ratio {v['deflated_sharpe']:.3f} for the best "
            f"in-sample strategy, {v.get('n_trials', 0)} strategies tried, edge needs {v.get('threshold', 0.95)}){extra}"
        )
        for line in verdict_tests(v):
            console.print(f"  {markup(line)}")
        risky = [e for e in s["pareto"] if (e.get("monte_carlo") or {}).get("holdout")]
        if risky:
            m = Table(title="Monte Carlo on the holdout (stationary bootstrap of each strategy's bar returns)",
                      title_justify="left")
            for head in ("#", "P(loss)", "max_dd median", "max_dd 5 %", "P(ruin)", "P(loss) in sample"):
                m.add_column(head, justify="right")
            for i, e in enumerate(s["pareto"], 1):
                h = (e.get("monte_carlo") or {}).get("holdout") or {}
                ins = (e.get("monte_carlo") or {}).get("in_sample") or {}
                m.add_row(str(i), fmt(h.get("prob_loss")), fmt(h.get("max_drawdown_median")),
                          fmt(h.get("max_drawdown_q05")), fmt(h.get("prob_ruin")), fmt(ins.get("prob_loss")))
            console.print(m)
        spread = [e for e in s["pareto"] if e.get("robustness")]
        if spread:
            obj = [o["metric"] for o in s["objectives"]]
            r = Table(title=f"neighbouring genes on the training window ({spread[0]['robustness']['neighbours']} per "
                            "member): median and worst per objective", title_justify="left")
            r.add_column("#", justify="right", style="dim")
            r.add_column("feasible", justify="right")
            for m_ in obj:
                r.add_column(f"{METRIC_LABELS[m_]} median", justify="right")
                r.add_column(f"{METRIC_LABELS[m_]} worst", justify="right")
            for i, e in enumerate(s["pareto"], 1):
                rb = e.get("robustness") or {}
                o = rb.get("objectives") or {}
                r.add_row(str(i), fmt(rb.get("feasible")),
                          *[fmt((o.get(m_) or {}).get(w)) for m_ in obj for w in ("median", "worst")])
            console.print(r)
    c = s.get("cache")
    if c and (c["hits"] + c["evaluated"]):
        last = s.get("last_generation") or {}
        robust = last.get("evaluated", 0) + last.get("cache_hits", 0) > last.get("n_offspring", 0)  # K + 1 each
        what = "offspring and their neighbours" if robust else "offspring"
        console.print(f"evaluation cache: {c['hits']} of {c['hits'] + c['evaluated']} {what} reused ({100 * c['hit_rate']:.0f} %)")
    console.print(f"stored in {markup(s['database'])} as run '{markup(s['name'])}'  (evo show {markup(s['name'])} --json)")


METRIC_LABELS = {m.name: m.label for m in TABLE}


def verdict_tests(v: dict) -> list[str]:
    """The verdict's tests, one line each, with what refused (older verdicts: the lines they have)."""
    out = []
    if v.get("pbo") is not None:
        out.append(f"PBO {v['pbo']:.3f} (edge needs <= {v.get('pbo_max')}; OOS-on-IS Sharpe slope "
                   f"{v['pbo_degradation']:.3f}, P(OOS Sharpe < 0) {v['pbo_prob_loss']:.3f}; "
                   f"{(v.get('pbo_detail') or {}).get('phenotypes')} behaviours, "
                   f"{(v.get('pbo_detail') or {}).get('splits')} splits)")
    if v.get("spa_pvalue") is not None:
        out.append(f"SPA against buy-and-hold: p {v['spa_pvalue']:.3f} (consistent; lower {v['spa_pvalue_lower']:.3f}, "
                   f"upper {v['spa_pvalue_upper']:.3f}; edge needs <= {v.get('spa_alpha')})")
    if v.get("refused_by"):
        out.append("refused by: " + ", ".join(v["refused_by"]))
    if v.get("not_run"):
        out.append("not run: " + ", ".join(v["not_run"]))
    return out


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def money(v) -> str:
    """Cash or equity: to the cent, thousands separated (fmt's four significant digits print 10,000 as 1e+04)."""
    return "-" if v is None else f"{v:,.2f}"


#: columns per markdown table: wider tables scroll off the Prefect UI's artifact page
MD_COLUMNS = 9


def _md_table(head: list[str], rows: list[list[str]], keep: int = 1) -> list[str]:
    """Markdown tables of at most MD_COLUMNS columns: the first `keep` columns (the row's id) repeat in
    each table, the rest are cut into tables side by side in reading order."""
    out: list[str] = []
    step = MD_COLUMNS - keep
    for k in range(keep, max(len(head), keep + 1), step):
        cols = list(range(keep)) + list(range(k, min(k + step, len(head))))
        out += ["| " + " | ".join(head[c] for c in cols) + " |", "|" + "---:|" * len(cols)]
        out += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows] + [""]
    return out


def pareto_markdown(s: dict, report_path: str | None = None) -> str:
    """The Pareto set as markdown (the flow's final artifact): the objectives in sample beside the
    holdout, the other metrics, then the genes, each table narrow enough for the Prefect UI."""
    lines = [
        f"# {md(s['name'])}: Pareto set after generation {s['generations_done']}",
        "",
        f"family `{md(s['family'])}`, data `{s['data_fingerprint'][:12]}`, database `{md(s['database'])}`",
        "",
    ]
    if report_path:
        lines += [f"HTML report: `{md(report_path)}`", ""]
    if not s["pareto"]:
        return "\n".join(lines + ["No strategy satisfies the constraints."])
    obj = [o["metric"] for o in s["objectives"]]
    front = s["pareto"]
    n = [e["id"] for e in front]
    if any("oos_metrics" in e for e in front):
        shown = obj + [m for m in ("total_return", "n_trades") if m not in obj]
        lines += ["## In sample -> holdout (bars evolution never saw)", ""]
        head = ["id"] + [f"{METRIC_LABELS[m]} {w}" for m in shown for w in ("in", "holdout")]
        lines += _md_table(head, [[n[i]] + [c for m in shown for c in (fmt(e["metrics"][m]), fmt((e.get("oos_metrics") or {}).get(m)))]
                                  for i, e in enumerate(front)])
    v = s.get("verdict") or {}
    if v:
        lines += ["## Verdict", "", f"**{md(v['verdict'])}**: deflated Sharpe ratio {fmt(v.get('deflated_sharpe'))}", ""]
        lines += [f"- {md(line)}" for line in verdict_tests(v)] + [""]
    if any((e.get("monte_carlo") or {}).get("holdout") for e in front):
        lines += ["## Monte Carlo on the holdout (stationary bootstrap)", ""]
        rows = []
        for i, e in enumerate(front):
            h = (e.get("monte_carlo") or {}).get("holdout") or {}
            rows.append([n[i], fmt(h.get("prob_loss")), fmt(h.get("max_drawdown_median")), fmt(h.get("max_drawdown_q05")),
                         fmt(h.get("prob_ruin"))])
        lines += _md_table(["#", "P(loss)", "max_dd median", "max_dd 5 %", "P(ruin)"], rows)
    if any(e.get("robustness") for e in front):
        lines += ["## Neighbouring genes (training window)", ""]
        head = ["#", "feasible"] + [f"{METRIC_LABELS[m]} {w}" for m in obj for w in ("median", "worst")]
        rows = []
        for i, e in enumerate(front):
            r = e.get("robustness") or {}
            o = r.get("objectives") or {}
            rows.append([n[i], fmt(r.get("feasible"))] + [fmt((o.get(m) or {}).get(w)) for m in obj for w in ("median", "worst")])
        lines += _md_table(head, rows)
    rest = [m for m in METRIC_LABELS if m not in obj]
    lines += ["## In sample (one row per behaviour; genomes: how many trade exactly alike)", ""]
    head = ["id", "genomes"] + [f"{METRIC_LABELS[m]} ({o['direction']})" for m, o in zip(obj, s["objectives"])] + \
        [METRIC_LABELS[m] for m in rest]
    lines += _md_table(head, [[n[i], str(e.get("genomes", 1))] + [fmt(e["metrics"][m]) for m in obj + rest]
                              for i, e in enumerate(front)], keep=2)
    genes = list(front[0]["genes"])
    lines += ["## Genes", ""]
    lines += _md_table(["id"] + [md(g) for g in genes], [[n[i]] + [fmt(e["genes"][g]) for g in genes] for i, e in enumerate(front)])
    return "\n".join(lines).rstrip() + "\n"
