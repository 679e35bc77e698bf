"""The packets table and the capture's records, read from the trace's datagram spool and fate arrays."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ikesim.metrics.trace import Trace
from ikesim.types import Address
from ikesim.wire.codec import IKE_HEADER_LENGTH
from ikesim.wire.iana import ExchangeType

__all__ = ["packets_table", "pcap_records", "write_packets", "PACKET_COLUMNS"]

PACKET_COLUMNS = ["id", "time_sent", "node", "src", "dst", "size", "ike_length", "fate", "time_delivered",
                  "fate_time", "fate_at", "exchange", "spi_i", "spi_r", "message_id", "response"]
"""``size`` is the IPv4 datagram (20 + 8 + non-ESP marker + IKE message), as the link's MTU sees it."""
_EXCHANGE_NAMES = {int(x): x.name for x in ExchangeType}


def pcap_records(trace: Trace) -> Iterator[tuple[int, float, Address, Address, bytes]]:
    """(id, time, src, dst, payload) records for ``write_pcap``, in the order sent: IKE datagrams, and the
    captured ESP packets (ids below 0) merged in by send time."""
    ike = ((ident, t, src, dst, data) for ident, t, _node, src, dst, data in trace.datagrams_sent())
    if trace.traffic is None or not trace.traffic.captured:
        yield from ike
        return
    yield from heapq.merge(ike, trace.traffic.captured, key=lambda r: r[1])


def _rows(trace: Trace, datagrams: Iterable[tuple[int, float, str, Address, Address, bytes]]) -> list[tuple[Any, ...]]:
    """Packets-table rows of *datagrams*: sender, size, fate and the IKE header fields (RFC 7296 §3.1)."""
    rows = []
    fates, fate_time, fate_at = trace.fate, trace.fate_time, trace.fate_at
    names, places = trace.fate_names, trace.places
    for ident, t, node, src, dst, data in datagrams:
        i = ident - 1
        code = fates[i]
        if code < 0:
            fate, ft, where = "in_flight", None, ""
        else:
            fate, ft, where = names[code], fate_time[i], places[fate_at[i]]
        marker = 4 if 4500 in (src.port, dst.port) and data != b"\xff" else 0  # a NAT keepalive has none
        if len(data) >= IKE_HEADER_LENGTH:
            xchg, flags = data[18], data[19]
            exchange, response = _EXCHANGE_NAMES.get(xchg, ""), bool(flags & 0x20)
            si, sr, mid = data[0:8].hex(), data[8:16].hex(), int.from_bytes(data[20:24], "big")
        else:
            exchange, response, mid, si, sr = "", False, -1, "", ""
        rows.append((ident, t, node, str(src), str(dst), 28 + marker + len(data), len(data), fate,
                     ft if fate == "delivered" else None, ft, where, exchange, si, sr, mid, response))
    return rows


def packets_table(trace: Trace) -> pd.DataFrame:
    """One row per datagram: who sent it when, its size, its fate and the IKE header fields (RFC 7296 §3.1)."""
    return pd.DataFrame(_rows(trace, trace.datagrams_sent()), columns=PACKET_COLUMNS)


_SCHEMA = pa.schema([
    ("id", pa.int64()), ("time_sent", pa.float64()), ("node", pa.string()), ("src", pa.string()),
    ("dst", pa.string()), ("size", pa.int64()), ("ike_length", pa.int64()), ("fate", pa.string()),
    ("time_delivered", pa.float64()), ("fate_time", pa.float64()), ("fate_at", pa.string()),
    ("exchange", pa.string()), ("spi_i", pa.string()), ("spi_r", pa.string()), ("message_id", pa.int64()),
    ("response", pa.bool_()),
])


def write_packets(path: Path, trace: Trace) -> None:
    """Write the packets table to *path* one spool file (row group) at a time, never the whole table in memory."""
    with pq.ParquetWriter(path, _SCHEMA) as writer:
        for chunk in trace.datagram_chunks():
            cols = list(zip(*_rows(trace, chunk), strict=True)) or [()] * len(_SCHEMA)
            writer.write_table(pa.table([pa.array(c, type=f.type) for c, f in zip(cols, _SCHEMA, strict=True)],
                                        schema=_SCHEMA))
