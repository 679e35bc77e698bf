"""Scenario model -> ``Simulation`` (the helper layer: nothing below imports it)."""

from __future__ import annotations

import math
from typing import TypeVar

from ikesim.crypto.auth import make_ca, make_end_entity, make_intermediate
from ikesim.errors import ConfigError
from ikesim.ike.config import (
    AuthMethodName,
    ChildPolicy,
    Connection,
    Credentials,
    DaemonConfig,
    IkePolicy,
    Lifetime,
    RetransmitPolicy,
)
from ikesim.metrics.trace import TRACE_LEVELS, Trace
from ikesim.rng import Rng
from ikesim.scenario.aaa_build import attach_aaa
from ikesim.scenario.base import check_seed
from ikesim.scenario.build_traffic import add_traffic
from ikesim.scenario.cluster_model import random_failures
from ikesim.scenario.eap_model import eap_credentials
from ikesim.scenario.faults_model import fault_rules
from ikesim.scenario.fleet_expand import expand_fleet
from ikesim.scenario.model import ChildModel, ConnectionModel, IkeModel, RetransmitModel, ScenarioModel, SideValue
from ikesim.scenario.node_model import processing_model
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

__all__ = ["build_simulation", "daemon_configs", "inside_addresses"]

_C = TypeVar("_C")


def _fraction(v: float | SideValue | None, side: str) -> float | None:
    if isinstance(v, SideValue):
        return getattr(v, side)
    return v


def _lifetime(m: IkeModel | ChildModel, side: str) -> Lifetime:
    """strongSwan's lifetimes (RFC 7296 §2.8): what the scenario gives, the rest derived (``derived``)."""
    life, rand = m.derived(m.rekey_time, m.life_time, m.over_time)
    rand = m.rand_time if m.rand_time is not None else rand
    volume = m.volume() if isinstance(m, ChildModel) else {}  # CHILD_SA byte and packet limits (RFC 4301 §4.4.2.1)
    return Lifetime(rekey_time=m.rekey_time, life_time=life, rand_time=rand, rekey_fraction=_fraction(m.rekey_fraction, side),
                    **volume)


def _retransmit(m: IkeModel) -> RetransmitPolicy:
    if m.retransmit == "strongswan":
        return RetransmitPolicy.strongswan()
    if m.retransmit == "libreswan":
        return RetransmitPolicy.libreswan()
    r: RetransmitModel = m.retransmit
    return RetransmitPolicy(timeout=r.timeout, base=r.base, tries=r.tries, jitter=r.jitter, limit=r.limit)


def _credentials(name: str, c: ConnectionModel, rng: Rng) -> tuple[Credentials, Credentials]:
    if c.auth.method == "psk":
        cred = Credentials(method=AuthMethodName.PSK, psk=(c.auth.psk or "").encode())
        return cred, cred
    pki = rng.child("pki", name)
    method = AuthMethodName.ECDSA_P256 if c.auth.method == "ecdsa" else AuthMethodName.ED25519
    ca_key, ca_cert = make_ca(pki.child("ca"), f"ikesim CA {name}", c.auth.method)
    out = []
    for side, ident in (("initiator", c.ids.initiator), ("responder", c.ids.responder)):
        issuer_key, issuer_cert, intermediates = ca_key, ca_cert, []
        for level in range(1, c.auth.chain):  # CA -> intermediate 1 -> ... -> end entity
            issuer_key, issuer_cert = make_intermediate(pki.child(side, f"int{level}"), issuer_key, issuer_cert,
                                                        f"ikesim {side} intermediate CA {level} {name}", c.auth.method)
            intermediates.insert(0, issuer_cert)
        key, cert = make_end_entity(pki.child(side), issuer_key, issuer_cert, ident, c.auth.method)
        out.append(Credentials(method=method, private_key=key, certificate=cert, trust_anchors=(ca_cert,),
                               intermediates=tuple(intermediates)))
    return out[0], out[1]


def _child_policy(name: str, m: ChildModel, side: str) -> ChildPolicy:
    """One side's CHILD_SA policy; the scenario's local_ts/remote_ts are the initiator's view."""
    ts_local, ts_remote = (m.local_ts, m.remote_ts) if side == "initiator" else (m.remote_ts, m.local_ts)
    return ChildPolicy(name=name, proposals=tuple(m.proposals), lifetime=_lifetime(m, side),
                       local_ts=tuple(ts_local), remote_ts=tuple(ts_remote), delete_rekeyed_delay=m.delete_rekeyed_delay,
                       responder_switch=m.responder_switch)


def _interned(pool: dict[object, object], config: _C) -> _C:
    """*config*, or the equal frozen config made before: a fleet's connections share one policy object each."""
    return pool.setdefault(config, config)  # type: ignore[return-value]


