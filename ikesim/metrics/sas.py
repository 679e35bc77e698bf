"""The SAs table from the spooled SA events: one row per IKE_SA and CHILD_SA per node (RFC 7296 §1.3, §2.8).

A row is keyed by (node, kind, inbound SPI) and sits where that key was first created; if the key is
created again (a pinned SPI reused), the row takes the values of the latest creation and forgets what
happened before it. ``rekeyed_at`` is the first rekey of the SA after that creation; ``deleted_at`` and
``delete_reason`` the first deletion after it (an IKE_SA's Delete names both SPIs; it applies to a row
found by either, if that row has the same spi_i).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ikesim.metrics.builders import (
    CHILD_CREATED,
    CHILD_DELETED,
    IKE_CREATED,
    IKE_DELETED,
    REKEYED_CHILD,
    REKEYED_IKE,
)

__all__ = ["sas_table", "SA_COLUMNS"]

SA_COLUMNS = ["node", "kind", "connection", "spi_i", "spi_r", "spi_in", "spi_out", "initiator", "created",
              "rekey_planned", "expire_planned", "rekeyed_at", "deleted_at", "delete_reason",
              "planned_lifetime", "actual_lifetime"]


def _keyed(df: pd.DataFrame, kind: str, key: str = "key") -> pd.Series:
    """The (node, kind, SPI) row key as one string."""
    return df["node"] + f"\0{kind}\0" + df[key].map(bytes.hex)


def _first_after(rows: pd.DataFrame, events: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Per row key: *cols* of the first event (lowest seq) after the row's latest creation."""
    if not len(events):
        return pd.DataFrame(columns=cols, index=pd.Index([], name="k"))
    m = events.merge(rows[["last"]], left_on="k", right_index=True, how="inner")
    m = m[m["seq"] > m["last"]]
    return m.sort_values("seq", kind="stable").drop_duplicates("k", keep="first").set_index("k")[cols]


def _column(values: pd.Series) -> pd.Series:
    """A column as pandas infers it from a list of Python values (None where missing)."""
    return pd.Series(values.astype(object).where(values.notna(), None).tolist(), dtype=None)


def sas_table(ops: pa.Table) -> pd.DataFrame:
    """The SAs table (see the module docstring) from the ``SA_OPS`` rows."""
    df = ops.to_pandas()
    created = df[df["op"].isin([IKE_CREATED, CHILD_CREATED])].copy()
    if not len(created):
        out = pd.DataFrame([], columns=SA_COLUMNS[:-2])
        out["planned_lifetime"] = pd.to_numeric(out["rekey_planned"], errors="coerce") - out["created"]
        out["actual_lifetime"] = out["planned_lifetime"]
        return out
    created["kind"] = np.where(created["op"] == IKE_CREATED, "ike", "child")
    created["k"] = created["node"] + "\0" + created["kind"] + "\0" + created["key"].map(bytes.hex)
    first = created.groupby("k", sort=False)["seq"].min()
    rows = created.drop_duplicates("k", keep="last").set_index("k")
    rows["last"] = rows["seq"]
    rows["first"] = first
    rekeys = []
    for op, kind in ((REKEYED_IKE, "ike"), (REKEYED_CHILD, "child")):
        r = df[df["op"] == op]
        rekeys.append(r.assign(k=_keyed(r, kind)))
    rekeyed = _first_after(rows, pd.concat(rekeys), ["time"]).rename(columns={"time": "rekeyed_at"})
    child_del = df[df["op"] == CHILD_DELETED]
    child_del = child_del.assign(k=_keyed(child_del, "child"))
    ike_del = df[df["op"] == IKE_DELETED]
    both = pd.concat([ike_del.assign(k=_keyed(ike_del, "ike")), ike_del.assign(k=_keyed(ike_del, "ike", "key2"))])
    both = both.merge(rows[["spi_i"]].rename(columns={"spi_i": "row_spi_i"}), left_on="k", right_index=True)
    both = both[both["row_spi_i"] == both["key"]]
    deleted = _first_after(rows, pd.concat([child_del, both.drop(columns="row_spi_i")]), ["time", "reason"])
    rows = rows.join(rekeyed).join(deleted.rename(columns={"time": "deleted_at", "reason": "delete_reason"}))
    rows = rows.sort_values("first", kind="stable")
    hexed = {c: rows[c].map(bytes.hex) for c in ("spi_i", "spi_r", "key", "spi_out")}
    out = pd.DataFrame({
        "node": _column(rows["node"]), "kind": _column(rows["kind"]), "connection": _column(rows["connection"]),
        "spi_i": _column(hexed["spi_i"]), "spi_r": _column(hexed["spi_r"]), "spi_in": _column(hexed["key"]),
        "spi_out": _column(hexed["spi_out"]), "initiator": _column(rows["initiator"]),
        "created": _column(rows["time"]), "rekey_planned": _column(rows["rekey_at"]),
        "expire_planned": _column(rows["expire_at"]), "rekeyed_at": _column(rows["rekeyed_at"]),
        "deleted_at": _column(rows["deleted_at"]), "delete_reason": _column(rows["delete_reason"]),
    })
    out["planned_lifetime"] = pd.to_numeric(out["rekey_planned"], errors="coerce") - out["created"]
    end = pd.to_numeric(out["rekeyed_at"], errors="coerce").fillna(pd.to_numeric(out["deleted_at"], errors="coerce"))
    out["actual_lifetime"] = end - out["created"]
    return out
