"""Gateway restarts: one row per tunnel a restarted node lost, and how its peer brought it back (RFC 7296 §2.4, RFC 5723).

A restart is the ``restart`` action (``ikesim.sim.restart``): the node's IKE daemon is replaced by an empty one, and
every IKE_SA it held is recorded as deleted with reason ``restarted`` at that instant, before the action's
``ActionExecuted``. A *tunnel lost* is an IKE_SA deleted that way that was established at both ends (the restarted
node and its *peer*, the other node holding the same IKE_SA); the IKE_SAs of one connection with one peer make one
row (``spi_i``: the one established last). A half-open IKE_SA is no tunnel and has no row.

Per tunnel:

- *detected* at the peer's first ``DeadPeerDetected`` on one of the lost IKE_SAs (RFC 7296 §2.4), else NaN (the
  peer noticed otherwise, or not before the run ended);
- *restored* when a new IKE_SA (``IkeSaEstablished`` without ``rekey_of``, RFC 7296 §1.2) of the restarted node's
  connection has been established at both the restarted node and the peer; ``restored_at`` is the first of the two
  (the responder's, usually the gateway's). Method ``resume`` if that IKE_SA came from IKE_SESSION_RESUME (an
  ``IkeSaResumed`` on it, RFC 5723 §5), ``full`` (IKE_SA_INIT and IKE_AUTH) otherwise, ``none`` if nothing came
  back before the run ended;
- ``exchanges``: the exchanges the peer started on its connection from the restart until the tunnel was back at
  both ends (its DPDs on the dead IKE_SA, IKE_SA_INIT or IKE_SESSION_RESUME, once more after an N(COOKIE), IKE_AUTH;
  one per exchange, however often it was sent), ``retransmissions``: the peer's retransmissions in that time (most
  of them the DPD's, RFC 7296 §2.4), ``cookie``: whether the peer had to retry its IKE_SA_INIT or IKE_SESSION_RESUME
  with a COOKIE (RFC 7296 §2.6).

The rows are built as events are recorded (``Trace.enable_restarts``, which a scheduled ``restart`` turns on), at
every trace level; the summary adds the restored counts by method, percentiles of the time to restore and, with a
CPU model on the restarted node, its CPU per reconnect: the service time of its IKE_SA set-up jobs (IKE_SA_INIT,
IKE_SESSION_RESUME and IKE_AUTH requests, COOKIE answers included) from the restart on, per tunnel restored; and
``cpu_busy_s``, all its jobs from the restart until the last tunnel was back (dropped DPDs and timers included).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ikesim.ike import events as ev
from ikesim.metrics.builders import Handler
from ikesim.metrics.recorder import ActionExecuted
from ikesim.metrics.stats import percentiles

__all__ = ["RestartRows", "RESTART_COLUMNS", "SETUP_JOBS", "restart_summary"]

RESTART_COLUMNS = [
    "node", "restart_at", "connection", "peer", "spi_i", "detected_at", "restored_at", "time_to_restore", "method",
    "restored_spi_i", "exchanges", "retransmissions", "cookie",
]

SETUP_JOBS = ("IKE_SA_INIT", "IKE_SESSION_RESUME", "IKE_AUTH")
"""CPU jobs (``what`` prefixes, ``ikesim.sim.cpu``) that set up an IKE_SA: the cost of a reconnect."""


@dataclass(slots=True)
class _Restart:
    node: str
    at: float
    rows: dict[tuple[str, str], _Tunnel] = field(default_factory=dict)
    """(connection, peer) -> its row."""


@dataclass(slots=True)
class _Tunnel:
    restart: _Restart
    connection: str
    peer: str
    peer_connection: str
    """The peer's name for the connection (a fleet names both ends alike)."""
    spi_i: bytes
    spi_at: float
    """When the restarted node had established ``spi_i``."""
    lost: set[bytes]
    """spi_i of the lost IKE_SAs of this tunnel."""
    detected_at: float = math.nan
    restored_at: float = math.nan
    restored_spi: bytes = b""
    method: str = ""
    exchanges: int = 0
    retransmissions: int = 0
    cookie: bool = False


