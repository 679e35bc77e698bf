"""``Results``: a run's trace as pandas DataFrames plus a JSON-ready summary.

Tables are built from the trace (``ikesim.metrics.trace``) the first time they are read, so a caller that
only wants the summary never builds the events or packets tables. Rekey latency is measured from the
trigger (the initiator node's first ``RekeyStarted`` for that SA) to the installation of the new SA on the
initiator (its ``RekeyCompleted`` with ``initiator=True``) and, separately, on the responder: the peer's
``RekeyCompleted(initiator=False)`` whose ``old_spi`` is the initiator's ``old_spi_out``. The daemon emits
that event in the same call as the responder's ``ChildSaInstalled`` (``rekey_of_out`` == the initiator's
``old_spi``) or, for an IKE rekey, its ``IkeSaEstablished`` (``rekey_of`` == the initiator's
``old_spi_out``), so the two joins give the same time. A rekey that loses a collision and is superseded
by the peer's has no initiator latency; the peer's own ``RekeyStarted`` gets its row. Collisions are
counted per collision, not per report (see ``Results.collisions``).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ikesim._version import __version__
from ikesim.errors import TraceNotRecorded
from ikesim.metrics.cpu_tables import cpu_summary, cpu_table, processing_table
from ikesim.metrics.event_rows import events_frame, write_events
from ikesim.metrics.export import write_pcap, write_secret
from ikesim.metrics.ha import HA_COLUMNS, ha_summary, ha_table
from ikesim.metrics.handovers import HANDOVER_COLUMNS, handover_summary, handovers_table
from ikesim.metrics.packets import packets_table, pcap_records, write_packets
from ikesim.metrics.rekeys import rekey_latency_table
from ikesim.metrics.restarts import RestartRows, restart_summary
from ikesim.metrics.sas import sas_table
from ikesim.metrics.stats import percentiles
from ikesim.metrics.trace import Trace
from ikesim.metrics.traffic_log import TrafficLog, Window
from ikesim.metrics.traffic_tables import closed_windows, outages_table, traffic_summary, traffic_table, window_table

__all__ = ["Results", "percentiles"]

_EXCHANGE_COLUMNS = ["exchange", "purpose", "initiator", "responder", "connection", "spi_i", "spi_r",
                     "message_id", "start", "end", "latency", "retransmissions", "outcome", "reason"]
_WRITTEN = {"full": ("events", "exchanges", "sas", "packets"), "exchanges": ("exchanges", "sas"), "summary": ()}
"""The tables ``write`` always writes, per trace level (plus nat_paths, processing and cpu when not empty)."""


_NO_TRAFFIC = TrafficLog()
"""An empty log: the traffic tables of a run without traffic (their columns, no rows)."""


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    """How often each value occurs, by value (sorted): pandas' ``value_counts().sort_index()`` as a dict."""
    counts = pc.value_counts(column)
    return dict(sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)))


