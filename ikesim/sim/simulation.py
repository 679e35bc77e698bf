"""A ``Simulation``: one SimPy environment, nodes, links, scripted actions and a collector.

No globals: two simulations can run in one process. Randomness comes from
``Rng(seed, "run<n>")`` split into named streams per node and per link
direction, so adding a node does not shift another's draws.

A multi-homed host (``add_interface``) sends through the interface owning a datagram's source address and
receives through the interface carrying its destination (``ikesim.sim.mobility``); its daemon hears of its
usable addresses (``IkeDaemon.set_local_addresses``) when the run starts and after every change.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

import simpy

from ikesim.crypto.meter import OpCounter
from ikesim.errors import ConfigError
from ikesim.ike.config import DaemonConfig
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.events import IkeSaMoved, NatTraversalStarted
from ikesim.metrics.recorder import InterfaceChanged
from ikesim.metrics.results import Results
from ikesim.metrics.trace import Trace, TraceLevel
from ikesim.rng import Rng
from ikesim.sim.actions import ACTIONS, PINS, ScheduledAction, run_action
from ikesim.sim.cluster import Cluster, ClusterConfig
from ikesim.sim.cluster_setup import add_cluster, cluster_event
from ikesim.sim.cpu import CpuModel
from ikesim.sim.data_network import DataNetwork
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.faults import FaultInjector, FaultRule
from ikesim.sim.ha_link import SyncLinkConfig
from ikesim.sim.invariants import InvariantChecker
from ikesim.sim.keepalive import KeepaliveSender
from ikesim.sim.link import Link
from ikesim.sim.linkmodels import Bernoulli, Delay, Fixed, LossModel, as_delay, as_loss
from ikesim.sim.mobility import INTERFACE_DOWN, Interface, Interfaces, Step, delay_until, movement
from ikesim.sim.nat import KeepaliveStream, NatBox, Router
from ikesim.sim.node import Node
from ikesim.sim.topology import Topology
from ikesim.types import Address, Datagram

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["Simulation", "ACTIONS", "PINS"]

_GC_GEN0 = 50_000
"""Allocations between young-generation collections while a run advances (CPython's default is 700)."""


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Keep the collector off what a run built: freeze it, collect the young generation less often, undo after.

    Configuration, daemons, links and boxes live as long as the run and are never garbage; frozen, the
    collector stops walking them on every collection (``gc.freeze``). Per-message objects are freed by
    reference counting, so fewer young collections find the same garbage. Both are undone when the run
    stops advancing, so frozen objects become collectable again once the simulation is dropped.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], _GC_GEN0), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()

@dataclass(frozen=True, slots=True)
class _Calls:
    """The callbacks a Simulation hands to its nodes, links, boxes and timeouts, bound once."""

    send: Callable[[str, Datagram], None]
    start_keepalives: Callable[[Node, NatTraversalStarted | IkeSaMoved], None]
    arrive: Callable[[str, SimDatagram], None]
    copy: Callable[[str, SimDatagram], SimDatagram]
    record: Callable[..., None]
    keepalive: Callable[[Address], KeepaliveStream | None]
    do: Callable[[simpy.Event], None]
    nat_event: Callable[[simpy.Event], None]


_M = TypeVar("_M")

_NO_PORTS: frozenset[int] = frozenset()
"""The firewall ports of a box that drops nothing (one shared empty set)."""


_FEW = 8
"""Up to this many addresses a tuple is searched as fast as a frozenset is hashed."""


def _addresses(ips: Sequence[str]) -> Collection[str]:
    """*ips* to test membership in: a tuple for a few (a fleet's NATs: a quarter of a frozenset's size), else a frozenset."""
    return tuple(dict.fromkeys(ips)) if len(ips) <= _FEW else frozenset(ips)


def _child_spis(daemon: IkeDaemon) -> dict[str, list[str]]:
    """The CHILD_SAs *daemon* holds: inbound SPIs (rekeyed ones still lingering too) and the ones it sends with (§2.8)."""
    held = daemon.children.values()
    return {"in": sorted(c.spi_in.hex() for c in held), "out": sorted(c.spi_out.hex() for c in held if c.outbound)}


