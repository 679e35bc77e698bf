"""``expand_fleet``: a scenario's ``fleet:`` turned into the nodes, links and connections it stands for.

Kept apart from ``ikesim.scenario.fleet`` (the fleet's model and checks) because it builds a whole
``ScenarioModel``, whose ``fleet`` field is typed by that module: ``model`` imports ``fleet``, and
this module imports both (no import circle).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ikesim.rng import Rng
from ikesim.scenario.connection_model import IdsModel
from ikesim.scenario.fleet import client_addresses, client_names, gateway_ip, host_range, start_times
from ikesim.scenario.link_model import LinkModel
from ikesim.scenario.model import ScenarioModel
from ikesim.scenario.network_model import NatModel
from ikesim.scenario.node_model import NodeModel

__all__ = ["expand_fleet"]


def expand_fleet(m: ScenarioModel, *, seed: int | None = None) -> ScenarioModel:
    """The scenario with its fleet turned into nodes, links and connections (no fleet left); *m* itself if it has none.

    The listed nodes, links and connections come first, then the gateway (unless listed), then client by client.
    """
    fleet = m.fleet
    if fleet is None:
        return m
    names = client_names(fleet)
    addrs = client_addresses(fleet)
    starts = start_times(fleet, m.seed if seed is None else seed)
    gw = fleet.gateway
    nodes = dict(m.nodes)
    if gw not in nodes:
        nodes[gw] = NodeModel.model_construct(addresses=[gateway_ip(fleet, m.nodes)])
    link = fleet.link
    links = list(m.links)
    connections = dict(m.connections)
    conn = fleet.connection
    template = conn.template(names[0], gw)
    base = m.seed if seed is None else seed
    draws = Rng(base, "fleet-links")
    vary = fleet.vary

    def wan_link(a: str) -> Any:
        delay, jitter, loss = link.delay, link.jitter, link.loss
        if vary is not None:
            delay = vary.delay.draw(draws) if vary.delay is not None else delay
            jitter = vary.jitter.draw(draws) if vary.jitter is not None else jitter
            loss = vary.loss.draw(draws) if vary.loss is not None else loss
        return LinkModel.model_construct(**(dict(link) | {"between": (a, gw), "delay": delay, "jitter": jitter, "loss": loss}))

    nat = fleet.nat
    nats = dict(m.nats)
    if nat is not None:
        first_public, _ = host_range(ipaddress.ip_network(nat.public_subnet))
        rebinds = Rng(base, "fleet-nat-rebinding")
        w = len(str(-(-fleet.clients // nat.share)))
    for i, (name, ip, at) in enumerate(zip(names, addrs, starts, strict=True)):
        nodes[name] = NodeModel.model_construct(addresses=[ip])
        if nat is None:
            links.append(wan_link(name))
        else:
            j = i // nat.share
            box = f"{fleet.client_prefix}nat{j:0{w}d}"
            if i % nat.share == 0:
                rebinding = rebinds.random() < nat.rebinding.fraction
                nats[box] = NatModel.model_construct(
                    public=str(first_public + j), inside=[], type=nat.type, idle_timeout=nat.idle_timeout, rebind=[],
                    rebind_every=nat.rebinding.every if rebinding else None, reboot=[], drop_udp=[])
                links.append(wan_link(box))
            nats[box].inside.append(name)
            links.append(LinkModel.model_construct(between=(name, box), delay=nat.access_delay, jitter=0.0, loss=0.0, mtu=link.mtu))
        ids = IdsModel.model_construct(initiator=conn.ids.initiator.format(i=i, name=name), responder=conn.ids.responder)
        connections[name] = template.model_copy(update={"initiator": name, "responder": gw, "start": at, "ids": ids})
    traffic = list(m.traffic)
    if fleet.traffic is not None:
        traffic += [fleet.traffic.model_copy(update={"connection": name}) for name in names]
    return m.model_copy(update={"nodes": nodes, "links": links, "connections": connections, "nats": nats, "fleet": None,
                                "traffic": traffic})
