"""Fleet mode after the run: each flow direction's send times cut into pieces of constant state, and their fates.

For one flow direction, the sender's outbound timeline (``ikesim.sim.fleet_sad``) gives, for every send time
t, the SA (or none: ``no_sa``; expired: ``sa_expired``) and the outer addresses. From them a packet's way is
walked hop by hop as ``Simulation`` forwards it (``_forward``/``_arrive``), each condition read at the time
the packet would meet it, t plus the fixed delays so far (``ikesim.sim.fleet_path``):

- a link: ``link_down`` if entered in a down period; a loss rate p: each packet is lost with probability p
  (a binomial draw per piece and link), ``lost``;
- a box: ``firewall`` (its ``drop_udp``); a NAT translates the source of a packet from inside, and lets a packet
  to its public address in only through a mapping of that port alive at arrival (``nat_no_mapping``), as the
  NAT's history says (``NatHistory``, from ``NatBox.data_hook``);
- the receiving node: its inbound SA with the SPI installed and not removed at arrival (``unknown_spi``), not
  expired (``sa_expired``); else ``delivered``; a packet that would arrive at or after the end of the run is
  ``in_flight``.

Every condition the walk reads says when it next changes; the piece ends at the earliest such time, and the
next walk starts there. The pieces become interval rows in ``ikesim.sim.fleet_rows`` (all constant-rate flows'
at once). A change at time c applies to packets sent at or after c (in per-packet mode, a packet
due at the very instant of a change goes after it if its event was scheduled later: with the packet interval
longer than the one-way delay of the message that causes the change it goes first). Without reordering
(fixed delays), no packet can be ``replayed`` or ``outside_window``; a NAT's translated source port is not
known to the walk, so a firewall on the far side of a NAT checks only the destination port.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ikesim.esp import NO_SA, SA_EXPIRED, UNKNOWN_SPI
from ikesim.metrics.traffic_log import DELIVERED, Flow
from ikesim.metrics.traffic_timeline import IntervalRows, PacketTimes
from ikesim.sim.fleet_rows import Piece, RowMaker
from ikesim.sim.nat import NatBox
from ikesim.types import Address

if TYPE_CHECKING:
    from ikesim.rng import Rng
    from ikesim.sim.dataplane import Policy
    from ikesim.sim.fleet_path import LinkInfo, Paths
    from ikesim.sim.fleet_sad import FleetSad
    from ikesim.sim.nat import Router

__all__ = ["FleetFlow", "NatHistory", "Walker", "Outcome", "evaluate", "IN_FLIGHT"]

IN_FLIGHT = "in_flight"
_INF = math.inf
_NO_PORT = -1
"""The source port of a packet a NAT translated, which the walk does not know."""
_MAX_HOPS = 64
_UNSET = object()
_NO_ROWS: list[int] = []


@dataclass(slots=True)
class FleetFlow:
    """One flow direction in fleet mode: the flow, its policy, when it sends and its random stream."""

    code: int
    flow: Flow
    policy: Policy
    times: PacketTimes
    start: float
    stop: float
    seed: Rng
    """The flow direction's stream: seeds ``gen``."""
    gen_: np.random.Generator | None = None
    breaks: list[float] = field(default_factory=list)
    """Instants every piece of this flow starts anew at (its connection's NAT events)."""
    trap: str | None = None
    """The connection a packet finding no SA initiates (``start_action: trap``), or None."""

    @property
    def gen(self) -> np.random.Generator:
        """Draws of the evaluation and of Poisson send times (made on first use: a constant flow without loss needs none)."""
        if self.gen_ is None:  # seeded with the 16 bytes as 16 words (as a list of ints would be, only faster)
            self.gen_ = np.random.default_rng(np.frombuffer(self.seed.bytes(16), dtype=np.uint8).astype(np.uint32))
        return self.gen_


@dataclass(slots=True)
class _PortUse:
    """A NAT's public port leading to *inside* from *since* until *until* (exclusive)."""

    since: float
    until: float
    inside: Address
    remote: Address | None


