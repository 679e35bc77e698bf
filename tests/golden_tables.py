"""Digests of a run's tables, capture and key tables, for the golden-run test (``tests/test_golden_tables.py``).

A digest is the SHA-256 of a canonical text: per column its name, a dtype family (text, float, int,
bool) and every value's ``repr`` (floats round-trip exactly), so it does not depend on the pandas or
pyarrow version that built the frame. The capture and key tables are hashed as the bytes written.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

TABLES = ("events", "exchanges", "sas", "packets", "rekey_latencies", "collisions", "violations", "nat_paths",
          "processing", "cpu", "traffic", "outages", "traffic_windows", "handovers")
FILES = ("capture.pcap", "ikev2_decryption_table", "esp_sa", "summary.json")


def _family(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "text" if kind in "OUS" or pd.api.types.is_string_dtype(dtype) else str(dtype)


def _value(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return "null"
    if isinstance(v, float):
        return repr(float(v))
    if isinstance(v, bool):
        return repr(bool(v))
    if isinstance(v, int):
        return repr(int(v))
    return repr(str(v)) if isinstance(v, str) else repr(v)


def canonical(df: pd.DataFrame) -> str:
    """The table as text: one line per column, ``name<TAB>family<TAB>values``."""
    lines = [f"rows={len(df)}"]
    for col in df.columns:
        s = df[col]
        lines.append(f"{col}\t{_family(s.dtype)}\t" + "\x1f".join(_value(v) for v in s.tolist()))
    return "\n".join(lines) + "\n"


def digests(results: Any) -> dict[str, Any]:
    """SHA-256 of every table (canonical text) and of every file ``Results.write`` writes."""
    out: dict[str, Any] = {}
    for name in TABLES:
        df = getattr(results, name)
        out[name] = {"rows": len(df), "sha256": hashlib.sha256(canonical(df).encode()).hexdigest()}
    with tempfile.TemporaryDirectory() as d:
        results.write(d)
        for name in FILES:
            p = Path(d) / name
            out[name] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
    return out
