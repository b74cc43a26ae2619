"""Prefect flows (the `evolve` flow) and the `evo` command line. The only layer that imports Prefect with tasks/."""
