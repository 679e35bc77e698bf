"""One direction of a network link: delay, jitter, Bernoulli loss, MTU.

Delivery is a single scheduled SimPy timeout whose callback hands the
datagram to the next hop (STYLE.md rule 14): no process and no queue per
packet. Jitter is uniform in [-jitter, +jitter] around the delay, clipped at
0; it can reorder datagrams that are sent closer together than the jitter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy

from ikesim.rng import Rng
from ikesim.sim.datagram import SimDatagram

if TYPE_CHECKING:
    from ikesim.metrics.recorder import Collector

__all__ = ["Link", "ip_udp_size"]

IPV4_UDP_OVERHEAD = 28
"""IPv4 header (20) + UDP header (8) bytes."""


def ip_udp_size(d: SimDatagram) -> int:
    """Size of the IP packet carrying *d* (with the 4-byte non-ESP marker on port 4500, RFC 3948)."""
    marker = 4 if 4500 in (d.src.port, d.dst.port) else 0
    return IPV4_UDP_OVERHEAD + marker + len(d.data)


class Link:
    """A unidirectional link from node *a* to node *b*."""

    __slots__ = ("env", "a", "b", "delay", "jitter", "loss", "mtu", "_rng", "_deliver", "_collector")

    def __init__(
        self,
        env: simpy.Environment,
        a: str,
        b: str,
        *,
        delay: float,
        jitter: float,
        loss: float,
        mtu: int,
        rng: Rng,
        deliver: Callable[[str, SimDatagram], None],
        collector: Collector,
    ) -> None:
        if delay < 0 or jitter < 0 or not 0 <= loss <= 1 or mtu < 68:
            raise ValueError(f"invalid link {a}->{b}: delay={delay} jitter={jitter} loss={loss} mtu={mtu}")
        self.env, self.a, self.b = env, a, b
        self.delay, self.jitter, self.loss, self.mtu = delay, jitter, loss, mtu
        self._rng = rng
        self._deliver = deliver
        self._collector = collector

    def put(self, d: SimDatagram) -> None:
        """Carry *d* to node *b*: drop it (recording why) or schedule its arrival."""
        if ip_udp_size(d) > self.mtu:
            self._collector.record_fate(d.id, "mtu_exceeded", self.env.now, f"{self.a}->{self.b}")
            return
        if self.loss > 0 and self._rng.random() < self.loss:
            self._collector.record_fate(d.id, "lost", self.env.now, f"{self.a}->{self.b}")
            return
        delay = self.delay
        if self.jitter > 0:
            delay = max(0.0, delay + self._rng.uniform(-self.jitter, self.jitter))
        b, deliver = self.b, self._deliver
        timeout = self.env.timeout(delay)
        timeout.callbacks.append(lambda _ev: deliver(b, d))
