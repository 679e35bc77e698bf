"""The rekey latency table: the spooled ``RekeyStarted`` and ``RekeyCompleted`` rows, joined (RFC 7296 §2.8).

The join runs on Arrow columns (hash joins, no Python object per rekey), so a fleet's 300,000 rekeys
cost a few columns of memory, not a dict per row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["rekey_latency_table", "REKEY_COLUMNS"]

REKEY_COLUMNS = ["node", "kind", "old_spi", "triggered", "initiator_latency", "responder_latency"]


def _first(table: pa.Table, keys: list[str]) -> pa.Table:
    """The first row (in table order) of each distinct *keys*, in table order, with its position as ``i``."""
    table = table.append_column("i", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    firsts = table.group_by(keys, use_threads=False).aggregate([("i", "min")]).column("i_min").to_numpy()
    return table.take(pa.array(np.sort(firsts)))


def _latency(values: pa.ChunkedArray) -> pd.Series:
    """A latency column as pandas infers it from Python values: float64 with NaN, or None throughout."""
    if values.null_count == len(values):
        return pd.Series([None] * len(values), dtype=object)
    return pd.Series(values.to_numpy(zero_copy_only=False), dtype="float64")


def rekey_latency_table(started: pa.Table, done: pa.Table) -> pd.DataFrame:
    """One row per first ``RekeyStarted`` per (node, kind, old SPI), in trigger order, with both latencies.

    Initiator latency: the first ``RekeyCompleted(initiator=True)`` for (kind, old SPI), if the same node
    completed it. Responder latency: the first ``RekeyCompleted(initiator=False)`` for (kind, the old SA's
    outbound SPI), if another node did.
    """
    if not started.num_rows:
        return pd.DataFrame([], columns=REKEY_COLUMNS)
    s = _first(started, ["node", "kind", "old_spi"])
    d = _first(done, ["kind", "old_spi", "initiator"]).drop_columns(["i"])
    ini = d.filter(pc.equal(d["initiator"], True)).select(["kind", "old_spi", "time", "node"]) \
        .rename_columns(["kind", "old_spi", "ini_t", "ini_node"])
    resp = d.filter(pc.equal(d["initiator"], False)).select(["kind", "old_spi", "time", "node"]) \
        .rename_columns(["kind", "old_spi_out", "resp_t", "resp_node"])
    s = s.join(ini, keys=["kind", "old_spi"], join_type="left outer", use_threads=False)
    s = s.join(resp, keys=["kind", "old_spi_out"], join_type="left outer", use_threads=False).sort_by("i")
    t0 = s["triggered"]
    same = pc.fill_null(pc.equal(s["ini_node"], s["node"]), False)
    other = pc.fill_null(pc.not_equal(s["resp_node"], s["node"]), False)
    null = pa.scalar(None, pa.float64())
    return pd.DataFrame({
        "node": s["node"].to_pylist(), "kind": s["kind"].to_pylist(),
        "old_spi": [b.hex() for b in s["old_spi"].to_pylist()], "triggered": s["triggered"].to_numpy(),
        "initiator_latency": _latency(pc.if_else(same, pc.subtract(s["ini_t"], t0), null)),
        "responder_latency": _latency(pc.if_else(other, pc.subtract(s["resp_t"], t0), null)),
    }, columns=REKEY_COLUMNS)
