"""Table builders fed event by event as the run goes: each keeps only open rows and small state.

Each builder declares ``handlers`` (event type -> method); the trace calls them in recording order. A
finished exchange goes to a spool at once; what has to wait for a later event (an SA until it is deleted, a
rekey until it completes) stays as a compact row. The rules each table follows are in ``ikesim.metrics.results``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ikesim.ike import events as ev
from ikesim.metrics.export import esp_sa_line_pairs, esp_wireshark_names, ikev2_decryption_line, open_secret
from ikesim.metrics.recorder import InvariantViolated, NatEvent
from ikesim.metrics.spool import ROWS_PER_GROUP, Spool, SpoolDir

__all__ = ["ExchangeRows", "SaRows", "RekeyRows", "CollisionRows", "Counts", "NatRows", "KeyLines", "Handler",
           "EXCHANGE_SCHEMA"]

Handler = Callable[[float, str, Any], None]

EXCHANGE_SCHEMA = pa.schema([
    ("exchange", pa.string()), ("purpose", pa.string()), ("initiator", pa.string()), ("responder", pa.string()),
    ("connection", pa.string()), ("spi_i", pa.string()), ("spi_r", pa.string()), ("message_id", pa.int64()),
    ("start", pa.float64()), ("end", pa.float64()), ("latency", pa.float64()), ("retransmissions", pa.int64()),
    ("outcome", pa.string()), ("reason", pa.string()),
])
"""The exchanges table as spooled; ``responder`` holds the peer's IP until the table maps it to its node."""


class ExchangeRows:
    """One row per exchange (RFC 7296 §1.2): opened by ``ExchangeStarted``, spooled at ``ExchangeCompleted``."""

    def __init__(self, spool_dir: SpoolDir, rows_per_group: int = ROWS_PER_GROUP) -> None:
        self.spool = Spool(spool_dir, "exchanges", EXCHANGE_SCHEMA, rows_per_group)
        self.open: dict[tuple[str, bytes, str, int], list[Any]] = {}
        self.handlers: dict[type, Handler] = {ev.ExchangeStarted: self.started, ev.ExchangeCompleted: self.completed,
                                              ev.Retransmitted: self.renumbered}

    def started(self, t: float, node: str, e: ev.ExchangeStarted) -> None:
        """An exchange this node initiated: its row is open until the exchange completes."""
        self.open[(node, e.spi_i, e.exchange, e.message_id)] = [
            e.exchange, e.purpose, node, e.peer.ip, e.connection, e.spi_i.hex(), e.spi_r.hex(), e.message_id,
            t, None, None, 0, "open", e.reason]

    def renumbered(self, t: float, node: str, e: ev.Retransmitted) -> None:
        """An RFC 6311 synchronization gave this node's request in flight a new message ID (``ike.ha_sync``): its row
        follows (window size 1: the one open row of that IKE_SA, exchange and purpose)."""
        if e.reason != "mid_sync":
            return
        for key, row in self.open.items():
            if key[:3] == (node, e.spi_i, e.exchange) and row[1] == e.purpose:
                del self.open[key]
                row[7] = e.message_id
                self.open[(node, e.spi_i, e.exchange, e.message_id)] = row
                return

    def completed(self, t: float, node: str, e: ev.ExchangeCompleted) -> None:
        """The exchange ended (answered, failed, timed out): its row is final."""
        row = self.open.pop((node, e.spi_i, e.exchange, e.message_id), None)
        if row is None:
            return
        row[9], row[10], row[11], row[12], row[6] = t, t - row[8], e.retransmissions, e.outcome, e.spi_r.hex()
        self.spool.rows.append(tuple(row))
        self.spool.maybe_flush()

    def table(self) -> pa.Table:
        """Finished rows in completion order, then the open ones in start order."""
        done = self.spool.read()
        if not self.open:
            return done
        still = pa.table([pa.array(c, type=f.type) for c, f in zip(zip(*self.open.values(), strict=True),
                                                                    EXCHANGE_SCHEMA, strict=True)], schema=EXCHANGE_SCHEMA)
        return pa.concat_tables([done, still])


SA_OPS = pa.schema([
    ("op", pa.int8()), ("node", pa.string()), ("key", pa.binary()), ("key2", pa.binary()),
    ("time", pa.float64()), ("connection", pa.string()), ("spi_i", pa.binary()), ("spi_r", pa.binary()),
    ("spi_out", pa.binary()), ("initiator", pa.bool_()), ("rekey_at", pa.float64()), ("expire_at", pa.float64()),
    ("reason", pa.string()),
])
"""What happened to an SA, one row per event: ``op`` is one of ``SA_OPS_CODES``; ``key`` the SA's inbound SPI
(a deleted IKE_SA: its spi_i, and ``key2`` its spi_r)."""
IKE_CREATED, CHILD_CREATED, REKEYED_IKE, REKEYED_CHILD, IKE_DELETED, CHILD_DELETED = range(6)