class Simulation:
    """A network of IKE nodes on virtual time."""

    def __init__(self, *, seed: int, run: int = 0, name: str = "sim", capture: bool = True,
                 invariants: bool = True, settle: float = 10.0, warmup: float = 0.0,
                 trace: TraceLevel | Trace = "full") -> None:
        self.seed = int(seed)
        self.warmup = float(warmup)
        """Seconds at the start that the summary's CPU figures leave out (a connection storm, say)."""
        self.run_number = int(run)
        self.name = name
        self.capture = capture
        self.env = simpy.Environment()
        self.rng = Rng(self.seed, f"run{self.run_number}")
        self.collector = trace if isinstance(trace, Trace) else Trace(trace)
        """Where nodes, links and boxes record what happened (``ikesim.metrics.trace``; *trace*: its level, or a Trace)."""
        self.topology = Topology()
        self.nodes: dict[str, Node] = {}
        self._links: dict[tuple[str, str], Link] = {}
        self._next_id = 0
        self._ran = False
        self.checker: InvariantChecker | None = InvariantChecker(self, settle=settle) if invariants else None
        """Watches every tunnel for states no correct pair of peers may reach (``ikesim.sim.invariants``)."""
        self.faults: FaultInjector | None = None
        """Scripted faults (``add_faults``); None = every datagram goes straight to its link."""
        self.boxes: dict[str, Router] = {}
        """Routers and NAT boxes (``add_router``, ``add_nat``): forwarding nodes without an IKE daemon."""
        self.keepalives: dict[Address, KeepaliveStream] = {}
        """Inside endpoint -> its analytic NAT keepalive stream (RFC 3948 §2.3, ``ikesim.sim.nat``)."""
        self.keepalive_datagrams = True
        """NAT keepalives as datagrams (``ikesim.sim.keepalive``); False: the analytic streams of ``keepalives``."""
        self.keepalive_senders: dict[Address, KeepaliveSender] = {}
        """Inside endpoint -> its keepalive sender (with ``keepalive_datagrams``)."""
        self.last_out: dict[tuple[Address, Address], float] = {}
        """(src, dst) -> when a datagram last went between them: what a keepalive sender waits on."""
        # One bound method each, shared by every node, link and box (a fleet would make thousands).
        self._calls = _Calls(self._send, self._start_keepalives, self._arrive, self.copy_datagram,
                             self.collector.record, self.keepalives.get, self._do_scheduled,
                             self._do_nat_event)
        self._models: dict[object, object] = {}
        """Delay and loss configs by value: equal ones (a fleet's access links) are one shared frozen object."""
        self.data: DataNetwork | None = None
        """The per-packet data plane (``enable_data_plane``): None = no ESP, no traffic."""
        self.interfaces = Interfaces()
        """The interfaces of multi-homed hosts (``add_interface``, ``ikesim.sim.mobility``)."""
        self._announced: set[str] = set()
        """Multi-homed hosts whose daemon was told its usable addresses (from the start of the run on)."""
        self.clusters: dict[str, Cluster] = {}
        """HA gateway clusters by name (``add_cluster``, ``ikesim.sim.cluster``)."""
        self.cluster_of: dict[str, Cluster] = {}
        """Member node -> its cluster."""

    @property
    def graph(self) -> nx.DiGraph:
        """The links as a networkx graph (the topology's own: routes are computed on it), each edge's cost as ``delay``."""
        return self.topology.graph

    # --- building -------------------------------------------------------------------

    def add_node(self, config: DaemonConfig, *, cpu: CpuModel | None = None, vertex: bool = True) -> Node:
        """Add a host running an IkeDaemon configured by *config*; with *cpu* its work takes CPU time. Without
        *vertex* it owns no address in the topology (a cluster member, ``add_cluster``)."""
        if config.name in self.nodes:
            raise ConfigError(f"duplicate node {config.name!r}")
        if vertex:
            self.topology.add_node(config.name, [addr.ip for addr in config.addresses])
        meter = OpCounter()
        daemon = IkeDaemon(config, rng=self.rng.child("node", config.name, "ike"), meter=meter)
        node = Node(self.env, daemon, meter, self.collector, self._calls.send)
        node.checker = self.checker
        node.on_natt = self._calls.start_keepalives
        node.cpu = cpu
        self.nodes[config.name] = node
        return node

    def add_link(
        self, a: str, b: str, *, delay: float | Delay = 0.0, jitter: float = 0.0, loss: float | LossModel = 0.0,
        mtu: int = 1500, reorder: bool = True, bandwidth: float | str | None = None,
        queue: int | str | tuple[int, str] | None = None, duplicate: float = 0.0,
        down: Sequence[tuple[float, float]] = (), drop_fragments: bool = False,
        cost: tuple[float, float] | None = None,
    ) -> None:
        """Connect nodes *a* and *b* in both directions, each with its own stream (``ikesim.sim.link`` for the options).

        Delay and jitter in seconds (delay may be a ``linkmodels`` distribution), loss a probability
        or a ``linkmodels`` loss model, bandwidth in bit/s (or ``"10Mbit"``), queue in packets (or ``"64KB"``),
        down a list of (from, until) seconds. Invalid values raise ValueError. *cost*: routing weights
        a->b and b->a (default: the mean delay both ways); unequal costs make asymmetric paths.
        """
        for n in (a, b):
            iface = self.interfaces.by_vertex.get(n)
            if n in self.interfaces.by_host:
                raise ConfigError(f"link {a}-{b}: {n!r} has interfaces: link one of them ({n}/<interface>)")
            if iface is not None and self.topology.graph.degree(n):
                raise ConfigError(f"link {a}-{b}: interface {n} already has its link")
            if n not in self.nodes and n not in self.boxes and n not in self.clusters and iface is None:
                raise ConfigError(f"link {a}-{b}: unknown node {n!r}")
        delay_model = self._shared(as_delay(delay))
        loss_model = self._shared(as_loss(loss))
        calls = self._calls
        for x, y in ((a, b), (b, a)):
            self._links[(x, y)] = Link(
                self.env, x, y, delay=delay_model, jitter=jitter, loss=loss_model, mtu=mtu,
                rng=self.rng, stream=("link", x, y), deliver=calls.arrive, collector=self.collector,
                reorder=reorder, bandwidth=bandwidth, queue=queue, duplicate=duplicate, down=down,
                drop_fragments=drop_fragments, copy=calls.copy,
            )
        mean = delay_model.mean
        self.topology.add_link(a, b, delay=mean, cost=cost[0] if cost else None, cost_back=cost[1] if cost else None)

    def add_interface(self, node: str, name: str, *, address: str, priority: int = 0, up: bool = True) -> Interface:
        """Give host *node* an interface *name* carrying its address *address* (lower *priority* = preferred);
        link it with ``add_link(f"{node}/{name}", ...)``. A host with interfaces has no links of its own."""
        if node not in self.nodes:
            raise ConfigError(f"interface {name!r}: unknown node {node!r}")
        if self.topology.graph.degree(node):
            raise ConfigError(f"interface {name!r}: {node!r} has links of its own (link its interfaces instead)")
        iface = Interface(node, name, address, int(priority), bool(up))
        if iface.vertex in self.interfaces.by_vertex:
            raise ConfigError(f"duplicate interface {name!r} on {node!r}")
        self.topology.add_interface(node, iface.vertex, address)
        self.interfaces.add(iface)
        self.collector.enable_handovers()  # the handovers table (``ikesim.metrics.handovers``)
        if node in self._announced:
            self._announce(node)
        return iface

    def set_interface(self, node: str, name: str, up: bool) -> None:
        """Bring *node*'s interface *name* up or down now: recorded (``InterfaceChanged``), then its daemon gets
        the usable addresses (``set_local_addresses``) and sends what it wants to; no change, nothing happens."""
        iface = self.interfaces.get(node, name)
        if iface.up == bool(up):
            return
        iface.up = bool(up)
        now = self.env.now
        self.collector.record(InterfaceChanged(node=node, interface=name, address=iface.address, up=iface.up),
                              now=now, node=node)
        if not iface.up and self.data is not None and any(
                sa.local.ip == iface.address for sa in self.nodes[node].daemon.sas.values()):
            # the tunnel's interface went: losses until every direction delivers again are this handover's
            log = self.data.log
            for connection in log.connections_at({node}):
                log.open_window(connection, "handover", f"{node}@{now:.6f}", now)
        if node in self._announced:
            self._announce(node)

    def interface_event(self, at: float, node: str, name: str, up: bool) -> None:
        """Bring *node*'s interface *name* up or down at *at* seconds (``set_interface``)."""
        self.interfaces.get(node, name)
        self.env.timeout(delay_until(self.env.now, at)).callbacks.append(lambda _ev: self.set_interface(node, name, up))

    def add_mobility(self, node: str, steps: Iterable[Step]) -> simpy.Process:
        """Move host *node*: a process applying *steps* (``ikesim.sim.mobility``: scripted, commuter, random_dwell)."""
        if node not in self.interfaces.by_host:
            raise ConfigError(f"mobility: {node!r} has no interfaces")
        return self.env.process(movement(self.env, steps, lambda name, up: self.set_interface(node, name, up)))

    def _announce(self, node: str) -> None:
        """Tell *node*'s daemon its usable addresses, best first (RFC 4555 §3.5), and send what it wants to."""
        self._announced.add(node)
        host = self.nodes[node]
        host.daemon.set_local_addresses(self.interfaces.usable(node), self.env.now)
        host.service()

    def _shared(self, model: _M) -> _M:
        """*model*, or an equal frozen config made before (``Fixed`` and ``Bernoulli``: stateless, safe to share)."""
        if isinstance(model, (Fixed, Bernoulli)):
            return self._models.setdefault(model, model)  # type: ignore[return-value]
        return model

    def add_router(self, name: str, *, addresses: Sequence[str] = (), drop_udp: Sequence[int] = ()) -> Router:
        """Add a forwarding node; ``drop_udp`` ports make it a firewall dropping UDP to or from them."""
        self._check_new(name)
        self.topology.add_node(name, list(addresses))
        box = Router(name, frozenset(drop_udp) if drop_udp else _NO_PORTS)
        self.boxes[name] = box
        return box

    def add_nat(self, name: str, *, public: str, inside: Sequence[str], kind: str = "endpoint_independent",
                idle_timeout: float = 120.0, drop_udp: Sequence[int] = ()) -> NatBox:
        """Add a NAT owning *public* in front of the hosts with the *inside* addresses (``ikesim.sim.nat``)."""
        self._check_new(name)
        self.topology.add_node(name, [public])
        try:
            box = NatBox(name, frozenset(drop_udp) if drop_udp else _NO_PORTS, public=public, kind=kind,
                         idle_timeout=float(idle_timeout), inside=_addresses(inside), rng=self.rng.child("nat", name),
                         record=self._calls.record, keepalive=self._calls.keepalive)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.boxes[name] = box
        return box

    def nat_event(self, at: float, nat: str, kind: str) -> None:
        """Rebind (every mapping gets a new public port) or reboot (every mapping is forgotten) *nat* at *at*."""
        box = self.boxes.get(nat)
        if not isinstance(box, NatBox):
            raise ConfigError(f"{kind}: unknown NAT {nat!r}")
        if kind not in ("rebind", "reboot"):
            raise ConfigError(f"unknown NAT event {kind!r} (rebind or reboot)")
        action = box.rebind if kind == "rebind" else box.reboot
        self.env.timeout(max(0.0, at - self.env.now), action).callbacks.append(self._calls.nat_event)

    def resolve(self, address: Address) -> str | None:
        """The node that receives datagrams sent to *address* now (through a NAT's mapping), or None."""
        owner = self.topology.owner(address.ip)
        box = self.boxes.get(owner) if owner is not None else None
        if isinstance(box, NatBox):
            inside = box.resolve(address.port, self.env.now)
            return self.topology.owner(inside.ip) if inside is not None else None
        return owner

    def _check_new(self, name: str) -> None:
        if name in self.nodes or name in self.boxes:
            raise ConfigError(f"duplicate node {name!r}")

    def _start_keepalives(self, node: Node, e: NatTraversalStarted | IkeSaMoved) -> None:
        """An IKE_SA of *node* floated to 4500 (or moved, RFC 4555 §3.5): if *node* is behind a NAT, keepalives from
        its local endpoint start (RFC 3948 §2.3)."""
        sa = node.daemon.sas.get(e.spi_i) or node.daemon.sas.get(e.spi_r)
        if sa is None or not sa.nat_local or e.local in self.keepalives:
            return
        interval = sa.profile.connection.ike.nat_keepalive
        if interval <= 0:
            return
        if not self.keepalive_datagrams:
            self.keepalives[e.local] = KeepaliveStream(self.env.now, interval)
            return
        sender = self.keepalive_senders.get(e.local)
        if sender is None:
            sender = self.keepalive_senders[e.local] = KeepaliveSender(self.env, node, e.local, interval, self._calls.send,
                                                                       self.last_out)
        sender.start()

    def enable_data_plane(self, *, replay_window: int = 32, capture_per_sa: int = 20) -> DataNetwork:
        """Give every node an ESP data plane following its daemon (``ikesim.sim.data_network``); call after adding nodes."""
        if self.data is None:
            log = self.collector.enable_traffic(capture_per_sa=capture_per_sa)
            self.data = DataNetwork(self.env, self.rng.child("data"), log, replay_window=replay_window,
                                    forward=self._forward, capture=self.capture)
            if self.keepalive_datagrams:
                self.data.last_out = self.last_out
            for node in self.nodes.values():
                self.data.attach(node)
            for cluster in self.clusters.values():
                cluster.attach_data(self.data)
        return self.data

    def add_cluster(self, config: DaemonConfig, members: Sequence[str], *, cluster: ClusterConfig | None = None,
                    sync_link: SyncLinkConfig | None = None, cpu: CpuModel | None = None) -> Cluster:
        """An HA gateway: *members* share ``config``'s addresses under its name (``ikesim.sim.cluster``)."""
        return add_cluster(self, config, members, cluster=cluster or ClusterConfig(),
                           sync_link=sync_link or SyncLinkConfig(), cpu=cpu)

    def cluster_event(self, at: float, cluster: str, kind: str, *, member: str = "", duration: float = 0.0) -> None:
        """A cluster failure or repair at *at* s (``ikesim.sim.cluster_setup.cluster_event``)."""
        cluster_event(self, at, cluster, kind, member=member, duration=duration)

    def add_faults(self, rules: Sequence[FaultRule]) -> None:
        """Apply scripted fault *rules* to every datagram sent from now on (after all nodes are added)."""
        if self.faults is not None:
            raise ConfigError("fault rules were already added")
        try:
            self.faults = FaultInjector(self, rules)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def schedule(
        self, at: float, node: str, action: str, *, connection: str | None = None, child: str | None = None,
        value: bytes = b"", spi: bytes = b"", ordinal: int | None = None,
    ) -> None:
        """Run *action* on *node* at simulated time *at* (seconds); pin actions queue *value* (a prefix); *spi* or
        *ordinal* choose the SA it acts on (``ikesim.sim.actions``)."""
        if action not in ACTIONS:
            raise ConfigError(f"unknown action {action!r} (expected one of {', '.join(ACTIONS)})")
        if node not in self.nodes:
            raise ConfigError(f"action {action!r}: unknown node {node!r}")
        if (action in PINS) != bool(value):
            raise ConfigError(f"action {action!r}: {'needs' if action in PINS else 'takes no'} value")
        a = ScheduledAction(float(at), node, action, connection, child, bytes(value), bytes(spi), ordinal)
        if action == "restart":
            self.collector.enable_restarts()  # the restarts table (``ikesim.metrics.restarts``)
        self.env.timeout(max(0.0, a.at - self.env.now), a).callbacks.append(self._calls.do)

    # --- running --------------------------------------------------------------------

    def run(self, until: float, *, on_progress: Callable[[float, float, int], None] | None = None) -> Results:
        """Run to *until* simulated seconds and return the results (``advance`` for *on_progress*)."""
        self.advance(until, on_progress=on_progress)
        return self.results(duration=float(until))

    def results(self, *, duration: float | None = None) -> Results:
        """The results so far, as if the run lasted *duration* seconds (default: until now)."""
        duration = self.env.now if duration is None else float(duration)
        ops: dict[str, int] = {}
        for node in self.nodes.values():
            for k, v in node.meter.counts.items():
                ops[k] = ops.get(k, 0) + v
        return Results(
            self.collector, name=self.name, seed=self.seed, run=self.run_number, duration=duration,
            owners=dict(self.topology.owners), nodes=list(self.nodes), crypto_ops=dict(sorted(ops.items())),
            keepalives=sum(k.count(duration) for k in self.keepalives.values())
            + sum(k.sent for k in self.keepalive_senders.values()),
            fragmented=len(set().union(*(link.fragmented for link in self._links.values()))),
            cores={n: node.cpu.cores for n, node in self.nodes.items() if node.cpu is not None}, warmup=self.warmup,
            installed=None if self.collector.level == "summary" else {n: _child_spis(node.daemon)
                                                                        for n, node in self.nodes.items()},
        )

    def advance(self, until: float, *, on_progress: Callable[[float, float, int], None] | None = None,
                ticks: int = 1000) -> None:
        """Run to *until* simulated seconds without building results (benchmarks time the two apart).

        *on_progress* is called with (now, until, events recorded so far) *ticks* times, evenly spaced in
        simulated time, and once at the end. Its ticks only read: the run is the same with or without it.
        """
        if until <= self.env.now:
            raise ValueError(f"until={until} is not after now={self.env.now}")
        if on_progress is not None:
            interval = (until - self.env.now) / ticks

            def tick(_ev: object) -> None:
                on_progress(self.env.now, until, self.collector.recorded)
                if self.env.now + interval < until:
                    self.env.timeout(interval).callbacks.append(tick)

            self.env.timeout(interval).callbacks.append(tick)
        for node in self.interfaces.by_host:
            if node not in self._announced:
                self._announce(node)
        with _quiet_gc():
            self.env.run(until=until)
        if on_progress is not None:
            on_progress(self.env.now, until, self.collector.recorded)
        for box in self.boxes.values():
            if isinstance(box, NatBox):
                box.sweep(self.env.now)  # note the mappings that expired unnoticed
        self._ran = True

    # --- internals ------------------------------------------------------------------

    def _do_scheduled(self, event: simpy.Event) -> None:
        """A scheduled action's timeout fired (its value: the action)."""
        self._do(cast(ScheduledAction, event.value))

    def _do_nat_event(self, event: simpy.Event) -> None:
        """A NAT event's timeout fired (its value: the box's ``rebind`` or ``reboot``)."""
        action = cast(Callable[[float], None], event.value)
        action(self.env.now)
        if self.data is not None:
            box = cast(NatBox, action.__self__)
            inside = {self.topology.owner(ip) for ip in box.inside}
            self.data.nat_event(box.name, f"nat_{action.__name__}", inside, self.env.now)

    def _do(self, a: ScheduledAction) -> None:
        run_action(self, a)

    def _send(self, node: str, d: Datagram) -> None:
        if self.keepalive_datagrams:
            self.last_out[(d.src, d.dst)] = self.env.now
        self._next_id += 1
        sd = SimDatagram(self._next_id, d.src, d.dst, d.data)
        self.collector.record_sent(sd.id, self.env.now, node, d.src, d.dst, d.data)
        if self.checker is not None:
            self.checker.on_send(node, d)
        if self.faults is not None:
            self.faults.on_send(node, sd, self._forward)
        else:
            self._forward(node, sd)

    def send_datagram(self, node: str, d: Datagram) -> None:
        """Put *d* on the network now as *node* sends it (the way its daemon's datagrams go: recorded, faults, links)."""
        if node not in self.nodes:
            raise ConfigError(f"send_datagram: unknown node {node!r}")
        self._send(node, d)

    def copy_datagram(self, node: str, sd: SimDatagram) -> SimDatagram:
        """A duplicate of *sd* as a new datagram sent by *node* now (a fault's copy: counted as sent)."""
        if sd.id < 0:
            assert self.data is not None  # only the data plane sends negative ids
            return self.data.copy(sd)
        self._next_id += 1
        copy = SimDatagram(self._next_id, sd.src, sd.dst, sd.data)
        self.collector.record_sent(copy.id, self.env.now, node, sd.src, sd.dst, sd.data)
        return copy

    def _forward(self, here: str, sd: SimDatagram) -> None:
        cluster = self.cluster_of.get(here) if self.cluster_of else None
        if cluster is not None:  # a cluster member sends from the cluster's vertex, if it runs
            if not cluster.is_up(here):
                self.collector.record_fate(sd.id, "member_down", self.env.now, here)
                return
            here = cluster.name
        homes = self.interfaces.by_host
        if homes and here in homes:  # a multi-homed host: out through the interface owning the source address
            iface = self.interfaces.source(here, sd.src.ip)
            if iface is None or not iface.up:
                fate, where = ("no_route", here) if iface is None else (INTERFACE_DOWN, iface.vertex)
                self.collector.record_fate(sd.id, fate, self.env.now, where)
                return
            here = iface.vertex
        dst_node = self.topology.vertex(sd.dst.ip)
        hop = self.topology.next_hop(here, dst_node) if dst_node is not None else None
        if hop is None:
            self.collector.record_fate(sd.id, "no_route", self.env.now, here)
            return
        self._links[(here, hop)].put(sd)

    def _arrive(self, node: str, sd: SimDatagram) -> None:
        if self.clusters and node in self.clusters and self.topology.vertex(sd.dst.ip) == node:
            self.clusters[node].deliver(sd, self._arrive_member, self._no_owner)
            return
        if self.topology.vertex(sd.dst.ip) != node:
            box = self.boxes.get(node)
            if box is not None:
                if box.refuses(sd):
                    self.collector.record_fate(sd.id, "firewall", self.env.now, node)
                    return
                if isinstance(box, NatBox) and sd.src.ip in box.inside:
                    sd = box.outbound(sd, self.env.now)
            self._forward(node, sd)
            return
        box = self.boxes.get(node)
        if box is not None:
            if box.refuses(sd):
                self.collector.record_fate(sd.id, "firewall", self.env.now, node)
                return
            inside = box.inbound(sd, self.env.now) if isinstance(box, NatBox) else None
            if inside is None:
                fate = "nat_no_mapping" if isinstance(box, NatBox) else "no_route"
                self.collector.record_fate(sd.id, fate, self.env.now, node)
                return
            self._forward(node, inside)
            return
        iface = self.interfaces.by_vertex.get(node)
        if iface is not None:  # an interface of a multi-homed host: the host receives, if the interface is up
            if not iface.up:
                self.collector.record_fate(sd.id, INTERFACE_DOWN, self.env.now, node)
                return
            node = iface.host
        if sd.id < 0:
            assert self.data is not None  # only the data plane sends negative ids
            self.data.arrive(node, sd)
            return
        self.collector.record_fate(sd.id, "delivered", self.env.now, node)
        if self.faults is not None:
            self.faults.on_delivered(sd, self._forward)
        self.nodes[node].receive(sd.data, sd.src, sd.dst)

    def _arrive_member(self, member: str, sd: SimDatagram, first: bool) -> None:
        """A datagram to a cluster's address handed to *member* (``Cluster.deliver``; *first*: its fate is recorded)."""
        if sd.id < 0:
            assert self.data is not None  # only the data plane sends negative ids
            (self.data.arrive if first else self.data.arrive_copy)(member, sd)
            return
        if first:
            self.collector.record_fate(sd.id, "delivered", self.env.now, member)
        if first and self.faults is not None:
            self.faults.on_delivered(sd, self._forward)
        self.nodes[member].receive(sd.data, sd.src, sd.dst)

    def _no_owner(self, sd: SimDatagram, fate: str) -> None:
        """No member holds the sender's segment (between a crash and the takeover)."""
        self.collector.record_fate(sd.id, fate, self.env.now, "")
