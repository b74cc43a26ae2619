"""`evo report`: one self-contained HTML file (plotly) on what a run found and whether it held out of sample.

The detailed stats and the equity curves come from vectorbt (`Portfolio.stats()`,
`Portfolio.value()`) on the chosen strategies: the reference, not the fast engine.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from evo.config.metrics import METRICS
from evo.store import GenerationStats

#: how many Pareto strategies get equity curves and detailed stats (the best by the first objective)
CHOSEN = 3

FIGURE_IDS = ("pareto-front", "generations", "equity")
#: the verdict's figures, drawn when the verdict has their statistics (not for verdicts judged before them)
STATS_FIGURE_IDS = ("pbo-logits", "pbo-is-oos", "monte-carlo-drawdowns", "neighbours")
#: the figure of the run's paper books, when it has any
PAPER_FIGURE_ID = "paper"


def _context(name: str, database: str):
    from evo.run import opening

    return opening.reopen(name, database=database, write=False)


def _portfolio(ctx, market, family, params: dict, window: tuple[int, int], asset: int = 0):
    """vectorbt's portfolio of one strategy trading `window` (signals from the bars before its end)."""
    import vectorbt as vbt

    start, stop = window
    ohlcv = market.frame(asset).iloc[:stop]
    entries, exits = family.reference_signals(ohlcv, params)
    ev = ctx.config.evaluation
    space = family.space()
    p = family.sim_params(space.encode([params]), space.names, ev.init_cash)[0]  # how the genome trades
    ohlc = {f: ohlcv[f].iloc[start:] for f in ("open", "high", "low")} if ev.ohlc_stops else {}
    return vbt.Portfolio.from_signals(
        ohlcv["close"].iloc[start:], entries.iloc[start:], exits.iloc[start:],
        init_cash=ev.init_cash, fees=ev.fees, slippage=ev.slippage, freq=market.freq,
        direction=int(p["direction"]), size=float(p["size"]), size_type=int(p["size_type"]),
        sl_stop=float(p["sl_stop"]), tp_stop=float(p["tp_stop"]), sl_trail=bool(p["sl_trail"]), **ohlc,
    )


def _fig_html(fig, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def _pareto_figure(s: dict):
    import plotly.graph_objects as go

    obj = [o["metric"] for o in s["objectives"]]
    fig = go.Figure()
    ins = [e["metrics"] for e in s["pareto"]]
    outs = [e.get("oos_metrics") for e in s["pareto"]]
    labels = [e["id"] for e in s["pareto"]]
    if len(obj) >= 2:
        x, y = obj[0], obj[1]
        fig.add_scatter(x=[m[x] for m in ins], y=[m[y] for m in ins], mode="markers+text", text=labels,
                        textposition="top center", name="in sample", marker={"size": 10})
        if any(outs):
            fig.add_scatter(x=[m[x] if m else None for m in outs], y=[m[y] if m else None for m in outs],
                            mode="markers+text", text=labels, textposition="bottom center", name="holdout",
                            marker={"size": 10, "symbol": "diamond"})
            for a, b in zip(ins, outs):
                if b:
                    fig.add_scatter(x=[a[x], b[x]], y=[a[y], b[y]], mode="lines", showlegend=False,
                                    line={"color": "lightgray", "dash": "dot"})
        fig.update_layout(xaxis_title=x, yaxis_title=y)
    else:
        x = obj[0]
        fig.add_bar(x=labels, y=[m[x] for m in ins], name="in sample")
        if any(outs):
            fig.add_bar(x=labels, y=[m[x] if m else None for m in outs], name="holdout")
        fig.update_layout(yaxis_title=x, barmode="group")
    fig.update_layout(title="Pareto front: in sample and on the holdout", height=480)
    return fig


def _generations_figure(stats: list[GenerationStats], objectives: list[dict]):
    from plotly.subplots import make_subplots

    gens = [st.generation for st in stats]
    fig = make_subplots(rows=1 + len(objectives), cols=1, shared_xaxes=True,
                        subplot_titles=["hypervolume"] + [f"best {o['metric']} ({o['direction']})" for o in objectives])
    fig.add_scatter(x=gens, y=[st.hypervolume for st in stats], mode="lines+markers", name="hypervolume", row=1, col=1)
    for i, o in enumerate(objectives, start=2):
        fig.add_scatter(x=gens, y=[st.best.get(o["metric"]) for st in stats], mode="lines+markers",
                        name=o["metric"], row=i, col=1)
    fig.update_layout(title="Per generation", height=260 * (1 + len(objectives)), showlegend=False)
    fig.update_xaxes(title_text="generation", row=1 + len(objectives), col=1)
    return fig


def _equity_figure(curves: list[tuple[str, pd.Series, pd.Series | None, pd.Series, pd.Series | None]]):
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(curves), cols=1, subplot_titles=[c[0] for c in curves])
    for i, (label, is_val, oos_val, bh_is, bh_oos) in enumerate(curves, start=1):
        fig.add_scatter(x=is_val.index, y=is_val.values, name="strategy, in sample", line={"color": "#1f77b4"},
                        showlegend=i == 1, row=i, col=1)
        fig.add_scatter(x=bh_is.index, y=bh_is.values, name="buy and hold", line={"color": "gray", "dash": "dot"},
                        showlegend=i == 1, row=i, col=1)
        if oos_val is not None:
            fig.add_scatter(x=oos_val.index, y=oos_val.values, name="strategy, holdout", line={"color": "#d62728"},
                            showlegend=i == 1, row=i, col=1)
            fig.add_scatter(x=bh_oos.index, y=bh_oos.values, name="buy and hold, holdout",
                            line={"color": "gray", "dash": "dash"}, showlegend=i == 1, row=i, col=1)
            fig.add_vline(x=oos_val.index[0], line={"color": "black", "width": 1}, row=i, col=1)
    fig.update_layout(title="Equity of the chosen strategies against buy and hold (value, starting cash)",
                      height=320 * len(curves))
    fig.update_yaxes(title_text="portfolio value")
    return fig


