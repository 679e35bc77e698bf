"""``Results``: the run's events as pandas DataFrames plus a JSON-ready summary.

Tables are built once, from the collector's lists. Rekey latency is measured
from the trigger (the initiator node's first ``RekeyStarted`` for that SA) to
the installation of the new SA on the initiator (its ``RekeyCompleted`` with
``initiator=True``) and, separately, on the responder: the peer's
``RekeyCompleted(initiator=False)`` whose ``old_spi`` is the initiator's
``old_spi_out``. The daemon emits that event in the same call as the
responder's ``ChildSaInstalled`` (``rekey_of_out`` == the initiator's
``old_spi``) or, for an IKE rekey, its ``IkeSaEstablished`` (``rekey_of`` ==
the initiator's ``old_spi_out``), so the two joins give the same time. A rekey
that loses a collision and is superseded by the peer's has no initiator
latency; the peer's own ``RekeyStarted`` gets its row. Collisions are
counted per collision, not per report (see ``Results._collisions_table``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ikesim._version import __version__
from ikesim.errors import MalformedMessage
from ikesim.ike import events as ev
from ikesim.metrics.export import esp_sa_lines, esp_wireshark_names, ikev2_decryption_lines, write_pcap, write_secret
from ikesim.metrics.recorder import Collector, InvariantViolated, NatEvent
from ikesim.types import Address
from ikesim.wire.codec import peek_header
from ikesim.wire.iana import ExchangeType

__all__ = ["Results", "percentiles"]

_SECRET = re.compile(r"^sk_|_key_|_key$|^key_")
"""Event fields holding key material (``sk_*``, ``*_key_*``): kept out of the events table."""
_PACKET_COLUMNS = ["id", "time_sent", "node", "src", "dst", "size", "ike_length", "fate", "time_delivered",
                   "fate_time", "fate_at", "exchange", "spi_i", "spi_r", "message_id", "response"]
"""``size`` is the IPv4 datagram (20 + 8 + non-ESP marker + IKE message), as the link's MTU sees it."""


def _cell(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, Address):
        return str(v)
    if isinstance(v, enum.Enum):
        return v.value
    return v


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50, p95, max and count of *values* (None when empty)."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    s = pd.Series(values, dtype="float64")
    return {"n": len(values), "p50": round(float(s.quantile(0.5)), 6),
            "p95": round(float(s.quantile(0.95)), 6), "max": round(float(s.max()), 6)}


