"""The network's shape: a networkx graph of nodes and links, address ownership and next-hop routing.

A datagram is routed to the node that owns its destination IP (from
``DaemonConfig.addresses``) along the shortest path by link delay; next hops
are cached and the cache is dropped whenever a link is added.

A multi-homed host's interface (``ikesim.sim.mobility``) is a vertex of its own, ``<host>/<interface>``,
where the interface's address is attached and which only the interface's own link joins: ``owner`` still
names the host, ``vertex`` names where datagrams to the address are routed. For an address of a node
without interfaces the two are the same.
"""

from __future__ import annotations

import networkx as nx

from ikesim.errors import ConfigError

__all__ = ["Topology", "HUB_DEGREE"]

HUB_DEGREE = 32
"""Nodes with at least this many links are routed through a cached shortest-path tree rooted at them."""
_UNKNOWN = object()


class Topology:
    """Nodes, links and which node owns which IP address."""

    __slots__ = ("graph", "owners", "vertices", "_next_hop", "_trees")

    def __init__(self) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()
        """Both directions of every link, each weighted by its routing cost (``delay``): paths may be asymmetric."""
        self.owners: dict[str, str] = {}
        """IP address -> name of the node that owns it."""
        self.vertices: dict[str, str] = {}
        """IP address -> the graph vertex datagrams to it are routed to: its node, or its interface's vertex."""
        self._next_hop: dict[tuple[str, str], str | None] = {}
        self._trees: dict[tuple[str, bool], dict[str, list[str]]] = {}
        """root -> shortest-path predecessors from it (for hubs)."""

    def add_node(self, name: str, ips: list[str]) -> None:
        """Add node *name* owning *ips*; an address owned twice is a ConfigError."""
        for ip in ips:
            if ip in self.owners:
                raise ConfigError(f"address {ip} is on both {self.owners[ip]} and {name}")
        for ip in ips:
            self.owners[ip] = name
            self.vertices[ip] = name
        self.graph.add_node(name)

    def add_interface(self, node: str, vertex: str, ip: str) -> None:
        """Attach *node*'s address *ip* to a new vertex *vertex* (an interface: ``node/name``); ConfigError if
        *ip* is not *node*'s, is already on an interface, or *vertex* exists."""
        if self.owners.get(ip) != node:
            raise ConfigError(f"interface {vertex}: address {ip} is not an address of {node!r}")
        if self.vertices[ip] != node:
            raise ConfigError(f"interface {vertex}: address {ip} is already on interface {self.vertices[ip]}")
        if vertex in self.graph:
            raise ConfigError(f"interface {vertex}: a node of that name exists")
        self.vertices[ip] = vertex
        self.graph.add_node(vertex)

    def add_link(self, a: str, b: str, *, delay: float, cost: float | None = None, cost_back: float | None = None) -> None:
        """Add edges a->b and b->a weighted by *cost* and *cost_back* (default: the one-way *delay*)."""
        self.graph.add_edge(a, b, delay=delay if cost is None else cost)
        self.graph.add_edge(b, a, delay=delay if cost_back is None else cost_back)
        self._next_hop.clear()
        self._trees.clear()

    def has_route(self, src: str, dst: str) -> bool:
        """True if some chain of links leads from node *src* to node *dst* (both must be nodes of the graph)."""
        return bool(nx.has_path(self.graph, src, dst))

    def owner(self, ip: str) -> str | None:
        """The node owning *ip*, or None."""
        return self.owners.get(ip)

    def vertex(self, ip: str) -> str | None:
        """The vertex datagrams to *ip* are routed to (its node, or the interface carrying it), or None."""
        return self.vertices.get(ip)

    def next_hop(self, here: str, dst_node: str) -> str | None:
        """The neighbour of *here* on the shortest (by delay) path to *dst_node*; None if unreachable or here.

        A hub (a gateway with thousands of links) is never searched from per datagram: paths to or from a
        node of degree >= ``HUB_DEGREE`` come from one shortest-path tree rooted at it, computed once.
        """
        key = (here, dst_node)
        hop = self._next_hop.get(key, _UNKNOWN)
        if hop is not _UNKNOWN:
            return hop  # type: ignore[return-value]
        hop = self._route(here, dst_node)
        self._next_hop[key] = hop
        return hop

    def _route(self, here: str, dst: str) -> str | None:
        if here == dst:
            return None
        g = self.graph
        if (dst, True) in self._trees or (g.in_degree(dst) >= HUB_DEGREE and (here, False) not in self._trees):
            pred = self._tree(dst, toward=True)  # paths into dst: here's predecessor is its next hop
            hops = pred.get(here)
            return hops[0] if hops else None
        if (here, False) in self._trees or g.out_degree(here) >= HUB_DEGREE:
            pred = self._tree(here, toward=False)
            if dst not in pred:
                return None
            node = dst
            while pred[node] and pred[node][0] != here:
                node = pred[node][0]
            return node if pred[node] else None
        try:
            path = nx.bidirectional_dijkstra(g, here, dst, weight="delay")[1]
        except nx.NetworkXNoPath:
            return None
        return path[1] if len(path) > 1 else None

    def _tree(self, root: str, *, toward: bool) -> dict[str, list[str]]:
        """Shortest-path predecessors from *root* (``toward``: on the reversed graph, i.e. paths into *root*)."""
        key = (root, toward)
        tree = self._trees.get(key)
        if tree is None:
            g = self.graph.reverse(copy=False) if toward else self.graph
            tree, _dist = nx.dijkstra_predecessor_and_distance(g, root, weight="delay")
            self._trees[key] = tree
        return tree
