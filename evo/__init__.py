"""evo: evolve Pareto sets of trading strategies. A plain library: no Prefect import below here."""

__version__ = "0.1.0"


def load(name: str, db: str | None = None):
    """Run `name`, read-only, for a notebook: `pareto_frame()`, `evaluations_frame()`, `generations_frame()`,
    `verdict`, `portfolio(member_id, window)` (evo.live.notebook.Run). `db`: a SQLAlchemy URL (default
    EVO_DATABASE_URL, then sqlite:///evo.db); a missing database or run is refused, never created."""
    from evo.live.notebook import load as _load

    return _load(name, db)