def daemon_configs(m: ScenarioModel, *, seed: int | None = None) -> list[DaemonConfig]:
    """One DaemonConfig per node, a Connection per side of every tunnel (RFC 7296 §2.15 credentials)."""
    m = expand_fleet(m, seed=seed)
    rng = Rng(m.seed if seed is None else seed, "scenario")
    per_node: dict[str, list[Connection]] = {n: [] for n in m.nodes}
    pool: dict[object, object] = {}
    for name, c in m.connections.items():
        cred_i, cred_r = _credentials(name, c, rng)
        if c.auth.eap is not None:  # RFC 7296 §2.16: the initiator authenticates with EAP
            cred_i, cred_r = eap_credentials(c.auth.eap, c.ids.initiator, cred_i, cred_r)
        if cred_i.method == AuthMethodName.PSK:  # certificates and keys are per connection
            cred_i = cred_r = _interned(pool, cred_i)
        resp_addr = m.nodes[c.responder].addresses[0]
        for side, node, cred, local_id, remote_id in (
            ("initiator", c.initiator, cred_i, c.ids.initiator, c.ids.responder),
            ("responder", c.responder, cred_r, c.ids.responder, c.ids.initiator),
        ):
            ike = c.ike_for(side)  # the end's own settings (``peers``), else the connection's
            per_node[node].append(Connection(
                name=name, local_id=local_id, remote_id=remote_id,
                remote_addr=_interned(pool, Address(resp_addr)) if side == "initiator" else None,
                credentials=cred,
                ike=_interned(pool, IkePolicy(
                    proposals=tuple(ike.proposals), lifetime=_lifetime(ike, side), retransmit=_retransmit(ike),
                    dpd_delay=ike.dpd_delay, nat_keepalive=ike.nat_keepalive, fragmentation=ike.fragmentation,
                    fragment_size=ike.fragment_size, dpd_action=ike.dpd_action,
                    close_action="restart" if ike.close_action == "start" else ike.close_action,
                    keyingtries=ike.keyingtries, mobike=ike.mobike, mobike_no_nats=ike.mobike_no_nats,
                    mobike_return_routability=ike.mobike_return_routability, roam=ike.roam,
                    liveness_probe=ike.liveness_probe, message_id_sync=ike.message_id_sync,
                    replay_counter_sync=ike.replay_counter_sync, childless=ike.childless,
                    reauth_time=ike.reauth_time, make_before_break=ike.make_before_break,
                    resumption=ike.resumption, ticket_lifetime=ike.ticket_lifetime,
                    prefer_configured_proposals=ike.prefer_configured_proposals,
                    prefer_previous_dh_group=ike.prefer_previous_dh_group)),
                children=_interned(pool, tuple(_child_policy(child_name, cm, side) for child_name, cm in c.child_items(side))),
            ))
    return [
        DaemonConfig(name=n, addresses=tuple(Address(ip) for ip in nm.addresses),
                     connections=tuple(per_node[n]), cookie_threshold=nm.daemon_threshold("cookie_threshold"),
                     cookie_threshold_ip=nm.daemon_threshold("cookie_threshold_ip"),
                     block_threshold=nm.daemon_threshold("block_threshold"),
                     init_limit_half_open=nm.daemon_threshold("init_limit_half_open"), half_open_timeout=nm.half_open_timeout,
                     ticket_secret=(nm.ticket_secret or "").encode(), ticket_key_rotation=nm.ticket_key_rotation)
        for n, nm in m.nodes.items()
    ]


def inside_addresses(m: ScenarioModel, names: list[str]) -> list[str]:
    """The addresses a NAT's ``inside`` names: a node's (all of them), or one interface's (``node/interface``)."""
    out = []
    for n in names:
        node, _, iface = n.partition("/")
        interfaces = m.nodes[node].interfaces
        out += [interfaces[iface].address] if iface and interfaces is not None else m.nodes[node].addresses
    return out


def _add_interfaces(sim: Simulation, m: ScenarioModel) -> None:
    """Every multi-homed node's interfaces (``ikesim.sim.mobility``), in the order listed."""
    for name, nm in m.nodes.items():
        for iface, im in (nm.interfaces or {}).items():
            sim.add_interface(name, iface, address=im.address, priority=im.priority, up=im.up)


def _add_interface_links(sim: Simulation, m: ScenarioModel) -> None:
    """Each interface's own link, then the movement of every node that has one (its own stream ``mobility``)."""
    for name, nm in m.nodes.items():
        for iface, im in (nm.interfaces or {}).items():
            link = im.link
            sim.add_link(f"{name}/{iface}", link.to, delay=link.delay_model(), jitter=link.jitter, loss=link.loss_model(),
                         mtu=link.mtu, reorder=link.reorder, bandwidth=link.bandwidth, queue=link.queue,
                         duplicate=link.duplicate, down=[(d.start, d.until) for d in link.down],
                         drop_fragments=link.drop_fragments)
    for name, nm in m.nodes.items():
        if nm.mobility is not None:
            sim.add_mobility(name, nm.mobility.steps(sim.rng.child("mobility", name)))