class Results:
    """Everything a run produced, as DataFrames (``events``, ``exchanges``, ``sas``, ``packets``) and ``summary``.

    Also ``rekey_latencies`` (one row per triggered rekey), ``collisions`` (one row per collided SA pair),
    ``violations``, ``nat_paths``, ``processing``, ``cpu``, ``handovers``, ``ha`` and ``restarts``. With ``trace: exchanges``
    there is no ``events`` or ``packets`` table, and with ``trace: summary`` no ``sas`` either: reading one raises
    ``TraceNotRecorded``.
    """

    def __init__(
        self, trace: Trace, *, name: str, seed: int, run: int, duration: float, owners: dict[str, str],
        crypto_ops: dict[str, int], nodes: list[str] | None = None, keepalives: int = 0, fragmented: int = 0,
        cores: dict[str, int] | None = None, warmup: float = 0.0,
        installed: dict[str, dict[str, list[str]]] | None = None,
    ) -> None:
        """The results of a run from its *trace* and what the run knows (``Simulation.results`` builds this).

        *owners*: IP address -> node; *crypto_ops*: operation -> count over all nodes; *keepalives*: NAT
        keepalives sent; *fragmented*: datagrams IP-fragmented on some link; *cores*: node -> CPU cores, for
        nodes with a CPU model; *installed*: node -> ``{"in": [...], "out": [...]}``, the hex SPIs of the CHILD_SAs
        its daemon holds inbound and sends with at the end (None: not known). ``ikesim.metrics`` never sees a
        ``Simulation``.
        """
        trace.flush()
        self.name, self.seed, self.run, self.duration = name, seed, run, duration
        self.trace = trace
        self.level = trace.level
        self._owners = owners
        self._nodes = sorted(nodes if nodes is not None else set(owners.values()))
        self._crypto_ops = crypto_ops
        self._keepalives = keepalives
        self._fragmented = fragmented
        self._cores = cores or {}
        self.warmup = warmup
        self.installed = installed
        """Node -> {"in": inbound SPIs held, "out": SPIs sent with} of its CHILD_SAs at the end, hex, sorted (RFC 4301
        §4.4.2: the SAD); the ``installed`` expectation reads it. None when the run did not take the snapshot
        (``trace: summary``, or Results built without a simulation)."""

    @property
    def nodes(self) -> list[str]:
        """The run's IKE nodes, sorted (the summary's ``nodes``)."""
        return list(self._nodes)

    @property
    def rekeys(self) -> dict[str, int]:
        """Rekeys completed by their initiator, per kind (``child``, ``ike``: the summary's ``rekeys``)."""
        return dict(self.trace.rekeys.initiated)

    def _need(self, table: str, level: str) -> None:
        if self.level == "summary" or (level == "full" and self.level != "full"):
            raise TraceNotRecorded(f"the {table} table is not recorded with trace: {self.level} "
                                   f"(it needs trace: {level})")

    # --- tables -----------------------------------------------------------------------

    @cached_property
    def events(self) -> pd.DataFrame:
        """Every protocol event, stamped with simulated time and node (``trace: full``)."""
        self._need("events", "full")
        assert self.trace.events is not None
        return events_frame(self.trace.events.tables(), self.trace.kinds)

    @cached_property
    def _exchange_columns(self) -> pa.Table:
        """The spooled exchange rows as Arrow columns (what the summary counts, without a DataFrame)."""
        return self.trace.exchanges.table()

    @cached_property
    def exchanges(self) -> pd.DataFrame:
        """One row per exchange: purpose, initiator, responder, start, end, latency, retransmissions, outcome."""
        table = self._exchange_columns
        if not table.num_rows:
            return pd.DataFrame(columns=_EXCHANGE_COLUMNS)
        df = table.to_pandas()
        owners = self._owners
        df["responder"] = [owners.get(ip, ip) for ip in df["responder"].tolist()]
        return df.sort_values(["start", "initiator", "message_id"], kind="stable").reset_index(drop=True)

    @cached_property
    def sas(self) -> pd.DataFrame:
        """One row per IKE_SA and CHILD_SA per node: SPIs, created, planned and actual rekey, deletion."""
        self._need("sas", "exchanges")
        assert self.trace.sas is not None
        return sas_table(self.trace.sas.ops.batches())

    @cached_property
    def packets(self) -> pd.DataFrame:
        """One row per datagram with its fate (``size`` is the IPv4 datagram: 20 + 8 + non-ESP marker + IKE)."""
        self._need("packets", "full")
        return packets_table(self.trace)

    @cached_property
    def rekey_latencies(self) -> pd.DataFrame:
        """One row per triggered rekey: who triggered it, when, and its latency on each side.

        The first ``RekeyStarted`` per (node, kind, old SPI) is a row; its initiator latency comes from the
        first ``RekeyCompleted(initiator=True)`` for that old SPI, if that node completed it, and its responder
        latency from the first ``RekeyCompleted(initiator=False)`` for the old SPI's outbound half, if the peer did.
        """
        return rekey_latency_table(self.trace.rekeys.started.read(), self.trace.rekeys.done.read())

    @cached_property
    def collisions(self) -> pd.DataFrame:
        """One row per rekey collision (RFC 7296 §2.8.1, §2.8.2): who won, how it was settled.

        Each peer reports a collision once (``RekeyCollision``); a lost message can hide one report. A
        CHILD_SA pair is identified by its two SPIs and an IKE_SA by (spi_i, spi_r), so both nodes' reports
        land on one key; the number of collisions on a key is the largest number of reports from one node
        (a retry that collides again counts again).
        """
        per, first = self.trace.collisions.grouped()
        rows = []
        for k, by_node in per.items():
            reports = [e for es in by_node.values() for e in es]
            winners = sorted(n for n, es in by_node.items() if any(e.won for e in es))
            rows.append({"kind": k[0], "sa": f"{k[1].hex()}/{k[2].hex()}", "first": first[k],
                         "nodes": ",".join(sorted(by_node)), "reports": len(reports),
                         "count": max(len(es) for es in by_node.values()), "winner": ",".join(winners),
                         "resolution": reports[0].resolution})
        return pd.DataFrame(rows, columns=["kind", "sa", "first", "nodes", "reports", "count", "winner", "resolution"])

    @cached_property
    def violations(self) -> pd.DataFrame:
        """One row per invariant violation the checker recorded (``InvariantViolated``)."""
        rows = [{"time": t, "node": node, "kind": e.kind, "connection": e.connection, "spi": e.spi, "detail": e.detail}
                for t, node, e in self.trace.nat.violations]
        return pd.DataFrame(rows, columns=["time", "node", "kind", "connection", "spi", "detail"])

    @cached_property
    def _windows(self) -> list[Window]:
        """The control windows with their ends, computed once for ``traffic`` and ``traffic_windows``."""
        return closed_windows(self.trace.traffic or _NO_TRAFFIC, self.duration)

    @cached_property
    def traffic(self) -> pd.DataFrame:
        """One row per user packet (``ikesim.metrics.traffic_tables``); empty when the run had no traffic."""
        return traffic_table(self.trace.traffic or _NO_TRAFFIC, self.duration, self._windows)

    @cached_property
    def outages(self) -> pd.DataFrame:
        """Runs of undelivered packets per flow direction, with reason, event and time to restore."""
        return outages_table(self.traffic)

    @cached_property
    def traffic_windows(self) -> pd.DataFrame:
        """The control events' windows that losses are attributed to (CHILD and IKE rekeys, NAT rebinds)."""
        return window_table(self.trace.traffic or _NO_TRAFFIC, self.duration, self._windows)

    @cached_property
    def handovers(self) -> pd.DataFrame:
        """One row per interface that went down under a tunnel: detection, restore, method, packets lost and outage
        (``ikesim.metrics.handovers``); empty when no host has moving interfaces."""
        rows = self.trace.handovers
        if rows is None:
            return pd.DataFrame(columns=HANDOVER_COLUMNS)
        return handovers_table(rows, self.outages if self.trace.traffic is not None else pd.DataFrame(),
                               self.processing if self._cores else None)

    @cached_property
    def ha(self) -> pd.DataFrame:
        """One row per (tunnel, cluster failure): detection, takeover, IKE restore and method, packets lost and the
        traffic interruption (``ikesim.metrics.ha``); empty when the run has no cluster."""
        rows = self.trace.ha
        if rows is None:
            return pd.DataFrame(columns=HA_COLUMNS)
        return ha_table(rows, self.outages if self.trace.traffic is not None else pd.DataFrame())

    @cached_property
    def restarts(self) -> pd.DataFrame:
        """One row per tunnel a restarted node lost: detection, time to restore and method, the peer's exchanges
        (``ikesim.metrics.restarts``); empty when the run has no ``restart`` action."""
        return (self.trace.restarts or RestartRows()).frame()

    @cached_property
    def nat_paths(self) -> pd.DataFrame:
        """One row per NAT mapping change (rebind, reboot, expiry): how long the return path was broken.

        The path is broken from the change until a peer follows the inside host to its new public
        endpoint (``PeerAddressChanged`` away from the old one, RFC 7296 §2.23); NaN if it never did.
        ``sent_to_old``: datagrams still sent to the old endpoint after the change (each one lost).
        """
        cols = ["nat", "kind", "inside", "old", "new", "broken_from", "restored_at", "broken_s", "restored_by", "sent_to_old"]
        tr = self.trace
        codes = {str(a): i for i, a in enumerate(tr.addresses)}
        sent_dst = np.frombuffer(tr.sent_dst, dtype=np.int32) if len(tr.sent_dst) else np.zeros(0, np.int32)
        sent_time = np.frombuffer(tr.sent_time, dtype=np.float64) if len(tr.sent_time) else np.zeros(0)
        rows = []
        for node, e in tr.nat.nat_events:
            if e.kind not in ("rebind", "reboot", "expired"):
                continue
            after = [(t, n) for t, n in tr.nat.follows.get(e.old, []) if t >= e.at]
            restored, by = after[0] if after else (None, "")
            code = codes.get(e.old)
            sent = 0 if code is None else int(((sent_dst == code) & (sent_time >= e.at)).sum())
            rows.append({"nat": node, "kind": e.kind, "inside": e.inside, "old": e.old, "new": e.new,
                         "broken_from": e.at, "restored_at": restored,
                         "broken_s": None if restored is None else restored - e.at, "restored_by": by,
                         "sent_to_old": sent})
        return pd.DataFrame(rows, columns=cols)

    @cached_property
    def processing(self) -> pd.DataFrame:
        """One row per CPU job of a node with a CPU model: arrived, start, end, wait, service (``ikesim.sim.cpu``)."""
        return processing_table(self.trace.jobs.read().to_pandas())

    @cached_property
    def cpu(self) -> pd.DataFrame:
        """Per node with a CPU model and 1 s bin: utilisation (0..1) and the longest queue in the bin."""
        return cpu_table(self.processing, self._cores, self.duration)

    # --- summary ----------------------------------------------------------------------

    def _nat_summary(self) -> dict[str, Any]:
        kinds = [e.kind for _node, e in self.trace.nat.nat_events]
        broken = [float(x) for x in self.nat_paths["broken_s"].dropna()]
        return {
            "mappings_created": kinds.count("mapping_created"), "mappings_expired": kinds.count("expired"),
            "rebinds": kinds.count("rebind"), "reboots": kinds.count("reboot"), "keepalives": self._keepalives,
            "peer_address_changes": self.trace.counts.by_type["PeerAddressChanged"],
            "return_path_broken_s": percentiles(broken),
            "never_restored": int((self.nat_paths["restored_at"].isna() & (self.nat_paths["sent_to_old"] > 0)).sum()),
        }

    def _collision_overhead(self) -> dict[str, Any]:
        """Collisions by kind, redundant SAs and the messages collisions cost (RFC 7296 §2.8.1, §2.25).

        Extra messages: every request transmission and response of an exchange answered with
        TEMPORARY_FAILURE, of an exchange that created an SA found redundant, and of the Delete of a
        redundant SA. ``ExchangeCollision`` cases are counted once per SA even when both peers see them.
        """
        by_kind: dict[str, int] = {}
        for k, n in (self.collisions.groupby("kind")["count"].sum().items() if len(self.collisions) else ()):
            by_kind[f"{k}_rekey"] = int(n)
        c = self.trace.collisions
        for case in c.exchange_cases.values():
            by_kind[case] = by_kind.get(case, 0) + 1
        ex = self._exchange_columns
        messages = exchanges = 0
        if ex.num_rows:  # on the spooled Arrow columns: the summary never builds the exchanges DataFrame
            mask = pc.or_(pc.equal(ex["outcome"], "TEMPORARY_FAILURE"), pc.equal(ex["reason"], "redundant"))
            if c.wasted:
                hexed = {(n, s.hex(), m) for n, s, m in c.wasted}
                maybe = pc.is_in(ex["spi_i"], value_set=pa.array(sorted({s for _n, s, _m in hexed}), pa.string()))
                hits = pc.indices_nonzero(maybe).to_pylist()
                wasted = [False] * ex.num_rows
                for i, n, s, m in zip(hits, *(ex[col].take(hits).to_pylist() for col in ("initiator", "spi_i",
                                                                                        "message_id")), strict=True):
                    wasted[i] = (n, s, m) in hexed
                mask = pc.or_(mask, pa.array(wasted, pa.bool_()))
            extra = ex.filter(mask)
            exchanges = extra.num_rows
            messages = int(pc.sum(extra["retransmissions"]).as_py() or 0) + 2 * exchanges
        return {"collisions_by_kind": dict(sorted(by_kind.items())), "redundant_sas": dict(c.redundant),
                "collision_overhead": {"exchanges": exchanges, "messages": messages}}

    def _datagram_summary(self) -> dict[str, Any]:
        tr = self.trace
        sent = len(tr.fate)
        codes = np.frombuffer(tr.fate, dtype=np.int8) if sent else np.zeros(0, np.int8)
        per_code = np.bincount(codes[codes >= 0], minlength=len(tr.fate_names)) if sent else np.zeros(0, np.int64)
        by_fate = {name: int(per_code[i]) for i, name in enumerate(tr.fate_names) if per_code[i]}
        n = by_fate.get
        return {
            "sent": sent, "delivered": n("delivered", 0), "lost": n("lost", 0),
            "fragment_lost": n("fragment_lost", 0), "fragments_dropped": n("fragments_dropped", 0),
            "queue_overflow": n("queue_overflow", 0), "link_down": n("link_down", 0),
            "fragmented": self._fragmented, "no_route": n("no_route", 0),
            "dropped_by_fault": n("dropped_by_fault", 0), "held_by_fault": self.trace.held_by_fault,
            "in_flight": sent - sum(by_fate.values()),
            "by_fate": dict(sorted(by_fate.items())),
        }

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Counts, latency percentiles and crypto operation counts (deterministic: no wall time)."""
        ex = self._exchange_columns
        counts = _value_counts(ex["purpose"])
        outcomes = _value_counts(ex["outcome"])
        failed = ex.num_rows - outcomes.get("ok", 0)
        names = self.trace.counts.by_type
        rl = self.rekey_latencies
        latency: dict[str, Any] = {}
        for kind in ("child", "ike"):
            sub = rl[rl["kind"] == kind]
            latency[kind] = {
                "initiator": percentiles([float(x) for x in sub["initiator_latency"].dropna()]),
                "responder": percentiles([float(x) for x in sub["responder_latency"].dropna()]),
            }
        out = {
            "name": self.name, "seed": self.seed, "run": self.run, "ikesim_version": __version__,
            "duration": self.duration,
            "nodes": self._nodes,
            "exchanges_by_type": counts,
            "exchange_outcomes": outcomes,
            "exchanges_failed": failed,
            "rekeys": self.rekeys,
            "rekey_latency": latency,
            "retransmissions": names["Retransmitted"],
            "collisions": int(self.collisions["count"].sum()) if len(self.collisions) else 0,
            "collision_events": names["RekeyCollision"],
            **self._collision_overhead(),
            "messages_dropped": names["MessageDropped"],
            "datagrams": self._datagram_summary(),
            "sas": {"ike_established": names["IkeSaEstablished"], "child_installed": names["ChildSaInstalled"],
                    "ike_deleted": names["IkeSaDeleted"], "child_deleted": names["ChildSaDeleted"]},
            "auth_failures": names["AuthFailed"],
            "invariant_violations": len(self.violations),
            "invariant_violations_by_kind": {str(k): int(v) for k, v in
                                             self.violations["kind"].value_counts().sort_index().items()},
            "crypto_ops": self._crypto_ops,
        }
        if self._cores:
            out["cpu"] = cpu_summary(self.processing, self.cpu, self._cores, self.duration, self.warmup)
        if self._keepalives or self.trace.nat.nat_events:
            out["nat"] = self._nat_summary()
        if self.trace.traffic is not None:
            out["traffic"] = traffic_summary(self.traffic, self.outages, self.traffic_windows)
        if self.trace.handovers is not None:
            out["handovers"] = handover_summary(self.handovers)
        if self.trace.ha is not None:
            out["ha"] = ha_summary(self.ha, self.trace.ha, self.cpu if self._cores else None)
        if self.trace.restarts is not None and self.trace.restarts.restarts:
            out["restarts"] = restart_summary(self.restarts, self.trace.restarts,
                                              self.processing if self._cores else None, self._cores)
        if self.level != "full":
            out["trace"] = self.level
        return out

    # --- files ------------------------------------------------------------------------

    def _small_tables(self) -> tuple[str, ...]:
        """The optional tables ``write`` writes when not empty: one row per CPU job only with ``trace: full``."""
        return ("nat_paths", "processing", "cpu", "handovers", "ha", "restarts") if self.level == "full" else (
            "nat_paths", "cpu", "handovers", "ha", "restarts")

    def _traffic_tables(self) -> tuple[str, ...]:
        """The data plane's tables of a run with traffic: all with ``trace: full``, outages and windows with
        ``exchanges``, none with ``summary`` (its summary.json has the traffic figures)."""
        if self.trace.traffic is None or self.level == "summary":
            return ()
        return ("traffic", "outages", "traffic_windows") if self.level == "full" else ("outages", "traffic_windows")

    def written_files(self, *, keys: bool = True) -> list[str]:
        """The names ``write`` creates for this run (depends on the trace level and which tables are empty)."""
        names = [f"{t}.parquet" for t in _WRITTEN[self.level]]
        names += [f"{t}.parquet" for t in self._small_tables() if len(getattr(self, t))]
        names += [f"{t}.parquet" for t in self._traffic_tables()]
        names.append("summary.json")
        if self.level == "full":
            names.append("capture.pcap")
            if keys:
                names += ["ikev2_decryption_table", "esp_sa"]
        return names

    def write(self, directory: str | Path, *, keys: bool = True) -> None:
        """Write the tables as Parquet, summary.json and, with ``trace: full``, capture.pcap and the key tables.

        The key tables (``ikev2_decryption_table``, ``esp_sa``) hold live keys: created with mode 0600, and not
        written at all with ``keys=False``. The decryption table has every IKE_SA that derived keys
        (``IkeSaKeysDerived``, rekeys' ``IkeSaEstablished``), so a failed IKE_AUTH still decrypts.
        """
        d = Path(directory)
        for name in _WRITTEN[self.level]:
            if name == "events":  # the two big tables go straight from the spool, one row group at a time
                assert self.trace.events is not None
                write_events(d / "events.parquet", self.trace.events.iter_tables(), self.trace.events.schemas(),
                             self.trace.kinds)
            elif name == "packets":
                write_packets(d / "packets.parquet", self.trace)
            else:
                getattr(self, name).to_parquet(d / f"{name}.parquet", index=False)
        for name in self._small_tables():
            table = getattr(self, name)
            if len(table):
                table.to_parquet(d / f"{name}.parquet", index=False)
        for name in self._traffic_tables():
            getattr(self, name).to_parquet(d / f"{name}.parquet", index=False)
        (d / "summary.json").write_text(json.dumps(self.summary, indent=2, sort_keys=True) + "\n")
        if self.level != "full":
            return
        write_pcap(d / "capture.pcap", pcap_records(self.trace), self.trace.fragments)
        if not keys:
            return
        assert self.trace.keys is not None
        for table in ("ikev2_decryption_table", "esp_sa"):
            write_secret(d / table, self.trace.keys.text_chunks(table))
