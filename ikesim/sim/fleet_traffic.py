"""Fleet mode of the data plane (``data_plane: {mode: fleet}``): user traffic without a SimPy event per packet.

Every node's ``NodeDataPlane`` follows its daemon exactly as in per-packet mode, but drives a crypto-free
``FleetSad`` that writes the SA timeline down (``ikesim.sim.fleet_sad``); after the run,
``ikesim.sim.fleet_eval`` turns timeline and paths into interval rows (``ikesim.metrics.traffic_timeline``).

What user packets do to the rest of the simulation is reproduced during the run, at the same simulated times:

- NAT mappings: a flow's packets keep the mapping they leave through in use at the last packet instant
  (``NatBox.data_hook``, as keepalive streams do);
- a packet that would create a NAT mapping (none alive: after a reboot, an expiry, at a flow's first packet), or
  whose source would differ from where the receiver's SA expects it (after a NAT rebind: the receiver's ESP
  plane tells its daemon ``EspPeerMoved``, the kernel's XFRM_MSG_MAPPING, RFC 3948 §3), is *probed*: that one
  packet is followed through links and boxes by callbacks at its hop times, calling ``NatBox.outbound`` and
  ``inbound`` and the receiver's SAD as per-packet mode would;
- a packet of a ``start_action: trap`` flow finding no SA initiates its connection (probed packet by packet
  while there is none);
- an SA reaching a byte or packet lifetime tells its daemon at the instant the packet that reaches it is sent
  (outbound) or arrives (inbound), as per-packet mode's ESP SA does (``ikesim.sim.fleet_limits``).

Which packet to probe is decided from the state at the instants it can change: the sender's outbound SA
(``SadWatcher.outbound_changed``), the receiver's inbound SAs and their expected peers (``inbound_changed``),
NAT rebinds and reboots, the ends of link down periods, a flow's start. Probes neither lose packets at random
nor see a link that goes down while they are on it (the next packet is probed at the down period's end).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from ikesim.errors import ConfigError
from ikesim.esp import EspPeerMoved
from ikesim.metrics.traffic_log import DELIVERED
from ikesim.metrics.traffic_timeline import ConstantTimes, IntervalRows, OnOffTimes, PacketTimes, PoissonTimes
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.fleet_eval import FleetFlow, NatHistory, Walker, evaluate
from ikesim.sim.fleet_limits import FleetLimits
from ikesim.sim.fleet_sad import FleetSad
from ikesim.sim.nat import Mapping, NatBox
from ikesim.types import Address

if TYPE_CHECKING:
    import simpy

    from ikesim.sim.data_network import DataNetwork
    from ikesim.sim.dataplane import Policy
    from ikesim.sim.fleet_path import Paths
    from ikesim.sim.nat import Router
    from ikesim.sim.simulation import Simulation
    from ikesim.sim.traffic import FlowSpec

__all__ = ["FleetTraffic"]

_MAX_HOPS = 64


class FleetTraffic:
    """The fleet-mode data plane of one simulation (see the module docstring)."""

    def __init__(self, sim: Simulation, data: DataNetwork, paths: Paths) -> None:
        self.env: simpy.Environment = sim.env
        self.data, self.paths, self.log = data, paths, data.log
        self.addresses: list[Address] = []
        self._codes: dict[Address, int] = {}
        now: Callable[[], float] = lambda: self.env.now  # noqa: E731
        self.sads: dict[str, FleetSad] = {}
        for name, plane in data.planes.items():
            sad = self.sads[name] = FleetSad(name, now, self, self.addresses, self._codes)
            plane.use_sad(sad)
            plane.daemon.child_use = lambda spi, name=name: self.last_in(name, spi)
        self.nats: dict[str, NatHistory] = {}
        self._behind: dict[str, list[FleetFlow]] = {}
        """NAT name -> the flows whose sender is inside it."""
        for name, box in sim.boxes.items():
            if isinstance(box, NatBox):
                box.data_hook = self
                self.nats[name] = NatHistory()
                self._behind[name] = []
        data.on_nat_event = self._nat_event
        self.flows: list[FleetFlow] = []
        self._by_sender: dict[tuple[str, Hashable], list[FleetFlow]] = {}
        self._by_node: dict[str, list[FleetFlow]] = {}
        """Node -> the flows it sends or receives."""
        self._inside: dict[str, list[NatBox]] | None = None
        self._by_spi: dict[bytes, list[FleetFlow]] = {}
        """Outbound SPI -> the flows whose sender sends with it now."""
        self._sending: dict[int, bytes] = {}
        self._ever_spi: dict[bytes, list[FleetFlow]] = {}
        """Outbound SPI -> the flows whose sender sent with it (for ``last_in``)."""
        self._breaks: dict[str, list[float]] = {}
        """Connection -> its NAT events' instants (shared by its flows)."""
        self._pending: dict[int, float] = {}
        """Flow code -> the send time of its probe scheduled and not yet run."""
        self._offsets: dict[tuple[str, str, str], float | None] = {}
        self._slow: set[int] = set()
        self._rows: IntervalRows | None = None
        self.memo: dict[object, object] = {}
        """What the traffic tables computed from the rows once (``IntervalSource.memo``)."""
        self._owners = sim.topology.owners
        self._live = Walker(paths, self.sads, self.nats, math.inf, live=True)
        self.limits = FleetLimits(self)
        """CHILD_SA volume lifetimes (``ikesim.sim.fleet_limits``)."""
        """Walks packets during the run (the receiver's installed SAs) and keeps the routes (``Walker.hop``)."""
        self.log.fleet = self

    # --- building ------------------------------------------------------------------------------

    def add_flow(self, spec: FlowSpec, *, policy: Policy, trap: str | None = None) -> FleetFlow:
        """Add one flow direction (not started); ConfigError for what fleet mode does not model."""
        flow = spec.flow
        if flow.pattern == "request_response":
            raise ConfigError("data_plane mode fleet: pattern request_response answers each delivered request; "
                              "use mode: packet")
        if spec.queue > 0:
            raise ConfigError("data_plane mode fleet: queue holds packets while there is no SA; use mode: packet")
        code = self.log.add_flow(flow)
        if len(spec.sizes.values) == 1:
            self.limits.sizes[code] = spec.sizes.values[0]
        seed = self.data.rng.child("fleet", str(flow.flow), flow.direction)
        f = FleetFlow(code, flow, policy, ConstantTimes(spec.start, spec.rate, spec.stop), spec.start, spec.stop,
                      seed, trap=trap)
        if flow.pattern == "poisson":
            f.times = PoissonTimes(spec.start, spec.rate, spec.stop, f.gen)
        elif flow.pattern == "onoff":
            f.times = OnOffTimes(spec.start, spec.rate, spec.stop, spec.on, spec.off, f.gen)
        f.breaks = self._breaks.setdefault(flow.connection, [])
        self.flows.append(f)
        self._by_sender.setdefault((flow.sender, policy), []).append(f)
        self._by_node.setdefault(flow.sender, []).append(f)
        self._by_node.setdefault(flow.receiver, []).append(f)
        idle = math.inf
        for box in self._nats_of(flow.sender):
            self._behind[box.name].append(f)
            idle = min(idle, box.idle_timeout)
        if flow.pattern == "constant" and 1.0 / spec.rate > idle:
            self._slow.add(code)  # every packet may find its NAT mapping expired: each is probed
        return f

    def walker_now(self) -> Walker:
        """The walker of the run (the receivers' installed SAs, no end)."""
        self._live.duration = math.inf
        return self._live

    def flows_of(self, node: str, policy: Hashable) -> list[FleetFlow]:
        """The flow directions *node* sends through *policy*."""
        return self._by_sender.get((node, policy), [])

    def ever_sent_with(self, spi: bytes) -> list[FleetFlow]:
        """The flow directions whose sender has sent with the outbound SA *spi* so far."""
        return self._ever_spi.get(spi, [])

    def last_in(self, node: str, spi: bytes) -> float | None:
        """When a packet last arrived on *node*'s inbound SA *spi* by now (the use stats a daemon's DPD asks for,
        per-packet mode's ``NodeDataPlane.last_in``): the last delivered packet of a flow sending with *spi*."""
        now, best = self.env.now, None
        walker = self._live
        walker.duration = math.nextafter(now, math.inf)
        for f in self._ever_spi.get(spi, ()):
            if f.flow.receiver != node:
                continue
            log = self.sads[f.flow.sender].outbound_log.get(f.policy)
            if log is None:
                continue
            code = int.from_bytes(spi, "big")
            for i in range(len(log) - 1, -1, -1):
                if log.spi[i] != code or log.expired[i] or log.at[i] > now:
                    continue
                until = min(log.at[i + 1] if i + 1 < len(log) else math.inf, now, f.stop)
                t = max(log.at[i], f.start)
                while t < until:  # the segment's pieces, forward; the last delivered arrival by now counts
                    out = walker.walk(f.flow.sender, self.addresses[log.src[i]], self.addresses[log.dst[i]], code, t)
                    end = min(until, out.nxt) if out.nxt > t else math.nextafter(t, math.inf)
                    if out.fate == DELIVERED:
                        last = f.times.last_at_or_before(min(now - out.offset, math.nextafter(end, -math.inf)))
                        if last is not None and last >= t and out.arrival(last) > now:  # rounding: one earlier
                            last = f.times.last_at_or_before(math.nextafter(last, -math.inf))
                        if last is not None and last >= t and (best is None or out.arrival(last) > best):
                            best = out.arrival(last)
                    t = end
                if best is not None:
                    break
        return best

    def _nats_of(self, node: str) -> list[NatBox]:
        """The NATs *node* is inside of."""
        if self._inside is None:
            self._inside = {}
            for box in self.paths.boxes.values():
                if isinstance(box, NatBox):
                    for ip in box.inside:
                        owner = self._owners.get(ip)
                        if owner is not None:
                            self._inside.setdefault(owner, []).append(box)
        return self._inside.get(node, [])

    def start(self) -> None:
        """Schedule each flow's first check, and a check of every flow at the end of each link down period."""
        for f in self.flows:
            self._at(f.start, lambda f=f: self._check(f, self.env.now))
        ends = sorted({u for link in self.paths.links.values() for _f, u in link.down})
        for u in ends:
            self._at(u, self._check_all)

    def _at(self, t: float, call: Callable[[], None]) -> None:
        self.env.timeout(max(0.0, t - self.env.now)).callbacks.append(lambda _ev: call())

    def _check_all(self) -> None:
        now = self.env.now
        for f in self.flows:
            self._check(f, now)

    # --- the results -----------------------------------------------------------------------------

    def intervals(self, duration: float) -> IntervalRows:
        """The interval rows of the run (``ikesim.sim.fleet_eval``; computed once)."""
        if self._rows is None or self.memo.get("duration") != duration:
            self._rows = evaluate(self.flows, self.sads, self.paths, self.nats, self.addresses, duration)
            self.memo = {"duration": duration}
            for f in self.flows:
                if f.times.exact:
                    f.gen_ = None  # drawn from only while evaluating
        return self._rows

    def model(self, flow: int) -> PacketTimes:
        """Flow code *flow*'s send times."""
        return self.flows[flow].times

    # --- SadWatcher --------------------------------------------------------------------------------

    def outbound_changed(self, node: str, policy: Hashable, now: float) -> None:
        """The sender's SA or addresses changed: its next packet may need a probe."""
        out = self.sads[node].outbound(policy)
        spi = out.spi if out is not None else None
        for f in self._by_sender.get((node, policy), ()):
            old = self._sending.get(f.code)
            if old != spi:
                if old is not None:
                    self._by_spi[old].remove(f)
                    if not self._by_spi[old]:
                        del self._by_spi[old]
                if spi is not None:
                    self._by_spi.setdefault(spi, []).append(f)
                    self._sending[f.code] = spi
                    self._ever_spi.setdefault(spi, []).append(f)
                else:
                    self._sending.pop(f.code, None)
            self._check(f, now)
        self.limits.outbound_changed(node, policy, now)

    def inbound_changed(self, node: str, spi: bytes, now: float) -> None:
        """The receiver installed SA *spi* or expects its packets from another peer: the flows sending with it may
        need a probe."""
        for f in self._by_spi.get(spi, ()):
            self._check(f, now)
        self.limits.inbound_changed(node, spi, now)

    def _nat_event(self, box: str, kind: str, inside: set[str | None], now: float) -> None:
        """A NAT rebound or rebooted: pieces start anew there; the next packets through it may need a probe."""
        flows = {f.code: f for node in inside if node is not None for f in self._by_node.get(node, ())}
        for f in flows.values():
            if f.flow.sender in inside or f.flow.receiver in inside:
                if not f.breaks or f.breaks[-1] != now:
                    f.breaks.append(now)
                self._check(f, now)

    # --- NatDataHook -------------------------------------------------------------------------------

    def noted(self, box: NatBox, kind: str, old: str, new: str, at: float) -> None:
        """A mapping of *box* changed: its history (which public port led where, when)."""
        self.nats[box.name].noted(box, kind, old, new, at)
        if new and self.limits.counting_inbound():  # a mapping may deliver packets sooner than projected
            for ip in box.inside:
                node = self._owners.get(ip)
                for f in self._by_node.get(node, ()) if node is not None else ():
                    out = self.sads[f.flow.sender].outbound(f.policy) if f.flow.receiver == node else None
                    if out is not None:
                        self.limits.replan_in(node, out.spi, at)  # type: ignore[arg-type]

    def last_used(self, box: NatBox, m: Mapping, now: float) -> float | None:
        """The last instant at or before *now* a packet of a flow from inside left through *m* (None: none did)."""
        best: float | None = None
        for f in self._behind.get(box.name, ()):
            t = self._last_through(f, box, m, now)
            if t is not None and (best is None or t > best):
                best = t
        return best

    def _last_through(self, f: FleetFlow, box: NatBox, m: Mapping, now: float) -> float | None:
        """Walk *f*'s sender timeline back from *now* to its last packet through mapping *m* (see ``last_used``)."""
        sad = self.sads.get(f.flow.sender)
        log = sad.outbound_log.get(f.policy) if sad is not None else None
        if log is None:
            return None
        addresses = self.addresses
        for i in range(len(log) - 1, -1, -1):
            until = log.at[i + 1] if i + 1 < len(log) else math.inf
            if log.spi[i] < 0 or log.expired[i] or addresses[log.src[i]] != m.inside:
                continue
            dst = addresses[log.dst[i]]
            if m.remote is not None and (m.remote.ip != dst.ip or m.remote.port not in (0, dst.port)):
                continue
            off = self._offset(f.flow.sender, dst.ip, box.name)
            if off is None:
                continue
            if until + off <= m.last_used:
                return None  # older packets cannot be later than the mapping's own last use
            x = now - off
            if log.at[i] > x:
                continue
            hi = x if x < until else math.nextafter(until, -math.inf)
            t = f.times.last_at_or_before(hi)
            if t is not None and t >= log.at[i]:
                return t + off
        return None

    def _offset(self, sender: str, dst_ip: str, box: str) -> float | None:
        """Seconds from *sender* to *box* on the way to *dst_ip* (None: not on it)."""
        key = (sender, dst_ip, box)
        if key not in self._offsets:
            here, off, found = sender, 0.0, None
            for _ in range(_MAX_HOPS):
                step = self._live.hop(here, dst_ip)
                if step is None:
                    break
                here, off = step[0], off + step[1].delay
                if here == box:
                    found = off
                    break
            self._offsets[key] = found
        return self._offsets[key]

    # --- deciding to probe ------------------------------------------------------------------------

    def _check(self, f: FleetFlow, now: float) -> None:
        """Probe *f*'s next packet if it could change anything outside the data plane (see the module docstring)."""
        if f.code in self._slow or self._wants_probe(f, now):
            pending = self._pending.get(f.code)
            if pending is not None and pending >= now:
                return
            t = f.times.next_at_or_after(max(now, f.start))
            if t is None or t >= f.stop:
                return
            self._pending[f.code] = t
            self._at(t, lambda: self._send(f, t))

    def _wants_probe(self, f: FleetFlow, now: float) -> bool:
        """Whether the next packet, as things stand now, creates a NAT mapping, moves the receiver's peer or traps."""
        out = self.sads[f.flow.sender].outbound(f.policy)
        if out is None:
            return f.trap is not None
        if out.expired:
            return False
        src, dst, here, hop = out.src, out.dst, f.flow.sender, self._live.hop
        for _ in range(_MAX_HOPS):
            step = hop(here, dst.ip)
            if step is None:
                return False
            here, link, box, owns = step
            if link.down and any(lo <= now < hi for lo, hi in link.down):
                return False  # probed again when it is up
            if box is not None and box.drop_udp and (dst.port in box.drop_udp or src.port in box.drop_udp):
                return False
            if not owns:
                if isinstance(box, NatBox) and src.ip in box.inside:
                    port = box.peek_outbound(src, dst, now)
                    if port is None:
                        return True  # this packet creates the mapping
                    src = Address(box.public, port)
                continue
            if box is not None:
                inside = box.resolve(dst.port, now) if isinstance(box, NatBox) else None
                if inside is None:
                    return False
                dst = inside
                continue
            sad = self.sads.get(here)
            sa = sad.inbound(out.spi) if sad is not None else None
            if sa is None or sa.expired:
                return False
            return _moves(sa.peer, src, dst)
        return False

    # --- a probed packet ---------------------------------------------------------------------------

    def _send(self, f: FleetFlow, t: float) -> None:
        """The probed packet leaves its sender (per-packet mode's ``FlowSender._protect``, without ESP)."""
        if self._pending.get(f.code) == t:
            del self._pending[f.code]
        now = self.env.now
        sender = f.flow.sender
        out = self.sads[sender].outbound(f.policy)
        if out is None:
            if f.trap is not None:
                self.data.planes[sender].acquire(f.trap, now)
                self._again(f, now)
            return
        if f.code in self._slow:
            self._again(f, now)
        if not out.expired:
            self._hop(f, sender, out.src, out.dst, out.spi)

    def _again(self, f: FleetFlow, now: float) -> None:
        """Probe the packet after this one too."""
        t = f.times.next_at_or_after(math.nextafter(now, math.inf))
        if t is not None and t < f.stop and self._pending.get(f.code) is None:
            self._pending[f.code] = t
            self._at(t, lambda: self._send(f, t))

    def _hop(self, f: FleetFlow, here: str, src: Address, dst: Address, spi: bytes) -> None:
        """Put the probed packet on the next link (``Simulation._forward``, ``Link.put``: down, then the delay)."""
        step = self._live.hop(here, dst.ip)
        if step is None:
            return
        node, link, box, owns = step
        now = self.env.now
        if link.down and any(lo <= now < hi for lo, hi in link.down):
            return
        self.env.timeout(link.delay).callbacks.append(lambda _ev: self._arrive(f, node, box, owns, src, dst, spi))

    def _arrive(self, f: FleetFlow, node: str, box: Router | None, owns: bool, src: Address, dst: Address,
                spi: bytes) -> None:
        """The probed packet reaches *node*, which has *box* and owns the destination or not (``Simulation._arrive``;
        then ``EspDataPlane.unprotect``'s peer check)."""
        now = self.env.now
        sd = SimDatagram(0, src, dst, b"")
        if box is not None and box.refuses(sd):
            return
        if not owns:
            if isinstance(box, NatBox) and src.ip in box.inside:
                src = box.outbound(sd, now).src
            self._hop(f, node, src, dst, spi)
            return
        if box is not None:
            inside = box.inbound(sd, now) if isinstance(box, NatBox) else None
            if inside is not None:
                self._hop(f, node, src, inside.dst, spi)
            return
        sad = self.sads.get(node)
        sa = sad.inbound(spi) if sad is not None else None
        if sad is None or sa is None or sa.expired or not _moves(sa.peer, src, dst):
            return
        sad.queue_event(EspPeerMoved(sa.spi, sa.peer, src))  # type: ignore[arg-type]
        sa.peer = src
        self.data.planes[node].tell_daemon(now)


def _moves(peer: Address | None, src: Address, dst: Address) -> bool:
    """RFC 3948 §3 (``EspDataPlane.unprotect``): UDP-encapsulated ESP from another address than the SA's peer."""
    return dst.port != 0 and peer is not None and src != peer and peer.port != 0
