"""The worker plugin that carries a market to Dask workers (see evo.run.cluster)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin


class MarketPlugin(WorkerPlugin):
    """Installs one market in the process cache of every worker, those there now and those that join."""

    def __init__(self, market, name: str):
        self.market = market
        self.name = name

    def setup(self, worker) -> None:
        from evo.market import load

        load.install(self.market)
