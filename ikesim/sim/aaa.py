"""AAA (RADIUS) servers that EAP gateways wait for: latency, capacity and a FIFO queue.

An EAP gateway configured with ``eap_aaa`` (``ike.eap_auth``) emits ``AaaRequested`` instead of answering an EAP
Response; its node hands the request to the connection's ``AaaServer``. The server serves ``capacity`` requests at
once, each for ``latency`` seconds, the others waiting in arrival order, then delivers the answer
(``IkeDaemon.deliver_aaa``) and lets the node send. A storm of EAP clients thus queues on the server, as on a real
RADIUS backend. The answer is delivered outside the node's CPU model (the gateway's work for it is counted in the
daemon's operation meter all the same). Scheduled callbacks, no SimPy process (STYLE.md rule 14).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import simpy

from ikesim.errors import ConfigError, LocalProtocolError

if TYPE_CHECKING:
    from ikesim.sim.node import Node

__all__ = ["AaaServer"]


class AaaServer:
    """One RADIUS server: *capacity* requests in service at once, *latency* seconds each, FIFO queue."""

    def __init__(self, env: simpy.Environment, name: str, *, latency: float, capacity: int) -> None:
        if capacity < 1 or latency < 0:
            raise ConfigError(f"AAA server {name}: capacity >= 1 and latency >= 0 needed")
        self.env, self.name, self.latency, self.capacity = env, name, latency, capacity
        self.queue: deque[tuple[float, Node, bytes]] = deque()
        self.busy = 0
        self.served = 0
        self.max_queue = 0
        self.waits: list[float] = []
        """Seconds each request waited for a free slot, in service order."""

    def request(self, node: Node, local_spi: bytes) -> None:
        """Queue the EAP Response *node*'s IKE_SA *local_spi* forwards (RADIUS Access-Request)."""
        self.queue.append((self.env.now, node, local_spi))
        self.max_queue = max(self.max_queue, len(self.queue))
        self._dispatch()

    def _dispatch(self) -> None:
        while self.busy < self.capacity and self.queue:
            arrived, node, spi = self.queue.popleft()
            self.busy += 1
            self.waits.append(self.env.now - arrived)
            done = self.env.timeout(self.latency)
            done.callbacks.append(lambda _ev, node=node, spi=spi: self._answer(node, spi))

    def _answer(self, node: Node, spi: bytes) -> None:
        """Access-Accept/Challenge/Reject arrived: the gateway answers its IKE_AUTH request now."""
        self.busy -= 1
        self.served += 1
        try:
            node.daemon.deliver_aaa(spi, self.env.now)
        except LocalProtocolError:
            pass  # the IKE_SA is gone meanwhile (half-open timeout, or the client gave up)
        node.service()
        self._dispatch()