def _paper_figure(books: list[tuple[str, dict[str, pd.Series]]]):
    """Each paper book's equity per member over its paper bars."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(books), cols=1, subplot_titles=[f"paper book {b}" for b, _ in books])
    for i, (_, curves) in enumerate(books, start=1):
        for member, equity in curves.items():
            fig.add_scatter(x=equity.index, y=equity.values, name=member, row=i, col=1)
    fig.update_layout(title="Paper trading: equity per member (value of its cash and positions)",
                      height=320 * len(books))
    fig.update_yaxes(title_text="equity")
    return fig


def _paper_curves(store, run_id: int, shared: bool, id_length: int) -> list[tuple[str, dict[str, pd.Series]]]:
    """(book, {member id: equity per bar}) of the run's paper books with a ledger: a member's equity is the
    sum over its symbols (each trades its own cash), or the shared account's."""
    out = []
    for book in store.books_of(run_id):
        led = pd.DataFrame(store.ledger(book.id))
        if led.empty:
            continue
        curves = {}
        for member, rows in led.groupby("member", sort=False):
            by_bar = rows.groupby("bar")["equity"]
            equity = by_bar.first() if shared else by_bar.sum()
            curves[member[:id_length]] = equity.set_axis(pd.to_datetime(equity.index))
        out.append((book.name, curves))
    return out


