"""Building HA clusters into a ``Simulation``: member nodes, the virtual address's vertex, failures on schedule.

*sim* is the ``ikesim.sim.simulation.Simulation`` calling (typed ``Any``: that module imports this one).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ikesim.errors import ConfigError
from ikesim.ike.daemon import IkeDaemon
from ikesim.sim.cluster import Cluster, ClusterConfig
from ikesim.sim.ha_link import SyncLink, SyncLinkConfig
from ikesim.sim.mobility import delay_until

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ikesim.ike.config import DaemonConfig
    from ikesim.sim.cpu import CpuModel

__all__ = ["add_cluster", "cluster_event", "FAILURE_KINDS"]

FAILURE_KINDS = ("crash", "restart", "rejoin", "partition", "switchover")


def add_cluster(sim: Any, config: DaemonConfig, members: Sequence[str], *, cluster: ClusterConfig,
                sync_link: SyncLinkConfig, cpu: CpuModel | None = None) -> Cluster:
    """A cluster named ``config.name`` owning ``config.addresses`` (the virtual addresses; link it by that name),
    with one member node per name in *members*, each running *config*'s connections (``ikesim.sim.cluster``)."""
    name = config.name
    if not config.ticket_secret:  # RFC 5723 §6.3: the members share one ticket key, so tickets survive a failover
        config = replace(config, ticket_secret=sim.rng.child("cluster", name, "ticket").bytes(32))
    if len(members) < 2 or len(set(members)) != len(members):
        raise ConfigError(f"cluster {name!r}: at least two distinct members")
    sim._check_new(name)  # noqa: SLF001 - the simulation's own builder
    sim.topology.add_node(name, [a.ip for a in config.addresses])
    nodes = []
    for member in members:
        sim._check_new(member)  # noqa: SLF001
        nodes.append(sim.add_node(replace(config, name=member), cpu=cpu, vertex=False))

    def new_daemon(member: str, boot: int) -> IkeDaemon:
        node = sim.nodes[member]
        return IkeDaemon(replace(config, name=member), rng=sim.rng.child("node", member, "ike", f"boot{boot}"),
                         meter=node.meter)

    link = SyncLink(sim.env, sim.rng.child("cluster", name), sync_link, members)
    c = Cluster(sim.env, name, nodes, cluster, link, record=sim.collector.record, new_daemon=new_daemon,
                checker=sim.checker)
    sim.clusters[name] = c
    sim.collector.enable_ha(name, members, c.segment)  # the ha table (``ikesim.metrics.ha``)
    for member in members:
        sim.cluster_of[member] = c
    if sim.data is not None:
        c.attach_data(sim.data)
    return c


def cluster_event(sim: Any, at: float, cluster: str, kind: str, *, member: str = "",
                  duration: float = 0.0) -> None:
    """At *at* s: ``crash``/``rejoin``/``switchover`` *member*, ``restart`` it for *duration* s, or ``partition`` the
    sync link for *duration* s."""
    c = sim.clusters.get(cluster)
    if c is None:
        raise ConfigError(f"{kind}: unknown cluster {cluster!r}")
    if kind not in FAILURE_KINDS:
        raise ConfigError(f"unknown cluster event {kind!r} (expected one of {', '.join(FAILURE_KINDS)})")
    if kind != "partition":
        c._member(member)  # noqa: SLF001 - validates the name now, not when it fires
    if kind in ("restart", "partition") and duration <= 0:
        raise ConfigError(f"{kind}: needs a duration > 0")
    actions = {"crash": lambda: c.crash(member), "rejoin": lambda: c.rejoin(member),
               "switchover": lambda: c.switchover(member), "restart": lambda: c.restart(member, duration),
               "partition": lambda: c.partition(duration)}
    sim.env.timeout(delay_until(sim.env.now, at)).callbacks.append(lambda _e: actions[kind]())
