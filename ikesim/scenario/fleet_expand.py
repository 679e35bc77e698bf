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
from ikesim.scenario.fleet import (
    FleetModel,
    client_addresses,
    client_names,
    gateway_ip,
    host_range,
    interface_addresses,
    interface_nat_name,
    start_times,
)
from ikesim.scenario.link_model import LinkModel
from ikesim.scenario.model import ScenarioModel
from ikesim.scenario.network_model import NatModel
from ikesim.scenario.node_model import InterfaceLinkModel, InterfaceModel, NodeModel

__all__ = ["expand_fleet"]


def expand_fleet(m: ScenarioModel, *, seed: int | None = None) -> ScenarioModel:
    """The scenario with its fleet turned into nodes, links and connections (no fleet left); *m* itself if it has none.

    The listed nodes, links and connections come first, then the gateway (unless listed), then client by client.
    """
    fleet = m.fleet
    if fleet is None:
        return m
    names = client_names(fleet)
    addrs = client_addresses(fleet) if fleet.interfaces is None else [""] * fleet.clients  # per interface: _MultiHomed
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
    multi = _MultiHomed(fleet, gw, base) if fleet.interfaces is not None else None
    for i, (name, ip, at) in enumerate(zip(names, addrs, starts, strict=True)):
        if multi is not None:
            nodes[name] = multi.client(i, name, links, nats)
        elif nat is None:
            nodes[name] = NodeModel.model_construct(addresses=[ip])
            links.append(wan_link(name))
        else:
            nodes[name] = NodeModel.model_construct(addresses=[ip])
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


class _MultiHomed:
    """Clients with interfaces (``fleet.interfaces``): per interface an address, a link and maybe NAT boxes."""

    def __init__(self, fleet: FleetModel, gateway: str, seed: int) -> None:
        assert fleet.interfaces is not None
        self.fleet, self.gateway, self.interfaces = fleet, gateway, fleet.interfaces
        self.addresses = {n: interface_addresses(fleet, n) for n in fleet.interfaces}
        self.publics = {n: host_range(ipaddress.ip_network(f.nat.public_subnet))[0]
                        for n, f in fleet.interfaces.items() if f.nat is not None}
        self.rebinds = {n: Rng(seed, "fleet-nat-rebinding", n) for n in self.publics}
        """Which of an interface's NATs rebind at random: a stream per interface (``fleet.nat`` keeps its own)."""

    def client(self, i: int, name: str, links: list[LinkModel], nats: dict[str, NatModel]) -> NodeModel:
        """Client *i* (node *name*) with its interfaces; their links (and NAT boxes) are appended to *links* (*nats*)."""
        ifaces: dict[str, InterfaceModel] = {}
        for n, f in self.interfaces.items():
            path = {k: v for k, v in dict(f.link).items() if k != "to"}
            to = f.link.to or self.gateway
            nat = f.nat
            if nat is None:
                link = InterfaceLinkModel.model_construct(**(path | {"to": to}))
            else:
                j = i // nat.share
                box = interface_nat_name(self.fleet, n, j)
                if i % nat.share == 0:
                    rebinding = self.rebinds[n].random() < nat.rebinding.fraction
                    nats[box] = NatModel.model_construct(
                        public=str(self.publics[n] + j), inside=[], type=nat.type, idle_timeout=nat.idle_timeout, rebind=[],
                        rebind_every=nat.rebinding.every if rebinding else None, reboot=[], drop_udp=[])
                    links.append(LinkModel.model_construct(**(path | {"between": (box, to)})))
                nats[box].inside.append(f"{name}/{n}")
                link = InterfaceLinkModel.model_construct(to=box, delay=nat.access_delay, jitter=0.0, loss=0.0, mtu=f.link.mtu)
            ifaces[n] = InterfaceModel.model_construct(address=self.addresses[n][i], priority=f.priority, up=f.up, link=link)
        ranked = sorted(ifaces.values(), key=lambda x: x.priority)
        return NodeModel.model_construct(addresses=[x.address for x in ranked], interfaces=ifaces,
                                         mobility=self.fleet.mobility)