class RestartRows:
    """Builds the ``restarts`` table from events as they are recorded (see the module docstring)."""

    def __init__(self) -> None:
        self.restarts: list[_Restart] = []
        self._ends: dict[bytes, dict[str, tuple[str, float]]] = {}
        """spi_i -> node -> (its connection, when it established the IKE_SA) for every established IKE_SA."""
        self._current: dict[str, _Restart] = {}
        """Node -> its latest restart."""
        self._open: dict[tuple[str, str, str], list[_Tunnel]] = {}
        """(restarted node, its connection, peer) -> the rows not yet restored."""
        self._waiting: dict[tuple[str, str], list[_Tunnel]] = {}
        """(peer, its connection) -> the rows not yet restored (what the peer does for them counts)."""
        self._lost: dict[bytes, _Tunnel] = {}
        """spi_i of a lost IKE_SA -> its row (for the peer's DPD)."""
        self._resumed: set[bytes] = set()
        """spi_i of the IKE_SAs set up by IKE_SESSION_RESUME (RFC 5723 §5)."""
        self.handlers: dict[type, Handler] = {
            ev.IkeSaEstablished: self.established, ev.IkeSaDeleted: self.deleted, ActionExecuted: self.action,
            ev.DeadPeerDetected: self.dead_peer, ev.IkeSaResumed: self.resumed, ev.ExchangeStarted: self.started,
            ev.Retransmitted: self.retransmitted, ev.IkeSaInitRetried: self.init_retried,
        }

    # --- IKE_SAs ---------------------------------------------------------------------------------
    def established(self, t: float, node: str, e: ev.IkeSaEstablished) -> None:
        """An IKE_SA at *node* (RFC 7296 §1.2): a new one between the ends of an open row restores it."""
        ends = self._ends.setdefault(e.spi_i, {})
        ends[node] = (e.connection, t)
        if e.rekey_of is not None or len(ends) < 2 or not self._open:
            return
        for n, (conn, _at) in ends.items():
            for peer in ends:
                for row in list(self._open.get((n, conn, peer), ())):
                    if t > row.restart.at:
                        row.restored_at = min(at for _c, at in ends.values())
                        row.restored_spi = e.spi_i
                        row.method = "resume" if e.spi_i in self._resumed else "full"
                        self._close(row)

    def deleted(self, t: float, node: str, e: ev.IkeSaDeleted) -> None:
        """An IKE_SA left *node*; reason ``restarted``: the node's daemon restarted and the tunnel is lost."""
        ends = self._ends.get(e.spi_i)
        held = ends.pop(node, None) if ends is not None else None
        if e.reason != "restarted":
            if ends is not None and not ends:
                del self._ends[e.spi_i]
            return
        r = self._restart(t, node)
        if held is None or not ends:
            self._ends.pop(e.spi_i, None)
            return  # half-open at the restart, or its peer had already let it go: no tunnel
        peer = min(ends)
        key = (held[0], peer)
        row = r.rows.get(key)
        if row is None:
            row = r.rows[key] = _Tunnel(r, held[0], peer, ends[peer][0], e.spi_i, held[1], set())
            self._open.setdefault((node, row.connection, peer), []).append(row)
            self._waiting.setdefault((peer, row.peer_connection), []).append(row)
        elif held[1] >= row.spi_at:
            row.spi_i, row.spi_at = e.spi_i, held[1]
        row.lost.add(e.spi_i)
        self._lost[e.spi_i] = row

    def action(self, t: float, node: str, e: ActionExecuted) -> None:
        """A scripted action ran: ``restart`` is a restart even when the node lost no tunnel."""
        if e.action == "restart":
            self._restart(t, node)

    def _restart(self, t: float, node: str) -> _Restart:
        """The restart of *node* at *t* (made on its first sign: a ``restarted`` deletion or the action)."""
        r = self._current.get(node)
        if r is None or r.at != t:
            r = self._current[node] = _Restart(node, t)
            self.restarts.append(r)
        return r

    def _close(self, row: _Tunnel) -> None:
        """*row* is restored: what its ends do from now on no longer counts for it."""
        for index, key in ((self._open, (row.restart.node, row.connection, row.peer)),
                           (self._waiting, (row.peer, row.peer_connection))):
            rows = index[key]
            rows.remove(row)
            if not rows:
                del index[key]
        for spi in row.lost:
            if self._lost.get(spi) is row:
                del self._lost[spi]

    # --- the peer's side -------------------------------------------------------------------------
    def dead_peer(self, t: float, node: str, e: ev.DeadPeerDetected) -> None:
        """The peer's liveness check on a lost IKE_SA got no answer (RFC 7296 §2.4)."""
        row = self._lost.get(e.spi_i)
        if row is not None and node == row.peer and math.isnan(row.detected_at):
            row.detected_at = t

    def resumed(self, t: float, node: str, e: ev.IkeSaResumed) -> None:
        """IKE_SESSION_RESUME answered (RFC 5723 §4.3.2): the IKE_SA it makes restores by ``resume``."""
        self._resumed.add(e.spi_i)

    def started(self, t: float, node: str, e: ev.ExchangeStarted) -> None:
        """The peer started an exchange on its connection while its tunnel was down."""
        for row in self._waiting.get((node, e.connection), ()):
            row.exchanges += 1

    def retransmitted(self, t: float, node: str, e: ev.Retransmitted) -> None:
        """The peer sent a request again while its tunnel was down (RFC 7296 §2.1)."""
        for row in self._waiting.get((node, e.connection), ()):
            row.retransmissions += 1

    def init_retried(self, t: float, node: str, e: ev.IkeSaInitRetried) -> None:
        """The peer retried IKE_SA_INIT with the COOKIE the responder demanded (RFC 7296 §2.6)."""
        if e.reason == "cookie":
            for row in self._waiting.get((node, e.connection), ()):
                row.cookie = True

    # --- the table -------------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """One row per tunnel lost, in restart order then by connection and peer."""
        out = []
        for r in self.restarts:
            for (_c, _p), row in sorted(r.rows.items()):
                out.append({
                    "node": r.node, "restart_at": r.at, "connection": row.connection, "peer": row.peer,
                    "spi_i": row.spi_i.hex(), "detected_at": row.detected_at, "restored_at": row.restored_at,
                    "time_to_restore": row.restored_at - r.at, "method": row.method or "none",
                    "restored_spi_i": row.restored_spi.hex(), "exchanges": row.exchanges,
                    "retransmissions": row.retransmissions, "cookie": row.cookie,
                })
        return pd.DataFrame(out, columns=RESTART_COLUMNS).astype(
            {"restart_at": "float64", "detected_at": "float64", "restored_at": "float64",
             "time_to_restore": "float64", "exchanges": "int64", "retransmissions": "int64", "cookie": "bool"})