class SaRows:
    """What happened to every IKE_SA and CHILD_SA, spooled; ``ikesim.metrics.sas`` makes the table after the run."""

    def __init__(self, spool_dir: SpoolDir, rows_per_group: int = ROWS_PER_GROUP) -> None:
        self.ops = Spool(spool_dir, "sa_ops", SA_OPS, rows_per_group)
        self.handlers: dict[type, Handler] = {
            ev.IkeSaEstablished: self.ike, ev.ChildSaInstalled: self.child, ev.RekeyCompleted: self.rekeyed,
            ev.IkeSaDeleted: self.ike_deleted, ev.ChildSaDeleted: self.child_deleted,
            ev.IkeSaActivated: self.ike, ev.ChildSaActivated: self.child_activated}

    def _add(self, row: tuple[Any, ...]) -> None:
        self.ops.rows.append(row)
        self.ops.maybe_flush()

    def ike(self, t: float, node: str, e: ev.IkeSaEstablished | ev.IkeSaActivated) -> None:
        """A new IKE_SA (RFC 7296 §1.2, §1.3.2), or one a cluster member took over (``ike.ha_state``)."""
        local, remote = (e.spi_i, e.spi_r) if e.initiator else (e.spi_r, e.spi_i)
        self._add((IKE_CREATED, node, local, None, t, e.connection, e.spi_i, e.spi_r, remote, e.initiator,
                   e.rekey_at, e.expire_at, None))

    def child(self, t: float, node: str, e: ev.ChildSaInstalled) -> None:
        """A new CHILD_SA pair (RFC 7296 §1.3)."""
        self._add((CHILD_CREATED, node, e.spi_in, None, t, e.connection, e.spi_i, e.spi_r, e.spi_out, e.initiator,
                   e.rekey_at, e.expire_at, None))

    def child_activated(self, t: float, node: str, e: ev.ChildSaActivated) -> None:
        """A CHILD_SA pair a cluster member took over (``ike.ha_state``): this node holds it from now on."""
        self._add((CHILD_CREATED, node, e.spi_in, None, t, e.connection, e.spi_i, e.spi_r, e.spi_out, None,
                   e.rekey_at, e.expire_at, None))

    def rekeyed(self, t: float, node: str, e: ev.RekeyCompleted) -> None:
        """The SA was replaced (the first rekey after its creation counts)."""
        op = REKEYED_IKE if e.kind is ev.SaKind.IKE else REKEYED_CHILD
        self._add((op, node, e.old_spi, None, t, None, None, None, None, None, None, None, None))

    def ike_deleted(self, t: float, node: str, e: ev.IkeSaDeleted) -> None:
        """The IKE_SA is gone (its row is found by either SPI)."""
        self._add((IKE_DELETED, node, e.spi_i, e.spi_r, t, None, None, None, None, None, None, None, e.reason))

    def child_deleted(self, t: float, node: str, e: ev.ChildSaDeleted) -> None:
        """The CHILD_SA is gone."""
        self._add((CHILD_DELETED, node, e.spi_in, None, t, None, None, None, None, None, None, None, e.reason))


_REKEY_STARTED = pa.schema([("node", pa.string()), ("kind", pa.string()), ("old_spi", pa.binary()),
                            ("triggered", pa.float64()), ("old_spi_out", pa.binary())])
_REKEY_DONE = pa.schema([("kind", pa.string()), ("old_spi", pa.binary()), ("initiator", pa.bool_()),
                         ("time", pa.float64()), ("node", pa.string())])
_INSTALLED = pa.schema([("node", pa.string()), ("spi_in", pa.binary()), ("spi_out", pa.binary())])


class RekeyRows:
    """Every ``RekeyStarted`` and ``RekeyCompleted``, spooled; ``rekey_latencies`` joins them after the run."""

    def __init__(self, spool_dir: SpoolDir, rows_per_group: int = ROWS_PER_GROUP) -> None:
        self.started = Spool(spool_dir, "rekey_started", _REKEY_STARTED, rows_per_group)
        self.done = Spool(spool_dir, "rekey_done", _REKEY_DONE, rows_per_group)
        self.initiated = {"child": 0, "ike": 0}
        """Rekeys completed by their initiator, per kind (the summary's ``rekeys``)."""
        self.handlers: dict[type, Handler] = {ev.RekeyStarted: self.on_started, ev.RekeyCompleted: self.on_completed}

    def on_started(self, t: float, node: str, e: ev.RekeyStarted) -> None:
        """A rekey was triggered (RFC 7296 §2.8)."""
        self.started.rows.append((node, e.kind.value, e.old_spi, t, e.old_spi_out))
        self.started.maybe_flush()

    def on_completed(self, t: float, node: str, e: ev.RekeyCompleted) -> None:
        """A new SA replaced the old one on this node."""
        self.done.rows.append((e.kind.value, e.old_spi, e.initiator, t, node))
        self.done.maybe_flush()
        if e.initiator:
            self.initiated[e.kind.value] += 1