def _add_boxes(sim: Simulation, m: ScenarioModel) -> None:
    """Routers and NAT boxes, with their scripted and random rebinds and reboots (``ikesim.sim.nat``)."""
    for name, r in m.routers.items():
        sim.add_router(name, addresses=r.addresses, drop_udp=r.drop_udp)
    for name, nat in m.nats.items():
        inside = inside_addresses(m, nat.inside)
        sim.add_nat(name, public=nat.public, inside=inside, kind=nat.type, idle_timeout=nat.idle_timeout,
                    drop_udp=nat.drop_udp)
        for at in nat.rebind:
            sim.nat_event(at, name, "rebind")
        for at in nat.reboot:
            sim.nat_event(at, name, "reboot")
        if nat.rebind_every is not None:
            rng, t = sim.rng.child("nat-rebind", name), 0.0
            while True:
                t += -nat.rebind_every * math.log(1.0 - rng.random())
                if t >= m.duration:
                    break
                sim.nat_event(t, name, "rebind")


def _add_cluster_events(sim: Simulation, m: ScenarioModel) -> None:
    """Every cluster's scripted failures, then its random ones (each member its own stream ``cluster-failures``)."""
    for name, c in m.clusters.items():
        for e in c.events:
            sim.cluster_event(e.at, name, e.kind, member=e.member, duration=e.duration)
        if c.failures is not None:
            rng = sim.rng.child("cluster-failures", c.failures.seed_stream or name)
            for at, kind, member in random_failures(c.failures, c.member_names(name), m.duration, rng):
                sim.cluster_event(at, name, kind, member=member)


def build_simulation(m: ScenarioModel, *, seed: int | None = None, run: int = 0,
                     trace: str | Trace | None = None) -> Simulation:
    """Build a ready-to-run Simulation from a validated scenario (seed and trace level, or a Trace, override the file's)."""
    if seed is not None:
        check_seed(seed, "seed")
    if isinstance(run, bool) or not isinstance(run, int) or run < 0:
        raise ConfigError(f"run number {run!r}: runs are numbered 0, 1, 2, ...")
    keepalives = m.data_plane.keepalives or ("analytic" if m.fleet is not None else "datagrams")
    m = expand_fleet(m, seed=seed)
    level = m.trace if trace is None else trace
    if isinstance(level, str) and level not in TRACE_LEVELS:
        raise ConfigError(f"trace {level!r}: expected one of {', '.join(TRACE_LEVELS)}")
    sim = Simulation(seed=m.seed if seed is None else seed, run=run, name=m.name, warmup=m.warmup,
                     trace=level)  # type: ignore[arg-type]
    sim.keepalive_datagrams = keepalives == "datagrams"
    try:
        for cfg in daemon_configs(m, seed=seed):
            spec = m.nodes[cfg.name].cpu
            cpu = spec.build() if spec is not None else None
            cluster = m.clusters.get(cfg.name)
            if cluster is None:
                sim.add_node(cfg, cpu=cpu)
            else:
                sim.add_cluster(cfg, cluster.member_names(cfg.name), cluster=cluster.config(),
                                sync_link=cluster.sync_link.config(), cpu=cpu)
            setting = m.nodes[cfg.name].processing
            processing = processing_model(m.processing if setting is None else setting)  # sim.processing
            for name in ([cfg.name] if cluster is None else cluster.member_names(cfg.name)):
                sim.nodes[name].set_processing(processing, sim.rng.child("node", name, "processing"))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"scenario {m.name}: {exc}") from None
    _add_cluster_events(sim, m)
    _add_interfaces(sim, m)
    _add_boxes(sim, m)
    for link in m.links:
        sim.add_link(link.between[0], link.between[1], delay=link.delay_model(), jitter=link.jitter, loss=link.loss_model(),
                     mtu=link.mtu, reorder=link.reorder, bandwidth=link.bandwidth, queue=link.queue,
                     duplicate=link.duplicate, down=[(d.start, d.until) for d in link.down], drop_fragments=link.drop_fragments,
                     cost=link.cost)
    _add_interface_links(sim, m)
    for name, c in m.connections.items():
        if c.start_action == "start":
            sim.schedule(c.start, c.initiator, "initiate", connection=name)
        for i, (child_name, _) in enumerate(c.child_items()):
            at = c.child_start(i)
            if at is not None:
                sim.schedule(at, c.initiator, "create_child", connection=name, child=child_name)
    for a in m.actions:
        sim.schedule(a.at, a.node, a.action, connection=a.connection, child=a.child, value=a.value_bytes,
                     spi=a.spi_bytes, ordinal=a.ordinal)
    if m.faults:
        sim.add_faults(fault_rules(m.faults))
    add_traffic(sim, m)
    if m.aaa or any(c.auth.eap is not None and c.auth.eap.aaa for c in m.connections.values()):
        attach_aaa(sim, m)  # RADIUS servers EAP gateways wait for (ikesim.sim.aaa)
    return sim
