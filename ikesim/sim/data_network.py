"""The per-packet data plane of a ``Simulation``: every node's ESP plane, the flows, and ESP on the network.

A data packet travels as a ``SimDatagram`` whose id is minus its packet number (``ikesim.metrics.traffic_log``),
through the same links, NATs and firewalls as IKE; the links draw its loss and delay from a stream of their
own, so adding traffic does not change what happens to IKE datagrams. At the receiving node the ESP plane
decrypts it, or drops it with the reason (unknown SPI, ICV, replay, window, expired SA).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ikesim.metrics.traffic_log import DELIVERED, TrafficLog
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.dataplane import NodeDataPlane, Policy
from ikesim.sim.traffic import FlowSender, FlowSpec

if TYPE_CHECKING:
    import simpy

    from ikesim.rng import Rng
    from ikesim.sim.node import Node
    from ikesim.types import Address, Datagram

__all__ = ["DataNetwork"]


class DataNetwork:
    """Data planes, flows and the ESP datagrams between them (see the module docstring)."""

    def __init__(self, env: simpy.Environment, rng: Rng, log: TrafficLog, *, replay_window: int,
                 forward: Callable[[str, SimDatagram], None], capture: bool) -> None:
        self.env, self.rng, self.log, self.replay_window = env, rng, log, replay_window
        self._forward = forward
        self.capture = capture
        self.planes: dict[str, NodeDataPlane] = {}
        self.senders: list[FlowSender] = []
        """Indexed by flow code (``TrafficLog.flows``)."""
        self._waiting: dict[tuple[str, Policy], list[FlowSender]] = {}
        self.last_out: dict[tuple[Address, Address], float] | None = None
        """The simulation's (src, dst) -> last send time, kept for NAT keepalive senders (``ikesim.sim.keepalive``)."""
        self.down: Callable[[str], bool] | None = None
        """Whether a node is a crashed cluster member (set by the simulation when it has clusters)."""
        self.on_nat_event: Callable[[str, str, set[str | None], float], None] | None = None
        """Also told of every NAT rebind or reboot (fleet mode, ``ikesim.sim.fleet_traffic``)."""

    def attach(self, node: Node) -> NodeDataPlane:
        """Give *node* an ESP plane that follows its daemon's events."""
        plane = NodeDataPlane(node.daemon, self.rng.child("esp", node.name), replay_window=self.replay_window,
                              log=self.log, node=node.name)
        plane.service = node.service
        name = node.name
        plane.on_outbound = lambda policy: self._outbound(name, policy)
        node.plane = plane
        self.planes[name] = plane
        return plane

    def add_flow(self, spec: FlowSpec, *, policy: Policy, inner: tuple[str, str]) -> FlowSender:
        """Add one flow direction sent by ``spec.flow.sender`` through *policy* (not started)."""
        plane = self.planes[spec.flow.sender]
        sender = FlowSender(spec, env=self.env, plane=plane, policy=policy,
                            rng=self.rng.child("flow", str(spec.flow.flow), spec.flow.direction), log=self.log,
                            send=self.send, inner=inner)
        assert sender.code == len(self.senders)
        self.senders.append(sender)
        if spec.queue > 0:
            self._waiting.setdefault((spec.flow.sender, policy), []).append(sender)
        return sender

    def _outbound(self, node: str, policy: Policy) -> None:
        """*policy* on *node* has an outbound SA: flows holding packets send them, once the node has sent."""
        senders = self._waiting.get((node, policy))
        if senders:
            self.env.timeout(0).callbacks.append(lambda _ev: [s.release() for s in senders])

    def nat_event(self, box: str, kind: str, inside: set[str | None], now: float) -> None:
        """NAT *box* rebound or rebooted: a control window opens on every tunnel with an end behind it."""
        for connection in self.log.connections_at(inside):
            self.log.open_window(connection, kind, f"{box}@{now:.6f}", now)
        if self.on_nat_event is not None:
            self.on_nat_event(box, kind, inside, now)

    def send(self, node: str, d: Datagram, packet: int, spi: int) -> None:
        """Put a protected packet on the network (captured if its SA's quota is not used up); a crashed cluster
        member (``down``) sends nothing: the packet is lost there (``member_down``), never captured."""
        if self.down is not None and self.down(node):
            self.log.record_fate(packet, "member_down", self.env.now, node)
            return
        if self.last_out is not None:
            self.last_out[(d.src, d.dst)] = self.env.now
        log = self.log
        if self.capture and log.wants_capture(spi):
            log.capture(packet, self.env.now, d.src, d.dst, d.data, spi)
        self._forward(node, SimDatagram(-packet, d.src, d.dst, d.data))

    def copy(self, sd: SimDatagram) -> SimDatagram:
        """A duplicate of a data packet (a link's duplication): a new packet of the same flow, counted as sent."""
        log, i = self.log, -sd.id - 1
        packet = log.record_sent(log.flow[i], self.env.now, log.size[i], log.spi[i])
        return SimDatagram(-packet, sd.src, sd.dst, sd.data)

    def arrive(self, node: str, sd: SimDatagram) -> None:
        """A data packet reached its destination node: decrypt it (delivered) or drop it with the reason."""
        plane = self.planes.get(node)
        now, log, packet = self.env.now, self.log, -sd.id
        if plane is None:
            log.record_fate(packet, "no_data_plane", now, node)
            return
        out = plane.esp.unprotect(sd.data, sd.src, sd.dst)
        if isinstance(out, str):
            log.record_fate(packet, out, now, node)
        else:
            log.record_fate(packet, DELIVERED, now, node)
            plane.last_in[out[1].spi] = now
            responder = self.senders[log.flow[packet - 1]].responder
            if responder is not None:
                responder.answer()
        plane.tell_daemon(now)

    def arrive_copy(self, node: str, sd: SimDatagram) -> None:
        """A second cluster member got the same data packet (a split brain, ``ikesim.sim.cluster``): it decrypts it
        too; the packet counts as delivered if this one delivers it, and a drop here never overwrites its fate."""
        plane = self.planes.get(node)
        if plane is None:
            return
        out = plane.esp.unprotect(sd.data, sd.src, sd.dst)
        if not isinstance(out, str):
            now = self.env.now
            self.log.record_fate(-sd.id, DELIVERED, now, node)
            plane.last_in[out[1].spi] = now
        plane.tell_daemon(self.env.now)