class CollisionRows:
    """Rekey collision reports, exchange collisions, and the exchanges collisions wasted.

    A CHILD_SA collision report names the node's inbound SPI; the pair's outbound SPI comes from the
    CHILD_SAs installed before the report (spooled: a report can come after its SA was deleted, so every
    installed SA has to stay findable).
    """

    def __init__(self, spool_dir: SpoolDir, rows_per_group: int = ROWS_PER_GROUP) -> None:
        self.installs = Spool(spool_dir, "child_installed", _INSTALLED, rows_per_group)
        self._installed = 0
        self.reports: list[tuple[int, float, str, ev.RekeyCollision]] = []
        """(CHILD_SAs installed before it, time, node, report) of every rekey collision report."""
        self.exchange_cases: dict[tuple[Any, ...], str] = {}
        self.redundant = {"child": 0, "ike": 0}
        self.last_done: dict[str, tuple[float, ev.ExchangeCompleted]] = {}
        self.wasted: set[tuple[str, bytes, int]] = set()
        self.handlers: dict[type, Handler] = {
            ev.ChildSaInstalled: self.installed, ev.RekeyCollision: self.collision,
            ev.ExchangeCompleted: self.completed, ev.ExchangeCollision: self.exchange_collision}

    def installed(self, t: float, node: str, e: ev.ChildSaInstalled) -> None:
        """Remember the pair's outbound SPI."""
        self.installs.rows.append((node, e.spi_in, e.spi_out))
        self.installs.maybe_flush()
        self._installed += 1

    def completed(self, t: float, node: str, e: ev.ExchangeCompleted) -> None:
        """The last exchange a node completed: a redundant SA reported in the same instant came from it."""
        self.last_done[node] = (t, e)

    def collision(self, t: float, node: str, e: ev.RekeyCollision) -> None:
        """A rekey collision report (RFC 7296 §2.8.1, §2.8.2)."""
        self.reports.append((self._installed, t, node, e))
        if not e.won and e.resolution == "nonces":
            self.redundant[e.kind.value] += 1
            done = self.last_done.get(node)
            if done is not None and done[0] == t:
                self.wasted.add((node, done[1].spi_i, done[1].message_id))

    def exchange_collision(self, t: float, node: str, e: ev.ExchangeCollision) -> None:
        """An exchange collision (RFC 7296 §2.25), counted once per SA even when both peers see it."""
        key = (e.case, *sorted((e.spi, e.spi_out))) if e.spi_out else (e.case, e.spi_i, e.spi_r)
        self.exchange_cases.setdefault(key, e.case)

    def grouped(self) -> tuple[dict[tuple[str, bytes, bytes], dict[str, list[Any]]], dict[tuple[str, bytes, bytes], float]]:
        """Reports per collided SA pair and node, and when each pair first collided (in report order).

        A CHILD_SA pair is keyed by its two SPIs (sorted), an IKE_SA by (spi_i, spi_r), so both nodes' reports
        land on one key.
        """
        wanted = {e.old_spi for _n, _t, _node, e in self.reports if e.kind is ev.SaKind.CHILD}
        out_of: dict[tuple[str, bytes], list[tuple[int, bytes]]] = {}
        if wanted:
            offset = 0
            for table in self.installs.batches():  # only the installs of reported SPIs become Python objects
                hits = pc.indices_nonzero(pc.is_in(table.column("spi_in"), value_set=pa.array(list(wanted), pa.binary())))
                sub = table.take(hits)
                for i, node, spi, out in zip(hits.to_pylist(), *(sub.column(c).to_pylist() for c in
                                                                  ("node", "spi_in", "spi_out")), strict=True):
                    out_of.setdefault((node, spi), []).append((offset + i, out))
                offset += table.num_rows
        per: dict[tuple[str, bytes, bytes], dict[str, list[Any]]] = {}
        first: dict[tuple[str, bytes, bytes], float] = {}
        for before, t, node, e in self.reports:
            if e.kind is ev.SaKind.CHILD:
                earlier = [out for i, out in out_of.get((node, e.old_spi), ()) if i < before]
                a, b = sorted((e.old_spi, earlier[-1] if earlier else b""))
                key = ("child", a, b)
            else:
                key = ("ike", e.spi_i, e.spi_r)
            per.setdefault(key, {}).setdefault(node, []).append(e)
            first.setdefault(key, t)
        return per, first


