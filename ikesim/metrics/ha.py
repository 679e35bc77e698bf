"""HA failovers: one row per tunnel a cluster failure touched, and how the tunnel came back (RFC 6311).

A failure is a ``ClusterChanged`` of kind ``crash``, ``restart``, ``partition`` or ``switchover``
(``ikesim.sim.cluster``); its number is ``failure``. The tunnels it touches, identified by connection name (a
gateway's connection is named as its client's):

- ``crash``, ``restart``: every connection the failed member had an established IKE_SA for at that instant
  (active/active: only that member's segments);
- ``partition``: every tunnel of the cluster (each member's IKE_SAs);
- ``switchover``: the tunnels of the members that dropped segments (their ``drop`` at the switchover).

Per tunnel: *detected* at the failure's first ``detected`` (a switchover at its own time), *taken* by the member
whose ``take`` covered the tunnel's segment, and *IKE restored* at the first sign, at the client or a member still
up, that the tunnel's IKE works again, once its segment was taken (a partition: from the failure on):

- an exchange on one of the tunnel's IKE_SAs completed ``ok`` (``ExchangeCompleted``), or an RFC 6311
  synchronization completed on it (``MessageIdsSynchronized``; the client's comes first): method ``sync`` if the
  survivor activated the replicated IKE_SA (``IkeSaActivated``), else ``kept`` (a partition: the old member still
  answered);
- a new IKE_SA of the connection was established (``IkeSaEstablished`` without ``rekey_of``, RFC 7296 §1.2; the
  survivor's, as responder, comes first): method ``reauth`` (stateless failover, or a replica that did not work),
  ``resume`` if that IKE_SA came from IKE_SESSION_RESUME (RFC 5723);
- a partition's tunnel still run, when the split brain ends, by the member keeping its segment, and restored by
  nothing before: method ``kept``, restored at the failure itself (no IKE interruption);
- neither before the run ended: method ``none``.

Retransmissions are the client's on that connection from the failure to the restore. Packets lost and the
traffic interruption come from the traffic tables' outages of the ``failover`` window the cluster opens on every
connection at the failure (``window``: ``cluster#failure``). The rows are built as events are recorded; the
summary adds per failure the time until every tunnel was back, the survivors' peak of new IKE_SAs per second (the
reconnect storm) and, with a CPU model, their CPU and queue peaks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ikesim.ike import events as ev
from ikesim.metrics.builders import Handler
from ikesim.metrics.recorder import ClusterChanged
from ikesim.metrics.stats import percentiles

__all__ = ["HaRows", "HA_COLUMNS", "FAILURE_KINDS", "ha_table", "ha_summary"]

HA_COLUMNS = [
    "cluster", "failure", "kind", "member", "failed_at", "connection", "client", "detected_at", "detection_s",
    "taken_by", "ike_restored_at", "ike_interruption_s", "method", "retransmissions", "packets_lost",
    "traffic_interruption_s", "window",
]

FAILURE_KINDS = ("crash", "restart", "partition", "switchover")
"""The ``ClusterChanged`` kinds that start a failure (their ends, ``rejoin`` and ``heal``, do not)."""


@dataclass(slots=True)
class _Failure:
    cluster: str
    number: int
    kind: str
    member: str
    """The failed member (a switchover: its target; a partition: empty)."""
    at: float
    detected_at: float = math.nan
    rows: dict[str, _Tunnel] = field(default_factory=dict)
    """Connection -> its row."""


@dataclass(slots=True)
class _Tunnel:
    failure: _Failure
    connection: str
    client: str
    segment: int
    spis: set[bytes]
    """spi_i of the tunnel's IKE_SAs: those at the failure, their rekeys, and a re-established one."""
    halves: set[bytes]
    """Both SPIs of each IKE_SA in ``spis`` (``rekey_of`` names the local one)."""
    taken_by: str = ""
    taken_at: float = math.nan
    activated: bool = False
    restored_at: float = math.nan
    method: str = ""
    retransmissions: int = 0


