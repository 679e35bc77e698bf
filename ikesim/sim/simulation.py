"""A ``Simulation``: one SimPy environment, nodes, links, scripted actions and a collector.

No globals: two simulations can run in one process. Randomness comes from
``Rng(seed, "run<n>")`` split into named streams per node and per link
direction, so adding a node does not shift another's draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import simpy

from ikesim.crypto.meter import OpCounter
from ikesim.errors import ConfigError, LocalProtocolError
from ikesim.ike.config import DaemonConfig
from ikesim.ike.daemon import IkeDaemon
from ikesim.metrics.recorder import ActionExecuted, ActionSkipped, Collector
from ikesim.metrics.results import Results
from ikesim.rng import Rng
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.faults import FaultInjector, FaultRule
from ikesim.sim.invariants import InvariantChecker
from ikesim.sim.link import Link
from ikesim.sim.node import Node
from ikesim.sim.topology import Topology
from ikesim.types import Datagram

__all__ = ["Simulation", "ACTIONS", "PINS"]

ACTIONS = ("initiate", "rekey_child", "rekey_ike", "create_child", "delete_child", "delete_ike", "dpd",
           "pin_nonce", "pin_child_spi", "pin_ike_spi")

PINS = {"pin_nonce": "nonce", "pin_child_spi": "child_spi", "pin_ike_spi": "ike_spi"}
"""Pin actions -> the daemon's ``Rng.draw`` purpose they queue a value (a prefix) for."""


@dataclass(frozen=True, slots=True)
class _Action:
    at: float
    node: str
    action: str
    connection: str | None
    child: str | None
    value: bytes = b""


