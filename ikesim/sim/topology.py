"""The network's shape: a networkx graph of nodes and links, address ownership and next-hop routing.

A datagram is routed to the node that owns its destination IP (from
``DaemonConfig.addresses``) along the shortest path by link delay; next hops
are cached and the cache is dropped whenever a link is added.
"""

from __future__ import annotations

import networkx as nx

from ikesim.errors import ConfigError

__all__ = ["Topology"]


class Topology:
    """Nodes, links and which node owns which IP address."""

    __slots__ = ("graph", "owners", "_next_hop")

    def __init__(self) -> None:
        self.graph: nx.Graph = nx.Graph()
        self.owners: dict[str, str] = {}
        """IP address -> name of the node that owns it."""
        self._next_hop: dict[tuple[str, str], str | None] = {}

    def add_node(self, name: str, ips: list[str]) -> None:
        """Add node *name* owning *ips*; an address owned twice is a ConfigError."""
        for ip in ips:
            if ip in self.owners:
                raise ConfigError(f"address {ip} is on both {self.owners[ip]} and {name}")
        for ip in ips:
            self.owners[ip] = name
        self.graph.add_node(name)

    def add_link(self, a: str, b: str, *, delay: float) -> None:
        """Add an undirected edge a-b weighted by its one-way delay."""
        self.graph.add_edge(a, b, delay=delay)
        self._next_hop.clear()

    def owner(self, ip: str) -> str | None:
        """The node owning *ip*, or None."""
        return self.owners.get(ip)

    def next_hop(self, here: str, dst_node: str) -> str | None:
        """The neighbour of *here* on the shortest (by delay) path to *dst_node*; None if unreachable or here."""
        key = (here, dst_node)
        if key not in self._next_hop:
            try:
                path = nx.shortest_path(self.graph, here, dst_node, weight="delay")
                self._next_hop[key] = path[1] if len(path) > 1 else None
            except nx.NetworkXNoPath:
                self._next_hop[key] = None
        return self._next_hop[key]