@dataclass(slots=True)
class _Held:
    connection: str
    spi_r: bytes
    peer_ip: str
    """The client's address as the member sees it (its segment's key)."""


@dataclass(slots=True)
class _Cluster:
    members: tuple[str, ...]
    segment: Callable[[str], int] | None


class HaRows:
    """Builds the ``ha`` table from events as they are recorded (see the module docstring)."""

    def __init__(self) -> None:
        self.clusters: dict[str, _Cluster] = {}
        self._cluster_of: dict[str, str] = {}
        """Member -> its cluster."""
        self.failures: list[_Failure] = []
        self._current: dict[str, _Failure] = {}
        """Cluster -> its latest failure."""
        self._held: dict[str, dict[bytes, _Held]] = {}
        """Member -> spi_i -> its established IKE_SAs."""
        self._ends: dict[bytes, set[str]] = {}
        """spi_i -> the nodes that established it."""
        self._by_spi: dict[bytes, list[_Tunnel]] = {}
        """spi_i or spi_r -> the rows whose tunnel it belongs to."""
        self._open: dict[str, list[_Tunnel]] = {}
        """Connection -> its rows not yet restored."""
        self.reauths: list[tuple[float, str]] = []
        """(time, member) of every new IKE_SA a cluster member established as responder (not a rekey)."""
        self.handlers: dict[type, Handler] = {
            ClusterChanged: self.changed, ev.IkeSaEstablished: self.established, ev.IkeSaActivated: self.activated,
            ev.IkeSaDeleted: self.deleted, ev.ExchangeCompleted: self.completed,
            ev.MessageIdsSynchronized: self.synchronized, ev.Retransmitted: self.retransmitted,
            ev.PeerAddressChanged: self.peer_moved, ev.IkeSaMoved: self.peer_moved,
            ev.NatTraversalStarted: self.peer_moved, ev.IkeSaResumed: self.resumed,
        }
        self._resumed: set[bytes] = set()
        """spi_i of the IKE_SAs set up by IKE_SESSION_RESUME (RFC 5723): their restore's method is ``resume``."""

    def add_cluster(self, name: str, members: Sequence[str], segment: Callable[[str], int] | None = None) -> None:
        """Cluster *name* has *members*; *segment* maps a client address to its segment (``Cluster.segment``)."""
        self.clusters[name] = _Cluster(tuple(members), segment)
        for m in members:
            self._cluster_of[m] = name
            self._held.setdefault(m, {})

    # --- the members' IKE_SAs ------------------------------------------------------------------
    def established(self, t: float, node: str, e: ev.IkeSaEstablished) -> None:
        """An IKE_SA at *node*: held by a member; a rekey stays its tunnel's; a new one of an open tunnel restores it."""
        self._ends.setdefault(e.spi_i, set()).add(node)
        if node in self._cluster_of:
            self._held[node][e.spi_i] = _Held(e.connection, e.spi_r, e.peer.ip)
            if not e.initiator and e.rekey_of is None:
                self.reauths.append((t, node))
        if e.rekey_of is not None:
            for row in self._by_spi.get(e.rekey_of, ()):
                self._join(row, e.spi_i, e.spi_r)
            return
        for row in list(self._open.get(e.connection, ())):
            if self._counts(row, t, node):
                self._join(row, e.spi_i, e.spi_r)
                self._restore(row, t, "resume" if e.spi_i in self._resumed else "reauth")

    def resumed(self, t: float, node: str, e: ev.IkeSaResumed) -> None:
        """IKE_SESSION_RESUME answered (RFC 5723 §4.3.2): the IKE_SA it makes restores by ``resume``, not ``reauth``."""
        self._resumed.add(e.spi_i)

    def activated(self, t: float, node: str, e: ev.IkeSaActivated) -> None:
        """A member took a replicated IKE_SA over: it holds it, and its tunnel is kept by synchronization."""
        self._ends.setdefault(e.spi_i, set()).add(node)
        if node in self._cluster_of:
            self._held[node][e.spi_i] = _Held(e.connection, e.spi_r, e.peer.ip)
        for row in self._by_spi.get(e.spi_i, ()):
            if self._survivor(row.failure, node):
                row.activated = True

    def deleted(self, t: float, node: str, e: ev.IkeSaDeleted) -> None:
        """An IKE_SA left *node* (deleted, rekeyed, or made passive by a segment drop)."""
        held = self._held.get(node)
        if held is not None:
            held.pop(e.spi_i, None)
        ends = self._ends.get(e.spi_i)
        if ends is not None:
            ends.discard(node)
            if not ends:
                del self._ends[e.spi_i]

    def peer_moved(self, t: float, node: str, e: Any) -> None:
        """The client's address changed as a member sees it (RFC 7296 §2.23, RFC 4555, NAT-T): its segment's key."""
        held = self._held.get(node, {}).get(e.spi_i)
        if held is not None:
            held.peer_ip = (e.new if isinstance(e, ev.PeerAddressChanged) else e.peer).ip

    # --- failures --------------------------------------------------------------------------------
    def changed(self, t: float, node: str, e: ClusterChanged) -> None:
        """A failure begins (rows for the tunnels it touches), is detected, or a member takes segments."""
        if e.cluster not in self.clusters:
            self.add_cluster(e.cluster, [e.member])
        if e.kind in FAILURE_KINDS:
            f = _Failure(e.cluster, e.failure, e.kind, "" if e.kind == "partition" else e.member, t)
            self.failures.append(f)
            self._current[e.cluster] = f
            if e.kind == "switchover":
                f.detected_at = t
                return
            members = self.clusters[e.cluster].members if e.kind == "partition" else (e.member,)
            for m in members:
                self._touch(f, m)
            if e.kind in ("crash", "restart"):
                self._held[e.member].clear()  # the daemon is gone with its IKE_SAs (no IkeSaDeleted follows)
            return
        f = self._current.get(e.cluster)
        if f is None or f.number != e.failure:
            return
        if e.kind == "detected" and math.isnan(f.detected_at):
            f.detected_at = t
        elif e.kind == "drop" and f.kind == "switchover" and t == f.at:
            self._touch(f, e.member)
        elif e.kind == "take":
            taken = {int(s) for s in e.segments.split()}
            held = self._held.get(e.member, {})
            for row in f.rows.values():
                if not row.taken_by and (row.segment in taken or row.segment < 0):
                    row.taken_by, row.taken_at = e.member, t
                if (f.kind == "partition" and math.isnan(row.restored_at) and t > f.at
                        and any(spi in held for spi in row.spis)):
                    # the split brain ends and the member keeping the segment still runs the tunnel's IKE_SA, which
                    # nothing interrupted: kept, no IKE interruption (traffic losses, if any, are in the traffic table)
                    self._restore(row, f.at, "kept")

    def _touch(self, f: _Failure, member: str) -> None:
        """Rows of failure *f* for the tunnels *member* holds (one per connection, the first member's counts)."""
        c = self.clusters[f.cluster]
        gateway = {*c.members, f.cluster}
        for spi_i, h in self._held[member].items():
            row = f.rows.get(h.connection)
            if row is None:
                client = min(self._ends.get(spi_i, set()) - gateway, default="")
                segment = c.segment(h.peer_ip) if c.segment is not None else -1
                row = f.rows[h.connection] = _Tunnel(f, h.connection, client, segment, set(), set())
                self._open.setdefault(h.connection, []).append(row)
            self._join(row, spi_i, h.spi_r)

    def _join(self, row: _Tunnel, spi_i: bytes, spi_r: bytes) -> None:
        row.spis.add(spi_i)
        for spi in (spi_i, spi_r):
            if spi not in row.halves:
                row.halves.add(spi)
                self._by_spi.setdefault(spi, []).append(row)

    def _counts(self, row: _Tunnel, t: float, node: str) -> bool:
        """Whether an event at *node* at *t* can show *row*'s tunnel restored: at its client or a member still up,
        once its segment was taken (a partition: from the failure on)."""
        f = row.failure
        if node != row.client and not self._survivor(f, node):
            return False
        return f.kind == "partition" or t >= row.taken_at

    def _survivor(self, f: _Failure, node: str) -> bool:
        """Whether *node* is a member of *f*'s cluster still up after it (all but a crashed or restarted one)."""
        return self._cluster_of.get(node) == f.cluster and not (f.kind in ("crash", "restart") and node == f.member)

    def _restore(self, row: _Tunnel, t: float, method: str) -> None:
        row.restored_at, row.method = t, method
        open_ = self._open.get(row.connection, [])
        if row in open_:
            open_.remove(row)

    def _on_tunnel(self, t: float, node: str, spi_i: bytes) -> None:
        """The tunnel of IKE_SA *spi_i* works at *node*: restore its open rows."""
        for row in self._by_spi.get(spi_i, ()):
            if math.isnan(row.restored_at) and spi_i in row.spis and self._counts(row, t, node):
                self._restore(row, t, "sync" if row.activated else "kept")

    # --- the restore ------------------------------------------------------------------------------
    def completed(self, t: float, node: str, e: ev.ExchangeCompleted) -> None:
        """An exchange completed: ``ok`` on one of a tunnel's IKE_SAs restores it."""
        if e.outcome == "ok":
            self._on_tunnel(t, node, e.spi_i)

    def synchronized(self, t: float, node: str, e: ev.MessageIdsSynchronized) -> None:
        """An RFC 6311 synchronization completed on this end."""
        self._on_tunnel(t, node, e.spi_i)

    def retransmitted(self, t: float, node: str, e: ev.Retransmitted) -> None:
        """The client retransmitted on the connection of an open tunnel."""
        for row in self._open.get(e.connection, ()):
            if node == row.client:
                row.retransmissions += 1

    # --- the table -------------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """The rows so far (packets and traffic columns empty: ``ha_table`` fills them)."""
        out = []
        for f in self.failures:
            for row in f.rows.values():
                out.append({
                    "cluster": f.cluster, "failure": f.number, "kind": f.kind, "member": f.member, "failed_at": f.at,
                    "connection": row.connection, "client": row.client, "detected_at": f.detected_at,
                    "detection_s": f.detected_at - f.at, "taken_by": row.taken_by,
                    "ike_restored_at": row.restored_at, "ike_interruption_s": row.restored_at - f.at,
                    "method": row.method or "none", "retransmissions": row.retransmissions, "packets_lost": 0,
                    "traffic_interruption_s": math.nan, "window": f"{f.cluster}#{f.number}",
                })
        return pd.DataFrame(out, columns=HA_COLUMNS)

    def failures_frame(self) -> pd.DataFrame:
        """One row per failure: cluster, failure, kind, member, failed_at, and its survivors (space-separated)."""
        cols = ["cluster", "failure", "kind", "member", "failed_at", "survivors"]
        rows = []
        for f in self.failures:
            survivors = [m for m in self.clusters[f.cluster].members if self._survivor(f, m)]
            rows.append((f.cluster, f.number, f.kind, f.member, f.at, " ".join(survivors)))
        return pd.DataFrame(rows, columns=cols)


