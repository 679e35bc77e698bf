"""Wire a scenario's ``aaa:`` servers to the EAP gateways that wait for them (``ikesim.sim.aaa``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.errors import ConfigError
from ikesim.ike.eap_events import AaaRequested
from ikesim.sim.aaa import AaaServer

if TYPE_CHECKING:
    from ikesim.scenario.model import ScenarioModel
    from ikesim.sim.node import Node
    from ikesim.sim.simulation import Simulation

__all__ = ["attach_aaa"]


def attach_aaa(sim: Simulation, m: ScenarioModel) -> dict[str, AaaServer]:
    """Build the scenario's ``aaa:`` servers and route each EAP connection's ``AaaRequested`` to its server."""
    servers = {name: AaaServer(sim.env, name, latency=a.latency, capacity=a.capacity) for name, a in m.aaa.items()}
    routes: dict[str, dict[str, AaaServer]] = {}
    for conn, c in m.connections.items():
        eap = c.auth.eap
        if eap is None or eap.aaa is None:
            continue
        if eap.aaa not in servers:
            raise ConfigError(f"connection {conn}: auth.eap.aaa {eap.aaa!r} is not one of aaa: {sorted(servers)}")
        if c.responder not in sim.nodes:
            raise ConfigError(f"connection {conn}: an AAA server needs the responder {c.responder} to be a plain node")
        routes.setdefault(c.responder, {})[conn] = servers[eap.aaa]
    for node_name, by_conn in routes.items():
        def forward(node: Node, event: AaaRequested, by_conn: dict[str, AaaServer] = by_conn) -> None:
            by_conn[event.connection].request(node, event.spi_r)
        sim.nodes[node_name].on_aaa = forward
    sim.aaa_servers = servers  # type: ignore[attr-defined]
    return servers
