"""NAT-T keepalives as datagrams (RFC 3948 §2.3), sent the way strongSwan sends them.

A host behind a NAT whose IKE_SA floated to port 4500 sends one 0xFF octet to the peer's port 4500 when it sent
nothing else to the peer (IKE or ESP) for ``nat_keepalive`` seconds (strongSwan's ``send_keepalive``: the next
one is due ``interval`` after the last datagram out). The keepalive is a datagram like any other: it refreshes
the NAT's mapping only if it reaches the NAT, it can be lost, and it is in the packets table and the capture.

``data_plane: {keepalives: analytic}`` keeps the older model instead (``ikesim.sim.nat.KeepaliveStream``: no
datagrams, the mapping counts as used at every keepalive instant), which a 10,000-client fleet needs to stay
within its budget (43 million keepalives a day at 20 s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ikesim.types import Address, Datagram

if TYPE_CHECKING:
    import simpy

    from ikesim.sim.node import Node

__all__ = ["KEEPALIVE", "KeepaliveSender"]

_EPSILON = 1e-9
"""Seconds of float rounding forgiven when a keepalive falls due exactly one interval after the last datagram."""

KEEPALIVE = b"\xff"
"""The NAT-keepalive packet: one octet 0xFF in UDP to port 4500 (RFC 3948 §2.3)."""


class KeepaliveSender:
    """The keepalives of one inside endpoint of *node* (see the module docstring)."""

    __slots__ = ("env", "node", "local", "interval", "send", "last_out", "sent", "running", "_fire_cb")

    def __init__(self, env: simpy.Environment, node: Node, local: Address, interval: float,
                 send: Callable[[str, Datagram], None], last_out: dict[tuple[Address, Address], float]) -> None:
        self.env, self.node, self.local, self.interval, self.send = env, node, local, interval, send
        self.last_out = last_out
        """(src, dst) -> when the simulation last sent a datagram between them (IKE, ESP or keepalive)."""
        self.sent = 0
        self.running = False
        self._fire_cb = self._fire

    def start(self) -> None:
        """An IKE_SA just floated (its last datagram out is now): the first keepalive is due one interval later."""
        if not self.running:
            self.running = True
            self.env.timeout(self.interval).callbacks.append(self._fire_cb)

    def _peer(self) -> Address | None:
        """Where keepalives go: the peer of an IKE_SA of the node on this endpoint behind a NAT (None: no such SA)."""
        for sa in self.node.daemon.sas.values():
            if sa.local == self.local and sa.nat_local:
                return sa.peer
        return None

    def _fire(self, _ev: object) -> None:
        peer = self._peer()
        if peer is None:  # the IKE_SA is gone: so are its keepalives
            self.running = False
            return
        now = self.env.now
        last = self.last_out.get((self.local, peer))
        if last is None or now - last >= self.interval - _EPSILON:
            self.sent += 1
            self.send(self.node.name, Datagram(KEEPALIVE, self.local, peer))
            last = now
        self.env.timeout(last + self.interval - now).callbacks.append(self._fire_cb)
