"""ikesim.scenario."""
