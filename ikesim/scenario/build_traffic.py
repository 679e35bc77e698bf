"""``traffic:`` -> the flows of a ``Simulation``'s data plane (``ikesim.sim.data_network``)."""

from __future__ import annotations

from itertools import accumulate

from ikesim.metrics.traffic_log import Flow
from ikesim.scenario.model import ScenarioModel
from ikesim.scenario.traffic_model import SizeModel, TrafficModel
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


def add_traffic(sim: Simulation, m: ScenarioModel) -> None:
    """Enable the data plane and add every flow of *m* (an expanded scenario: no fleet left)."""
    if not m.traffic:
        return
    data = sim.enable_data_plane(replay_window=m.data_plane.replay_window, capture_per_sa=m.data_plane.capture_per_sa)
    senders = []
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
            sent_by = data.add_flow(spec, policy=(t.connection, child), inner=inner)
            if c.start_action == "trap" and sender == c.initiator:
                sent_by.trap = t.connection
            made.append(sent_by)
        if t.pattern == "request_response":
            made[0].responder = made[1]
        senders += made
    for s in senders:
        s.start()
