"""What the simulation's watchers may see of it: narrow, read-mostly views (``typing.Protocol``).

The invariant checker (``ikesim.sim.invariants``) and the fault injector
(``ikesim.sim.faults``) run inside a ``Simulation`` but need only a little of
it: the nodes by name with their daemons, the clock and scheduler, the
collector, where an address leads, and (faults) a fresh datagram id. They are
typed against these protocols, not against ``Simulation`` or ``Node``, so that
the modules below ``ikesim.sim.simulation`` never import it (no import circle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import simpy

    from ikesim.ike.daemon import IkeDaemon
    from ikesim.metrics.trace import Trace
    from ikesim.sim.datagram import SimDatagram
    from ikesim.types import Address

__all__ = ["NodeView", "AddressOwners", "SimView", "EventWatcher"]


class NodeView(Protocol):
    """A simulated host as the watchers see it: its name and its daemon (SA tables read, never changed)."""

    @property
    def name(self) -> str: ...

    @property
    def daemon(self) -> IkeDaemon: ...


class AddressOwners(Protocol):
    """Which node owns an IP address (``ikesim.sim.topology.Topology``)."""

    def owner(self, ip: str) -> str | None: ...


class SimView(Protocol):
    """The running simulation as the invariant checker and the fault injector see it."""

    @property
    def env(self) -> simpy.Environment:
        """The clock (``env.now``) and the scheduler (``env.timeout``)."""
        ...

    @property
    def collector(self) -> Trace: ...

    @property
    def nodes(self) -> Mapping[str, NodeView]: ...

    @property
    def topology(self) -> AddressOwners: ...

    def resolve(self, address: Address) -> str | None:
        """The node that receives datagrams sent to *address* now (through a NAT's current mapping), or None."""
        ...

    def copy_datagram(self, node: str, sd: SimDatagram) -> SimDatagram:
        """A duplicate of *sd* as a new datagram sent by *node* now (counted as sent)."""
        ...


class EventWatcher(Protocol):
    """Told about every batch of daemon events a node drains (the invariant checker)."""

    def on_events(self, node: NodeView, events: list[Any]) -> None: ...
