"""Compare a run's ``Results`` with its scenario's ``expect:`` block (``ikesim check``, the pytest plugin).

``evaluate`` returns one ``Mismatch`` per expectation not met, each a human line such as
``events.ChildSaDeleted[reason=redundant]: expected 1, got 2``. Invariant violations are always
checked: without an ``expect:`` block (or without its ``violations`` key) a run must have none.
Names the run can never produce (a misspelt event, field, node or purpose) are mismatches too, so a
typo cannot make an expectation of 0 pass silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ikesim.metrics.results import Results
from ikesim.scenario.expect_model import (
    CountSpec,
    EventSpec,
    ExchangeSpec,
    ExpectModel,
    InstalledSpec,
    KindCounts,
    KindDurations,
    NotifySpec,
    SurvivorSet,
    SurvivorSpec,
    spi_text,
)

__all__ = ["Mismatch", "evaluate", "event_fields", "PURPOSES"]

PURPOSES = ("ike_sa_init", "ike_auth", "create_child", "rekey_child", "rekey_ike", "delete_child", "delete_ike", "dpd",
            "informational", "resume", "ticket_request")
"""Exchange purposes the IKE core reports (``ExchangeStarted.purpose``)."""
_KINDS = ("child", "ike")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expectation not met: which one, what was expected and what the run produced."""

    what: str
    """The expectation, as a dotted key with its filters: ``events.ChildSaDeleted[reason=redundant]``."""
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.what}: expected {self.expected}, got {self.actual}"


def evaluate(expect: ExpectModel | None, results: Results) -> list[Mismatch]:
    """Every expectation of *expect* that *results* does not meet (empty: all met); None checks violations only."""
    e = expect if expect is not None else ExpectModel()
    out: list[Mismatch] = []
    nodes = list(results.nodes)
    cells = _Cells(results)
    _violations(e.violations, results, out)
    if e.collisions is not None:
        _per_kind("collisions", e.collisions, _collision_counts(cells), out)
    if e.rekeys is not None:
        _per_kind("rekeys", e.rekeys, {k: int(results.rekeys.get(k, 0)) for k in _KINDS}, out)
    if e.events or e.notifies is not None:
        table = _Events(cells)
        known = functools.cache(event_fields)
        for name, specs in e.events.items():
            for spec in specs if isinstance(specs, list) else [specs]:
                _events(name, spec, table, known, nodes, out)
        if e.notifies is not None:
            _notifies(e.notifies, table, nodes, out)
    for purpose, xspecs in e.exchanges.items():
        for xspec in xspecs if isinstance(xspecs, list) else [xspecs]:
            _exchanges(purpose, xspec, cells, nodes, out)
    if e.survivors is not None:
        for kind in _KINDS:
            spec_set = getattr(e.survivors, kind)
            if spec_set is not None:
                _survivors(kind, spec_set, e.survivors.connection, cells, nodes, out)
    if e.installed is not None:
        _installed(e.installed, results, nodes, out)
    if e.max_rekey_latency is not None:
        _latency(e.max_rekey_latency, cells, out)
    for key, value in e.summary.items():
        _summary(key, value, results.summary, out)
    return out


# --- formatting ---------------------------------------------------------------------


def _show(v: Any) -> str:
    """A value as the scenario file would spell it."""
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    try:
        return json.dumps(v, sort_keys=True)
    except TypeError:
        return str(v)


def _filters(pairs: Iterable[tuple[str, Any]]) -> str:
    shown = [f"{k}={'|'.join(_show(x) for x in v) if isinstance(v, list) else _show(v)}" for k, v in pairs if v is not None]
    return f"[{', '.join(shown)}]" if shown else ""


def _window(between: tuple[float, float] | None) -> list[tuple[str, Any]]:
    """A ``between`` window as a filter to show: ``between=50s..60s``."""
    if between is None:
        return []
    lo, hi = (f"{x:g}s" if x == 0 else _seconds(x) for x in between)
    return [("between", f"{lo}..{hi}")]


def _seconds(x: float) -> str:
    return f"{x * 1000:.6g}ms" if x < 1 else f"{x:.6g}s"


