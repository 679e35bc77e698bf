"""Traffic generators: user packets sent through a tunnel's CHILD_SA on virtual time (per-packet mode).

One ``FlowSender`` per flow direction. Each packet is one SimPy timeout whose callback builds the inner
IPv4 packet, asks the sender's ESP plane to protect it and hands the ESP datagram to the network (STYLE
rule 14: no process per flow). Patterns: ``constant`` (packet k at start + k/rate), ``poisson``
(exponential gaps), ``onoff`` (exponential on and off periods, constant rate while on) and
``request_response`` (the responder answers each delivered request after ``think`` s). Draws come from
the flow direction's own stream, so a flow never shifts another's.

While the flow's policy has no outbound SA, packets are dropped with ``no_sa``, or held up to ``queue``
of them and sent when an SA appears (a kernel's acquire queue).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ikesim.esp import NO_SA, inner_ipv4
from ikesim.metrics.traffic_log import Flow, TrafficLog

if TYPE_CHECKING:
    import simpy

    from ikesim.esp import OutboundEspSa
    from ikesim.rng import Rng
    from ikesim.sim.dataplane import NodeDataPlane, Policy
    from ikesim.types import Datagram

__all__ = ["FlowSpec", "Sizes", "FlowSender"]


@dataclass(frozen=True, slots=True)
class Sizes:
    """Inner packet sizes: ``values`` with cumulative ``weights`` (a choice), or a ``low``..``high`` range."""

    values: tuple[int, ...] = ()
    cumulative: tuple[float, ...] = ()
    low: int = 0
    high: int = 0

    @classmethod
    def fixed(cls, size: int) -> Sizes:
        """Always *size* bytes."""
        return cls(values=(size,), cumulative=(1.0,))

    def draw(self, rng: Rng) -> int:
        """One size (a fixed size draws nothing)."""
        values = self.values
        if len(values) == 1:
            return values[0]
        if values:
            return values[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]
        return self.low + rng.below(self.high - self.low + 1)


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """One direction of a flow, as the simulation runs it (built from ``traffic:`` by ``ikesim.scenario``)."""

    flow: Flow
    rate: float
    """Packets per second (while on)."""
    sizes: Sizes
    start: float
    stop: float
    on: float = 0.0
    off: float = 0.0
    queue: int = 0
    response_sizes: Sizes | None = None
    think: float = 0.0


class FlowSender:
    """Sends one flow direction's packets (see the module docstring)."""

    __slots__ = ("spec", "env", "plane", "policy", "rng", "log", "code", "send", "inner_src", "inner_dst", "_held",
                 "_on_until", "_tick_cb", "_inner", "responder", "_next", "_origin", "_k", "trap")

    def __init__(self, spec: FlowSpec, *, env: simpy.Environment, plane: NodeDataPlane, policy: Policy, rng: Rng,
                 log: TrafficLog, send: Callable[[str, Datagram, int, int], None], inner: tuple[str, str]) -> None:
        self.spec, self.env, self.plane, self.policy, self.rng, self.log, self.send = spec, env, plane, policy, rng, log, send
        self.code = log.add_flow(spec.flow)
        self.inner_src, self.inner_dst = inner
        self._held: deque[tuple[int, bytes]] = deque()
        self._on_until = math.inf
        self._tick_cb = self._tick
        self._inner: dict[int, bytes] = {}
        self.responder: FlowSender | None = None
        """request_response: the reverse direction, which answers each delivered request."""
        self._next = 0.0
        self._origin = 0.0
        """Constant rate: packet k of the current on period goes at ``_origin + k / rate`` (no summed rounding)."""
        self._k = 0
        self.trap: str | None = None
        """The connection a packet finding no SA initiates (``start_action: trap``), or None."""

    def start(self) -> None:
        """Schedule the first packet (request_response's answering side sends only answers)."""
        spec = self.spec
        if spec.rate <= 0:
            return
        first = spec.start
        if spec.on > 0:
            self._on_until = first + self._exp(spec.on)
        elif spec.flow.pattern == "poisson":
            first += self._exp(1.0 / spec.rate)
        self._origin, self._k = first, 0
        self._at(first)

    def _exp(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.rng.random())

    def _at(self, t: float) -> None:
        if t < self.spec.stop:
            self._next = t
            self.env.timeout(max(0.0, t - self.env.now)).callbacks.append(self._tick_cb)

    def _tick(self, _ev: object) -> None:
        spec = self.spec
        self.emit(spec.sizes.draw(self.rng))
        if spec.flow.pattern == "poisson":
            nxt = self._next + self._exp(1.0 / spec.rate)
        else:
            self._k += 1
            nxt = self._origin + self._k / spec.rate
            if nxt >= self._on_until:  # onoff: an off period, then the next on period
                begin = self._on_until + self._exp(spec.off)
                self._on_until = begin + self._exp(spec.on)
                nxt, self._origin, self._k = begin, begin, 0
        self._at(nxt)

    def answer(self) -> None:
        """request_response: a request arrived; answer it after ``think`` s."""
        spec = self.spec
        sizes = spec.response_sizes or spec.sizes
        size = sizes.draw(self.rng)
        if spec.think > 0:
            self.env.timeout(spec.think).callbacks.append(lambda _ev: self.emit(size))
        else:
            self.emit(size)

    def inner(self, size: int) -> bytes:
        """The inner IPv4 packet of *size* bytes (one per size: the plane copies nothing into it)."""
        pkt = self._inner.get(size)
        if pkt is None:
            pkt = self._inner[size] = inner_ipv4(self.inner_src, self.inner_dst, size)
        return pkt

    def emit(self, size: int) -> None:
        """Protect one packet of *size* bytes and send it; or hold it, or drop it with the reason."""
        now = self.env.now
        sa = self.plane.esp.outbound(self.policy)
        if sa is None and self.spec.queue > 0:
            if len(self._held) < self.spec.queue:
                self._held.append((self.log.record_sent(self.code, now, size, -1), self.inner(size)))
                if self.trap is not None:
                    self.plane.acquire(self.trap, now)
                return
        self._protect(now, size, None, sa)

    def _protect(self, now: float, size: int, packet: int | None, sa: OutboundEspSa | None) -> None:
        """Protect with *sa* (the policy's outbound SA, looked up once by the caller) and send, or drop."""
        esp, log = self.plane.esp, self.log
        spi = int.from_bytes(sa.spi, "big") if sa is not None else -1
        if packet is None:
            packet = log.record_sent(self.code, now, size, spi)
        else:
            log.spi[packet - 1] = spi
        out = esp.protect(self.policy, self.inner(size)) if sa is not None else NO_SA
        if isinstance(out, str):
            log.record_fate(packet, out, now, self.spec.flow.sender)
            if sa is None and self.trap is not None:
                self.plane.acquire(self.trap, now)
        else:
            self.send(self.plane.node, out, packet, spi)  # the plane's node: a cluster member, for a cluster's flows
        self.plane.tell_daemon(now)  # a limit reached: the daemon rekeys

    def release(self) -> None:
        """The policy has an outbound SA now: send the held packets (in order, now)."""
        now = self.env.now
        while self._held:
            packet, inner = self._held.popleft()
            self._protect(now, len(inner), packet, self.plane.esp.outbound(self.policy))
