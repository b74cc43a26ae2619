"""evo: evolve Pareto sets of trading strategies. A plain library: no Prefect import below here."""

__version__ = "0.1.0"