def _cpu(restarts: Sequence[_Restart], df: pd.DataFrame, processing: pd.DataFrame) -> dict[str, Any]:
    """The restarted nodes' CPU after each restart (until its next one): busy seconds of the IKE_SA set-up jobs
    (``SETUP_JOBS``) and of all their jobs until the restart's last tunnel was back (if one never was: to the end)."""
    setup = busy = 0.0
    restored = 0
    for r in restarts:
        later = [x.at for x in restarts if x.node == r.node and x.at > r.at]
        until = min(later, default=math.inf)
        mine = df[(df["node"] == r.node) & (df["restart_at"] == r.at)]
        jobs = processing[(processing["node"] == r.node) & (processing["arrived"] >= r.at)
                          & (processing["arrived"] < until)]
        is_setup = jobs["what"].astype(str).str.startswith(SETUP_JOBS)
        setup += float(jobs.loc[is_setup, "service"].sum())
        back = mine["restored_at"]
        last = float(back.max()) if len(back) and back.notna().all() else math.inf  # one never back: to the end
        busy += float(jobs.loc[jobs["arrived"] <= last, "service"].sum())
        restored += int(mine["restored_at"].notna().sum())
    return {"cpu_setup_s": round(setup, 9), "cpu_busy_s": round(busy, 9),
            "cpu_per_reconnect_ms": round(1000 * setup / restored, 6) if restored else None}


def restart_summary(df: pd.DataFrame, rows: RestartRows, processing: pd.DataFrame | None = None,
                    cpu_nodes: Collection[str] = ()) -> dict[str, Any]:
    """Restarts, tunnels lost and restored by method, percentiles of detection and time to restore, the peers'
    exchanges, retransmissions and COOKIE retries; with *processing* (CPU jobs) and restarted nodes among *cpu_nodes*
    (those with a CPU model) the CPU cost of the reconnects."""
    restored = df[df["method"] != "none"]
    back = restored["restored_at"].to_numpy(float)
    out: dict[str, Any] = {
        "restarts": len(rows.restarts),
        "tunnels_lost": len(df),
        "restored": len(restored),
        "by_method": {str(k): int(v) for k, v in df["method"].value_counts().sort_index().items()},
        "unrestored": int((df["method"] == "none").sum()),
        "detection_s": percentiles([float(x) for x in (df["detected_at"] - df["restart_at"]).dropna()]),
        "time_to_restore_s": percentiles([float(x) for x in restored["time_to_restore"]]),
        "first_restored_s": round(float(np.min(back - restored["restart_at"].to_numpy(float))), 6) if len(back) else None,
        "exchanges": int(df["exchanges"].sum()),
        "retransmissions": int(df["retransmissions"].sum()),
        "cookies": int(df["cookie"].sum()),
        "cpu_setup_s": None, "cpu_busy_s": None, "cpu_per_reconnect_ms": None,
    }
    modelled = [r for r in rows.restarts if r.node in cpu_nodes]
    if processing is not None and modelled:
        out.update(_cpu(modelled, df, processing[processing["node"].isin({r.node for r in modelled})]))
    return out
