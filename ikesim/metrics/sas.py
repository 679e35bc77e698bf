"""The SAs table from the spooled SA events: one row per IKE_SA and CHILD_SA per node (RFC 7296 §1.3, §2.8).

The events are replayed in recording order after the run, so the run itself keeps no row per SA. A row
is keyed by (node, kind, inbound SPI): a key created again (a pinned SPI reused) takes the values of the
latest creation in the place of the first. ``rekeyed_at`` is the SA's first rekey, ``deleted_at`` and
``delete_reason`` its first deletion (an IKE_SA's Delete names both SPIs; it applies to a row found by
either, if that row has the same spi_i).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa

from ikesim.metrics.builders import (
    CHILD_CREATED,
    CHILD_DELETED,
    IKE_CREATED,
    IKE_DELETED,
    REKEYED_CHILD,
)

__all__ = ["sas_table", "SA_COLUMNS"]

SA_COLUMNS = ["node", "kind", "connection", "spi_i", "spi_r", "spi_in", "spi_out", "initiator", "created",
              "rekey_planned", "expire_planned", "rekeyed_at", "deleted_at", "delete_reason",
              "planned_lifetime", "actual_lifetime"]
_COLUMNS = ["op", "node", "key", "key2", "time", "connection", "spi_i", "spi_r", "spi_out", "initiator",
            "rekey_at", "expire_at", "reason"]


def sas_table(batches: Iterable[pa.Table]) -> pd.DataFrame:
    """The SAs table (see the module docstring) from the ``SA_OPS`` spool, read one batch at a time."""
    rows: dict[tuple[str, str, bytes], list[Any]] = {}
    for table in batches:
        cols = [table.column(c).to_pylist() for c in _COLUMNS]
        for op, node, key, key2, t, conn, si, sr, out, ini, rekey_at, expire_at, reason in zip(*cols, strict=True):
            if op == IKE_CREATED or op == CHILD_CREATED:
                kind = "ike" if op == IKE_CREATED else "child"
                rows[(node, kind, key)] = [node, kind, conn, si.hex(), sr.hex(), key.hex(), out.hex(), ini, t,
                                           rekey_at, expire_at, None, None, None]
            elif op == IKE_DELETED:
                for k in ((node, "ike", key), (node, "ike", key2)):
                    r = rows.get(k)
                    if r is not None and r[3] == key.hex() and r[12] is None:
                        r[12], r[13] = t, reason
            elif op == CHILD_DELETED:
                r = rows.get((node, "child", key))
                if r is not None and r[12] is None:
                    r[12], r[13] = t, reason
            else:
                r = rows.get((node, "child" if op == REKEYED_CHILD else "ike", key))
                if r is not None and r[11] is None:
                    r[11] = t
    df = pd.DataFrame(list(rows.values()), columns=SA_COLUMNS[:-2])
    df["planned_lifetime"] = pd.to_numeric(df["rekey_planned"], errors="coerce") - df["created"]
    end = pd.to_numeric(df["rekeyed_at"], errors="coerce").fillna(pd.to_numeric(df["deleted_at"], errors="coerce"))
    df["actual_lifetime"] = end - df["created"]
    return df
