"""The run's trace: what models record, kept as columns and spooled to Parquet as the run goes.

``Trace`` is the ``Recorder`` a simulation writes into (ns-3 trace sink); ``ikesim.metrics.results``
reads it. Events are buffered as they come and handled in batches: each batch feeds the table builders
(``ikesim.metrics.builders``) in recording order and, with ``trace: full``, becomes one Arrow table of
the events. Per datagram the trace keeps a few typed array slots (send time, destination, fate), and
with ``full`` its bytes go to a Parquet spool for the packets table and the capture.

Levels (``TRACE_LEVELS``):

- ``full``: everything: events, exchanges, SAs, packets, capture and key tables;
- ``exchanges``: the exchanges and SAs tables and the summary; no events, packets, capture or key tables;
- ``summary``: only what the summary needs (no SA rows either): the level for sweeps over big fleets.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import pyarrow as pa

from ikesim.errors import TraceNotRecorded
from ikesim.metrics.builders import (
    CollisionRows,
    Counts,
    ExchangeRows,
    Handler,
    KeyLines,
    NatRows,
    RekeyRows,
    SaRows,
)
from ikesim.metrics.event_rows import events_batch
from ikesim.metrics.fates import FateColumns
from ikesim.metrics.ha import HaRows
from ikesim.metrics.handovers import HandoverRows
from ikesim.metrics.restarts import RestartRows
from ikesim.metrics.spool import ROWS_PER_GROUP, BatchSpool, Spool, SpoolDir
from ikesim.metrics.traffic_log import TrafficLog
from ikesim.types import Address

__all__ = ["Trace", "TraceLevel", "TRACE_LEVELS"]

TraceLevel = Literal["full", "exchanges", "summary"]
TRACE_LEVELS: tuple[TraceLevel, ...] = ("full", "exchanges", "summary")

_DATAGRAM_SCHEMA = pa.schema([("id", pa.int64()), ("time_sent", pa.float64()), ("node", pa.string()),
                              ("src", pa.int32()), ("dst", pa.int32()), ("data", pa.binary())])
_JOB_SCHEMA = pa.schema([("node", pa.string()), ("arrived", pa.float64()), ("start", pa.float64()),
                         ("end", pa.float64()), ("what", pa.string())])
EVENT_BATCH = 32_768
"""Events buffered before a batch is handled (bounded memory, few Python objects alive)."""


class Trace(FateColumns):
    """Records events, datagrams, their fates and CPU jobs; see the module docstring for the levels."""

    def __init__(self, level: TraceLevel = "full", *, batch: int = EVENT_BATCH, rows_per_group: int = ROWS_PER_GROUP) -> None:
        if level not in TRACE_LEVELS:
            raise ValueError(f"trace level {level!r}: expected one of {', '.join(TRACE_LEVELS)}")
        self.level: TraceLevel = level
        self.dir = SpoolDir()
        self._batch = batch
        self._buf: list[tuple[float, str, Any]] = []
        self._seq = 0
        self.kinds: list[type] = []
        """Event types in the order they first occurred (the events table's column order follows it)."""
        self.counts = Counts()
        self.exchanges = ExchangeRows(self.dir, rows_per_group)
        self.sas = SaRows(self.dir, rows_per_group) if level != "summary" else None
        self.rekeys = RekeyRows(self.dir, rows_per_group)
        self.collisions = CollisionRows(self.dir, rows_per_group)
        self.nat = NatRows()
        self.keys = KeyLines(self.dir, rows_per_group) if level == "full" else None
        self.events = BatchSpool(self.dir, "events", rows_per_group) if level == "full" else None
        self._by_kind: dict[type, list[Handler]] = {}
        self._builders = [b for b in (self.exchanges, self.sas, self.rekeys, self.collisions, self.nat, self.keys)
                          if b is not None]
        # per datagram (index = id - 1): send time, destination, fate, when and where it met it
        self.addresses: list[Address] = []
        self._address_code: dict[Address, int] = {}
        self.sent_time = array("d")
        self.sent_dst = array("i")
        FateColumns.__init__(self)
        self.datagrams = Spool(self.dir, "datagrams", _DATAGRAM_SCHEMA, rows_per_group) if level == "full" else None
        self.held_by_fault = 0
        """IKE datagrams a fault rule held (``hold``, ``reorder``), released later or not (``ikesim.sim.faults``)."""
        self.fragments: dict[int, int] = {}
        """Datagram id -> MTU of the first link that IP-fragmented it (the capture writes its fragments)."""
        self.jobs = Spool(self.dir, "jobs", _JOB_SCHEMA, rows_per_group)
        """CPU jobs of nodes with a CPU model: (node, arrived, start, end, what)."""
        self.traffic: TrafficLog | None = None
        """User packets (``enable_traffic``): None when the run has no data plane."""
        self.handovers: HandoverRows | None = None
        """Handover rows (``enable_handovers``): None when no host has interfaces that move."""
        self.ha: HaRows | None = None
        """HA failover rows (``enable_ha``): None when the run has no cluster."""
        self.restarts: RestartRows | None = None
        """Restart rows (``enable_restarts``): None when no daemon restart is scheduled."""

    def _add_builder(self, builder: Any) -> None:
        """Feed *builder* the events recorded from now on (the buffered ones are handled first, without it)."""
        self.flush()
        self._builders.append(builder)
        self._by_kind = {kind: [b.handlers[kind] for b in self._builders if kind in b.handlers]
                         for kind in self._by_kind}

    def enable_handovers(self) -> HandoverRows:
        """Build the handovers table (``ikesim.metrics.handovers``) from the events recorded from now on."""
        if self.handovers is None:
            self.handovers = HandoverRows()
            self._add_builder(self.handovers)
        return self.handovers

    def enable_ha(self, cluster: str, members: Sequence[str], segment: Callable[[str], int] | None = None) -> HaRows:
        """Build the ha table (``ikesim.metrics.ha``) from the events recorded from now on, for *cluster* of
        *members* too (*segment*: a client address -> its segment, ``Cluster.segment``)."""
        if self.ha is None:
            self.ha = HaRows()
            self._add_builder(self.ha)
        self.ha.add_cluster(cluster, members, segment)
        return self.ha

    def enable_restarts(self) -> RestartRows:
        """Build the restarts table (``ikesim.metrics.restarts``) from the events recorded from now on."""
        if self.restarts is None:
            self.restarts = RestartRows()
            self._add_builder(self.restarts)
        return self.restarts

    def enable_traffic(self, *, capture_per_sa: int = 20) -> TrafficLog:
        """Start recording user packets (datagram ids below 0 are theirs); the capture takes ESP only with ``full``."""
        if self.traffic is None:
            self.traffic = TrafficLog(capture_per_sa=capture_per_sa if self.level == "full" else 0)
        return self.traffic

    # --- the Recorder interface -------------------------------------------------------------

    def record(self, event: Any, *, now: float, node: str) -> None:
        """Record *event* seen on *node* at simulated time *now*."""
        self._buf.append((now, node, event))
        if len(self._buf) >= self._batch:
            self.flush()

    def record_sent(self, dgram_id: int, now: float, node: str, src: Address, dst: Address, data: bytes) -> None:
        """Record a datagram as it leaves its sender (ids count up from 1)."""
        code = self._address_code.get(dst)
        if code is None:
            code = self._intern(dst)
        self.sent_time.append(now)
        self.sent_dst.append(code)
        self.pending()
        if self.datagrams is not None:
            src_code = self._address_code.get(src)
            if src_code is None:
                src_code = self._intern(src)
            self.datagrams.rows.append((dgram_id, now, node, src_code, code, data))
            self.datagrams.maybe_flush()

    def record_fate(self, dgram_id: int, fate: str, now: float, where: str) -> None:
        """Record what became of a datagram (a later fate replaces an earlier one: a held datagram is released)."""
        if dgram_id < 0:
            assert self.traffic is not None  # only the data plane sends negative ids
            self.traffic.record_fate(-dgram_id, fate, now, where)
            return
        if fate == "held":
            self.held_by_fault += 1
        self.set_fate(dgram_id - 1, fate, now, where)

    def record_job(self, node: str, arrived: float, start: float, end: float, what: str) -> None:
        """Record one CPU job (``ikesim.sim.cpu``): when it arrived, started and ended."""
        self.jobs.rows.append((node, arrived, start, end, what))
        self.jobs.maybe_flush()

    def record_fragmented(self, dgram_id: int, mtu: int) -> None:
        """Record that a link of *mtu* IP-fragmented a datagram (the first such link on its path counts)."""
        self.fragments.setdefault(dgram_id, mtu)

    def datagrams_sent(self) -> Iterator[tuple[int, float, str, Address, Address, bytes]]:
        """(id, time sent, node, src, dst, payload) of every datagram, in the order sent (``trace: full``)."""
        for chunk in self.datagram_chunks():
            yield from chunk

    def datagram_chunks(self) -> Iterator[list[tuple[int, float, str, Address, Address, bytes]]]:
        """``datagrams_sent`` one spool file at a time (a list per file), so a long run's never all in memory."""
        if self.datagrams is None:
            raise TraceNotRecorded(f"datagrams are not recorded with trace: {self.level} (they need trace: full)")
        addresses = self.addresses
        for table in self.datagrams.batches():
            cols = [table.column(c).to_pylist() for c in ("id", "time_sent", "node", "src", "dst", "data")]
            yield [(ident, t, node, addresses[src], addresses[dst], data)
                   for ident, t, node, src, dst, data in zip(*cols, strict=True)]

    # --- batches ------------------------------------------------------------------------------

    @property
    def recorded(self) -> int:
        """Events recorded so far."""
        return self._seq + len(self._buf)

    def _intern(self, address: Address) -> int:
        code = self._address_code[address] = len(self.addresses)
        self.addresses.append(address)
        return code

    def _handlers(self, kind: type) -> list[Handler]:
        """The builders' handlers for events of *kind* (first sight of a type also fixes its column order)."""
        hs = [b.handlers[kind] for b in self._builders if kind in b.handlers]
        self._by_kind[kind] = hs
        self.kinds.append(kind)
        return hs

    def flush(self) -> None:
        """Hand the buffered events to the builders and, with ``full``, spool them as one columnar batch."""
        buf, self._buf = self._buf, []
        if not buf:
            return
        by_kind = self._by_kind
        counts: dict[type, int] = {}
        for t, node, e in buf:
            kind = type(e)
            hs = by_kind.get(kind)
            if hs is None:
                hs = self._handlers(kind)
            counts[kind] = counts.get(kind, 0) + 1
            for h in hs:
                h(t, node, e)
        for kind, n in counts.items():
            self.counts.count(kind, n)
        if self.events is not None:
            seq = self._seq
            self.events.add(events_batch([(seq + i, t, node, e) for i, (t, node, e) in enumerate(buf)]))
        self._seq += len(buf)

    def close(self) -> None:
        """Remove the spool directory (the trace can no longer be read)."""
        self.dir.remove()
