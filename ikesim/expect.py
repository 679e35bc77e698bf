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
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ikesim.metrics.results import Results
from ikesim.scenario.expect_model import (
    CountSpec,
    EventSpec,
    ExchangeSpec,
    ExpectModel,
    KindCounts,
    KindDurations,
    NotifySpec,
    SurvivorSet,
    SurvivorSpec,
)

__all__ = ["Mismatch", "evaluate", "event_fields", "PURPOSES"]

PURPOSES = ("ike_sa_init", "ike_auth", "create_child", "rekey_child", "rekey_ike", "delete_child", "delete_ike", "dpd",
            "informational")
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
    nodes = [str(n) for n in results.summary.get("nodes", [])]
    _violations(e.violations, results, out)
    if e.collisions is not None:
        _per_kind("collisions", e.collisions, _collision_counts(results), out)
    if e.rekeys is not None:
        _per_kind("rekeys", e.rekeys, {k: int(results.summary["rekeys"].get(k, 0)) for k in _KINDS}, out)
    known = event_fields() if e.events else {}
    for name, spec in e.events.items():
        _events(name, spec, results, known, nodes, out)
    if e.notifies is not None:
        _notifies(e.notifies, results, nodes, out)
    for purpose, xspec in e.exchanges.items():
        _exchanges(purpose, xspec, results, nodes, out)
    if e.survivors is not None:
        for kind in _KINDS:
            spec_set = getattr(e.survivors, kind)
            if spec_set is not None:
                _survivors(kind, spec_set, e.survivors.connection, results, nodes, out)
    if e.max_rekey_latency is not None:
        _latency(e.max_rekey_latency, results, out)
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


# --- the expectations ---------------------------------------------------------------


def _violations(spec: CountSpec, results: Results, out: list[Mismatch]) -> None:
    v = results.violations
    if spec.accepts(len(v)):
        return
    shown = [f"{row.time:g}s {row.node} {row.kind} {row.connection} {row.spi}: {row.detail}" for row in v.head(3).itertuples()]
    more = f"; and {len(v) - 3} more" if len(v) > 3 else ""
    out.append(Mismatch("violations", spec.describe(), f"{len(v)}" + (f" ({'; '.join(shown)}{more})" if shown else "")))


def _collision_counts(results: Results) -> dict[str, int]:
    c = results.collisions
    by_kind = {str(k): int(n) for k, n in c.groupby("kind")["count"].sum().items()} if len(c) else {}
    return {k: by_kind.get(k, 0) for k in _KINDS}


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


def _events(name: str, spec: EventSpec, results: Results, known: dict[str, tuple[str, ...]], nodes: list[str],
            out: list[Mismatch]) -> None:
    ev = results.events
    what = f"events.{name}{_filters(spec.where.items())}"
    seen = set(ev["event"]) if len(ev) else set()
    if name not in known and name not in seen:
        _unknown(what, "event", name, [*known, *seen], out)
        return
    rows = ev[ev["event"] == name] if len(ev) else ev
    fields = {"time", "node", *known.get(name, ()), *(c for c in rows.columns if rows[c].notna().any())}
    mask = pd.Series(True, index=rows.index)
    for key, value in spec.where.items():
        if key not in fields:
            _unknown(what, f"field of {name}", key, fields, out)
            return
        if key == "node" and not _check_nodes(what, value, nodes, out):
            return
        if key not in rows.columns:
            mask &= False
            continue
        mask &= rows[key].map(lambda cell, value=value: _matches(cell, value)).astype(bool)
    _check_count(what, spec, int(mask.sum()), out)


def _notifies(specs: dict[str, NotifySpec], results: Results, nodes: list[str], out: list[Mismatch]) -> None:
    ev = results.events
    sent = ev[ev["event"] == "ErrorNotifySent"] if len(ev) else ev
    names = sent["notify"] if "notify" in sent.columns else pd.Series([], dtype=object)
    for name, spec in specs.items():
        what = f"notifies.{name}{_filters([('node', spec.node)])}"
        if spec.node is not None and not _check_nodes(what, spec.node, nodes, out):
            continue
        mask = names == name
        if spec.node is not None:
            mask &= sent["node"] == spec.node
        _check_count(what, spec, int(mask.sum()), out)
    for name, n in names[~names.isin(list(specs))].value_counts().sort_index().items():
        out.append(Mismatch(f"notifies.{name}", "0 (not listed)", str(int(n))))


def _exchanges(purpose: str, spec: ExchangeSpec, results: Results, nodes: list[str], out: list[Mismatch]) -> None:
    ex = results.exchanges
    what = f"exchanges.{purpose}{_filters([('outcome', spec.outcome), ('initiator', spec.initiator)])}"
    seen = set(ex["purpose"]) if len(ex) else set()
    if purpose not in PURPOSES and purpose not in seen:
        _unknown(what, "exchange purpose", purpose, [*PURPOSES, *seen], out)
        return
    if spec.initiator is not None and not _check_nodes(what, spec.initiator, nodes, out):
        return
    mask = ex["purpose"] == purpose
    if spec.outcome is not None:
        mask &= ex["outcome"] == spec.outcome
    if spec.initiator is not None:
        mask &= ex["initiator"] == spec.initiator
    _check_count(what, spec, int(mask.sum()), out)


def _live(results: Results, kind: str, connection: str | None) -> pd.DataFrame:
    """SA pairs alive at the end, one row each: on the node that created them, neither deleted nor rekeyed."""
    sas = results.sas
    if not len(sas):
        return sas
    gone = pd.to_numeric(sas["deleted_at"], errors="coerce").notna() | pd.to_numeric(sas["rekeyed_at"], errors="coerce").notna()
    mask = (sas["kind"] == kind) & (sas["initiator"] == True) & ~gone  # noqa: E712 (a column of Python bools)
    if connection is not None:
        mask &= sas["connection"] == connection
    return sas[mask]


def _survivors(kind: str, specs: SurvivorSet, connection: str | None, results: Results, nodes: list[str],
               out: list[Mismatch]) -> None:
    live = _live(results, kind, connection)
    base = f"survivors.{kind}"

    def check(what: str, spec: CountSpec, node: str | None, conn: str | None) -> None:
        rows = live
        if node is not None:
            rows = rows[rows["node"] == node]
        if conn is not None:
            rows = rows[rows["connection"] == conn]
        spis = list(rows["spi_in"])
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


def _latency(bound: float | KindDurations, results: Results, out: list[Mismatch]) -> None:
    rl = results.rekey_latencies
    checks = [("max_rekey_latency", None, bound)] if not isinstance(bound, KindDurations) else [
        (f"max_rekey_latency.{k}", k, getattr(bound, k)) for k in _KINDS if getattr(bound, k) is not None]
    for what, kind, limit in checks:
        assert isinstance(limit, float)
        rows = rl if kind is None else rl[rl["kind"] == kind]
        worst: tuple[float, str, Any] | None = None
        for side in ("initiator", "responder"):
            col = pd.to_numeric(rows[f"{side}_latency"], errors="coerce")
            if col.notna().any():
                i = col.idxmax()
                if worst is None or col[i] > worst[0]:
                    worst = (float(col[i]), side, rows.loc[i])
        if worst is not None and worst[0] > limit + 1e-9:
            row = worst[2]
            out.append(Mismatch(what, f"at most {_seconds(limit)}",
                                f"{_seconds(worst[0])} ({worst[1]} latency of the {row['kind']} rekey {row['node']} "
                                f"triggered at {float(row['triggered']):g}s)"))


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
