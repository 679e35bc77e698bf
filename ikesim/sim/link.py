"""One direction of a network link: delay, jitter, bandwidth and queue, loss, duplication, outages, MTU.

Delivery is a single scheduled SimPy timeout whose callback hands the
datagram to the next hop (STYLE.md rule 14): no process and no queue per
packet. The transmitter is modelled analytically: ``_free_at`` is when it
finishes the last admitted datagram, and a deque holds the datagrams still
waiting behind it (for the tail-drop limit).

What ``put`` does to a datagram, in order (each step records a fate and stops, or goes on):

1. ``down`` periods ``[from, until)``: everything sent in one is dropped (``link_down``).
2. ``duplicate``: with this probability a copy (a new datagram, counted as sent) follows it.
3. MTU: a datagram whose IP size exceeds the MTU is IPv4-fragmented (``fragment_count``) and the
   collector notes the MTU, so the capture shows these fragments (the first link that fragments a
   datagram counts); with ``drop_fragments`` (a black hole for fragments) it is dropped (``fragments_dropped``).
4. bandwidth: serialization takes wire bytes * 8 / bandwidth after the transmitter is free; a
   datagram that would wait behind more than ``queue`` packets (or bytes) is dropped (``queue_overflow``).
5. loss: the loss model is applied once per fragment; any loss loses the datagram
   (``lost``, or ``fragment_lost`` when it was fragmented).
6. delay: end of serialization + a draw of the delay distribution + uniform jitter in
   [-jitter, +jitter], clipped at 0; with ``reorder=False`` never before the previous arrival.

Every probability of 0 (or 1) and a fixed delay draw nothing from the link's stream, so a plain
link draws exactly as before: one loss draw (if loss > 0), then one jitter draw (if jitter > 0).
A direction none of whose options can draw never derives its stream (a fleet's access links: one
object fewer each), and the queue and fragment bookkeeping exist only once needed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import simpy

from ikesim.rng import Rng
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.linkmodels import (
    Bernoulli,
    Delay,
    Fixed,
    LossModel,
    as_delay,
    as_loss,
    fragment_count,
    parse_bandwidth,
    parse_queue,
)

if TYPE_CHECKING:
    from ikesim.metrics.recorder import Recorder

__all__ = ["Link", "ip_udp_size", "IPV4_HEADER", "IPV4_UDP_OVERHEAD"]

IPV4_HEADER = 20
"""IPv4 header bytes (no options): repeated in every fragment."""

IPV4_UDP_OVERHEAD = 28
"""IPv4 header (20) + UDP header (8) bytes."""


def ip_udp_size(d: SimDatagram) -> int:
    """Size of the IP packet carrying *d* (with the 4-byte non-ESP marker on port 4500, RFC 3948; not on a NAT
    keepalive, which is the one octet 0xFF, RFC 3948 §2.3).

    A user packet (id < 0) is ESP: in UDP on port 4500 without a marker (RFC 3948 §2.1), or ESP itself (port 0).
    """
    if d.id < 0:
        return IPV4_HEADER + (8 if d.dst.port else 0) + len(d.data)
    marker = 4 if 4500 in (d.src.port, d.dst.port) and d.data != b"\xff" else 0  # a keepalive has none
    return IPV4_UDP_OVERHEAD + marker + len(d.data)


class _NoStream(Rng):
    """The stream of a direction whose every outcome is certain: it never draws, so none is derived."""

    __slots__ = ()

    def bytes(self, n: int) -> bytes:
        """Never called: ``Link._may_draw`` said no option of this direction draws."""
        raise AssertionError("a link without a stream drew a random number")


_NO_STREAM = _NoStream(0, "link-without-stream")


class Link:
    """A unidirectional link from node *a* to node *b* (``ikesim.sim.linkmodels`` for delay and loss models)."""

    __slots__ = ("env", "a", "b", "delay", "jitter", "loss", "mtu", "reorder", "bandwidth", "queue", "duplicate",
                 "down", "drop_fragments", "_fragmented", "_rng", "_deliver", "_collector", "_copy",
                 "_channel", "_free_at", "_waiting", "_q_packets", "_q_bytes", "_last_arrival", "_data_rng")

    def __init__(
        self,
        env: simpy.Environment,
        a: str,
        b: str,
        *,
        delay: float | Delay = 0.0,
        jitter: float = 0.0,
        loss: float | LossModel = 0.0,
        mtu: int = 1500,
        rng: Rng,
        deliver: Callable[[str, SimDatagram], None],
        collector: Recorder,
        reorder: bool = True,
        bandwidth: float | str | None = None,
        queue: int | str | tuple[int, str] | None = None,
        duplicate: float = 0.0,
        down: Sequence[tuple[float, float]] = (),
        drop_fragments: bool = False,
        copy: Callable[[str, SimDatagram], SimDatagram] | None = None,
        stream: Sequence[str] = (),
    ) -> None:
        """*rng* is the direction's stream, or with *stream* names the parent of ``rng.child(*stream)``."""
        where = f"{a}->{b}"
        if not jitter >= 0 or mtu < 68 or not 0 <= duplicate <= 1:
            raise ValueError(f"invalid link {where}: jitter={jitter} mtu={mtu} duplicate={duplicate}")
        self.env, self.a, self.b = env, a, b
        self.delay: Delay = as_delay(delay)
        self.loss: LossModel = as_loss(loss)
        self.jitter, self.mtu, self.reorder, self.duplicate = float(jitter), int(mtu), bool(reorder), float(duplicate)
        self.bandwidth: float | None = None if bandwidth is None else parse_bandwidth(bandwidth)
        self.queue: tuple[int, str] | None = None if queue is None else parse_queue(queue)
        if self.queue is not None and self.bandwidth is None:
            raise ValueError(f"invalid link {where}: a queue limit needs a bandwidth")
        self.down = tuple(sorted((float(f), float(u)) for f, u in down))
        for f, u in self.down:
            if not 0 <= f <= u:
                raise ValueError(f"invalid link {where}: down period from {f} until {u}")
        if self.duplicate > 0 and copy is None:
            raise ValueError(f"invalid link {where}: duplication needs a copy function")
        self.drop_fragments = bool(drop_fragments)
        self._fragmented: set[int] | None = None
        self._rng: Rng = (rng.child(*stream) if stream else rng) if self._may_draw() else _NO_STREAM
        self._deliver = deliver
        self._collector = collector
        self._copy = copy
        self._channel = self.loss.process()
        self._free_at = 0.0
        self._waiting: deque[tuple[float, int, int]] | None = None if self.queue is None else deque()
        self._q_packets = 0
        self._q_bytes = 0
        self._last_arrival = 0.0
        self._data_rng: Rng | None = None

    def _stream(self, d: SimDatagram) -> Rng:
        """The stream *d*'s outcomes are drawn from: user packets (id < 0) have their own, so IKE's draws never shift."""
        if d.id > 0 or self._rng is _NO_STREAM:
            return self._rng
        if self._data_rng is None:
            self._data_rng = self._rng.child("data")
        return self._data_rng

    def _may_draw(self) -> bool:
        """Whether any option can draw: a duplicate or loss probability strictly between 0 and 1, a delay distribution, jitter."""
        loss = self.loss
        certain_loss = isinstance(loss, Bernoulli) and loss.p in (0.0, 1.0)
        return 0 < self.duplicate < 1 or self.jitter > 0 or not isinstance(self.delay, Fixed) or not certain_loss

    @property
    def fragmented(self) -> set[int]:
        """Ids of the datagrams this direction sent as more than one IP fragment."""
        return set() if self._fragmented is None else self._fragmented

    def _drop(self, d: SimDatagram, fate: str, now: float) -> None:
        self._collector.record_fate(d.id, fate, now, f"{self.a}->{self.b}")

    def put(self, d: SimDatagram) -> None:
        """Carry *d* to node *b*: drop it (recording why) or schedule its arrival."""
        now = self.env.now
        if self.down and any(f <= now < u for f, u in self.down):
            self._drop(d, "link_down", now)
            return
        if self.duplicate > 0 and (self.duplicate >= 1 or self._stream(d).random() < self.duplicate):
            copy = self._copy(self.a, d)  # type: ignore[misc]
            self._carry(d, now)
            self._carry(copy, now)
            return
        self._carry(d, now)

    def _carry(self, d: SimDatagram, now: float) -> None:
        size = ip_udp_size(d)
        n = 1
        if size > self.mtu:
            n = fragment_count(size, self.mtu)
            if self._fragmented is None:
                self._fragmented = set()
            self._fragmented.add(d.id)
            self._collector.record_fragmented(d.id, self.mtu)  # the capture shows these fragments, even if dropped
            if self.drop_fragments:
                self._drop(d, "fragments_dropped", now)
                return
            size += IPV4_HEADER * (n - 1)
        sent = now
        if self.bandwidth is not None:
            start = self._free_at if self._free_at > now else now
            if self.queue is not None:
                waiting = self._waiting
                assert waiting is not None  # made with the queue limit
                while waiting and waiting[0][0] <= now:
                    _s, p, nbytes = waiting.popleft()
                    self._q_packets -= p
                    self._q_bytes -= nbytes
                if start > now:
                    limit, unit = self.queue
                    if (self._q_packets + n if unit == "packets" else self._q_bytes + size) > limit:
                        self._drop(d, "queue_overflow", now)
                        return
                    waiting.append((start, n, size))
                    self._q_packets += n
                    self._q_bytes += size
            sent = self._free_at = start + size * 8 / self.bandwidth
        channel, rng = self._channel, self._stream(d)
        if n == 1:
            lost = channel.lost(rng)
        else:
            lost = False
            for _ in range(n):  # every fragment is a packet on the channel: draw for each
                if channel.lost(rng):
                    lost = True
        if lost:
            self._drop(d, "fragment_lost" if n > 1 else "lost", now)
            return
        delay = self.delay.sample(rng)
        if self.jitter > 0:
            delay = max(0.0, delay + rng.uniform(-self.jitter, self.jitter))
        wait = (sent - now) + delay  # exactly delay without a transmitter
        if not self.reorder:
            last = self._last_arrival
            if now + wait < last:  # SimPy schedules at now + wait: compare the float it will use
                wait = last - now
                while now + wait < last:
                    wait = math.nextafter(wait, math.inf)
            self._last_arrival = now + wait
        b, deliver = self.b, self._deliver
        timeout = self.env.timeout(wait)
        timeout.callbacks.append(lambda _ev: deliver(b, d))
