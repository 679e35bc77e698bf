"""Scenario-level rules of ``clusters:`` (``ikesim.scenario.cluster_model``): what a cluster, its members and its
events must be with respect to the rest of the scenario. ``ikesim.scenario.load`` reports each as file:line: key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ikesim.scenario.cluster_model import MAX_FAILURES
from ikesim.scenario.fleet import client_number

if TYPE_CHECKING:
    from ikesim.scenario.model import ScenarioModel

__all__ = ["member_map", "check_clusters", "member_hint"]

Loc = tuple[str | int, ...]


def member_map(m: ScenarioModel) -> dict[str, str]:
    """Member node -> its cluster, for every cluster of *m*."""
    return {member: name for name, c in m.clusters.items() for member in c.member_names(name)}


def member_hint(m: ScenarioModel, cluster: str) -> str:
    """``gw-a, gw-b``: the members of *cluster*."""
    return ", ".join(m.clusters[cluster].member_names(cluster))


def check_clusters(m: ScenarioModel, err: Callable[[Loc, str], None]) -> None:
    """A cluster is a node with addresses; its members are names of their own; its events name its members and fall
    within the run; fleet mode's data plane does not model clusters."""
    taken = dict.fromkeys(m.nodes, "a node")
    for name in m.nats:
        taken.setdefault(name, "a NAT")
    for name in m.routers:
        taken.setdefault(name, "a router")
    fleet = m.fleet
    for name, c in m.clusters.items():
        node = m.nodes.get(name)
        if node is None:
            err(("clusters", name), f"{name!r} is not a node: declare it under nodes (its addresses are the "
                "cluster's virtual addresses)")
        elif node.interfaces is not None:
            err(("clusters", name), f"node {name!r} has interfaces: a cluster's virtual addresses are its addresses")
        members = c.member_names(name)
        for k, member in enumerate(members):
            loc: Loc = ("clusters", name, "members", k) if c.members is not None else ("clusters", name)
            if member in taken:
                err(loc, f"member {member!r} is also {taken[member]}")
            elif fleet is not None and client_number(member, fleet.client_prefix, fleet.clients) is not None:
                err(loc, f"member {member!r} is also the name of a fleet client")
            taken[member] = f"a member of cluster {name!r}"
        for i, e in enumerate(c.events):
            if e.kind != "partition" and e.member not in members:
                err(("clusters", name, "events", i, e.kind), f"cluster {name!r} has no member {e.member!r} "
                    f"(members: {', '.join(members)})")
            if e.at >= m.duration:
                err(("clusters", name, "events", i, "at"), f"{e.at:g}s is not before the end of the run ({m.duration:g}s)")
        for i, (start, until) in enumerate(c.sync_link.partitions):
            if until <= start:
                err(("clusters", name, "sync_link", "partitions", i), f"[{start:g}s, {until:g}s] must end after it "
                    "starts")
            elif start >= m.duration:
                err(("clusters", name, "sync_link", "partitions", i), f"starts at {start:g}s, not before the end of "
                    f"the run ({m.duration:g}s)")
        f = c.failures
        if f is not None and m.duration / f.mtbf > MAX_FAILURES:
            err(("clusters", name, "failures", "mtbf"), f"{f.mtbf:g}s means about {m.duration / f.mtbf:.3g} crashes per "
                f"member in the run; at most {MAX_FAILURES:,}")
    flows = m.traffic or (fleet is not None and fleet.traffic is not None)
    if m.clusters and flows and m.data_plane.mode == "fleet":
        err(("data_plane", "mode"), "fleet mode does not model clusters (ikesim.sim.cluster): use mode: packet")
