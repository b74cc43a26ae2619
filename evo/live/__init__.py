"""From the Pareto set to the market: members by id, today's positions and orders on fresh data
(signals.py), a member written out as a standalone vectorbt script (export.py), and the read-only
notebook view of a run (notebook.py). It reads the store; it never writes to it."""
