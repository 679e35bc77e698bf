"""The rekey latency table: the spooled ``RekeyStarted`` and ``RekeyCompleted`` rows, joined (RFC 7296 §2.8)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["rekey_latency_table", "REKEY_COLUMNS"]

REKEY_COLUMNS = ["node", "kind", "old_spi", "triggered", "initiator_latency", "responder_latency"]


def rekey_latency_table(started: pa.Table, done: pa.Table) -> pd.DataFrame:
    """One row per first ``RekeyStarted`` per (node, kind, old SPI), in trigger order, with both latencies.

    Initiator latency: the first ``RekeyCompleted(initiator=True)`` for (kind, old SPI), if the same node
    completed it. Responder latency: the first ``RekeyCompleted(initiator=False)`` for (kind, the old SA's
    outbound SPI), if another node did.
    """
    first_done: dict[tuple[str, bytes, bool], tuple[float, str]] = {}
    for kind, old, initiator, t, node in zip(*(done.column(c).to_pylist() for c in done.column_names), strict=True):
        first_done.setdefault((kind, old, initiator), (t, node))
    seen: set[tuple[str, str, bytes]] = set()
    cols: list[list[Any]] = [[] for _ in REKEY_COLUMNS]
    for node, kind, old, t0, old_out in zip(*(started.column(c).to_pylist() for c in started.column_names), strict=True):
        if (node, kind, old) in seen:
            continue
        seen.add((node, kind, old))
        ini = first_done.get((kind, old, True))
        resp = first_done.get((kind, old_out, False))
        for col, value in zip(cols, (node, kind, old.hex(), t0, (ini[0] - t0) if ini and ini[1] == node else None,
                                     (resp[0] - t0) if resp and resp[1] != node else None), strict=True):
            col.append(value)
    if not cols[0]:
        return pd.DataFrame([], columns=REKEY_COLUMNS)
    return pd.DataFrame(dict(zip(REKEY_COLUMNS, cols, strict=True)), columns=REKEY_COLUMNS)
