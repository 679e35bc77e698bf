"""ikesim.crypto."""
