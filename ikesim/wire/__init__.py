"""ikesim.wire."""
