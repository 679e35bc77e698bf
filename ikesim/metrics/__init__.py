"""ikesim.metrics."""
