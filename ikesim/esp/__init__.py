"""ikesim.esp."""