class Simulation:
    """A network of IKE nodes on virtual time."""

    def __init__(self, *, seed: int, run: int = 0, name: str = "sim", capture: bool = True,
                 invariants: bool = True, settle: float = 10.0) -> None:
        self.seed = int(seed)
        self.run_number = int(run)
        self.name = name
        self.capture = capture
        self.env = simpy.Environment()
        self.rng = Rng(self.seed, f"run{self.run_number}")
        self.collector = Collector()
        self.topology = Topology()
        self.graph: nx.Graph = self.topology.graph
        self.nodes: dict[str, Node] = {}
        self._links: dict[tuple[str, str], Link] = {}
        self._next_id = 0
        self._ran = False
        self.checker: InvariantChecker | None = InvariantChecker(self, settle=settle) if invariants else None
        """Watches every tunnel for states no correct pair of peers may reach (``ikesim.sim.invariants``)."""
        self.faults: FaultInjector | None = None
        """Scripted faults (``add_faults``); None = every datagram goes straight to its link."""

    # --- building -------------------------------------------------------------------

    def add_node(self, config: DaemonConfig) -> Node:
        """Add a host running an IkeDaemon configured by *config*."""
        if config.name in self.nodes:
            raise ConfigError(f"duplicate node {config.name!r}")
        self.topology.add_node(config.name, [addr.ip for addr in config.addresses])
        meter = OpCounter()
        daemon = IkeDaemon(config, rng=self.rng.child("node", config.name, "ike"), meter=meter)
        node = Node(self.env, daemon, meter, self.collector, self._send)
        node.checker = self.checker
        self.nodes[config.name] = node
        return node

    def add_link(
        self, a: str, b: str, *, delay: float = 0.0, jitter: float = 0.0, loss: float = 0.0, mtu: int = 1500
    ) -> None:
        """Connect nodes *a* and *b* in both directions (delay and jitter in seconds, loss a probability)."""
        for n in (a, b):
            if n not in self.nodes:
                raise ConfigError(f"link {a}-{b}: unknown node {n!r}")
        for x, y in ((a, b), (b, a)):
            self._links[(x, y)] = Link(
                self.env, x, y, delay=delay, jitter=jitter, loss=loss, mtu=mtu,
                rng=self.rng.child("link", x, y), deliver=self._arrive, collector=self.collector,
            )
        self.topology.add_link(a, b, delay=delay)

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
        value: bytes = b"",
    ) -> None:
        """Run *action* on *node* at simulated time *at* (seconds); pin actions queue *value* (a prefix)."""
        if action not in ACTIONS:
            raise ConfigError(f"unknown action {action!r} (expected one of {', '.join(ACTIONS)})")
        if node not in self.nodes:
            raise ConfigError(f"action {action!r}: unknown node {node!r}")
        if (action in PINS) != bool(value):
            raise ConfigError(f"action {action!r}: {'needs' if action in PINS else 'takes no'} value")
        a = _Action(float(at), node, action, connection, child, bytes(value))
        timeout = self.env.timeout(max(0.0, a.at - self.env.now))
        timeout.callbacks.append(lambda _ev: self._do(a))

    # --- running --------------------------------------------------------------------

    def run(self, until: float) -> Results:
        """Run to *until* simulated seconds and return the results."""
        if until <= self.env.now:
            raise ValueError(f"until={until} is not after now={self.env.now}")
        self.env.run(until=until)
        self._ran = True
        return Results.from_simulation(self, duration=float(until))

    # --- internals ------------------------------------------------------------------

    def _do(self, a: _Action) -> None:
        node = self.nodes[a.node]
        d = node.daemon
        now = self.env.now
        conn = a.connection or ""
        try:
            if a.action in PINS:
                d.rng.force(PINS[a.action], a.value)
                target = a.value.hex()
            elif a.action == "initiate":
                if a.connection is None:
                    raise LocalProtocolError("initiate needs a connection")
                spi = d.initiate(a.connection, now)
                target = spi.hex()
            elif a.action in ("rekey_child", "delete_child"):
                spis = d.child_sa_spis(a.connection)
                if a.child is not None:
                    spis = [s for s in spis if node.child_names.get(s) == a.child]
                if not spis:
                    raise LocalProtocolError(f"no installed CHILD_SA{f' {a.child!r}' if a.child else ''}")
                (d.rekey_child_sa if a.action == "rekey_child" else d.delete_child_sa)(spis[0], now)
                target = spis[0].hex()
            else:
                ikes = d.ike_sa_spis(a.connection)
                if not ikes:
                    raise LocalProtocolError("no established IKE_SA")
                if a.action == "rekey_ike":
                    d.rekey_ike_sa(ikes[0], now)
                elif a.action == "delete_ike":
                    d.delete_ike_sa(ikes[0], now)
                elif a.action == "dpd":
                    d.check_liveness(ikes[0], now)
                else:
                    if a.child is None:
                        raise LocalProtocolError("create_child needs a child name")
                    d.create_child_sa(ikes[0], a.child, now)
                target = ikes[0].hex()
        except LocalProtocolError as exc:
            self.collector.record(ActionSkipped(action=a.action, connection=conn, reason=str(exc)), now=now, node=a.node)
            node.service()
            return
        self.collector.record(ActionExecuted(action=a.action, connection=conn, target=target), now=now, node=a.node)
        node.service()

    def _send(self, node: str, d: Datagram) -> None:
        self._next_id += 1
        sd = SimDatagram(self._next_id, d.src, d.dst, d.data)
        self.collector.record_sent(sd.id, self.env.now, node, d.src, d.dst, d.data)
        if self.checker is not None:
            self.checker.on_send(node, d)
        if self.faults is not None:
            self.faults.on_send(node, sd, self._forward)
        else:
            self._forward(node, sd)

    def copy_datagram(self, node: str, sd: SimDatagram) -> SimDatagram:
        """A duplicate of *sd* as a new datagram sent by *node* now (a fault's copy: counted as sent)."""
        self._next_id += 1
        copy = SimDatagram(self._next_id, sd.src, sd.dst, sd.data)
        self.collector.record_sent(copy.id, self.env.now, node, sd.src, sd.dst, sd.data)
        return copy

    def _forward(self, here: str, sd: SimDatagram) -> None:
        dst_node = self.topology.owner(sd.dst.ip)
        hop = self.topology.next_hop(here, dst_node) if dst_node is not None else None
        if hop is None:
            self.collector.record_fate(sd.id, "no_route", self.env.now, here)
            return
        self._links[(here, hop)].put(sd)

    def _arrive(self, node: str, sd: SimDatagram) -> None:
        if self.topology.owner(sd.dst.ip) != node:
            self._forward(node, sd)
            return
        self.collector.record_fate(sd.id, "delivered", self.env.now, node)
        if self.faults is not None:
            self.faults.on_delivered(sd, self._forward)
        self.nodes[node].receive(sd.data, sd.src, sd.dst)
