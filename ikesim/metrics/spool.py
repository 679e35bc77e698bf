"""Where a run's trace rows wait: in memory while few, then in Parquet files, never as millions of Python objects.

A ``Spool`` holds the rows of one table with a fixed Arrow schema: rows are appended as tuples and every
``rows_per_group`` of them become one Parquet row group in ``<dir>/<name>.parquet``. ``BatchSpool`` holds
whole Arrow tables whose columns vary (the events: each batch has the fields of the types it holds), one
file per batch. Nothing touches the disk until a spool first fills; a short run stays in memory.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["SpoolDir", "Spool", "BatchSpool", "ROWS_PER_GROUP"]

ROWS_PER_GROUP = 65_536
"""Rows held in memory before they are written as one row group."""


class SpoolDir:
    """A private temporary directory (mode 0700: it may hold key material), made on first use, removed with its owner."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def path(self) -> Path:
        """The directory, created now if it does not exist yet."""
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix="ikesim-trace-"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._path, True)
        return self._path

    @property
    def exists(self) -> bool:
        """Whether the directory was made (something was spooled)."""
        return self._path is not None

    def remove(self) -> None:
        """Remove the directory and everything in it (only what the trace wrote there)."""
        if self._finalizer is not None:
            self._finalizer()


class Spool:
    """The rows of one table with a fixed *schema*: appended as tuples, read back as one Arrow table."""

    __slots__ = ("name", "schema", "rows", "_dir", "_files", "_limit")

    def __init__(self, spool_dir: SpoolDir, name: str, schema: pa.Schema, rows_per_group: int = ROWS_PER_GROUP) -> None:
        self.name = name
        self.schema = schema
        self.rows: list[tuple[Any, ...]] = []
        """Rows not written yet (append to this list; ``maybe_flush`` writes them once there are enough)."""
        self._dir = spool_dir
        self._files: list[Path] = []
        self._limit = rows_per_group

    def _batch(self) -> pa.Table:
        cols = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(self.schema)
        return pa.table([pa.array(c, type=f.type) for c, f in zip(cols, self.schema, strict=True)], schema=self.schema)

    def maybe_flush(self) -> None:
        """Write the pending rows if there are at least ``rows_per_group`` of them."""
        if len(self.rows) >= self._limit:
            self.flush()

    def flush(self) -> None:
        """Write the pending rows to a file of their own (one row group)."""
        if not self.rows:
            return
        path = self._dir.path / f"{self.name}-{len(self._files):06d}.parquet"
        pq.write_table(self._batch(), path)
        self._files.append(path)
        self.rows = []

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """Every row so far (written and pending), in order; *columns* to read only some."""
        parts = [pq.read_table(p, columns=columns) for p in self._files]
        pending = self._batch()
        parts.append(pending.select(columns) if columns is not None else pending)
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    def batches(self) -> Iterator[pa.Table]:
        """Every row so far, one file (row group) at a time, then the pending rows: little memory at once."""
        for p in self._files:
            yield pq.read_table(p)
        yield self._batch()


class BatchSpool:
    """Whole Arrow tables, each its own file once the pending ones reach ``rows_per_group`` rows."""

    def __init__(self, spool_dir: SpoolDir, name: str, rows_per_group: int = ROWS_PER_GROUP) -> None:
        self.name = name
        self._dir = spool_dir
        self._files: list[Path] = []
        self._pending: list[pa.Table] = []
        self._limit = rows_per_group

    def add(self, table: pa.Table) -> None:
        """Keep *table*; write the pending tables once they hold enough rows."""
        self._pending.append(table)
        if sum(t.num_rows for t in self._pending) >= self._limit:
            self.flush()

    def flush(self) -> None:
        """Write every pending table to its own file."""
        for table in self._pending:
            path = self._dir.path / f"{self.name}-{len(self._files):06d}.parquet"
            pq.write_table(table, path)
            self._files.append(path)
        self._pending = []

    def tables(self) -> list[pa.Table]:
        """Every table, in the order added."""
        return list(self.iter_tables())

    def iter_tables(self) -> Iterator[pa.Table]:
        """Every table, in the order added, one at a time."""
        for p in self._files:
            yield pq.read_table(p)
        yield from self._pending

    def schemas(self) -> list[pa.Schema]:
        """The schema of every table (read from the files' footers, not their data)."""
        return [pq.read_schema(p) for p in self._files] + [t.schema for t in self._pending]
