"""Handovers: one row per interface that went down under a tunnel, and how the tunnel came back (RFC 4555).

A handover starts when an interface goes down (``InterfaceChanged``) whose address an established IKE_SA of
that host uses. It is *detected* when the host acts on it: it roams at once (``IkeSaRoaming``, what strongSwan
does on a kernel address event), or notices later by DPD or a retransmission timeout. It is *restored* by
what brings the peer to the new path:

- ``mobike``: the peer moved the IKE_SA and its CHILD_SAs on UPDATE_SA_ADDRESSES (RFC 4555 §3.5);
- ``follow``: the peer followed an authenticated message from the new address (RFC 7296 §2.23);
- ``reestablish``: a new IKE_SA of the connection installed a CHILD_SA on the host (a full IKE_SA_INIT and
  IKE_AUTH: strongSwan's reauthentication on an address change, or ``dpd_action``/``close_action`` = restart).

Exchanges and retransmissions count those of the host and its peer from the interface going down until the
restore. The rows are built as events arrive (a few per handover, at every trace level); packets lost and
the data outage come from the traffic tables, whose ``handover`` window the simulation opens at the same
instant (``window`` names it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ikesim.ike import events as ev
from ikesim.metrics.builders import Handler
from ikesim.metrics.recorder import InterfaceChanged

__all__ = ["HandoverRows", "HANDOVER_COLUMNS", "handovers_table", "handover_summary"]

HANDOVER_COLUMNS = [
    "node", "peer", "connection", "interface", "address", "down_at", "to_interface", "to_address", "up_at",
    "detected_at", "detection_s", "detected_by", "started_at", "restored_at", "restore_s", "method",
    "exchanges", "retransmissions", "cpu_s", "packets_lost", "outage_s", "window", "ike_sa",
]


@dataclass(slots=True)
class _Handover:
    node: str
    connection: str
    interface: str
    address: str
    down_at: float
    spis: set[bytes]
    """spi_i of the IKE_SAs concerned (and of the new one once re-established)."""
    detected_at: float = math.nan
    detected_by: str = ""
    started_at: float = math.nan
    restored_at: float = math.nan
    method: str = ""
    to_address: str = ""
    exchanges: int = 0
    retransmissions: int = 0
    first_spi: bytes = b""
    peer: str = ""
    """The node at the other end (the first one seen acting on the IKE_SA)."""


class HandoverRows:
    """Builds the handovers table from events as they are recorded (see the module docstring)."""

    def __init__(self) -> None:
        self.rows: list[_Handover] = []
        self._open: dict[str, list[_Handover]] = {}
        """node -> its handovers not yet restored."""
        self._local: dict[tuple[str, bytes], tuple[str, str]] = {}
        """(node, spi_i) -> (local IP, connection) of every established IKE_SA."""
        self._iface: dict[tuple[str, str], tuple[str, float]] = {}
        """(node, address) -> (interface, when it last came up)."""
        self._by_spi: dict[bytes, _Handover] = {}
        self._ends: dict[bytes, set[str]] = {}
        """spi_i -> the nodes that established it (the host and its peer)."""
        self._resumed: set[bytes] = set()
        """spi_i of the IKE_SAs set up by IKE_SESSION_RESUME (RFC 5723): their restore's method is ``resume``."""
        self.handlers: dict[type, Handler] = {
            InterfaceChanged: self.interface, ev.IkeSaEstablished: self.established, ev.IkeSaMoved: self.moved,
            ev.NatTraversalStarted: self.floated, ev.IkeSaDeleted: self.deleted, ev.IkeSaRoaming: self.roaming,
            ev.ExchangeStarted: self.exchange, ev.Retransmitted: self.retransmitted,
            ev.DeadPeerDetected: self.dead, ev.PeerAddressChanged: self.followed,
            ev.ChildSaInstalled: self.installed, ev.IkeSaResumed: self.resumed,
        }

    # --- state of the hosts' IKE_SAs -----------------------------------------------------------
    def established(self, t: float, node: str, e: ev.IkeSaEstablished) -> None:
        """Where an IKE_SA of *node* sends from, and who its two ends are."""
        self._local[(node, e.spi_i)] = (e.local.ip, e.connection)
        self._ends.setdefault(e.spi_i, set()).add(node)
        if e.rekey_of is None:
            for h in self._open.get(node, ()):
                if e.connection == h.connection and e.spi_i not in h.spis and not math.isnan(h.detected_at):
                    h.spis.add(e.spi_i)
                    self._by_spi[e.spi_i] = h

    def floated(self, t: float, node: str, e: ev.NatTraversalStarted) -> None:
        """NAT-T moved the IKE_SA to port 4500 (its IP is unchanged)."""
        if (node, e.spi_i) in self._local:
            self._local[(node, e.spi_i)] = (e.local.ip, e.connection)

    def deleted(self, t: float, node: str, e: ev.IkeSaDeleted) -> None:
        """Forget a removed IKE_SA; a timeout under a handover is its (late) detection."""
        self._local.pop((node, e.spi_i), None)
        ends = self._ends.get(e.spi_i)
        if ends is not None:
            ends.discard(node)
            if not ends:
                del self._ends[e.spi_i]
        h = self._by_spi.get(e.spi_i)
        if h is not None and h.node == node and math.isnan(h.detected_at) and e.reason in ("timeout", "dpd_timeout"):
            h.detected_at, h.detected_by = t, "dpd" if e.reason == "dpd_timeout" else "timeout"

    # --- the handover ----------------------------------------------------------------------------
    def interface(self, t: float, node: str, e: InterfaceChanged) -> None:
        """An interface came up (noted) or went down (a handover of every IKE_SA using its address)."""
        if e.up:
            self._iface[(node, e.address)] = (e.interface, t)
            return
        spis = {spi for (n, spi), (ip, _c) in self._local.items() if n == node and ip == e.address}
        by_conn: dict[str, set[bytes]] = {}
        for spi in spis:
            by_conn.setdefault(self._local[(node, spi)][1], set()).add(spi)
        for conn, group in sorted(by_conn.items()):
            h = _Handover(node, conn, e.interface, e.address, t, set(group), first_spi=min(group))
            h.peer = min(self._ends.get(h.first_spi, set()) - {node}, default="")
            self.rows.append(h)
            self._open.setdefault(node, []).append(h)
            for spi in group:
                self._by_spi[spi] = h

    def roaming(self, t: float, node: str, e: ev.IkeSaRoaming) -> None:
        """The host acted on its address change (strongSwan ``roam``)."""
        h = self._by_spi.get(e.spi_i)
        if h is None or h.node != node or e.action in ("keep", "address_list"):
            return
        if math.isnan(h.detected_at):
            h.detected_at, h.detected_by = t, "local"

    def dead(self, t: float, node: str, e: ev.DeadPeerDetected) -> None:
        """DPD gave up: the host noticed the broken path this late."""
        h = self._by_spi.get(e.spi_i)
        if h is not None and h.node == node and math.isnan(h.detected_at):
            h.detected_at, h.detected_by = t, "dpd"

    def exchange(self, t: float, node: str, e: ev.ExchangeStarted) -> None:
        """Count the exchange; the host's first MOBIKE or IKE_SA_INIT after detection starts the restore."""
        h = self._by_spi.get(e.spi_i)
        if h is None and e.purpose in ("ike_sa_init", "resume"):
            h = next((x for x in self._open.get(node, ()) if x.connection == e.connection
                      and not math.isnan(x.detected_at)), None)
            if h is not None:
                h.spis.add(e.spi_i)
                self._by_spi[e.spi_i] = h
        if h is None or not math.isnan(h.restored_at):
            return
        if node != h.node:
            h.peer = h.peer or node
        h.exchanges += 1
        if node == h.node and math.isnan(h.started_at) and (
                e.purpose in ("mobike", "ike_sa_init", "resume") or e.reason in ("follow", "reconnect", "liveness_probe")):
            h.started_at = t

    def retransmitted(self, t: float, node: str, e: ev.Retransmitted) -> None:
        """Count retransmissions during the handover."""
        h = self._by_spi.get(e.spi_i)
        if h is not None and math.isnan(h.restored_at):
            h.retransmissions += 1

    def moved(self, t: float, node: str, e: ev.IkeSaMoved) -> None:
        """MOBIKE moved an IKE_SA: on the host, its new local address; on the peer, the restore."""
        if (node, e.spi_i) in self._local:
            self._local[(node, e.spi_i)] = (e.local.ip, e.connection)
        h = self._by_spi.get(e.spi_i)
        if h is None or not math.isnan(h.restored_at):
            return
        if node == h.node:
            h.to_address = e.local.ip
        elif e.method == "mobike_responder":
            h.peer = h.peer or node
            self._restore(h, t, "mobike")

    def followed(self, t: float, node: str, e: ev.PeerAddressChanged) -> None:
        """The peer followed the host to a new address (RFC 7296 §2.23)."""
        h = self._by_spi.get(e.spi_i)
        if h is None or node == h.node or not math.isnan(h.restored_at) or len(h.spis) > 1:
            return  # (a follow of the old IKE_SA while a new one is being made is not the restore)
        h.to_address = h.to_address or e.new.ip
        h.peer = h.peer or node
        self._restore(h, t, "follow")

    def installed(self, t: float, node: str, e: ev.ChildSaInstalled) -> None:
        """A CHILD_SA of a new IKE_SA on the host: re-established."""
        h = self._by_spi.get(e.spi_i)
        if h is None or node != h.node or e.spi_i == h.first_spi or not math.isnan(h.restored_at):
            return
        if e.rekey_of is None:
            h.to_address = e.local.ip
            self._restore(h, t, "resume" if e.spi_i in self._resumed else "reestablish")

    def resumed(self, t: float, node: str, e: ev.IkeSaResumed) -> None:
        """IKE_SESSION_RESUME answered (RFC 5723 §4.3.2): the CHILD_SAs of that IKE_SA restore by ``resume``."""
        self._resumed.add(e.spi_i)

    def _restore(self, h: _Handover, t: float, method: str) -> None:
        h.restored_at, h.method = t, method
        if math.isnan(h.detected_at):
            h.detected_at, h.detected_by = t, "peer"
        open_ = self._open.get(h.node, [])
        if h in open_:
            open_.remove(h)

    # --- the table -------------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """The rows so far (packets and outage columns NaN: ``handovers_table`` fills them)."""
        out = []
        for h in self.rows:
            to_if, up_at = self._iface.get((h.node, h.to_address), ("", math.nan))
            out.append({
                "node": h.node, "peer": h.peer, "connection": h.connection, "interface": h.interface, "address": h.address,
                "down_at": h.down_at, "to_interface": to_if, "to_address": h.to_address, "up_at": up_at,
                "detected_at": h.detected_at, "detection_s": h.detected_at - h.down_at,
                "detected_by": h.detected_by, "started_at": h.started_at, "restored_at": h.restored_at,
                "restore_s": h.restored_at - h.down_at, "method": h.method or "none",
                "exchanges": h.exchanges, "retransmissions": h.retransmissions, "cpu_s": math.nan,
                "packets_lost": 0, "outage_s": math.nan, "window": f"{h.node}@{h.down_at:.6f}",
                "ike_sa": h.first_spi.hex(),
            })
        return pd.DataFrame(out, columns=HANDOVER_COLUMNS)


