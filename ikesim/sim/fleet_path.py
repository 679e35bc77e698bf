"""What fleet mode knows of the network a user packet crosses: links as fixed delays, loss rates and down periods.

A link's delay is its delay distribution's mean (jitter, which is symmetric, adds nothing to it; a delay
clipped at 0 by jitter larger than the delay would make the mean a little larger: not modelled), its loss its
loss model's stationary rate (a Bernoulli link's ``p``; a Gilbert-Elliott link's long-run rate), its down
periods as given. Routing is the simulation's own (``Topology.next_hop``) and NAT boxes and routers are the
simulation's objects. Fleet mode refuses links whose effect on a packet depends on the other packets
(``ikesim.scenario.build_traffic``): bandwidth and queues, duplication, and IP fragmentation of user packets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ikesim.sim.nat import Router
    from ikesim.sim.topology import Topology

__all__ = ["LinkInfo", "Paths", "ESP_OVERHEAD_MAX"]

ESP_OVERHEAD_MAX = 20 + 8 + 8 + 16 + 16 + 2 + 15
"""The most an inner packet grows as UDP-encapsulated ESP: IPv4, UDP, SPI and sequence, IV (CBC: 16), ICV (16),
pad length and next header, padding (RFC 4303 §2, RFC 3948)."""


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One direction of a link as fleet mode sees it (see the module docstring)."""

    name: str
    """``a->b``: the ``where`` of a packet dropped on it."""
    delay: float
    loss: float
    down: tuple[tuple[float, float], ...]


class Paths:
    """Links, boxes and routes of one simulation, for user packets (see the module docstring)."""

    __slots__ = ("topology", "boxes", "links")

    def __init__(self, topology: Topology, boxes: Mapping[str, Router], links: dict[tuple[str, str], LinkInfo]) -> None:
        self.topology, self.boxes, self.links = topology, boxes, links

    def next_hop(self, here: str, dst_ip: str) -> tuple[str, LinkInfo] | None:
        """The next node and the link to it toward the owner of *dst_ip* (the simulation's route), or None."""
        owner = self.topology.owner(dst_ip)
        hop = self.topology.next_hop(here, owner) if owner is not None else None
        if hop is None:
            return None
        return hop, self.links[(here, hop)]