class Counts:
    """How many events of each type were recorded (the summary's counters)."""

    def __init__(self) -> None:
        self.by_type: Counter[str] = Counter()

    def count(self, kind: type, n: int = 1) -> None:
        """Count *n* events of *kind*."""
        self.by_type[kind.__name__] += n


class NatRows:
    """NAT mapping changes and the peers that followed an inside host to its new endpoint (RFC 7296 §2.23)."""

    def __init__(self) -> None:
        self.nat_events: list[tuple[str, NatEvent]] = []
        self.follows: dict[str, list[tuple[float, str]]] = {}
        self.violations: list[tuple[float, str, InvariantViolated]] = []
        self.handlers: dict[type, Handler] = {NatEvent: self.nat, ev.PeerAddressChanged: self.peer_moved,
                                              InvariantViolated: self.violated}

    def nat(self, t: float, node: str, e: NatEvent) -> None:
        """A NAT created, expired, rebound or rebooted a mapping."""
        self.nat_events.append((node, e))

    def peer_moved(self, t: float, node: str, e: ev.PeerAddressChanged) -> None:
        """A peer followed the other end to a new address."""
        self.follows.setdefault(str(e.old), []).append((t, node))

    def violated(self, t: float, node: str, e: InvariantViolated) -> None:
        """The invariant checker recorded a violation."""
        self.violations.append((t, node, e))


class KeyLines:
    """Wireshark key-table lines as SAs derive keys: in memory, then appended to 0600 files in the spool directory."""

    def __init__(self, spool_dir: SpoolDir, lines_in_memory: int = 4096) -> None:
        self._dir = spool_dir
        self._limit = lines_in_memory
        self._pending: dict[str, list[str]] = {"ikev2_decryption_table": [], "esp_sa": []}
        self._seen_ike: set[tuple[bytes, bytes]] = set()
        self._seen_esp: set[bytes] = set()
        self.handlers: dict[type, Handler] = {
            ev.IkeSaKeysDerived: self.derived, ev.IkeSaEstablished: self.derived, ev.ChildSaInstalled: self.installed}

    def derived(self, t: float, node: str, e: ev.IkeSaKeysDerived | ev.IkeSaEstablished) -> None:
        """One ikev2_decryption_table line per IKE_SA, from the first event that carries its keys (none for a cipher
        Wireshark's table cannot name, ChaCha20-Poly1305: a line it cannot parse would void the whole table)."""
        key = (e.spi_i, e.spi_r)
        if key not in self._seen_ike and e.encr_wireshark:
            self._seen_ike.add(key)
            self._add("ikev2_decryption_table", ikev2_decryption_line(e))

    def installed(self, t: float, node: str, e: ev.ChildSaInstalled) -> None:
        """esp_sa lines for both directions of a CHILD_SA (each SPI once), with ``*`` addresses: the SPI alone picks
        the SA, so the table stays valid after a MOBIKE move (RFC 4555), a NAT rebind or behind a NAT."""
        encr, integ = esp_wireshark_names(e.encr, e.integ)
        for spi, line in esp_sa_line_pairs(e, encr, integ, inbound_wildcard=True, outbound_wildcard=True):
            if spi not in self._seen_esp:
                self._seen_esp.add(spi)
                self._add("esp_sa", line)

    def _add(self, table: str, line: str) -> None:
        pending = self._pending[table]
        pending.append(line)
        if len(pending) >= self._limit:
            self._spill(table)

    def _spill(self, table: str) -> None:
        """Append the pending lines of *table* to its spool file (created 0600: it holds keys)."""
        with open_secret(self._dir.path / table, append=True) as f:
            f.write("".join(f"{line}\n" for line in self._pending[table]))
        self._pending[table] = []

    def text_chunks(self, table: str) -> Iterator[str]:
        """The whole table (``ikev2_decryption_table`` or ``esp_sa``), one line per SA (direction), in chunks.

        A table without a line is one empty line, as Wireshark's own empty tables are written.
        """
        path = self._dir.path / table if self._dir.exists else None
        spilled = path is not None and path.exists()
        if spilled:
            with path.open(encoding="ascii") as f:  # type: ignore[union-attr]
                while chunk := f.read(1 << 20):
                    yield chunk
        pending = self._pending[table]
        yield "".join(f"{line}\n" for line in pending) if pending or spilled else "\n"
