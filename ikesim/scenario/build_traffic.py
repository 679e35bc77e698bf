"""``traffic:`` -> the flows of a ``Simulation``'s data plane (``ikesim.sim.data_network``)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from ikesim.errors import ConfigError
from ikesim.metrics.traffic_log import Flow
from ikesim.scenario.model import ScenarioModel
from ikesim.scenario.traffic_model import SizeModel, TrafficModel
from ikesim.sim.data_network import DataNetwork
from ikesim.sim.dataplane import Policy
from ikesim.sim.fleet_path import ESP_OVERHEAD_MAX, LinkInfo, Paths
from ikesim.sim.fleet_traffic import FleetTraffic
from ikesim.sim.linkmodels import as_delay, as_loss
from ikesim.sim.simulation import Simulation
from ikesim.sim.traffic import FlowSpec, Sizes

__all__ = ["add_traffic", "sizes"]


def sizes(m: SizeModel) -> Sizes:
    """The sampler of a size distribution."""
    if m.dist == "fixed":
        return Sizes.fixed(m.value)  # type: ignore[arg-type]
    if m.dist == "uniform":
        return Sizes(low=m.low, high=m.high)  # type: ignore[arg-type]
    values = tuple(m.values or ())
    weights = m.weights if m.weights is not None else [1] * len(values)
    return Sizes(values=values, cumulative=tuple(float(w) for w in accumulate(weights)))


def _directions(t: TrafficModel) -> list[str]:
    if t.direction == "both":
        return ["forward", "reverse"]
    if t.pattern == "request_response":  # the asking direction, then the answering one
        return [t.direction, "reverse" if t.direction == "forward" else "forward"]
    return [t.direction]


def _flows(m: ScenarioModel) -> Iterator[tuple[TrafficModel, list[tuple[FlowSpec, Policy, tuple[str, str], str | None]]]]:
    """Per flow of *m*: its directions as (spec, policy, inner addresses, trap connection or None)."""
    for i, t in enumerate(m.traffic):
        assert t.connection is not None  # checked by the model
        c = m.connections[t.connection]
        child = t.child if t.child is not None else c.child_items()[0][0]
        stop = min(t.stop, m.duration) if t.stop is not None else m.duration
        made = []
        for k, direction in enumerate(_directions(t)):
            sender, receiver = (c.initiator, c.responder) if direction == "forward" else (c.responder, c.initiator)
            answering = t.pattern == "request_response" and k == 1
            spec = FlowSpec(
                Flow(i, t.connection, child, direction, sender, receiver, t.pattern),
                rate=0.0 if answering else t.packets_per_second, sizes=sizes(t.size), start=t.start, stop=stop,
                on=t.on or 0.0, off=t.off or 0.0, queue=t.queue,
                response_sizes=sizes(t.response_size) if answering and t.response_size is not None else None,
                think=t.think if answering else 0.0)
            inner = (m.nodes[sender].addresses[0], m.nodes[receiver].addresses[0])
            # a trap policy: start_action trap, or dpd/close_action trap re-installing it when the IKE_SA goes (strongSwan
            # trap_manager); a packet finding no SA then initiates the connection (acquire)
            trapped = c.start_action == "trap" or "trap" in (c.ike.dpd_action, c.ike.close_action)
            trap = t.connection if trapped and sender == c.initiator else None
            made.append((spec, (t.connection, child), inner, trap))
        yield t, made


def add_traffic(sim: Simulation, m: ScenarioModel) -> None:
    """Enable the data plane and add every flow of *m* (an expanded scenario: no fleet left)."""
    if not m.traffic:
        return
    data = sim.enable_data_plane(replay_window=m.data_plane.replay_window, capture_per_sa=m.data_plane.capture_per_sa)
    if m.data_plane.mode == "fleet":
        _add_fleet_traffic(sim, m, data)
        return
    senders = []
    for t, directions in _flows(m):
        made = []
        for spec, policy, inner, trap in directions:
            sent_by = data.add_flow(spec, policy=policy, inner=inner)
            sent_by.trap = trap
            made.append(sent_by)
        if t.pattern == "request_response":
            made[0].responder = made[1]
        senders += made
    for s in senders:
        s.start()


def _add_fleet_traffic(sim: Simulation, m: ScenarioModel, data: DataNetwork) -> None:
    """Fleet mode: the flows follow the SA/path timeline (``ikesim.sim.fleet_traffic``), no packet is simulated."""
    _check_volume_limits(m)
    fleet = FleetTraffic(sim, data, Paths(sim.topology, sim.boxes, _fleet_links(m)))
    for _t, directions in _flows(m):
        for spec, policy, _inner, trap in directions:
            fleet.add_flow(spec, policy=policy, trap=trap)
    fleet.start()


def _fleet_links(m: ScenarioModel) -> dict[tuple[str, str], LinkInfo]:
    """Both directions of every link as fleet mode sees them (``ikesim.sim.fleet_path``); ConfigError for a link whose
    effect on a packet depends on the other packets: a bandwidth (queues), duplication, fragmentation."""
    largest = max(max(t.size.sizes) for t in m.traffic)
    links = {}
    for link in m.links:
        a, b = link.between
        what = f"data_plane mode fleet: link {a}-{b}"
        if link.bandwidth is not None or link.queue is not None:
            raise ConfigError(f"{what} has a bandwidth; fleet mode does not model queues (use mode: packet)")
        if link.duplicate:
            raise ConfigError(f"{what} duplicates datagrams (use mode: packet)")
        if largest + ESP_OVERHEAD_MAX > link.mtu:
            raise ConfigError(f"{what}: user packets of up to {largest} bytes may need IP fragmentation (MTU {link.mtu}); "
                              "fleet mode does not model it (use mode: packet)")
        delay, loss = as_delay(link.delay_model()).mean, as_loss(link.loss_model()).rate
        down = tuple(sorted((float(d.start), float(d.until)) for d in link.down))
        for x, y in ((a, b), (b, a)):
            links[(x, y)] = LinkInfo(f"{x}->{y}", float(delay), float(loss), down)
    return links


SEQ_SOFT_MIN = 0xFFFFFFFF - 0xFFFFFFFF // 10
"""The lowest packet count at which an SA without ESN reaches its soft sequence-number limit (RFC 4303 §3.3.3;
``ikesim.esp.sa``: a tenth of the sequence space before the last number)."""


def _check_volume_limits(m: ScenarioModel) -> None:
    """ConfigError for CHILD_SA volume lifetimes (RFC 4301 §4.4.2.1) that fleet mode cannot count as per-packet mode
    does (``ikesim.sim.fleet_limits``): which packets reach a limit would be random per packet (sizes drawn per
    packet with a byte limit, links that lose packets at random, Poisson send times of several flows on one SA),
    or an SA could run out of sequence numbers (the send after the last one is refused: not modelled)."""
    lossy = next((link for link in m.links if as_loss(link.loss_model()).rate > 0), None)
    sent: dict[tuple[str, str], float] = {}
    shared: dict[tuple[str, str, str], int] = {}
    for t in m.traffic:
        assert t.connection is not None
        c = m.connections[t.connection]
        child = t.child if t.child is not None else c.child_items()[0][0]
        for direction in ("forward", "reverse") if t.direction == "both" else (t.direction,):
            key3 = (t.connection, child, direction)
            shared[key3] = shared.get(key3, 0) + 1
    for t in m.traffic:
        assert t.connection is not None
        c = m.connections[t.connection]
        child = t.child if t.child is not None else c.child_items()[0][0]
        model = dict(c.child_items())[child]
        volume = model.volume()
        what = f"data_plane mode fleet: connection {t.connection} child {child}"
        key = _given(model, volume, "rekey_bytes", "life_bytes")
        pkey = _given(model, volume, "rekey_packets", "life_packets")
        stop = min(t.stop, m.duration) if t.stop is not None else m.duration
        sent[(t.connection, child)] = sent.get((t.connection, child), 0.0) + t.packets_per_second * max(0.0, stop - t.start)
        if key is None and pkey is None:
            continue
        limit = key or pkey
        if key is not None and len(t.size.sizes) > 1:
            raise ConfigError(f"{what} has {key} and traffic of varying sizes ({t.size.dist}): the packet that reaches "
                              "the byte limit depends on each size drawn; give a fixed size, or use mode: packet")
        directions = ("forward", "reverse") if t.direction == "both" else (t.direction,)
        if t.pattern == "poisson" and any(shared[(t.connection, child, d)] > 1 for d in directions):
            raise ConfigError(f"{what} has {limit} and pattern poisson traffic that shares its SA with another flow: "
                              "fleet mode draws the n-th send time of one Poisson flow only; use mode: packet")
        if lossy is not None:
            a, b = lossy.between
            raise ConfigError(f"{what} has {limit} and link {a}-{b} loses packets at random (loss): which packets "
                              "an inbound SA counts is random per packet; use mode: packet")
    for (connection, child), n in sent.items():
        if n >= SEQ_SOFT_MIN:
            raise ConfigError(f"data_plane mode fleet: connection {connection} child {child} sends up to {n:.0f} "
                              "packets (traffic rate x duration): an SA could reach its sequence-number limit "
                              "(RFC 4303 §3.3.3), which fleet mode does not model; use mode: packet")


def _given(model: object, volume: dict[str, int], *keys: str) -> str | None:
    """The first of *keys* the child sets (else the first its defaults make non-zero); None: no such limit."""
    for k in keys:
        if getattr(model, k, None):
            return k
    return next((k for k in keys if volume[k]), None)
