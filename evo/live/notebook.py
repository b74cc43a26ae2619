"""A run in a notebook: `evo.load(name)` gives its Pareto set, every evaluation and every generation as
pandas DataFrames (as Optuna's `study.trials_dataframe()`), its verdict, and any member's vectorbt
`Portfolio` with the run's settings, so that `.stats()`, `.plot()` and the rest of vectorbt work on it.
It only reads: a missing database or run is refused, nothing is created or migrated."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from evo.config.errors import ConfigError
from evo.live.members import OpenRun, open_run

Window = Literal["train", "holdout", "all"]


class Run:
    """A stored run, read-only. `name`, `config` (the RunConfig), `verdict`, the frames and `portfolio`."""

    def __init__(self, run: OpenRun):
        self._run = run
        self.name = run.name
        self.config = run.config

    def __repr__(self) -> str:
        return f"<evo run {self.name!r}: {self.record.status}, family {self.config.strategy.family}>"

    @property
    def record(self):
        return self._run.store.get_run(self.name)

    def _summary(self) -> dict:
        from evo.view.summary import describe

        return describe(self._run.store, self.name)

    @property
    def verdict(self) -> dict | None:
        """The holdout verdict of the last generation (as `evo show --json` has it), None before one."""
        return self._summary()["verdict"]

    def pareto_frame(self) -> pd.DataFrame:
        """The final Pareto set, one row per distinct behaviour, indexed by member id: genome_hash,
        genomes (how many trade alike), each gene, each in-sample metric, and each holdout metric as
        `oos_<metric>` (NaN without a holdout)."""
        from evo.config.metrics import METRICS

        rows = []
        for e in self._summary()["pareto"]:
            oos = e.get("oos_metrics") or {}
            rows.append({"id": e["id"], "genome_hash": e["genome_hash"], "genomes": e.get("genomes", 1),
                         **e["genes"], **_floats(e["metrics"]), **{f"oos_{m}": _float(oos.get(m)) for m in METRICS}})
        return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()

    def evaluations_frame(self) -> pd.DataFrame:
        """Every individual the run evaluated, once per generation that bred it: generation, id,
        genome_hash, each gene and each metric (on the training window)."""
        store, rec = self._run.store, self._run.record
        n = self._run.id_length()
        rows = []
        for number in range(1, len(store.generation_stats(rec.id)) + 1):
            for m in store.members_of(rec.id, number, "offspring"):
                rows.append({"generation": number, "id": m.genome_hash[:n], "genome_hash": m.genome_hash,
                             **m.genes, **m.metrics})
        return pd.DataFrame(rows)

    def generations_frame(self) -> pd.DataFrame:
        """One row per committed generation: hypervolume, the best value of each objective (`best_<metric>`),
        feasible and Pareto counts, offspring, evaluated, cache hits, seconds, peak RSS."""
        rows = []
        for st in self._run.store.generation_stats(self._run.record.id):
            rows.append({"generation": st.generation, "hypervolume": st.hypervolume,
                         **{f"best_{k}": v for k, v in st.best.items()}, "n_feasible": st.n_feasible,
                         "pareto_size": st.pareto_size, "n_offspring": st.n_offspring, "evaluated": st.evaluated,
                         "cache_hits": st.cache_hits, "eval_seconds": st.eval_seconds, "seconds": st.seconds,
                         "peak_rss": st.peak_rss})
        return pd.DataFrame(rows).set_index("generation") if rows else pd.DataFrame()

    def market(self, symbol: str | None = None) -> pd.DataFrame:
        """The OHLCV bars the run evolved on (and was validated on), of `symbol` (default: the first)."""
        from evo.live.signals import run_market

        market = run_market(self._run)
        if symbol is not None and symbol not in market.symbols:
            raise ConfigError(f"run {self.name!r} trades {list(market.symbols)}, not {symbol!r}")
        return market.frame(market.symbols.index(symbol) if symbol is not None else 0)

    def portfolio(self, member_id: str, window: Window = "train"):
        """vectorbt's Portfolio of member `member_id` on the run's market, with the run's settings: on the
        bars evolution trained on ("train"), the holdout ("holdout", its signals seeing the bars before),
        or every bar ("all"). One symbol: a one-column portfolio; several: one column per symbol (grouped
        with shared cash under the reducer 'portfolio')."""
        from evo.live.portfolio import member_portfolio
        from evo.live.signals import run_market
        from evo.run.context import run_windows

        market = run_market(self._run)
        train, holdout = run_windows(self.config, market)
        if window == "train":
            span = train
        elif window == "holdout":
            if holdout is None:
                raise ConfigError(f"run {self.name!r} has no holdout (validation.holdout is empty)")
            span = holdout
        elif window == "all":
            span = (0, market.n_bars)
        else:
            raise ConfigError(f"window must be 'train', 'holdout' or 'all', got {window!r}")
        m = self._run.member(member_id)
        pf = member_portfolio(self.config, self._run.family(), m.genes, market, span)
        # one symbol: its column alone, so stats() and plot() need no column argument
        return pf[market.symbols[0]] if market.n_assets == 1 else pf


def _float(v) -> float:
    from evo.config import codec

    return codec.decode(v)


def _floats(d: dict) -> dict:
    return {k: _float(v) for k, v in d.items()}


def load(name: str, db: str | None = None) -> Run:
    """Run `name` from the database `db` (a SQLAlchemy URL; default EVO_DATABASE_URL, then sqlite:///evo.db)."""
    from evo.store import url as urls

    return Run(open_run(name, urls.resolve(db)))
