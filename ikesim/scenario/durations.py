"""Durations and ratios as written in scenario files: ``30s``, ``66min``, ``1h30m``, ``500ms``, ``1%``."""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration", "parse_ratio", "MAX_DURATION", "DURATION_PATTERN", "duration_json_schema", "RATIO_JSON_SCHEMA"]

MAX_DURATION = 100 * 365.25 * 86400.0
"""The longest duration a scenario may give: 100 years (3,155,760,000 s). Anything longer is a typo."""

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(us|µs|ms|sec|min|s|m|h|d)")
_NUMBER = r"[0-9]+(\.[0-9]+)?"
DURATION_PATTERN = rf"^ *({_NUMBER}|({_NUMBER} *(us|µs|ms|sec|min|s|m|h|d) *)+) *$"
"""What a duration string looks like, for the JSON Schema (``parse_duration`` also takes spaces inside numbers)."""


def duration_json_schema(*, positive: bool = False) -> dict[str, object]:
    """JSON Schema of a duration: seconds as a number, or a string of number+unit parts (``30s``, ``1h30m``)."""
    number: dict[str, object] = {"type": "number", "maximum": MAX_DURATION}
    number["exclusiveMinimum" if positive else "minimum"] = 0
    return {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}],
            "description": "seconds, or number+unit parts: us, ms, s, min (m), h, d (e.g. 30s, 66min, 1h30m, 500ms)"}


RATIO_JSON_SCHEMA: dict[str, object] = {
    "anyOf": [{"type": "number", "minimum": 0, "maximum": 1},
              {"type": "string", "pattern": rf"^ *({_NUMBER} *%|[0-9]*\.?[0-9]+) *$"}],
    "description": "a probability in [0, 1]: 0.01 or 1%"}
"""JSON Schema of a ratio (``parse_ratio``)."""


def parse_duration(value: object) -> float:
    """Seconds from a number or a string of number+unit parts (``1h30m``); raise ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return _bounded(value if isinstance(value, float) else _int_seconds(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _bounded(float(text), value)
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 66min, 1h30m, 500ms)")
    return _bounded(total, value)


def _int_seconds(value: int) -> float:
    """An integer number of seconds as a float; one too large for a float counts as infinite."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _bounded(seconds: float, value: object) -> float:
    """*seconds* if finite and within [0, MAX_DURATION]; else ValueError quoting *value*."""
    if math.isnan(seconds):
        raise ValueError("a duration must be a number of seconds, not NaN")
    if math.isinf(seconds):
        raise ValueError("a duration must be finite (at most 100 years)")
    if seconds < 0:
        raise ValueError(f"negative duration {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"duration {value!r} is longer than 100 years")
    return seconds


def parse_ratio(value: object) -> float:
    """A probability from ``0.01`` or ``"1%"``; raise ValueError outside [0, 1]."""
    if isinstance(value, bool):
        raise ValueError(f"invalid ratio {value!r}")
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            r = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"invalid ratio {value!r}") from None
    elif isinstance(value, (int, float, str)):
        try:
            r = float(value)
        except (ValueError, OverflowError):
            raise ValueError(f"invalid ratio {value!r}") from None
    else:
        raise ValueError(f"invalid ratio {value!r}")
    if math.isnan(r):
        raise ValueError("a ratio must be a number in [0, 1], not NaN")
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"ratio {value!r} is outside [0, 1]")
    return r
