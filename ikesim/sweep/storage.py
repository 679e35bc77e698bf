"""The sweep directory: ``sweep.json`` (grid identity), ``parts/<run-id>.parquet``, ``sweep.parquet``, all atomic."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ikesim.errors import ConfigError

__all__ = ["SweepDir", "atomic_write"]


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside *path*, then ``os.replace`` it into place."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class SweepDir:
    """A sweep's output directory; only complete files ever carry a name that is read."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.parts = self.path / "parts"
        self.runs = self.path / "runs"
        self.spec_file = self.path / "sweep.json"
        self.table_file = self.path / "sweep.parquet"
        self.timings_file = self.path / "timings.json"

    def prepare(self, identity: dict[str, Any], describe: dict[str, Any]) -> None:
        """Create the directory, or check that the grid stored there is *identity*; drop stale temp files."""
        self.parts.mkdir(parents=True, exist_ok=True)
        if self.spec_file.exists():
            try:
                stored = json.loads(self.spec_file.read_text())["grid"]
            except (OSError, ValueError, KeyError, TypeError):
                raise ConfigError(f"{self.spec_file}: not a sweep spec; use another --out or remove {self.path}") from None
            if stored != identity:
                diff = [k for k in sorted(set(stored) | set(identity)) if stored.get(k) != identity.get(k)]
                raise ConfigError(f"{self.path} holds a different sweep (differs in: {', '.join(diff)}; see {self.spec_file}): "
                                  "use another --out, or remove the directory to start over")
        elif any(self.parts.glob("*.parquet")):
            raise ConfigError(f"{self.parts} holds runs but {self.spec_file} is missing, so their grid is unknown: "
                              "use another --out, or remove the directory to start over")
        else:
            text = json.dumps({"grid": identity, **describe}, indent=2, sort_keys=True) + "\n"
            atomic_write(self.spec_file, lambda p: p.write_text(text))
        stale = [*self.parts.glob(".*.parquet.*.tmp"),
                 *(t for f in (self.spec_file, self.table_file, self.timings_file) for t in self.path.glob(f".{f.name}.*.tmp"))]
        for tmp in stale:  # only atomic_write's temporaries (ikesim.runner.SWEEP_LAYOUT): never a user's file
            with contextlib.suppress(OSError):
                tmp.unlink()

    def part_file(self, run_id: str) -> Path:
        """Where the row of run *run_id* is stored."""
        return self.parts / f"{run_id}.parquet"

    def write_part(self, row: dict[str, Any]) -> None:
        """Store one run's row atomically."""
        frame = pd.DataFrame([row])
        atomic_write(self.part_file(row["run_id"]), lambda p: frame.to_parquet(p, index=False))

    def read_part(self, run_id: str) -> dict[str, Any] | None:
        """The stored row of *run_id*, or None when it is missing or not a valid part."""
        path = self.part_file(run_id)
        if not path.is_file():
            return None
        try:
            frame = pd.read_parquet(path)
        except Exception:
            return None
        if len(frame) != 1 or "run_id" not in frame.columns or frame["run_id"].iloc[0] != run_id:
            return None
        row: dict[str, Any] = frame.to_dict("records")[0]
        return row

    def write_table(self, table: pd.DataFrame) -> None:
        """Write ``sweep.parquet`` atomically."""
        atomic_write(self.table_file, lambda p: table.to_parquet(p, index=False))

    def write_timings(self, timings: dict[str, float]) -> None:
        """Merge wall times (seconds per run id) into the ``timings.json`` sidecar, atomically."""
        old: dict[str, float] = {}
        with contextlib.suppress(OSError, ValueError):
            old = json.loads(self.timings_file.read_text())
        text = json.dumps({**old, **timings}, indent=2, sort_keys=True) + "\n"
        atomic_write(self.timings_file, lambda p: p.write_text(text))
