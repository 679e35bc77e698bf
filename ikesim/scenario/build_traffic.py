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
            trap = t.connection if c.start_action == "trap" and sender == c.initiator else None
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
