"""HA gateway clusters: members sharing a virtual address, heartbeats, segments, replication and failover.

Modelled on strongSwan's ha plugin (``src/libcharon/plugins/ha``):

- **Segments** (``ha_segments.c``, ``ha_kernel.c``): every client address hashes to one of ``segments`` segments
  (CRC-32 of the address here; ClusterIP uses jhash); a member processes the datagrams of the segments it holds
  active, and every member holding a segment gets a copy (split brain). Active/passive: every segment prefers
  member 0, then 1, ...; active/active: segment *s* prefers member ``s % N`` first (strongSwan's ``i % 2``).
- **Heartbeats** (``ha_segments.c``): every ``heartbeat_delay`` (1 s) each member sends its active segments
  (HA_STATUS) over the sync link; a member that hears nothing from a peer for ``heartbeat_timeout`` (2.1 s) takes
  the segments that peer held, in preference order ("no heartbeat received, taking all segments"). A status
  showing a segment held twice or by nobody is resolved by preference ("handled twice, dropping").
- **Replication** (``ha_ike.c``, ``ha_child.c``, stateful only): after every event batch of the active member
  that changes an IKE_SA (established, CHILD_SA installed or deleted, a request sent or answered, an address
  change, deleted), its state (``IkeDaemon.ha_record``) crosses the sync link to the other members, which keep it
  passive. ESP sequence numbers (which the ha plugin does not sync; Linux's XFRM aevents do) cross every
  ``esp_sync_interval`` s.
- **Takeover**: a member taking a segment activates the replicas of that segment (``IkeDaemon.activate_ike_sa``):
  its outbound ESP sequence numbers jump ``esp_seq_margin`` past the last synchronized ones (RFC 6311's advice
  to real clusters), and with RFC 6311 negotiated it synchronizes message IDs (``ikesim.ike.ha_sync``).
  Stateless: nothing is replicated; the new member drops what it does not know (strongSwan's ``ike_sa_manager.c``
  ``checkout_by_message`` only raises ALERT_INVALID_IKE_SPI for an unknown SPI, nothing is sent; the kernel sends
  no notification for an unknown ESP SPI), and clients come back through DPD or a retransmission
  timeout and ``dpd_action = restart``: a full IKE_SA_INIT and IKE_AUTH each, the reconnect storm.
- **Failures**: ``crash`` (the member's state is lost; it stays down until ``rejoin``), ``restart`` (a crash and a
  rejoin ``downtime`` s later), ``partition`` (the sync link carries nothing for a while: split brain), ``switchover``
  (a planned move of every segment to a member, at once). A rejoined member is a standby with nothing; the members holding
  segments push it their whole state (HA_RESYNC), and it does not take its segments back (no preemption).
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ikesim.errors import ConfigError, LocalProtocolError
from ikesim.ike import events as ev
from ikesim.ike.ha_state import IkeSaRecord
from ikesim.metrics.recorder import ClusterChanged
from ikesim.sim.ha_link import SyncLink

if TYPE_CHECKING:
    import simpy

    from ikesim.ike.daemon import IkeDaemon
    from ikesim.sim.data_network import DataNetwork
    from ikesim.sim.datagram import SimDatagram
    from ikesim.sim.node import Node
    from ikesim.sim.view import EventWatcher

__all__ = ["ClusterConfig", "Cluster", "MODES", "FAILOVERS", "segment_of"]

MODES = ("active_passive", "active_active")
FAILOVERS = ("stateful", "stateless")

_HEARTBEAT_BYTES = 36
_SIZES = {"ike": 420, "child": 180, "mid": 40, "update": 120, "delete": 40}
"""Bytes on the sync link per update kind (ha_message attributes: an IKE_SA's keys and identities, a CHILD_SA's
SPIs, keys and selectors, a message ID, addresses, a delete), plus ``_ESP_BYTES`` per SA of an ESP update."""
_ESP_BYTES = 12
_KIND = {ev.IkeSaEstablished: "ike", ev.ChildSaInstalled: "child", ev.ChildSaOutboundInstalled: "child",
         ev.ChildSaDeleted: "child", ev.RekeyCompleted: "child", ev.ExchangeStarted: "mid",
         ev.RequestAnswered: "mid", ev.MessageIdsSynchronized: "mid", ev.IkeSaMoved: "update",
         ev.PeerAddressChanged: "update", ev.NatTraversalStarted: "update", ev.IkeSaDeleted: "delete"}
_RANK = {"mid": 0, "update": 1, "child": 2, "ike": 3, "delete": 4}


def segment_of(ip: str, count: int) -> int:
    """The segment (1 .. *count*) of a client address (strongSwan ``ha_kernel.get_segment``; CRC-32, not jhash)."""
    return zlib.crc32(ipaddress.ip_address(ip).packed) % count + 1


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """How a cluster is built and fails over (strongSwan ha plugin defaults)."""

    mode: str = "active_passive"
    segments: int = 1
    failover: str = "stateful"
    heartbeat_delay: float = 1.0
    heartbeat_timeout: float = 2.1
    esp_seq_margin: int = 4096
    """Outbound ESP sequence numbers jump this far past the last synchronized ones on a takeover."""
    esp_sync_interval: float = 1.0
    replay_delta: int = 4096
    """The IPSEC_REPLAY_COUNTER_SYNC increment asked of peers that negotiated it (RFC 6311)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"cluster mode {self.mode!r}: expected one of {', '.join(MODES)}")
        if self.failover not in FAILOVERS:
            raise ConfigError(f"cluster failover {self.failover!r}: expected one of {', '.join(FAILOVERS)}")
        if self.segments < 1 or self.heartbeat_delay <= 0 or self.heartbeat_timeout <= self.heartbeat_delay:
            raise ConfigError("cluster: segments >= 1 and heartbeat_timeout > heartbeat_delay > 0")
        if self.esp_seq_margin < 0 or self.esp_sync_interval <= 0 or self.replay_delta < 0:
            raise ConfigError("cluster: esp_seq_margin >= 0, esp_sync_interval > 0, replay_delta >= 0")