def _table(headers: list[str], rows: list[list], cls: str) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("-" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _stats_table(stats: dict[str, pd.Series]) -> str:
    """vectorbt Portfolio.stats() side by side."""
    keys = list(next(iter(stats.values())).index)
    rows = [[k] + [s.get(k) if not isinstance(s.get(k), (pd.Timestamp, pd.Timedelta)) else str(s.get(k))
                   for s in stats.values()] for k in keys]
    return _table(["stat"] + list(stats), rows, "stats")


def _verdict_section(v: dict) -> str:
    """The verdict as a quant reads it; the statistics behind it folded away."""
    if not v:
        return ""
    headline = [
        ["verdict", v.get("verdict")],
        ["deflated Sharpe ratio (P[true Sharpe > 0])", v.get("deflated_sharpe")],
        ["needed for 'edge'", v.get("threshold")],
        ["strategies tried (N)", v.get("n_trials")],
        ["bars in sample (T)", v.get("n_bars")],
        ["best in-sample Sharpe ratio (annualised)", v.get("sharpe_annualized")],
        ["probability of backtest overfitting (PBO, CSCV)", v.get("pbo")],
        ["PBO allowed for 'edge'", v.get("pbo_max") if v.get("pbo") is not None else None],
        ["OOS-on-IS Sharpe slope over the splits", v.get("pbo_degradation")],
        ["P(chosen strategy's OOS Sharpe < 0)", v.get("pbo_prob_loss")],
        ["SPA p-value against buy-and-hold (consistent)", v.get("spa_pvalue")],
        ["SPA p-value needed for 'edge'", v.get("spa_alpha") if v.get("spa_pvalue") is not None else None],
        ["refused by", ", ".join(v["refused_by"]) if v.get("refused_by") else None],
    ]
    shown = {"verdict", "deflated_sharpe", "threshold", "n_trials", "n_bars", "sharpe_annualized", "pbo", "pbo_max",
             "pbo_degradation", "pbo_prob_loss", "spa_pvalue", "spa_alpha", "refused_by"}
    rest = [[k, val] for k, val in v.items() if k not in shown and not isinstance(val, (list, dict))]
    details = (f"<details><summary>how it was computed</summary>{_table(['', 'value'], rest, 'verdict-detail')}"
               "</details>") if rest else ""
    return _table(["", "value"], [r for r in headline if r[1] is not None], "verdict") + details


def _stats_figures(s: dict) -> list[str]:
    """The verdict's figures (STATS_FIGURE_IDS) with their headings, those the verdict has data for."""
    import plotly.graph_objects as go

    v = s.get("verdict") or {}
    out = []
    d = v.get("pbo_detail") or {}
    if d.get("logit_histogram"):
        h = d["logit_histogram"]
        mids = [(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:])]
        fig = go.Figure(go.Bar(x=mids, y=h["counts"], name="splits"))
        fig.add_vline(x=0, line_dash="dash")
        fig.update_layout(title=f"CSCV: logit of the in-sample best's out-of-sample rank (PBO = share left of 0: "
                                f"{v['pbo']:.3f})", xaxis_title="logit", yaxis_title="splits", height=360)
        out += ["<h2>Probability of backtest overfitting</h2>", _fig_html(fig, STATS_FIGURE_IDS[0])]
        fig = go.Figure(go.Scatter(x=d["is_sharpe"], y=d["oos_sharpe"], mode="markers", name="splits"))
        fig.update_layout(title=f"the chosen strategy per split: out of sample against in sample (slope "
                                f"{v['pbo_degradation']:.3f})", xaxis_title="in-sample Sharpe ratio (annualised)",
                          yaxis_title="out-of-sample Sharpe ratio", height=400)
        out.append(_fig_html(fig, STATS_FIGURE_IDS[1]))
    members = [(i, (e.get("monte_carlo") or {}).get("holdout")) for i, e in enumerate(s["pareto"], 1)]
    members = [(i, mc) for i, mc in members if mc and mc.get("drawdown_histogram")]
    if members:
        fig = go.Figure()
        for i, mc in members:
            h = mc["drawdown_histogram"]
            fig.add_scatter(x=[(a + b) / 2 for a, b in zip(h["edges"][:-1], h["edges"][1:])],
                            y=[c / mc["resamples"] for c in h["counts"]], mode="lines+markers", name=f"#{i}")
        fig.update_layout(title="Monte Carlo: maximum drawdown over bootstrap resamples of the holdout",
                          xaxis_title="maximum drawdown", yaxis_title="share of resamples", height=400)
        out += ["<h2>Monte Carlo risk</h2>", _fig_html(fig, STATS_FIGURE_IDS[2])]
    spread = [(i, e["robustness"]) for i, e in enumerate(s["pareto"], 1) if e.get("robustness")]
    if spread:
        fig = go.Figure()
        obj = [o["metric"] for o in s["objectives"]]
        for i, r in spread:
            for m in obj:
                vals = (r.get("objectives") or {}).get(m) or {}
                fig.add_scatter(x=[f"#{i} {m}"] * 3, y=[vals.get("worst"), vals.get("median"), s["pareto"][i - 1]["metrics"][m]],
                                mode="markers", marker={"symbol": ["triangle-down", "circle", "star"]}, showlegend=False)
        fig.update_layout(title="neighbouring genes: worst, median (and the member itself, a star) per objective",
                          height=400)
        out += ["<h2>Robustness to neighbouring genes</h2>", _fig_html(fig, STATS_FIGURE_IDS[3])]
    return out


