"""A node's per-message processing time: the sub-millisecond noise between an input and the daemon acting on it.

A real daemon does not act at the instant a datagram arrives or a timer expires. charon's receiver thread reads
the socket and queues a job for its thread pool; a worker decrypts and parses, runs the key exchange, installs SAs
over netlink and sends; a CHILD_SA's soft lifetime reaches it as an XFRM expire message that becomes a rekey job the
same way. Those few hundred microseconds vary from message to message. With strongSwan's whole-second lifetimes
(``ike.lifetimes``) both ends of a CHILD_SA often fall due one transit apart, so that one end's rekey request
reaches the other exactly when its own timer expires; whether that becomes a collision is decided by this noise
in reality, and must not be decided by the order of two simultaneous entries in SimPy's event queue.

The model: each datagram a node receives is handed to its daemon ``low + (high - low) * U`` seconds after it
arrived (U uniform in [0, 1), one draw per datagram), never before the datagram received before it (FIFO, as one
socket and one receiver thread); each wake-up for the daemon's timers is late by a draw of its own. Draws come from
the simulation's ``("node", name, "processing")`` stream, so the daemons' streams are untouched. With a CPU model
(``sim.cpu``) the noise comes first and the job then queues for a core.

The default, ``strongswan``, is uniform between 0.2 ms and 1.0 ms, from a measurement of a live charon
(``tools/measure_charon_processing.py``: strongSwan 5.9.8, Debian 12, kernel-libipsec, log level 0, loopback, on
the 2-core machine the project is developed on, 300 exchanges each, ikesim's own processing subtracted): an empty
INFORMATIONAL answered in 0.22 ms median (p5 0.18, p95 0.28: the floor, with the loopback round trip and ikesim's
UDP driver), a CREATE_CHILD_SA rekey in 0.68 ms (p5 0.50, p95 0.95), one with an X25519 key exchange in 0.86 ms
(p5 0.58, p95 1.19). One band for every input: from the floor to a rekey with PFS. ``none`` turns the model off
(every input is handled at the instant it arrives: the behaviour before).
"""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.rng import Rng

__all__ = ["ProcessingModel", "STRONGSWAN"]


@dataclass(frozen=True, slots=True)
class ProcessingModel:
    """Uniform processing noise per input in [*low*, *high*) seconds (``sim.processing``)."""

    low: float
    """Shortest processing time, seconds."""
    high: float
    """Longest processing time, seconds (exclusive)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high:
            raise ValueError(f"processing time: need 0 <= low <= high (got {self.low:g} s, {self.high:g} s)")

    def draw(self, rng: Rng) -> float:
        """One processing time in seconds."""
        return self.low + (self.high - self.low) * rng.random()


STRONGSWAN = ProcessingModel(low=200e-6, high=1e-3)
"""``strongswan``: 0.2 to 1.0 ms per input, as a measured charon (see the module docstring)."""
