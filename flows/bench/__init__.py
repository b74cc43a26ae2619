"""`evo bench`: the engine, bookkeeping and orchestration benchmarks (outside the library: they time it)."""