def handovers_table(rows: HandoverRows, outages: pd.DataFrame, processing: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per handover, with the packets lost and the longest data outage of its ``handover`` window, and the
    CPU time both ends' jobs took from the interface going down to the restore (nodes with a CPU model; in a fleet
    the gateway's jobs of that time for other clients count too: an upper bound)."""
    df = rows.frame()
    if len(df) and processing is not None and len(processing):
        node, start, service = (processing[c].to_numpy() for c in ("node", "start", "service"))
        cpu = []
        for h in df.itertuples(index=False):
            end = h.restored_at if not math.isnan(h.restored_at) else math.inf
            mine = ((node == h.node) | (node == h.peer)) & (start >= h.down_at) & (start <= end)
            cpu.append(float(service[mine].sum()))
        df["cpu_s"] = cpu
    if not len(df) or not len(outages) or "event_id" not in outages.columns:
        return df
    mine = outages[outages["event"] == "handover"]
    lost = mine.groupby("event_id")["packets"].sum()
    longest = mine.groupby("event_id")["time_to_restore"].max()
    df["packets_lost"] = [int(lost.get(w, 0)) for w in df["window"]]
    df["outage_s"] = [float(longest.get(w, math.nan)) for w in df["window"]]
    return df


def handover_summary(df: pd.DataFrame) -> dict[str, Any]:
    """Counts by method and percentiles of detection, restore and outage times (the summary's ``handovers``)."""
    from ikesim.metrics.stats import percentiles

    return {
        "count": len(df),
        "by_method": {str(k): int(v) for k, v in df["method"].value_counts().sort_index().items()},
        "detection_s": percentiles([float(x) for x in df["detection_s"].dropna()]),
        "restore_s": percentiles([float(x) for x in df["restore_s"].dropna()]),
        "outage_s": percentiles([float(x) for x in df["outage_s"].dropna()]),
        "cpu_s": percentiles([float(x) for x in df["cpu_s"].dropna()]),
        "packets_lost": int(df["packets_lost"].sum()),
        "exchanges": int(df["exchanges"].sum()),
    }