class NatHistory:
    """Which public port of a NAT led where, when (from the box's ``NatEvent`` notes)."""

    __slots__ = ("ports",)

    def __init__(self) -> None:
        self.ports: dict[int, list[_PortUse]] = {}

    def noted(self, box: NatBox, kind: str, old: str, new: str, at: float) -> None:
        """Follow one mapping change (``NatBox._note``: endpoints as ``ip[port]``)."""
        if old:
            uses = self.ports.get(_port(old))
            if uses and uses[-1].until == _INF:
                uses[-1].until = math.nextafter(at, _INF) if kind == "expired" else at
        if new:
            port = _port(new)
            m = box.by_port.get(port)
            if m is not None:
                self.ports.setdefault(port, []).append(_PortUse(at, _INF, m.inside, m.remote))

    def lookup(self, port: int, t: float, off: float) -> tuple[_PortUse | None, float]:
        """The use of *port* for a packet sent at *t* arriving *off* s later, and when (in send time) that changes."""
        nxt = _INF
        for use in self.ports.get(port, ()):
            lo, hi = use.since - off, use.until - off
            if lo <= t < hi:
                return use, hi
            if t < lo:
                nxt = min(nxt, lo)
        return None, nxt


def _port(endpoint: str) -> int:
    return int(endpoint[endpoint.rindex("[") + 1:-1])


@dataclass(slots=True)
class Outcome:
    """Where the walk of one piece ends: random-loss points on the way, then a fate."""

    losses: list[tuple[float, str, float]]
    fate: str
    where: str
    offset: float
    nxt: float
    delays: tuple[float, ...] = ()
    """The links' delays up to the receiver (a delivered packet's arrival: ``arrival``)."""

    def arrival(self, t: float) -> float:
        """When a packet sent at *t* arrives, in SimPy's float arithmetic (hop by hop, ``now + delay``)."""
        for d in self.delays:
            t += d
        return t


class Walker:
    """Walks packets sent at a given time (see the module docstring)."""

    def __init__(self, paths: Paths, sads: dict[str, FleetSad], nats: dict[str, NatHistory], duration: float,
                 *, live: bool = False) -> None:
        self.paths, self.sads, self.nats, self.duration, self.live = paths, sads, nats, duration, live
        """*live*: during the run, the receiver's installed SA only (no index of every SA it ever had)."""
        self._hops: dict[tuple[str, str], tuple[str, LinkInfo, Router | None, bool] | None] = {}
        """(here, destination IP) -> the next node, the link to it, its box, whether it owns the IP (or None)."""

    def hop(self, here: str, dst_ip: str) -> tuple[str, LinkInfo, Router | None, bool] | None:
        """The next hop toward *dst_ip* (``Paths.next_hop``; routes are fixed once the run has begun)."""
        key = (here, dst_ip)
        hop = self._hops.get(key, _UNSET)
        if hop is _UNSET:
            paths = self.paths
            step = paths.next_hop(here, dst_ip)
            hop = None if step is None else (step[0], step[1], paths.boxes.get(step[0]),
                                             paths.topology.owner(dst_ip) == step[0])
            self._hops[key] = hop
        return hop  # type: ignore[return-value]

    def _rows(self, node: str, spi: int) -> list[int]:
        if self.live:
            sad = self.sads.get(node)
            sa = sad.inbound(spi.to_bytes(4, "big")) if sad is not None else None
            return [sa.row] if sa is not None else []
        sad = self.sads.get(node)
        return sad.inbound_log.rows.get(spi, _NO_ROWS) if sad is not None else _NO_ROWS

    def walk(self, sender: str, src: Address, dst: Address, spi: int, t: float) -> Outcome:
        """The fate of a packet sent at *t* from *sender* with SA *spi*, outer *src* -> *dst*."""
        duration, next_hop = self.duration, self.hop
        losses: list[tuple[float, str, float]] = []
        delays: list[float] = []
        here, off, nxt = sender, 0.0, _INF
        for _ in range(_MAX_HOPS):
            step = next_hop(here, dst.ip)
            if step is None:
                return Outcome(losses, "no_route", here, off, nxt)
            node, link, box, owns = step
            for f, u in link.down:  # RFC-free: the link's own schedule, [from, until)
                lo, hi = f - off, u - off
                if lo <= t < hi:
                    return Outcome(losses, "link_down", link.name, off, min(nxt, hi))
                if t < lo:
                    nxt = min(nxt, lo)
                    break
            if link.loss >= 1.0:
                return Outcome(losses, "lost", link.name, off, nxt)
            if link.loss > 0.0:
                losses.append((link.loss, link.name, off))
            off += link.delay
            delays.append(link.delay)
            end = duration - off
            if t >= end:
                return Outcome(losses, IN_FLIGHT, "", math.nan, nxt)
            nxt = min(nxt, end)
            here = node
            if box is not None and box.drop_udp and (dst.port in box.drop_udp or src.port in box.drop_udp):
                return Outcome(losses, "firewall", node, off, nxt)
            if not owns:
                if isinstance(box, NatBox) and src.ip in box.inside:
                    src = Address(box.public, _NO_PORT)
                continue
            if box is not None:
                if not isinstance(box, NatBox):
                    return Outcome(losses, "no_route", node, off, nxt)
                history = self.nats.get(node)
                use, change = history.lookup(dst.port, t, off) if history is not None else (None, _INF)
                nxt = min(nxt, change)
                if use is None or not _lets_in(box, use, src):
                    return Outcome(losses, "nat_no_mapping", node, off, nxt)
                dst = use.inside
                continue
            out = self._receive(node, spi, t, off, losses, nxt)
            out.delays = tuple(delays)
            return out
        return Outcome(losses, "no_route", here, off, nxt)

    def _receive(self, node: str, spi: int, t: float, off: float, losses: list[tuple[float, str, float]],
                 nxt: float) -> Outcome:
        """RFC 4303 §3.4.2: the receiver's SAD at arrival: unknown SPI, expired SA, or delivered."""
        sad = self.sads.get(node)
        if sad is None:
            return Outcome(losses, "no_data_plane", node, off, nxt)
        log = sad.inbound_log
        for row in self._rows(node, spi):
            lo, hi = log.installed[row] - off, log.removed[row] - off
            if lo <= t < hi:
                nxt = min(nxt, hi)
                expired = log.expired[row] - off
                if t >= expired:
                    return Outcome(losses, SA_EXPIRED, node, off, nxt)
                return Outcome(losses, DELIVERED, node, off, min(nxt, expired))
            if t < lo:
                nxt = min(nxt, lo)
        return Outcome(losses, UNKNOWN_SPI, node, off, nxt)