def ha_table(rows: HaRows, outages: pd.DataFrame) -> pd.DataFrame:
    """One row per (tunnel, failure), with the packets lost and the longest outage of the tunnel's ``failover``
    window (its connection's outages attributed to ``cluster#failure``)."""
    df = rows.frame()
    if not len(df) or not len(outages) or "event_id" not in outages.columns:
        return df
    mine = outages[outages["event"] == "failover"]
    lost = mine.groupby(["event_id", "connection"])["packets"].sum()
    longest = mine.groupby(["event_id", "connection"])["time_to_restore"].max()
    keys = list(zip(df["window"], df["connection"], strict=True))
    df["packets_lost"] = [int(lost.get(k, 0)) for k in keys]
    df["traffic_interruption_s"] = [float(longest.get(k, math.nan)) for k in keys]
    return df


def _failure_figures(df: pd.DataFrame, failures: pd.DataFrame, reauths: Sequence[tuple[float, str]],
                     cpu: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per failure: tunnels, time until all were back, survivors' new IKE_SAs per 1 s bin and CPU peaks."""
    out = []
    times = np.array([t for t, _m in reauths], dtype=np.float64)
    nodes = np.array([m for _t, m in reauths], dtype=object)
    for f in failures.itertuples(index=False):
        later = failures[(failures["cluster"] == f.cluster) & (failures["failed_at"] > f.failed_at)]
        until = float(later["failed_at"].min()) if len(later) else math.inf
        survivors = f.survivors.split()
        tunnels = df[(df["cluster"] == f.cluster) & (df["failure"] == f.failure)]
        restored = tunnels["ike_restored_at"].to_numpy(float)
        all_back = (round(float(restored.max() - f.failed_at), 6) if len(restored) and not np.isnan(restored).any()
                    else None)
        mine = (times >= f.failed_at) & (times < until) & np.isin(nodes, survivors)
        bins = np.floor(times[mine] - f.failed_at).astype(np.int64)
        figures: dict[str, Any] = {
            "cluster": f.cluster, "failure": int(f.failure), "kind": f.kind, "member": f.member,
            "failed_at": float(f.failed_at), "tunnels": len(tunnels), "all_restored_s": all_back,
            "reauth_per_s_peak": int(np.bincount(bins).max()) if len(bins) else 0,
            "survivor_cpu_peak": None, "survivor_queue_peak": None,
        }
        if cpu is not None and len(cpu):
            bins_of = cpu[cpu["node"].isin(survivors) & (cpu["time"] >= math.floor(f.failed_at)) & (cpu["time"] < until)]
            if len(bins_of):
                figures["survivor_cpu_peak"] = round(float(bins_of["utilisation"].max()), 6)
                figures["survivor_queue_peak"] = int(bins_of["queue"].max())
        out.append(figures)
    return out


def ha_summary(df: pd.DataFrame, rows: HaRows | None = None, cpu: pd.DataFrame | None = None) -> dict[str, Any]:
    """Counts by method, percentiles of detection, IKE and traffic interruption, packets lost; per failure (with
    *rows*) the time until every tunnel was back and the survivors' reconnect and (with a *cpu* table) CPU peaks."""
    if rows is not None:
        per_failure = _failure_figures(df, rows.failures_frame(), rows.reauths, cpu)
    else:  # the table alone: its failures, without survivors (no reconnect or CPU figures)
        failures = df[["cluster", "failure", "kind", "member", "failed_at"]].drop_duplicates().assign(survivors="")
        per_failure = _failure_figures(df, failures, (), None)
    peaks = [f["survivor_cpu_peak"] for f in per_failure if f["survivor_cpu_peak"] is not None]
    queues = [f["survivor_queue_peak"] for f in per_failure if f["survivor_queue_peak"] is not None]
    return {
        "count": len(df),
        "failures": len(per_failure),
        "by_method": {str(k): int(v) for k, v in df["method"].value_counts().sort_index().items()},
        "detection_s": percentiles([float(x) for x in df["detection_s"].dropna()]),
        "ike_interruption_s": percentiles([float(x) for x in df["ike_interruption_s"].dropna()]),
        "traffic_interruption_s": percentiles([float(x) for x in df["traffic_interruption_s"].dropna()]),
        "unrestored": int(df["ike_restored_at"].isna().sum()),
        "packets_lost": int(df["packets_lost"].sum()),
        "retransmissions": int(df["retransmissions"].sum()),
        "all_restored_s": percentiles([f["all_restored_s"] for f in per_failure if f["all_restored_s"] is not None]),
        "reauth_per_s_peak": max((f["reauth_per_s_peak"] for f in per_failure), default=0),
        "survivor_cpu_peak": max(peaks) if peaks else None,
        "survivor_queue_peak": max(queues) if queues else None,
        "per_failure": per_failure,
    }