def _unknown(what: str, kind: str, name: str, known: Iterable[str], out: list[Mismatch]) -> None:
    close = difflib.get_close_matches(name, sorted(set(known)), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    out.append(Mismatch(what, f"a known {kind}", f"{name!r}{hint}"))


def _check_count(what: str, spec: CountSpec, n: int, out: list[Mismatch], detail: str = "") -> None:
    if not spec.accepts(n):
        out.append(Mismatch(what, spec.describe(), f"{n}{detail}"))


def _check_nodes(what: str, values: Any, nodes: list[str], out: list[Mismatch]) -> bool:
    """False (and a mismatch) when a node filter names a node the scenario does not have."""
    for v in values if isinstance(values, list) else [values]:
        if v is not None and str(v) not in nodes:
            _unknown(what, "node", str(v), nodes, out)
            return False
    return True


# --- value matching -----------------------------------------------------------------


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _plain(v: Any) -> Any:
    """numpy scalars as Python values."""
    item = getattr(v, "item", None)
    return item() if callable(item) and not isinstance(v, str | bytes) else v


def _spi_key(key: str) -> bool:
    """Is *key* an event field holding an SPI (hex in the tables)?"""
    return "spi" in key or key in ("rekey_of", "rekey_of_out", "replaces")


def _matches_spi(actual: Any, expected: Any) -> bool:
    """Does a hex SPI cell equal *expected*: hex text (``0x`` optional, any case) or a number (YAML's ``0xc1c1c1c1``)?"""
    if isinstance(expected, list):
        return any(_matches_spi(actual, x) for x in expected)
    if expected is None or _missing(actual) or isinstance(expected, bool | float):
        return _matches(actual, expected)
    text = str(actual).lower()
    return spi_text(expected, len(text) // 2) == text


def _spi_shown(v: Any) -> Any:
    """An SPI of a ``where`` filter as the failure line shows it: ``0xc1c1c1c1`` (YAML gave a number or text)."""
    if isinstance(v, list):
        return [_spi_shown(x) for x in v]
    if v is None or isinstance(v, bool | float):
        return v
    return "0x" + spi_text(v, 4 if isinstance(v, int) and v < 2**32 else 0)


def _in_window(times: list[Any], between: tuple[float, float]) -> list[bool]:
    """Which of *times* fall in the closed window *between* (1 ns of slack for float sums such as 60.000000001)."""
    lo, hi = between
    return [lo - 1e-9 <= float(t) <= hi + 1e-9 for t in times]


def _matches(actual: Any, expected: Any) -> bool:
    """Does a table cell equal the value a ``where`` filter gives (lists: any of them)?"""
    if isinstance(expected, list):
        return any(_matches(actual, x) for x in expected)
    actual = _plain(actual)
    if expected is None or _missing(actual):
        return expected is None and _missing(actual)
    if isinstance(actual, bool) or isinstance(expected, bool):
        if isinstance(actual, bool) and isinstance(expected, bool):
            return actual == expected
        return str(actual).lower() == str(expected).lower()
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return float(actual) == float(expected)
    if isinstance(actual, int | float) or isinstance(expected, int | float):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    return str(actual) == str(expected)


def _same(actual: Any, expected: Any) -> bool:
    """Equality for summary values: numbers within 1e-9 relative, booleans only equal booleans."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_same(actual[k], expected[k]) for k in actual)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(_same(a, x) for a, x in zip(actual, expected, strict=True))
    return bool(actual == expected)


# --- the tables, as Python lists --------------------------------------------------------


class _Cells:
    """The columns an evaluation reads, each turned into a Python list once.

    Races record tens of rows: a pandas filter or comparison costs far more than the loop over them, and
    touching only the tables an expectation needs leaves the others unbuilt (``Results`` builds them lazily).
    ``tolist`` yields the same cells as ``Series.map``: Python str, int, float, bool, None and NaN.
    """

    def __init__(self, results: Results) -> None:
        self.results = results
        self._lists: dict[tuple[str, str, bool], list[Any]] = {}

    def table(self, name: str) -> pd.DataFrame:
        """A table of the results (``events``, ``exchanges``, ``sas``, ...)."""
        table: pd.DataFrame = getattr(self.results, name)
        return table

    def column(self, table: str, column: str, *, numeric: bool = False) -> list[Any]:
        """The cells of *column*; ``numeric``: as ``pd.to_numeric(errors="coerce")`` makes them (NaN if not a number)."""
        key = (table, column, numeric)
        if key not in self._lists:
            col = self.table(table)[column]
            self._lists[key] = (pd.to_numeric(col, errors="coerce") if numeric else col).tolist()
        return self._lists[key]


class _Events:
    """The events table, by event name: row positions found once per name, cells read column by column."""

    def __init__(self, cells: _Cells) -> None:
        self.cells = cells
        ev = cells.table("events")
        self.columns = set(ev.columns)
        self._names = cells.column("events", "event") if len(ev) else []
        self.seen = set(self._names)
        """Every event name the run recorded."""
        self._rows: dict[str, list[int]] = {}

    def rows(self, name: str) -> list[int]:
        """Positions of the rows of event *name*."""
        if name not in self._rows:
            self._rows[name] = [i for i, n in enumerate(self._names) if n == name]
        return self._rows[name]

    def values(self, name: str, key: str) -> list[Any]:
        """The *key* cells of the rows of event *name* (``ev[ev["event"] == name][key]``)."""
        col = self.cells.column("events", key)
        return [col[i] for i in self.rows(name)]

    def filled(self, name: str, key: str) -> bool:
        """True when some row of event *name* has a value in column *key* (``notna().any()``)."""
        return key in self.columns and any(not pd.isna(c) for c in self.values(name, key))


# --- the expectations ---------------------------------------------------------------


def _violations(spec: CountSpec, results: Results, out: list[Mismatch]) -> None:
    v = results.violations
    if spec.accepts(len(v)):
        return
    shown = [f"{row.time:g}s {row.node} {row.kind} {row.connection} {row.spi}: {row.detail}" for row in v.head(3).itertuples()]
    more = f"; and {len(v) - 3} more" if len(v) > 3 else ""
    out.append(Mismatch("violations", spec.describe(), f"{len(v)}" + (f" ({'; '.join(shown)}{more})" if shown else "")))


def _collision_counts(cells: _Cells) -> dict[str, int]:
    """Collided SA pairs per kind: the ``count`` column summed by ``kind`` (missing cells skipped, as groupby does)."""
    by_kind: dict[str, int] = {}
    if len(cells.table("collisions")):
        for k, n in zip(cells.column("collisions", "kind"), cells.column("collisions", "count"), strict=True):
            if not pd.isna(k) and not pd.isna(n):
                by_kind[str(k)] = by_kind.get(str(k), 0) + n
    return {k: int(by_kind.get(k, 0)) for k in _KINDS}


def _per_kind(what: str, spec: CountSpec | KindCounts, counts: dict[str, int], out: list[Mismatch]) -> None:
    if isinstance(spec, CountSpec):
        _check_count(what, spec, sum(counts.values()), out)
        return
    for kind in _KINDS:
        s = getattr(spec, kind)
        if s is not None:
            _check_count(f"{what}.{kind}", s, counts.get(kind, 0), out)


def event_fields() -> dict[str, tuple[str, ...]]:
    """Every event class ikesim records, by name, with its fields (IKE core, recorder and sim events)."""
    from ikesim.ike.events import IkeEvent

    out: dict[str, tuple[str, ...]] = {}
    stack = [IkeEvent]
    while stack:
        for sub in stack.pop().__subclasses__():
            out[sub.__name__] = tuple(f.name for f in dataclasses.fields(sub))
            stack.append(sub)
    for modname, mod in list(sys.modules.items()):
        if mod is None or not modname.startswith(("ikesim.metrics.", "ikesim.sim.")):
            continue
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and name not in out:
                out[name] = tuple(f.name for f in dataclasses.fields(obj))
    return out


def _events(name: str, spec: EventSpec, table: _Events, known: Callable[[], dict[str, tuple[str, ...]]], nodes: list[str],
            out: list[Mismatch]) -> None:
    """Count the rows of event *name* matching ``where``; *known* (``event_fields``) is asked only when the run cannot tell."""
    shown = [(k, _spi_shown(v) if _spi_key(k) else v) for k, v in spec.where.items()]
    what = f"events.{name}{_filters([*shown, *_window(spec.between)])}"
    if name not in table.seen and name not in known():
        _unknown(what, "event", name, [*known(), *table.seen], out)
        return
    matched = [True] * len(table.rows(name))
    for key, value in spec.where.items():
        # a field is one the event declares, or one some of its rows have
        if key not in ("time", "node") and not table.filled(name, key) and key not in known().get(name, ()):
            fields = {"time", "node", *known().get(name, ()), *(c for c in table.columns if table.filled(name, c))}
            _unknown(what, f"field of {name}", key, fields, out)
            return
        if key == "node" and not _check_nodes(what, value, nodes, out):
            return
        if key not in table.columns:
            matched = [False] * len(matched)
            continue
        match = _matches_spi if _spi_key(key) else _matches
        matched = [m and match(cell, value) for m, cell in zip(matched, table.values(name, key), strict=True)]
    if spec.between is not None and matched:
        matched = [m and w for m, w in zip(matched, _in_window(table.values(name, "time"), spec.between), strict=True)]
    _check_count(what, spec, sum(matched), out)


def _notifies(specs: dict[str, NotifySpec | list[NotifySpec]], table: _Events, nodes: list[str],
              out: list[Mismatch]) -> None:
    names = table.values("ErrorNotifySent", "notify") if "notify" in table.columns else []
    for name, spec in [(n, x) for n, xs in specs.items() for x in (xs if isinstance(xs, list) else [xs])]:
        what = f"notifies.{name}{_filters([('node', spec.node), *_window(spec.between)])}"
        if spec.node is not None and not _check_nodes(what, spec.node, nodes, out):
            continue
        rows = [i for i, n in enumerate(names) if n == name]
        if spec.node is not None:
            by = table.values("ErrorNotifySent", "node")
            rows = [i for i in rows if by[i] == spec.node]
        if spec.between is not None:
            inside = _in_window(table.values("ErrorNotifySent", "time"), spec.between)
            rows = [i for i in rows if inside[i]]
        _check_count(what, spec, len(rows), out)
    unlisted = Counter(n for n in names if n not in specs and not pd.isna(n))
    for name in sorted(unlisted):
        out.append(Mismatch(f"notifies.{name}", "0 (not listed)", str(unlisted[name])))


def _exchanges(purpose: str, spec: ExchangeSpec, cells: _Cells, nodes: list[str], out: list[Mismatch]) -> None:
    what = f"exchanges.{purpose}{_filters([('outcome', spec.outcome), ('initiator', spec.initiator)])}"
    purposes = cells.column("exchanges", "purpose")
    if purpose not in PURPOSES and purpose not in purposes:
        _unknown(what, "exchange purpose", purpose, [*PURPOSES, *purposes], out)
        return
    if spec.initiator is not None and not _check_nodes(what, spec.initiator, nodes, out):
        return
    rows = [i for i, p in enumerate(purposes) if p == purpose]
    for key, value in (("outcome", spec.outcome), ("initiator", spec.initiator)):
        if value is not None:
            col = cells.column("exchanges", key)
            rows = [i for i in rows if col[i] == value]
    _check_count(what, spec, len(rows), out)


def _live(cells: _Cells, kind: str, connection: str | None) -> list[int]:
    """SA pairs alive at the end (row positions in ``sas``): on the node that created them, neither deleted nor rekeyed."""
    if not len(cells.table("sas")):
        return []
    deleted, rekeyed = (cells.column("sas", c, numeric=True) for c in ("deleted_at", "rekeyed_at"))
    kinds, initiator, conns = (cells.column("sas", c) for c in ("kind", "initiator", "connection"))
    return [i for i in range(len(kinds)) if kinds[i] == kind and initiator[i] == True  # noqa: E712 (as pandas compares)
            and pd.isna(deleted[i]) and pd.isna(rekeyed[i]) and (connection is None or conns[i] == connection)]


def _survivors(kind: str, specs: SurvivorSet, connection: str | None, cells: _Cells, nodes: list[str],
               out: list[Mismatch]) -> None:
    live = _live(cells, kind, connection)
    base = f"survivors.{kind}"

    def check(what: str, spec: CountSpec, node: str | None, conn: str | None) -> None:
        rows = live
        for key, value in (("node", node), ("connection", conn)):
            if value is not None:
                col = cells.column("sas", key)
                rows = [i for i in rows if col[i] == value]
        spis = [cells.column("sas", "spi_in")[i] for i in rows]
        detail = f" (spi {', '.join(map(str, spis))})" if 0 < len(spis) <= 4 else ""
        _check_count(what, spec, len(rows), out, detail)

    if isinstance(specs, CountSpec):
        check(base, specs, None, None)
    elif isinstance(specs, dict):
        for node, spec in specs.items():
            if _check_nodes(f"{base}.{node}", node, nodes, out):
                check(f"{base}.{node}", spec, node, None)
    else:
        for s in specs:
            assert isinstance(s, SurvivorSpec)
            what = f"{base}{_filters([('created_by', s.created_by), ('connection', s.connection)])}"
            if s.created_by is None or _check_nodes(what, s.created_by, nodes, out):
                check(what, s.count, s.created_by, s.connection)


def _installed(specs: dict[str, InstalledSpec], results: Results, nodes: list[str], out: list[Mismatch]) -> None:
    """The CHILD_SA SPIs each node holds at the end, inbound and outbound, against the exact sets expected."""
    held = results.installed
    for node, spec in specs.items():
        what = f"installed.{node}"
        if not _check_nodes(what, node, nodes, out):
            continue
        for key, want in (("in", spec.inbound), ("out", spec.outbound)):
            if want is None:
                continue
            if held is None:
                out.append(Mismatch(f"{what}.{key}", _spis(want), "nothing (the results have no record of the SAs "
                                                                   "held at the end)"))
                continue
            got = held.get(node, {}).get(key, [])
            if sorted(want) != sorted(got):
                out.append(Mismatch(f"{what}.{key}", _spis(want), _spis(got)))


def _spis(spis: Iterable[str]) -> str:
    """SPIs as the expectation writes them: ``[0xc1c1c1c1, 0xa2a2a2a2]``, sorted."""
    return f"[{', '.join('0x' + s for s in sorted(spis))}]"


def _latency(bound: float | KindDurations, cells: _Cells, out: list[Mismatch]) -> None:
    checks = [("max_rekey_latency", None, bound)] if not isinstance(bound, KindDurations) else [
        (f"max_rekey_latency.{k}", k, getattr(bound, k)) for k in _KINDS if getattr(bound, k) is not None]
    kinds = cells.column("rekey_latencies", "kind")
    for what, kind, limit in checks:
        assert isinstance(limit, float)
        rows = [i for i, k in enumerate(kinds) if kind is None or k == kind]
        worst: tuple[float, str, int] | None = None
        for side in ("initiator", "responder"):
            col = cells.column("rekey_latencies", f"{side}_latency", numeric=True)
            for i in rows:  # the first row of the largest latency (idxmax), the initiator's on a tie
                if not pd.isna(col[i]) and (worst is None or col[i] > worst[0]):
                    worst = (float(col[i]), side, i)
        if worst is not None and worst[0] > limit + 1e-9:
            i = worst[2]
            triggered = float(cells.column("rekey_latencies", "triggered")[i])
            out.append(Mismatch(what, f"at most {_seconds(limit)}",
                                f"{_seconds(worst[0])} ({worst[1]} latency of the {kinds[i]} rekey "
                                f"{cells.column('rekey_latencies', 'node')[i]} triggered at {triggered:g}s)"))


def _summary(key: str, expected: Any, summary: dict[str, Any], out: list[Mismatch]) -> None:
    what = f"summary.{key}"
    node: Any = summary
    walked: list[str] = []
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            where = ".".join(walked) or "the summary"
            has = ", ".join(map(str, node)) if isinstance(node, dict) else f"a {type(node).__name__}"
            out.append(Mismatch(what, _show(expected), f"no such key ({where} has: {has})"))
            return
        walked.append(part)
    if isinstance(expected, dict) and expected and set(expected) <= {"min", "max"} and isinstance(node, int | float) \
            and not isinstance(node, bool):
        lo, hi = expected.get("min"), expected.get("max")
        if (lo is not None and node < lo) or (hi is not None and node > hi):
            want = f"at least {_show(lo)}" if hi is None else f"at most {_show(hi)}" if lo is None else \
                f"between {_show(lo)} and {_show(hi)}"
            out.append(Mismatch(what, want, _show(node)))
        return
    if not _same(node, expected):
        out.append(Mismatch(what, _show(expected), _show(node)))