def _lets_in(box: NatBox, use: _PortUse, src: Address) -> bool:
    """RFC 4787 filtering of ``NatBox.inbound``: address- and endpoint-dependent mappings check the remote."""
    if box.kind == "address_dependent":
        return use.remote is None or use.remote.ip == src.ip
    if box.kind == "symmetric":
        return use.remote is None or use.remote == src
    return True


def _segments(f: FleetFlow, sad: FleetSad | None, addresses: list[Address]) -> Iterator[tuple[float, float, int, bool,
                                                                                            Address | None, Address | None]]:
    """The sender's outbound state for *f*'s policy: (from, until, spi, expired, src, dst) in time order."""
    log = sad.outbound_log.get(f.policy) if sad is not None else None
    n = len(log) if log is not None else 0
    first = log.at[0] if log is not None and n else _INF
    yield -_INF, first, -1, False, None, None
    assert log is not None or not n
    for i in range(n):
        assert log is not None
        until = log.at[i + 1] if i + 1 < n else _INF
        if until <= log.at[i]:
            continue
        s, d = log.src[i], log.dst[i]
        yield (log.at[i], until, log.spi[i], bool(log.expired[i]), addresses[s] if s >= 0 else None,
               addresses[d] if d >= 0 else None)


def evaluate(flows: list[FleetFlow], sads: dict[str, FleetSad], paths: Paths, nats: dict[str, NatHistory],
             addresses: list[Address], duration: float) -> IntervalRows:
    """Every flow direction's pieces and fates (see the module docstring; the rows: ``ikesim.sim.fleet_rows``)."""
    walker = Walker(paths, sads, nats, duration)
    maker = RowMaker()
    for pos, f in enumerate(flows):
        maker.add_flow(pos, f, _pieces(f, walker, sads.get(f.flow.sender), addresses))
    return maker.rows()


def _pieces(f: FleetFlow, walker: Walker, sad: FleetSad | None, addresses: list[Address]) -> list[Piece]:
    """*f*'s send times cut into pieces of constant state, each with the walk's outcome, in time order."""
    sender = f.flow.sender
    breaks = sorted(f.breaks)
    pieces: list[Piece] = []
    for s0, s1, spi, expired, src, dst in _segments(f, sad, addresses):
        a, s1 = max(s0, f.start), min(s1, f.stop)
        while a < s1:
            if spi < 0 or expired or src is None or dst is None:
                out = Outcome([], NO_SA if spi < 0 else SA_EXPIRED, sender, 0.0, _INF)
            else:
                out = walker.walk(sender, src, dst, spi, a)
            b = min(s1, out.nxt)
            i = bisect.bisect_right(breaks, a)  # the first break after a, if before b
            if i < len(breaks) and breaks[i] < b:
                b = breaks[i]
            if not b > a:
                b = math.nextafter(a, _INF)
            pieces.append((a, b, spi, out))
            a = b
    return pieces
