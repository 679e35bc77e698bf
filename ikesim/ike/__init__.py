"""ikesim.ike."""
