"""What people read: `evo show` and `evo runs`, the HTML report, log lines, warnings, safe text."""
