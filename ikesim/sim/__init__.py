"""ikesim.sim."""