def write_report(name: str, database: str, out: str | Path) -> Path:
    """Write the run's report to `out` (one HTML file with plotly inlined) and remember where."""
    from plotly.offline import get_plotlyjs

    from evo import strategies
    from evo.view import summary
    from evo.market import get_market

    ctx, store = _context(name, database)
    s = summary.describe(store, name)
    if not s["pareto"]:
        raise ValueError(f"run {name!r} has no Pareto set to report (no generation, or no feasible strategy)")
    stats = store.generation_stats(ctx.run_id)
    market = get_market(ctx.config.data, ctx.fingerprint)
    family = strategies.get(ctx.config.strategy.family, ctx.config.strategy.trading)

    chosen = s["pareto"][:CHOSEN]
    curves, vbt_stats = [], {}
    for e in chosen:
        pf_is = _portfolio(ctx, market, family, e["genes"], ctx.window)
        close = market.frame(0)["close"]
        init = ctx.config.evaluation.init_cash
        bh_is = close.iloc[ctx.window[0]:ctx.window[1]]
        bh_is = bh_is / bh_is.iloc[0] * init
        pf_oos = bh_oos = None
        if ctx.oos_window is not None:
            pf_oos = _portfolio(ctx, market, family, e["genes"], ctx.oos_window)
            bh_oos = close.iloc[ctx.oos_window[0]:ctx.oos_window[1]]
            bh_oos = bh_oos / bh_oos.iloc[0] * init
        curves.append((e["id"], pf_is.value(), None if pf_oos is None else pf_oos.value(), bh_is, bh_oos))
        vbt_stats[f"{e['id']} in sample"] = pf_is.stats()
        if pf_oos is not None:
            vbt_stats[f"{e['id']} holdout"] = pf_oos.stats()

    genes = list(s["pareto"][0]["genes"])
    pareto_rows = []
    for e in s["pareto"]:
        oos = e.get("oos_metrics") or {}
        pareto_rows.append([e["id"], e.get("genomes", 1)] + [e["genes"][g] for g in genes]
                           + [e["metrics"][m] for m in METRICS] + [oos.get(m) for m in METRICS])
    pareto_table = '<div class="scroll">' + _table(
        ["id", "genomes"] + genes + [f"{m} (in)" for m in METRICS] + [f"{m} (holdout)" for m in METRICS],
        pareto_rows, "pareto",
    ) + "</div>"

    from evo.strategies.base import id_length

    books = _paper_curves(store, ctx.run_id, ctx.config.evaluation.reducer == "portfolio" and market.n_assets > 1,
                          id_length(store.hashes_of(ctx.run_id)))
    paper = ["<h2>Paper trading</h2>", _fig_html(_paper_figure(books), PAPER_FIGURE_ID)] if books else []
    v = s.get("verdict") or {}
    verdict = html.escape(v.get("verdict", "not judged yet"))
    verdict_detail = _verdict_section(v)
    holdout = (f"holdout: bars {ctx.oos_window[0]}-{ctx.oos_window[1]} from {market.index[ctx.oos_window[0]]}"
               if ctx.oos_window else "no holdout")
    sections = [
        f"<h1>{html.escape(name)}</h1>",
        f'<p class="meta">family <code>{html.escape(s["family"])}</code> · {s["generations_done"]} generations · '
        f'data fingerprint <code>{html.escape(s["data_fingerprint"])}</code> · {market.n_bars} bars of '
        f'{html.escape(", ".join(market.symbols))} ({market.index[0]} to {market.index[-1]}) · '
        f'training bars {ctx.window[0]}-{ctx.window[1]} · {html.escape(holdout)}</p>',
        f'<h2>Verdict: <span class="verdict">{verdict}</span></h2>',
        verdict_detail,
        *_stats_figures(s),
        "<h2>Pareto front</h2>", _fig_html(_pareto_figure(s), FIGURE_IDS[0]),
        "<h2>Evolution</h2>", _fig_html(_generations_figure(stats, s["objectives"]), FIGURE_IDS[1]),
        "<h2>Equity curves</h2>", _fig_html(_equity_figure(curves), FIGURE_IDS[2]),
        *paper,
        "<h2>Pareto set</h2>", pareto_table,
        f"<h2>vectorbt statistics of the chosen strategies (symbol {html.escape(market.symbols[0])})</h2>",
        _stats_table(vbt_stats),
        "<h2>Configuration</h2>",
        f"<pre>{html.escape(json.dumps(ctx.config.model_dump(mode='json'), indent=2))}</pre>",
    ]
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>evo report: {html.escape(name)}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f3f3f3; }}
.verdict {{ color: {"#2a7d2a" if v.get("verdict") == "edge" else "#b36b00"}; }}
pre {{ background: #f7f7f7; padding: 1em; font-size: 12px; overflow-x: auto; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
details {{ margin: 0.5em 0 1em; color: #555; }}
.meta {{ color: #555; }}
</style></head><body>
{"".join(sections)}
</body></html>"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    store.update_run(ctx.run_id, report_path=str(out.resolve()))
    return out
