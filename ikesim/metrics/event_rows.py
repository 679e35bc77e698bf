"""Events as columns: a batch of ``(time, node, event)`` becomes one Arrow table, one column per event field.

The columns of each event type are read with one ``getattr`` per field and batch, not a field scan per
event. Key material (``sk_*``, ``*_key_*``) never becomes a column. ``events_frame`` turns the batches back
into the events table: one row per event in the order recorded, ``time, node, event, spi_i, spi_r,
connection`` first, then every other field in the order it first appears; a field an event does not have is
empty (NaN for numbers, None otherwise).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ikesim.types import Address

__all__ = ["events_batch", "events_frame", "write_events", "field_names", "LEADING"]

LEADING = ["time", "node", "event", "spi_i", "spi_r", "connection"]
_SECRET = re.compile(r"^sk_|_key_|_key$|^key_")
"""Event fields holding key material (``sk_*``, ``*_key_*``): kept out of the events table."""
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind) if not _SECRET.search(f.name))
    return names


def _column(values: list[Any]) -> pa.Array:
    """One field's values as an Arrow array: bytes as hex, addresses as ``ip[port]``, enums as their value."""
    first = next((v for v in values if v is not None), None)
    if isinstance(first, bytes):
        return pa.array([None if v is None else v.hex() for v in values], pa.string())
    if isinstance(first, Address):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    if isinstance(first, enum.Enum):
        return pa.array([None if v is None else v.value for v in values])
    if isinstance(first, tuple):  # FaultApplied.copies: kept as a list, made a tuple again by events_frame
        return pa.array([None if v is None else list(v) for v in values], pa.list_(pa.int64()))
    if isinstance(first, bool):
        return pa.array(values, pa.bool_())
    if isinstance(first, float) or any(type(v) is float for v in values):
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array(values)


def events_batch(rows: Sequence[tuple[int, float, str, Any]]) -> pa.Table:
    """``(seq, time, node, event)`` rows as one table: ``seq, time, node, event`` and every field of every type.

    Rows are grouped by event type (``seq`` keeps the recording order; ``events_frame`` sorts by it once).
    """
    by_type: dict[type, list[tuple[int, float, str, Any]]] = {}
    for row in rows:
        by_type.setdefault(type(row[3]), []).append(row)
    parts = []
    for kind, items in by_type.items():
        seq, times, nodes, events = zip(*items, strict=True)
        cols: dict[str, pa.Array] = {
            "seq": pa.array(seq, pa.int64()),
            "time": pa.array(times, pa.float64()),
            "node": pa.array(nodes, pa.string()),
            "event": pa.array([kind.__name__] * len(items), pa.string()),
        }
        names = _fields(kind)
        if len(names) == 1:
            cols[names[0]] = _column([getattr(e, names[0]) for e in events])
        elif names:
            for name, values in zip(names, zip(*map(attrgetter(*names), events), strict=True), strict=True):
                cols[name] = _column(list(values))
        parts.append(pa.table(cols))
    return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]


def field_names(kind: type) -> tuple[str, ...]:
    """The columns an event of *kind* fills: ``time, node, event`` and its fields without key material."""
    return ("time", "node", "event", *_fields(kind))


def events_frame(batches: Sequence[pa.Table], kinds: Sequence[type]) -> pd.DataFrame:
    """The events table from the recorded batches; *kinds*: the event types in the order they first occurred."""
    if not batches:
        return pd.DataFrame(columns=LEADING)
    table = pa.concat_tables(batches, promote_options="permissive").sort_by("seq")
    order: dict[str, None] = {}
    for kind in kinds:  # a field's position: where the first event that has it appears (as pandas would put it)
        order.update(dict.fromkeys(field_names(kind)))
    columns = [c for c in LEADING if c in order] + [c for c in order if c not in LEADING]
    table = table.select(columns)
    df = table.to_pandas()  # Arrow nulls come out as NaN (numbers) or None (objects), as pandas would have them
    for c in df.columns:
        kind = table.schema.field(c).type
        if pa.types.is_null(kind):  # only None values: pandas makes that NaN if some events lack the field
            if any(c not in field_names(k) for k in kinds):
                df[c] = df[c].astype("float64")
        elif pa.types.is_list(kind):
            df[c] = pd.Series([None if v is None else tuple(int(x) for x in v) for v in df[c]], dtype=object)
    return df


def _schema(schemas: Sequence[pa.Schema], kinds: Sequence[type]) -> pa.Schema:
    """The events table's Arrow schema: columns as ``events_frame`` orders them, each batch's types unified.

    A column that is null in every batch is float64 when some events lack the field (pandas' NaN), as in
    ``events_frame``.
    """
    unified = pa.unify_schemas(list(schemas), promote_options="permissive")
    order: dict[str, None] = {}
    for kind in kinds:
        order.update(dict.fromkeys(field_names(kind)))
    columns = [c for c in LEADING if c in order] + [c for c in order if c not in LEADING]
    fields = []
    for c in columns:
        kind = unified.field(c).type
        if pa.types.is_null(kind) and any(c not in field_names(k) for k in kinds):
            kind = pa.float64()
        fields.append(pa.field(c, kind))
    return pa.schema(fields)


def write_events(path: Path, batches: Iterable[pa.Table], schemas: Sequence[pa.Schema], kinds: Sequence[type]) -> None:
    """Write the events table to *path* one batch (row group) at a time, never the whole table in memory.

    ``pandas.read_parquet`` of the file gives ``events_frame``'s table (a tuple field reads back as an array).
    """
    if not schemas:
        pd.DataFrame(columns=LEADING).to_parquet(path, index=False)
        return
    schema = _schema(schemas, kinds)
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            batch = batch.sort_by("seq")
            n = batch.num_rows
            cols = [batch.column(f.name).cast(f.type) if f.name in batch.column_names else pa.nulls(n, f.type)
                    for f in schema]
            writer.write_table(pa.table(cols, schema=schema))