@dataclass(slots=True, eq=False)
class Member:
    """One cluster member: its node, what it believes and what it holds passively."""

    name: str
    index: int
    node: Node
    up: bool = True
    segments: set[int] = field(default_factory=set)
    alive: set[str] = field(default_factory=set)
    """Peers whose heartbeats it hears."""
    replicas: dict[bytes, IkeSaRecord] = field(default_factory=dict)
    """Local SPI -> the passive IKE_SA the active member synchronized."""
    esp: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    """CHILD_SA spi_in -> (outbound sequence number, inbound highest) as last synchronized."""
    tokens: dict[str, int] = field(default_factory=dict)
    boots: int = 0


class Cluster:
    """Members of one HA gateway behind a virtual address (see the module docstring)."""

    def __init__(self, env: simpy.Environment, name: str, members: Sequence[Node], config: ClusterConfig,
                 link: SyncLink, *, record: Callable[..., None], new_daemon: Callable[[str, int], IkeDaemon],
                 checker: EventWatcher | None) -> None:
        self.env, self.name, self.config, self.link = env, name, config, link
        self.members = [Member(n.name, i, n) for i, n in enumerate(members)]
        self.by_name = {m.name: m for m in self.members}
        self._record, self._new_daemon, self._checker = record, new_daemon, checker
        self.data: DataNetwork | None = None
        self.failure = 0
        self.failures: list[tuple[int, str, str, float]] = []
        """(number, kind, member, time) of every failure injected."""
        self._segment: dict[str, int] = {}
        n = len(self.members)
        self._prefer = {s: ([(s % n + k) % n for k in range(n)] if config.mode == "active_active" else list(range(n)))
                        for s in range(1, config.segments + 1)}
        for m in self.members:
            m.node.daemon.report_answers = True
            m.node.checker = self
            m.alive = {o.name for o in self.members if o is not m}
        for s, order in self._prefer.items():
            self.members[order[0]].segments.add(s)
        self._flows: dict[Any, list[Any]] | None = None
        for m in self.members:
            self._heartbeat(m, m.boots)
            for o in self.members:
                if o is not m:
                    self._watch(m, o.name)
        if config.failover == "stateful":
            env.timeout(config.esp_sync_interval).callbacks.append(lambda _e: self._esp_tick())

    # ------------------------------------------------------------------ datagrams
    def segment(self, ip: str) -> int:
        """The segment of client address *ip* (cached)."""
        s = self._segment.get(ip)
        if s is None:
            s = self._segment[ip] = segment_of(ip, self.config.segments)
        return s

    def owners(self, ip: str) -> list[Member]:
        """The up members holding the segment of *ip* active (two in a split brain, none while nobody took it)."""
        s = self.segment(ip)
        return [m for m in self.members if m.up and s in m.segments]

    def is_up(self, member: str) -> bool:
        """Whether *member* runs (a crashed one sends nothing)."""
        return self.by_name[member].up

    def deliver(self, sd: SimDatagram, arrive: Callable[[str, SimDatagram, bool], None],
                drop: Callable[[SimDatagram, str], None]) -> None:
        """A datagram to the virtual address: to every member holding the sender's segment (its fate is recorded
        once, at the first)."""
        owners = self.owners(sd.src.ip)
        if not owners:
            drop(sd, "cluster_no_owner")
            return
        for i, m in enumerate(owners):
            arrive(m.name, sd, i == 0)

    # ------------------------------------------------------------------ data plane
    def attach_data(self, data: DataNetwork) -> None:
        """Member planes release the cluster's held flows; flows sent "by the cluster" start on the preferred member."""
        self.data = data
        by_name = self.by_name
        previous = data.down
        data.down = lambda node: (not by_name[node].up if node in by_name
                                  else previous(node) if previous is not None else False)
        for m in self.members:
            self._plane_hooks(m)
        data.planes.setdefault(self.name, self.members[0].node.plane)  # type: ignore[arg-type]

    def _plane_hooks(self, m: Member) -> None:
        assert self.data is not None
        plane = m.node.plane
        if plane is None:
            plane = self.data.attach(m.node)
        data, name = self.data, self.name
        plane.on_outbound = lambda policy: data._outbound(name, policy)

    def _cluster_flows(self) -> dict[Any, list[Any]]:
        if self._flows is None:
            assert self.data is not None
            self._flows = {}
            for s in self.data.senders:
                if s.spec.flow.sender == self.name:
                    self._flows.setdefault(s.policy, []).append(s)
        return self._flows

    def _point_flows(self, m: Member, policies: Any) -> None:
        """The cluster's flows of *policies* now leave from *m*'s ESP plane."""
        if self.data is None or m.node.plane is None:
            return
        flows = self._cluster_flows()
        for policy in policies:
            for s in flows.get(policy, ()):
                s.plane = m.node.plane

    # ------------------------------------------------------------------ replication (EventWatcher)
    def on_events(self, node: Any, batch: list[Any]) -> None:
        """A member's event batch: replicate what changed (stateful), follow its CHILD_SAs with the flows."""
        if self._checker is not None:
            self._checker.on_events(node, batch)
        m = self.by_name[node.name]
        if not m.up:
            return
        dirty: dict[tuple[bytes, bytes], str] = {}
        installed = []
        for e in batch:
            kind = _KIND.get(type(e))
            if kind is not None:
                key = (e.spi_i, e.spi_r)
                if _RANK[kind] >= _RANK.get(dirty.get(key, "mid"), 0):
                    dirty[key] = kind
            if type(e) is ev.ChildSaInstalled or type(e) is ev.ChildSaActivated:
                installed.append((e.connection, e.child))
        if installed:
            self._point_flows(m, installed)
        if self.config.failover != "stateful" or not dirty:
            return
        daemon = m.node.daemon
        for (spi_i, spi_r), kind in dirty.items():
            local = spi_r if spi_r in daemon.sas else spi_i
            record = daemon.ha_record(local) if kind != "delete" else None
            if record is None and kind != "delete":
                continue
            size = _SIZES[kind] + (_SIZES["child"] * len(record.children) if kind == "ike" and record else 0)
            self._push(m, ("delete", spi_i, spi_r) if record is None else ("sa", record), size)

    def _push(self, m: Member, message: tuple[Any, ...], size: int) -> None:
        for o in self.members:
            if o is not m:
                self.link.send(m.name, o.name, size, lambda msg, o=o, boot=o.boots: self._apply(o, boot, msg),
                               message)

    def _apply(self, o: Member, boot: int, message: tuple[Any, ...]) -> None:
        """A sync message arrived at *o*: keep the passive state (unless *o* runs that IKE_SA itself)."""
        if not o.up or o.boots != boot:
            return
        if message[0] == "delete":
            for spi in message[1:]:
                o.replicas.pop(spi, None)
        elif message[0] == "sa":
            record: IkeSaRecord = message[1]
            if record.local_spi not in o.node.daemon.sas:
                o.replicas[record.local_spi] = record
        elif message[0] == "esp":
            o.esp.update(message[1])
            self._move_past(o, message[1])

    def _move_past(self, o: Member, seqs: dict[bytes, tuple[int, int]]) -> None:
        """Sequence numbers from another member for CHILD_SAs *o* runs itself (both ran them: a split brain): *o*'s
        outbound ones move past them by the margin, so the peer's replay window does not drop what *o* sends."""
        plane, daemon = o.node.plane, o.node.daemon
        if plane is None:
            return
        for spi_in, (out_seq, _top) in seqs.items():
            child = daemon.children.get(spi_in)
            if child is None:
                continue
            out = plane.esp.outbound((self._connection(o, child), child.name))
            if out is not None and out.spi == child.spi_out and out.seq < out_seq + self.config.esp_seq_margin:
                out.seq = out_seq + self.config.esp_seq_margin

    def _esp_tick(self) -> None:
        """Every ``esp_sync_interval``: each active member sends its SAs' sequence numbers (XFRM aevents)."""
        self.env.timeout(self.config.esp_sync_interval).callbacks.append(lambda _e: self._esp_tick())
        for m in self.members:
            plane = m.node.plane
            if not m.up or plane is None or not m.segments:
                continue
            seqs: dict[bytes, tuple[int, int]] = {}
            esp = plane.esp
            for spi_in, child in m.node.daemon.children.items():
                inbound = esp.inbound(spi_in)
                out = esp.outbound((self._connection(m, child), child.name))
                if inbound is None and out is None:
                    continue
                seqs[spi_in] = (out.seq if out is not None and out.spi == child.spi_out else 0,
                                inbound.window.top if inbound is not None else 0)
            if seqs:
                self._push(m, ("esp", seqs), 24 + _ESP_BYTES * len(seqs))

    @staticmethod
    def _connection(m: Member, child: Any) -> str:
        sa = m.node.daemon.sas.get(child.ike_spi)
        return sa.name if sa is not None else ""

    # ------------------------------------------------------------------ heartbeats and segments
    def _heartbeat(self, m: Member, boot: int) -> None:
        """HA_STATUS with *m*'s active segments to every peer, every ``heartbeat_delay``."""
        if not m.up or m.boots != boot:
            return
        status = frozenset(m.segments)
        for o in self.members:
            if o is not m:
                self.link.send(m.name, o.name, _HEARTBEAT_BYTES,
                               lambda st, o=o, ob=o.boots: self._status(o, ob, m.name, st), status)
        self.env.timeout(self.config.heartbeat_delay).callbacks.append(lambda _e: self._heartbeat(m, boot))

    def _watch(self, m: Member, peer: str) -> None:
        token = m.tokens[peer] = m.tokens.get(peer, 0) + 1
        boot = m.boots
        self.env.timeout(self.config.heartbeat_timeout).callbacks.append(
            lambda _e: self._timeout(m, boot, peer, token))

    def _timeout(self, m: Member, boot: int, peer: str, token: int) -> None:
        if not m.up or m.boots != boot or m.tokens.get(peer) != token or peer not in m.alive:
            return
        m.alive.discard(peer)
        taken = [s for s in self._prefer if self._preferred(m, s) is m and s not in m.segments]
        self._note(m, "detected", taken)
        self.take(m, taken)

    def _preferred(self, m: Member, s: int) -> Member:
        """Who should hold segment *s* as *m* sees it: the first of its preference order *m* believes runs."""
        for i in self._prefer[s]:
            o = self.members[i]
            if o is m or o.name in m.alive:
                return o
        return m

    def _status(self, m: Member, boot: int, peer: str, segments: frozenset[int]) -> None:
        """A heartbeat from *peer* reached *m* (strongSwan ``handle_status``)."""
        if not m.up or m.boots != boot:
            return
        rejoined = peer not in m.alive
        m.alive.add(peer)
        self._watch(m, peer)
        twice = segments & m.segments
        drop = [s for s in twice if self._preferred(m, s) is not m]
        kept = sorted(s for s in twice if self._preferred(m, s) is m)
        missing = [s for s in self._prefer if s not in segments and s not in m.segments
                   and self._preferred(m, s) is m]
        if drop:
            self.drop(m, drop)
        if kept:
            self._keep(m, kept)
        if missing:
            self.take(m, missing)
        if rejoined and m.segments and self.config.failover == "stateful":
            self._resync(m, self.by_name[peer])

    def _resync(self, m: Member, peer: Member) -> None:
        """HA_RESYNC: *m* pushes every IKE_SA it runs to *peer* (a rejoined member, or after a split brain)."""
        daemon, count = m.node.daemon, 0
        for spi in list(daemon.sas):
            record = daemon.ha_record(spi)
            if record is not None and record.local_spi == spi:
                count += 1
                self.link.send(m.name, peer.name, _SIZES["ike"] + _SIZES["child"] * len(record.children),
                               lambda msg, b=peer.boots: self._apply(peer, b, msg), ("sa", record))
        self._note(m, "resync", [], count)

    def take(self, m: Member, segments: Sequence[int]) -> None:
        """*m* holds *segments* active from now on; stateful: it activates their replicas (a takeover)."""
        segments = [s for s in segments if s not in m.segments]
        if not segments or not m.up:
            return
        m.segments.update(segments)
        self._note(m, "take", segments)
        if self.config.failover != "stateful":
            return
        now, daemon, wanted = self.env.now, m.node.daemon, set(segments)
        records = [r for spi, r in sorted(m.replicas.items()) if self.segment(r.peer.ip) in wanted]
        taken = []
        for r in records:
            del m.replicas[r.local_spi]
            try:
                daemon.activate_ike_sa(r, now, replay_delta=self.config.replay_delta if r.replay_sync else 0)
            except LocalProtocolError:
                continue
            taken.append(r)
        m.node.service()
        self._jump_sequence_numbers(m, taken)
        self._note(m, "takeover", segments, len(taken))

    def _jump_sequence_numbers(self, m: Member, taken: list[IkeSaRecord]) -> None:
        """Outbound ESP sequence numbers past the last synchronized ones by the margin; inbound windows from the last
        synchronized highest (plus the replay increment the peer was asked for, RFC 6311)."""
        plane = m.node.plane
        if plane is None:
            return
        esp, margin = plane.esp, self.config.esp_seq_margin
        for r in taken:
            delta = self.config.replay_delta if r.replay_sync and r.mid_sync else 0
            for c in r.children:
                out_seq, in_top = m.esp.pop(c.spi_in, (0, 0))
                out = esp.outbound((r.connection, c.child))
                if out is not None and out.spi == c.spi_out:
                    out.seq = out_seq + margin
                inbound = esp.inbound(c.spi_in)
                if inbound is not None:
                    inbound.window.top = in_top + delta

    def _keep(self, m: Member, segments: Sequence[int]) -> None:
        """A split brain ends and *m* keeps *segments* the other member ran too: its state may be behind what the
        peers saw from the other, so it acts as a member taking over (strongSwan's "handled twice, taking"): its
        outbound ESP sequence numbers jump by the margin and, with RFC 6311, it synchronizes message IDs."""
        self._note(m, "take", segments)
        if self.config.failover != "stateful":
            return
        daemon, wanted, now = m.node.daemon, set(segments), self.env.now
        records = []
        for spi, sa in sorted(daemon.sas.items()):
            if spi == sa.local_spi and self.segment(sa.peer.ip) in wanted:
                record = daemon.ha_record(spi)
                if record is not None:
                    records.append(record)
                    m.esp.update(self._esp_seqs(m, record))
                    daemon.synchronize_message_ids(spi, now, replay_delta=self.config.replay_delta)
        m.node.service()
        self._jump_sequence_numbers(m, records)
        self._note(m, "takeover", segments, len(records))

    def _esp_seqs(self, m: Member, record: IkeSaRecord) -> dict[bytes, tuple[int, int]]:
        """*m*'s own (outbound, inbound highest) sequence numbers of *record*'s CHILD_SAs."""
        plane, out = m.node.plane, {}
        if plane is None:
            return {}
        for c in record.children:
            sa = plane.esp.outbound((record.connection, c.child))
            inbound = plane.esp.inbound(c.spi_in)
            out[c.spi_in] = (sa.seq if sa is not None and sa.spi == c.spi_out else 0,
                             inbound.window.top if inbound is not None else 0)
        return out

    def drop(self, m: Member, segments: Sequence[int]) -> None:
        """*m* stops holding *segments*: its IKE_SAs there become passive replicas (no Delete is sent)."""
        segments = [s for s in segments if s in m.segments]
        if not segments:
            return
        m.segments.difference_update(segments)
        self._note(m, "drop", segments)
        daemon, wanted = m.node.daemon, set(segments)
        policies, seqs = [], {}
        for spi, sa in list(daemon.sas.items()):
            if spi != sa.local_spi or self.segment(sa.peer.ip) not in wanted:
                continue
            record = daemon.ha_record(spi)
            if record is not None and self.config.failover == "stateful":
                m.replicas[spi] = record
                seqs.update(self._esp_seqs(m, record))
            policies += [(sa.name, c.name) for c in sa.children.values()]
            daemon.remove_ike_sa(sa, "ha_passive")
        m.node.service()
        if seqs:  # its last sequence numbers, for the member that keeps or takes the segment
            self._push(m, ("esp", seqs), 24 + _ESP_BYTES * len(seqs))
        holder = next((o for o in self.members if o is not m and o.up and wanted & o.segments), None)
        if holder is not None:  # a split brain ends: the flows go back to the member that keeps the segment
            self._point_flows(holder, policies)

    # ------------------------------------------------------------------ failures
    def _begin(self, kind: str, member: str) -> int:
        self.failure += 1
        self.failures.append((self.failure, kind, member, self.env.now))
        self._open_windows()
        return self.failure

    def _open_windows(self) -> None:
        """The traffic tables attribute losses from now on to this failure (window ``failover``)."""
        if self.data is None:
            return
        log = self.data.log
        for connection in log.connections_at({self.name, *self.by_name}):
            log.open_window(connection, "failover", f"{self.name}#{self.failure}", self.env.now)

    def crash(self, member: str) -> None:
        """*member* fails: its daemon, queues and replicas are gone; it stays down until ``rejoin``."""
        m = self._member(member)
        if not m.up:
            return
        self._begin("crash", member)
        self._note(m, "crash", [])
        self._down(m)

    def _down(self, m: Member) -> None:
        m.up = False
        m.segments.clear()
        m.replicas.clear()
        m.esp.clear()
        m.boots += 1
        self.link.crashed(m.name)
        node = m.node
        self._record_lost(m)
        node.daemon = self._new_daemon(m.name, m.boots)
        node.daemon.report_answers = True
        node._jobs = None  # noqa: SLF001 - the CPU's queue is lost with the process
        node._busy = 0  # noqa: SLF001
        if self.data is not None:  # the flows keep the dead plane: what they send is lost as ``member_down``
            node.plane = None
            self._plane_hooks(m)

    def _record_lost(self, m: Member) -> None:
        """The SAs *m*'s daemon held go with it: recorded as deleted (``member_crashed``) so the tables end them
        (nothing is sent, and the daemon is not told: it is gone)."""
        now, record = self.env.now, self._record
        for spi, sa in sorted(m.node.daemon.sas.items()):
            if spi != sa.local_spi:
                continue
            for child in sa.children.values():
                record(ev.ChildSaDeleted(**sa.ids(), child=child.name, spi_in=child.spi_in, spi_out=child.spi_out,
                                         reason="member_crashed"), now=now, node=m.name)
            record(ev.IkeSaDeleted(**sa.ids(), reason="member_crashed"), now=now, node=m.name)

    def rejoin(self, member: str) -> None:
        """*member* runs again, as a standby with nothing: heartbeats bring it the others' state (HA_RESYNC)."""
        m = self._member(member)
        if m.up:
            return
        m.up = True
        m.alive = set()
        self._note(m, "rejoin", [])
        self._heartbeat(m, m.boots)

    def restart(self, member: str, downtime: float) -> None:
        """*member*'s daemon restarts: a crash, and a rejoin *downtime* s later."""
        m = self._member(member)
        if not m.up:
            return
        self._begin("restart", member)
        self._note(m, "restart", [])
        self._down(m)
        self.env.timeout(downtime).callbacks.append(lambda _e: self.rejoin(member))

    def partition(self, duration: float) -> None:
        """The sync link carries nothing for *duration* s (split brain)."""
        self._begin("partition", "")
        self.link.partitioned = True
        self._note(self.members[0], "partition", [])

        def heal(_e: object) -> None:
            self.link.partitioned = False
            self._note(self.members[0], "heal", [])
        self.env.timeout(duration).callbacks.append(heal)

    def switchover(self, target: str) -> None:
        """A planned move of every segment to *target* (strongSwan ``ha.ctl``: the target activates the segments, its
        HA_SEGMENT_TAKE makes the others drop them): the others' IKE_SAs become passive, *target* activates its
        replicas, at the same instant; updates still on the sync link are lost, as there."""
        t = self._member(target)
        self._begin("switchover", target)
        self._note(t, "switchover", [])
        moving = [s for s in self._prefer if s not in t.segments]
        for m in self.members:
            if m is not t and m.up:
                self.drop(m, [s for s in moving if s in m.segments])
        self.take(t, moving)

    def _member(self, name: str) -> Member:
        m = self.by_name.get(name)
        if m is None:
            raise ConfigError(f"cluster {self.name!r} has no member {name!r}")
        return m

    def _note(self, m: Member, kind: str, segments: Sequence[int], count: int = 0) -> None:
        self._record(ClusterChanged(cluster=self.name, member=m.name, kind=kind, failure=self.failure,
                                    segments=" ".join(map(str, sorted(segments))), count=count),
                     now=self.env.now, node=m.name)
