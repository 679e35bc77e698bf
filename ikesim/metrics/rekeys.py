"""The rekey latency table: the spooled ``RekeyStarted`` and ``RekeyCompleted`` rows, joined (RFC 7296 §2.8)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

__all__ = ["rekey_latency_table", "REKEY_COLUMNS"]

REKEY_COLUMNS = ["node", "kind", "old_spi", "triggered", "initiator_latency", "responder_latency"]


def _latency(end: pd.Series, start: pd.Series, keep: pd.Series) -> pd.Series:
    """``end - start`` where *keep*, else missing: NaN, or None throughout if no row has a value."""
    values = (end - start).where(keep)
    if values.isna().all():
        return pd.Series([None] * len(values), dtype=object, index=values.index)
    return values.astype("float64")


def rekey_latency_table(started: pa.Table, done: pa.Table) -> pd.DataFrame:
    """One row per first ``RekeyStarted`` per (node, kind, old SPI), in trigger order, with both latencies.

    Initiator latency: the first ``RekeyCompleted(initiator=True)`` for (kind, old SPI), if the same node
    completed it. Responder latency: the first ``RekeyCompleted(initiator=False)`` for (kind, the old SA's
    outbound SPI), if another node did.
    """
    if not started.num_rows:
        return pd.DataFrame([], columns=REKEY_COLUMNS)
    s = started.to_pandas().drop_duplicates(["node", "kind", "old_spi"], keep="first").reset_index(drop=True)
    d = done.to_pandas().drop_duplicates(["kind", "old_spi", "initiator"], keep="first")
    ini = d[d["initiator"]][["kind", "old_spi", "time", "node"]].rename(columns={"time": "ini_t", "node": "ini_node"})
    resp = d[~d["initiator"]][["kind", "old_spi", "time", "node"]].rename(
        columns={"old_spi": "old_spi_out", "time": "resp_t", "node": "resp_node"})
    s = s.merge(ini, on=["kind", "old_spi"], how="left", sort=False)
    s = s.merge(resp, on=["kind", "old_spi_out"], how="left", sort=False)
    return pd.DataFrame({
        "node": s["node"], "kind": s["kind"], "old_spi": [b.hex() for b in s["old_spi"]], "triggered": s["triggered"],
        "initiator_latency": _latency(s["ini_t"], s["triggered"], s["ini_node"] == s["node"]),
        "responder_latency": _latency(s["resp_t"], s["triggered"], s["resp_node"].notna() & (s["resp_node"] != s["node"])),
    }, columns=REKEY_COLUMNS)
