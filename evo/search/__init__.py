"""The search: NSGA-II's steps equal to pymoo's on plain arrays, objectives and constraints, checkpoints."""