class Results:
    """Everything a run produced, as DataFrames (``events``, ``exchanges``, ``sas``, ``packets``) and ``summary``.

    Also ``rekey_latencies`` (one row per triggered rekey) and ``collisions`` (one row per collided SA pair).
    """

    def __init__(
        self, *, name: str, seed: int, run: int, duration: float,
        raw_events: list[tuple[float, str, Any]],
        datagrams: list[tuple[int, float, str, Address, Address, bytes]],
        fates: dict[int, tuple[str, float, str]],
        owners: dict[str, str], crypto_ops: dict[str, int], nodes: list[str] | None = None,
        keepalives: int = 0, fragmented: int = 0,
        jobs: list[tuple[str, float, float, float, str]] | None = None, cores: dict[str, int] | None = None,
        warmup: float = 0.0, fragments: dict[int, int] | None = None,
    ) -> None:
        self.name, self.seed, self.run, self.duration = name, seed, run, duration
        self._raw = raw_events
        self._datagrams = datagrams
        self._fragments = fragments or {}
        """Datagram id -> MTU of the link that IP-fragmented it: the capture writes its IPv4 fragments."""
        self._fates = fates
        self._owners = owners
        self._nodes = sorted(nodes if nodes is not None else set(owners.values()))
        self._crypto_ops = crypto_ops
        self._keepalives = keepalives
        self._fragmented = fragmented
        self._jobs = jobs or []
        self._cores = cores or {}
        self.warmup = warmup
        self.events = self._events_table()
        self.exchanges = self._exchanges_table()
        self.sas = self._sas_table()
        self.packets = self._packets_table()
        self.rekey_latencies = self._rekey_latencies()
        self.collisions = self._collisions_table()
        self.violations = self._violations_table()
        self._nat_events = [(node, e) for _t, node, e in self._raw if type(e) is NatEvent]
        self.nat_paths = self._nat_paths_table()
        self.processing = self._processing_table()
        """One row per CPU job of a node with a CPU model: arrived, start, end, wait, service (``ikesim.sim.cpu``)."""
        self.cpu = self._cpu_table()
        """Per node with a CPU model and 1 s bin: utilisation (0..1) and the longest queue in the bin."""
        self.summary = self._summary()
        if self._cores:
            self.summary["cpu"] = self._cpu_summary()
        if self._keepalives or self._nat_events:
            self.summary["nat"] = self._nat_summary()

    @classmethod
    def from_collector(
        cls, collector: Collector, *, name: str, seed: int, run: int, duration: float, owners: dict[str, str],
        crypto_ops: dict[str, int], nodes: list[str] | None = None, keepalives: int = 0, fragmented: int = 0,
        cores: dict[str, int] | None = None, warmup: float = 0.0,
    ) -> Results:
        """The results of a run from its *collector* (events, datagrams, fates, CPU jobs) and what the run knows.

        *owners*: IP address -> node; *crypto_ops*: operation -> count over all nodes; *keepalives*: NAT
        keepalives sent; *fragmented*: datagrams IP-fragmented on some link; *cores*: node -> CPU cores, for
        nodes with a CPU model. ``Simulation.results`` calls this; ``ikesim.metrics`` never sees a ``Simulation``.
        """
        return cls(
            name=name, seed=seed, run=run, duration=duration, raw_events=collector.events,
            datagrams=collector.datagrams, fates=collector.fates, owners=owners, nodes=nodes, crypto_ops=crypto_ops,
            keepalives=keepalives, fragmented=fragmented, jobs=collector.jobs, cores=cores, warmup=warmup,
            fragments=collector.fragments,
        )

    # --- tables -----------------------------------------------------------------------

    def _processing_table(self) -> pd.DataFrame:
        cols = ["node", "arrived", "start", "end", "wait", "service", "what"]
        if not self._jobs:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(self._jobs, columns=["node", "arrived", "start", "end", "what"])
        df["wait"] = df["start"] - df["arrived"]
        df["service"] = df["end"] - df["start"]
        return df[cols]

    def _cpu_table(self, bin_s: float = 1.0) -> pd.DataFrame:
        cols = ["node", "time", "utilisation", "queue"]
        frames = []
        nbins = max(1, int(np.ceil(self.duration / bin_s)))
        edges = np.arange(nbins + 1) * bin_s
        for node, cores in sorted(self._cores.items()):
            jobs = self.processing[self.processing["node"] == node]
            busy = np.zeros(nbins)
            starts, ends = jobs["start"].to_numpy(float), np.minimum(jobs["end"].to_numpy(float), edges[-1])
            for a, b in zip(starts, ends, strict=True):  # spread each job's busy time over the bins it covers
                i, j = int(a // bin_s), min(int(b // bin_s), nbins - 1)
                if i == j:
                    busy[i] += b - a
                else:
                    busy[i] += edges[i + 1] - a
                    busy[i + 1:j] += bin_s
                    busy[j] += b - edges[j]
            # longest queue within each bin: waiting jobs after every arrival (+1) and start (-1), starts first on ties
            times = np.concatenate([starts, jobs["arrived"].to_numpy(float)])
            steps = np.concatenate([-np.ones(len(starts), dtype=np.int64), np.ones(len(starts), dtype=np.int64)])
            order = np.lexsort((steps, times))
            waiting = np.cumsum(steps[order])
            at_bin = np.minimum((times[order] // bin_s).astype(np.int64), nbins - 1)
            queue = np.zeros(nbins, dtype=np.int64)
            np.maximum.at(queue, at_bin, waiting)
            start_of = np.searchsorted(at_bin, np.arange(nbins), side="left")  # carry the level into empty bins
            carried = np.where(start_of > 0, waiting[np.maximum(start_of - 1, 0)], 0)
            queue = np.maximum(queue, carried)
            frames.append(pd.DataFrame({"node": node, "time": edges[:-1], "utilisation": busy / (bin_s * cores),
                                        "queue": queue}))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    def _cpu_summary(self) -> dict[str, Any]:
        """Per node: jobs, busy time, mean and peak utilisation, longest queue, waits; all from ``warmup`` on.

        Only jobs that arrived at or after ``warmup`` count, so a queue that built up before it is not counted.
        """
        out: dict[str, Any] = {}
        span = self.duration - self.warmup
        for node, cores in sorted(self._cores.items()):
            jobs = self.processing[(self.processing["node"] == node) & (self.processing["arrived"] >= self.warmup)]
            marks = sorted([(t, 1) for t in jobs["arrived"]] + [(t, -1) for t in jobs["start"]])
            waiting = peak = 0
            for _t, step in marks:  # at equal times a start (-1) sorts before an arrival (+1)
                waiting += step
                peak = max(peak, waiting)
            util = self.cpu[(self.cpu["node"] == node) & (self.cpu["time"] >= self.warmup)]["utilisation"]
            out[node] = {
                "cores": cores, "from": self.warmup, "jobs": len(jobs), "busy_s": float(jobs["service"].sum()),
                "mean_utilisation": float(jobs["service"].sum() / (cores * span)) if span > 0 else 0.0,
                "peak_utilisation": float(util.max()) if len(util) else 0.0, "max_queue": int(peak),
                "wait_s": percentiles([float(x) for x in jobs["wait"]]),
            }
        return out

    def _nat_paths_table(self) -> pd.DataFrame:
        """One row per NAT mapping change (rebind, reboot, expiry): how long the return path was broken.

        The path is broken from the change until a peer follows the inside host to its new public
        endpoint (``PeerAddressChanged`` away from the old one, RFC 7296 §2.23); NaN if it never did.
        ``sent_to_old``: datagrams still sent to the old endpoint after the change (each one lost).
        """
        cols = ["nat", "kind", "inside", "old", "new", "broken_from", "restored_at", "broken_s", "restored_by", "sent_to_old"]
        sent_to: dict[str, list[float]] = {}
        for _i, t, _n, _src, dst, _data in self._datagrams:
            sent_to.setdefault(str(dst), []).append(t)
        follows: dict[str, list[tuple[float, str]]] = {}
        for t, node, e in self._raw:
            if isinstance(e, ev.PeerAddressChanged):
                follows.setdefault(str(e.old), []).append((t, node))
        rows = []
        for node, e in self._nat_events:
            if e.kind not in ("rebind", "reboot", "expired"):
                continue
            after = [(t, n) for t, n in follows.get(e.old, []) if t >= e.at]
            restored, by = after[0] if after else (None, "")
            rows.append({"nat": node, "kind": e.kind, "inside": e.inside, "old": e.old, "new": e.new,
                         "broken_from": e.at, "restored_at": restored,
                         "broken_s": None if restored is None else restored - e.at, "restored_by": by,
                         "sent_to_old": sum(1 for t in sent_to.get(e.old, ()) if t >= e.at)})
        return pd.DataFrame(rows, columns=cols)

    def _nat_summary(self) -> dict[str, Any]:
        kinds = [e.kind for _node, e in self._nat_events]
        broken = [float(x) for x in self.nat_paths["broken_s"].dropna()]
        return {
            "mappings_created": kinds.count("mapping_created"), "mappings_expired": kinds.count("expired"),
            "rebinds": kinds.count("rebind"), "reboots": kinds.count("reboot"), "keepalives": self._keepalives,
            "peer_address_changes": sum(isinstance(e, ev.PeerAddressChanged) for _, _, e in self._raw),
            "return_path_broken_s": percentiles(broken),
            "never_restored": int((self.nat_paths["restored_at"].isna() & (self.nat_paths["sent_to_old"] > 0)).sum()),
        }

    def _events_table(self) -> pd.DataFrame:
        rows = []
        for t, node, e in self._raw:
            row: dict[str, Any] = {"time": t, "node": node, "event": type(e).__name__}
            for f in dataclasses.fields(e):
                if not _SECRET.search(f.name):
                    row[f.name] = _cell(getattr(e, f.name))
            rows.append(row)
        cols = ["time", "node", "event", "spi_i", "spi_r", "connection"]
        df = pd.DataFrame(rows)
        if df.empty:
            return pd.DataFrame(columns=cols)
        rest = [c for c in df.columns if c not in cols]
        df = df.reindex(columns=[c for c in cols if c in df.columns] + rest)
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].astype(object).where(df[c].notna(), None)
        return df

    def _node_of(self, addr: Address) -> str:
        return self._owners.get(addr.ip, addr.ip)

    def _exchanges_table(self) -> pd.DataFrame:
        open_: dict[tuple[str, bytes, str, int], dict[str, Any]] = {}
        rows = []
        for t, node, e in self._raw:
            if isinstance(e, ev.ExchangeStarted):
                open_[(node, e.spi_i, e.exchange, e.message_id)] = {
                    "exchange": e.exchange, "purpose": e.purpose, "initiator": node,
                    "responder": self._node_of(e.peer), "connection": e.connection,
                    "spi_i": e.spi_i.hex(), "spi_r": e.spi_r.hex(), "message_id": e.message_id,
                    "start": t, "end": None, "latency": None, "retransmissions": 0, "outcome": "open",
                    "reason": e.reason,
                }
            elif isinstance(e, ev.ExchangeCompleted):
                row = open_.pop((node, e.spi_i, e.exchange, e.message_id), None)
                if row is None:
                    continue
                row.update(end=t, latency=t - row["start"], retransmissions=e.retransmissions,
                           outcome=e.outcome, spi_r=e.spi_r.hex())
                rows.append(row)
        rows.extend(open_.values())
        cols = ["exchange", "purpose", "initiator", "responder", "connection", "spi_i", "spi_r",
                "message_id", "start", "end", "latency", "retransmissions", "outcome", "reason"]
        df = pd.DataFrame(rows, columns=cols)
        return df.sort_values(["start", "initiator", "message_id"], kind="stable").reset_index(drop=True)

    def _sas_table(self) -> pd.DataFrame:
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for t, node, e in self._raw:
            if isinstance(e, ev.IkeSaEstablished):
                local = e.spi_i if e.initiator else e.spi_r
                rows[(node, "ike", local.hex())] = {
                    "node": node, "kind": "ike", "connection": e.connection, "spi_i": e.spi_i.hex(),
                    "spi_r": e.spi_r.hex(), "spi_in": local.hex(), "spi_out": (e.spi_r if e.initiator else e.spi_i).hex(),
                    "initiator": e.initiator, "created": t, "rekey_planned": e.rekey_at,
                    "expire_planned": e.expire_at, "rekeyed_at": None, "deleted_at": None, "delete_reason": None,
                }
            elif isinstance(e, ev.ChildSaInstalled):
                rows[(node, "child", e.spi_in.hex())] = {
                    "node": node, "kind": "child", "connection": e.connection, "spi_i": e.spi_i.hex(),
                    "spi_r": e.spi_r.hex(), "spi_in": e.spi_in.hex(), "spi_out": e.spi_out.hex(),
                    "initiator": e.initiator, "created": t, "rekey_planned": e.rekey_at,
                    "expire_planned": e.expire_at, "rekeyed_at": None, "deleted_at": None, "delete_reason": None,
                }
            elif isinstance(e, ev.RekeyCompleted):
                r = rows.get((node, e.kind.value, e.old_spi.hex()))
                if r is not None and r["rekeyed_at"] is None:
                    r["rekeyed_at"] = t
            elif isinstance(e, ev.IkeSaDeleted):
                for key in ((node, "ike", e.spi_i.hex()), (node, "ike", e.spi_r.hex())):
                    r = rows.get(key)
                    if r is not None and r["spi_i"] == e.spi_i.hex() and r["deleted_at"] is None:
                        r["deleted_at"], r["delete_reason"] = t, e.reason
            elif isinstance(e, ev.ChildSaDeleted):
                r = rows.get((node, "child", e.spi_in.hex()))
                if r is not None and r["deleted_at"] is None:
                    r["deleted_at"], r["delete_reason"] = t, e.reason
        cols = ["node", "kind", "connection", "spi_i", "spi_r", "spi_in", "spi_out", "initiator", "created",
                "rekey_planned", "expire_planned", "rekeyed_at", "deleted_at", "delete_reason",
                "planned_lifetime", "actual_lifetime"]
        df = pd.DataFrame(list(rows.values()), columns=cols[:-2])
        df["planned_lifetime"] = pd.to_numeric(df["rekey_planned"], errors="coerce") - df["created"]
        end = pd.to_numeric(df["rekeyed_at"], errors="coerce").fillna(pd.to_numeric(df["deleted_at"], errors="coerce"))
        df["actual_lifetime"] = end - df["created"]
        return df

    def _packets_table(self) -> pd.DataFrame:
        rows = []
        for ident, t, node, src, dst, data in self._datagrams:
            fate, ft, where = self._fates.get(ident, ("in_flight", None, ""))
            marker = 4 if 4500 in (src.port, dst.port) else 0
            try:
                spi_i, spi_r, xchg, flags, mid = peek_header(data)
                exchange, response, si, sr = ExchangeType(xchg).name, bool(flags & 0x20), spi_i.hex(), spi_r.hex()
            except MalformedMessage:
                exchange, response, mid, si, sr = "", False, -1, "", ""
            rows.append({
                "id": ident, "time_sent": t, "node": node, "src": str(src), "dst": str(dst),
                "size": 28 + marker + len(data), "ike_length": len(data), "fate": fate,
                "time_delivered": ft if fate == "delivered" else None, "fate_time": ft, "fate_at": where,
                "exchange": exchange, "spi_i": si, "spi_r": sr, "message_id": mid, "response": response,
            })
        return pd.DataFrame(rows, columns=_PACKET_COLUMNS)

    def _rekey_latencies(self) -> pd.DataFrame:
        started: dict[tuple[str, str, bytes], tuple[float, bytes]] = {}
        done_by_old: dict[tuple[str, bytes, bool], tuple[float, str]] = {}
        for t, node, e in self._raw:
            if isinstance(e, ev.RekeyStarted):
                started.setdefault((node, e.kind.value, e.old_spi), (t, e.old_spi_out))
            elif isinstance(e, ev.RekeyCompleted):
                done_by_old.setdefault((e.kind.value, e.old_spi, e.initiator), (t, node))
        rows = []
        for (node, kind, old), (t0, old_out) in started.items():
            ini = done_by_old.get((kind, old, True))
            resp = done_by_old.get((kind, old_out, False))
            rows.append({
                "node": node, "kind": kind, "old_spi": old.hex(), "triggered": t0,
                "initiator_latency": (ini[0] - t0) if ini and ini[1] == node else None,
                "responder_latency": (resp[0] - t0) if resp and resp[1] != node else None,
            })
        return pd.DataFrame(rows, columns=["node", "kind", "old_spi", "triggered", "initiator_latency",
                                           "responder_latency"])

    def _collisions_table(self) -> pd.DataFrame:
        """One row per rekey collision (RFC 7296 §2.8.1, §2.8.2): who won, how it was settled.

        Each peer reports a collision once (``RekeyCollision``); a lost message can hide one report. A
        CHILD_SA pair is identified by its two SPIs and an IKE_SA by (spi_i, spi_r), so both nodes' reports
        land on one key; the number of collisions on a key is the largest number of reports from one node
        (a retry that collides again counts again).
        """
        out_of: dict[tuple[str, bytes], bytes] = {}
        per: dict[tuple[str, bytes, bytes], dict[str, list[Any]]] = {}
        first: dict[tuple[str, bytes, bytes], float] = {}
        for t, node, e in self._raw:
            if isinstance(e, ev.ChildSaInstalled):
                out_of[(node, e.spi_in)] = e.spi_out
            elif isinstance(e, ev.RekeyCollision):
                if e.kind is ev.SaKind.CHILD:
                    a, b = sorted((e.old_spi, out_of.get((node, e.old_spi), b"")))
                    key = ("child", a, b)
                else:
                    key = ("ike", e.spi_i, e.spi_r)
                per.setdefault(key, {}).setdefault(node, []).append(e)
                first.setdefault(key, t)
        rows = []
        for k, by_node in per.items():
            reports = [e for es in by_node.values() for e in es]
            winners = sorted(n for n, es in by_node.items() if any(e.won for e in es))
            rows.append({"kind": k[0], "sa": f"{k[1].hex()}/{k[2].hex()}", "first": first[k],
                         "nodes": ",".join(sorted(by_node)), "reports": len(reports),
                         "count": max(len(es) for es in by_node.values()), "winner": ",".join(winners),
                         "resolution": reports[0].resolution})
        return pd.DataFrame(rows, columns=["kind", "sa", "first", "nodes", "reports", "count", "winner", "resolution"])

    def _collision_overhead(self) -> dict[str, Any]:
        """Collisions by kind, redundant SAs and the messages collisions cost (RFC 7296 §2.8.1, §2.25).

        Extra messages: every request transmission and response of an exchange answered with
        TEMPORARY_FAILURE, of an exchange that created an SA found redundant, and of the Delete of a
        redundant SA. ``ExchangeCollision`` cases are counted once per SA even when both peers see them.
        """
        by_kind: dict[str, int] = {}
        for k, n in (self.collisions.groupby("kind")["count"].sum().items() if len(self.collisions) else ()):
            by_kind[f"{k}_rekey"] = int(n)
        seen: set[tuple[Any, ...]] = set()
        redundant = {"child": 0, "ike": 0}
        last_done: dict[str, tuple[float, ev.ExchangeCompleted]] = {}
        wasted: set[tuple[str, bytes, int]] = set()
        for t, node, e in self._raw:
            if isinstance(e, ev.ExchangeCompleted):
                last_done[node] = (t, e)
            elif isinstance(e, ev.ExchangeCollision):
                key = (e.case, *sorted((e.spi, e.spi_out))) if e.spi_out else (e.case, e.spi_i, e.spi_r)
                if key not in seen:
                    seen.add(key)
                    by_kind[e.case] = by_kind.get(e.case, 0) + 1
            elif isinstance(e, ev.RekeyCollision) and not e.won and e.resolution == "nonces":
                redundant[e.kind.value] += 1
                done = last_done.get(node)
                if done is not None and done[0] == t:
                    wasted.add((node, done[1].spi_i, done[1].message_id))
        ex = self.exchanges
        messages = exchanges = 0
        if len(ex):
            mask = (ex["outcome"] == "TEMPORARY_FAILURE") | (ex["reason"] == "redundant")
            if wasted:
                keys = list(zip(ex["initiator"], ex["spi_i"], ex["message_id"], strict=True))
                hexed = {(n, s.hex(), m) for n, s, m in wasted}
                mask |= pd.Series([k in hexed for k in keys], index=ex.index)
            extra = ex[mask]
            exchanges = len(extra)
            messages = int((extra["retransmissions"] + 2).sum())
        return {"collisions_by_kind": dict(sorted(by_kind.items())), "redundant_sas": redundant,
                "collision_overhead": {"exchanges": exchanges, "messages": messages}}

    def _violations_table(self) -> pd.DataFrame:
        """One row per invariant violation the checker recorded (``InvariantViolated``)."""
        rows = [{"time": t, "node": node, "kind": e.kind, "connection": e.connection, "spi": e.spi, "detail": e.detail}
                for t, node, e in self._raw if isinstance(e, InvariantViolated)]
        return pd.DataFrame(rows, columns=["time", "node", "kind", "connection", "spi", "detail"])

    # --- summary ----------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        ex = self.exchanges
        counts = {str(k): int(v) for k, v in ex["purpose"].value_counts().sort_index().items()} if len(ex) else {}
        failed = int((~ex["outcome"].isin(["ok"])).sum()) if len(ex) else 0
        outcomes = {str(k): int(v) for k, v in ex["outcome"].value_counts().sort_index().items()} if len(ex) else {}
        names = [type(e).__name__ for _, _, e in self._raw]
        rl = self.rekey_latencies
        latency: dict[str, Any] = {}
        for kind in ("child", "ike"):
            sub = rl[rl["kind"] == kind]
            latency[kind] = {
                "initiator": percentiles([float(x) for x in sub["initiator_latency"].dropna()]),
                "responder": percentiles([float(x) for x in sub["responder_latency"].dropna()]),
            }
        rekeys = {"child": 0, "ike": 0}
        for _t, _node, e in self._raw:
            if isinstance(e, ev.RekeyCompleted) and e.initiator:
                rekeys[e.kind.value] += 1
        fates = [f for f, _, _ in self._fates.values()]
        sent = len(self._datagrams)
        return {
            "name": self.name, "seed": self.seed, "run": self.run, "ikesim_version": __version__,
            "duration": self.duration,
            "nodes": self._nodes,
            "exchanges_by_type": counts,
            "exchange_outcomes": outcomes,
            "exchanges_failed": failed,
            "rekeys": rekeys,
            "rekey_latency": latency,
            "retransmissions": names.count("Retransmitted"),
            "collisions": int(self.collisions["count"].sum()) if len(self.collisions) else 0,
            "collision_events": names.count("RekeyCollision"),
            **self._collision_overhead(),
            "messages_dropped": names.count("MessageDropped"),
            "datagrams": {
                "sent": sent, "delivered": fates.count("delivered"), "lost": fates.count("lost"),
                "fragment_lost": fates.count("fragment_lost"), "fragments_dropped": fates.count("fragments_dropped"),
                "queue_overflow": fates.count("queue_overflow"), "link_down": fates.count("link_down"),
                "fragmented": self._fragmented, "no_route": fates.count("no_route"),
                "dropped_by_fault": fates.count("dropped_by_fault"), "held_by_fault": fates.count("held"),
                "in_flight": sent - len(fates),
                "by_fate": {f: fates.count(f) for f in sorted(set(fates))},
            },
            "sas": {"ike_established": names.count("IkeSaEstablished"),
                    "child_installed": names.count("ChildSaInstalled"),
                    "ike_deleted": names.count("IkeSaDeleted"), "child_deleted": names.count("ChildSaDeleted")},
            "auth_failures": names.count("AuthFailed"),
            "invariant_violations": len(self.violations),
            "invariant_violations_by_kind": {str(k): int(v) for k, v in
                                             self.violations["kind"].value_counts().sort_index().items()},
            "crypto_ops": self._crypto_ops,
        }

    # --- files ------------------------------------------------------------------------

    def write(self, directory: str | Path, *, keys: bool = True) -> None:
        """Write events/exchanges/sas/packets.parquet, summary.json, capture.pcap and key tables into *directory*.

        The key tables (``ikev2_decryption_table``, ``esp_sa``) hold live keys: created with mode 0600, and not
        written at all with ``keys=False``. The decryption table has every IKE_SA that derived keys
        (``IkeSaKeysDerived``, rekeys' ``IkeSaEstablished``), so a failed IKE_AUTH still decrypts.
        """
        d = Path(directory)
        for name in ("events", "exchanges", "sas", "packets"):
            getattr(self, name).to_parquet(d / f"{name}.parquet", index=False)
        for name in ("nat_paths", "processing", "cpu"):
            table = getattr(self, name)
            if len(table):
                table.to_parquet(d / f"{name}.parquet", index=False)
        (d / "summary.json").write_text(json.dumps(self.summary, indent=2, sort_keys=True) + "\n")
        write_pcap(d / "capture.pcap", ((i, t, s, dst, data) for i, t, _n, s, dst, data in self._datagrams),
                   self._fragments)
        if not keys:
            return
        derived = [e for _, _, e in self._raw if isinstance(e, (ev.IkeSaKeysDerived, ev.IkeSaEstablished))]
        write_secret(d / "ikev2_decryption_table", "\n".join(ikev2_decryption_lines(derived)) + "\n")
        inst = [(e, *esp_wireshark_names(e.encr, e.integ)) for _, _, e in self._raw if isinstance(e, ev.ChildSaInstalled)]
        write_secret(d / "esp_sa", "\n".join(esp_sa_lines(inst)) + "\n")
