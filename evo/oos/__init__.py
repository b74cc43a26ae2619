"""Out of sample: the holdout scores, the verdict and walk-forward."""
