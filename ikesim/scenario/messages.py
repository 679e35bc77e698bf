"""pydantic's validation errors in ikesim's own words: one ``(key path, message)`` per problem.

pydantic reports a value that fails every branch of a union once per branch, with the branch's
name in the location (``retransmit.RetransmitModel``); here the branch names are dropped, a type
error of one branch gives way to an error inside another branch that matched the type, and the
branches' expectations are joined ("expected 'strongswan', 'libreswan' or a mapping of
retransmission settings, got a list"). A misspelt key gets a "did you mean" from the field names
and aliases of the model at that path.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

__all__ = ["describe_errors", "input_kind", "fields_at", "quoted"]

Loc = tuple[str | int, ...]

_TAG = re.compile(r"^(=.*|\[key\]|[a-z_-]*\[.*\]|function-.*|constrained-.*|(float|int|str|bool|none|list|dict|tuple|set)|[A-Z]\w*)$")
"""What a union branch's name in a pydantic location looks like (never a field name: ours are lowercase)."""

_NOUNS = {
    "ScenarioModel": "scenario settings", "NodeModel": "node settings", "CpuModelSpec": "CPU settings (cores, costs, base)",
    "LinkModel": "link settings", "PathModel": "link settings", "FleetLinkModel": "link settings",
    "DelayDistModel": "delay distribution settings (dist, ...)", "GilbertModel": "loss model settings (model, p, r, ...)",
    "DownModel": "outage settings (from, until)", "RetransmitModel": "retransmission settings (timeout, base, tries, ...)",
    "SideValue": "per-side values (initiator, responder)", "IkeModel": "IKE_SA settings", "ChildModel": "CHILD_SA settings",
    "AuthModel": "authentication settings", "IdsModel": "identities (initiator, responder)",
    "FleetIdsModel": "identities (initiator, responder)", "ConnectionModel": "connection settings",
    "ActionModel": "action settings (at, node, action, ...)", "NatModel": "NAT settings", "RouterModel": "router settings",
    "FaultModel": "fault settings", "FleetModel": "fleet settings", "FleetConnectionModel": "connection settings",
    "FleetStartModel": "start settings (spread or every)", "FleetNatModel": "NAT settings", "FleetVaryModel": "per-client draws",
    "FleetRebindingModel": "rebinding settings (fraction, every)", "DelayDist": "distribution settings (dist, ...)",
    "RatioDist": "distribution settings (dist, ...)", "ExpectModel": "expectations", "CountSpec": "counts (count, min, max)",
    "EventSpec": "counts (count, min, max, where)", "NotifySpec": "counts (count, min, max, node)",
    "ExchangeSpec": "counts (count, min, max, outcome, initiator)", "SurvivorSpec": "survivor settings (created_by, count)",
    "KindCounts": "counts per kind (child, ike)", "KindDurations": "durations per kind (child, ike)",
    "SurvivorsModel": "survivor settings (child, ike, connection)", "ClusterModel": "cluster settings",
    "SyncLinkModel": "sync link settings (delay, loss, bandwidth, lag, partitions)",
    "ClusterEventModel": "cluster event settings (at, crash, rejoin, restart, partition, switchover, downtime)",
    "ClusterFailuresModel": "failure settings (mtbf, repair, seed_stream)",
}


def quoted(text: str) -> str:
    """*text* in single quotes as written: a backslash stays one backslash; only unprintable characters are escaped (``\\x01``)."""
    return "'" + "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text) + "'"


def input_kind(v: object) -> str:
    """What a YAML value is, in words: ``a list``, ``the text 'abc'``, ``the number 3``, ``nothing (null)``."""
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the text {quoted(v)}" if len(v) <= 60 else f"the text {quoted(v[:57])}..."
    if isinstance(v, Sequence):
        return "a list"
    if isinstance(v, Mapping):
        return "a mapping"
    return f"a {type(v).__name__}"


def _noun(class_name: str) -> str:
    if class_name in _NOUNS:
        return _NOUNS[class_name]
    words = re.sub(r"(Model|Spec)$", "", class_name)
    return " ".join(w.lower() for w in re.findall(r"[A-Z][a-z0-9]*", words)) + " settings"


def _expected(err: Mapping[str, Any]) -> str | None:
    """What the value should have been, as a noun phrase (None: the error is not about the value's type)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in ("model_type", "model_attributes_type"):
        return f"a mapping of {_noun(str(ctx.get('class_name', '')))}"
    if kind in ("dict_type", "mapping_type"):
        return "a mapping"
    if kind in ("list_type", "tuple_type", "set_type", "iterable_type"):
        return "a list"
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        return "a whole number"
    if kind in ("float_type", "float_parsing"):
        return "a number"
    if kind in ("string_type", "string_unicode", "str_type"):
        return "text"
    if kind in ("bool_type", "bool_parsing"):
        return "true or false"
    if kind == "none_required":
        return "nothing (null)"
    if kind in ("literal_error", "enum"):
        return str(ctx.get("expected", "one of the listed values"))
    return None


def _choices(ctx: Mapping[str, Any]) -> list[str]:
    return re.findall(r"'([^']*)'", str(ctx.get("expected", "")))


def _message(err: Mapping[str, Any], fields: Sequence[str]) -> str:
    """One error in ikesim's words; *fields* are the keys known where the error is (for "did you mean")."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
        if close:
            return f"unknown key (did you mean {close[0]!r}?)"
        return f"unknown key (known here: {', '.join(fields)})" if 0 < len(fields) <= 12 else "unknown key"
    if kind == "missing":
        return "required key missing"
    if kind in ("value_error", "assertion_error"):
        msg = str(err["msg"])
        return msg.split(", ", 1)[1] if msg.startswith(("Value error, ", "Assertion failed, ")) else msg
    if kind in ("invalid_key",) or (kind == "string_type" and err.get("key_error")):
        return f"a key must be text, got {input_kind(value)}"
    if kind in ("literal_error", "enum"):
        choices = _choices(ctx)
        close = difflib.get_close_matches(str(value), choices, n=1) if isinstance(value, str) else []
        if not isinstance(value, str):
            return f"expected {ctx.get('expected', '')}, got {input_kind(value)}"
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{value!r} is not one of {ctx.get('expected', '')}{hint}"
    if kind == "int_from_float":
        return f"expected a whole number, got {input_kind(value)}"
    if kind == "finite_number":
        return f"expected a finite number, got {value!r}"
    bounds = {"greater_than": ("more than", "gt"), "greater_than_equal": ("at least", "ge"),
              "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le")}
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}, got {value!r}"
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        words = "at least" if kind == "too_short" else "at most"
        what = "entry" if n == 1 else "entries"
        return f"expected {words} {n} {what}, got {ctx.get('actual_length', 'another number')}"
    if kind in ("string_too_short", "string_too_long"):
        n = ctx.get("min_length") if kind == "string_too_short" else ctx.get("max_length")
        return f"expected text of {'at least' if kind == 'string_too_short' else 'at most'} {n} characters"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == r"^[A-Za-z0-9_.-]+$":
            return f"{value!r} may contain only letters, digits, '_', '-' and '.'"
        return f"{value!r} does not have the expected form ({ctx.get('pattern')})"
    expected = _expected(err)
    if expected is not None:
        return f"expected {expected}, got {input_kind(value)}"
    return f"invalid value: {input_kind(value)}"


def _strip(loc: Sequence[str | int], data: object) -> tuple[Loc, list[Loc], bool]:
    """The location without union branch names, the (stripped) locations where branches were dropped, and whether
    the error is about a mapping's key."""
    out: list[str | int] = []
    unions: list[Loc] = []
    key_error = False
    here: object = data
    for part in loc:
        present = (isinstance(here, Mapping) and part in here) or (
            isinstance(here, Sequence) and not isinstance(here, str) and isinstance(part, int) and 0 <= part < len(here))
        if present:
            out.append(str(part) if isinstance(here, Mapping) else part)  # a key YAML read as a number is still a key
            here = here[part]  # type: ignore[index]
            continue
        if isinstance(part, str) and _TAG.match(part):
            if part == "[key]":
                key_error = True
            elif not unions or unions[-1] != tuple(out):
                unions.append(tuple(out))
            continue
        out.append(part)
        here = None
    return tuple(out), unions, key_error


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types behind Annotated / Union / Optional."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def fields_at(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys (field names and aliases) of the models found at *loc* under *root*, in declaration order."""
    current: list[Any] = [root]
    for part in loc:
        nxt: list[Any] = []
        for tp in (t for c in current for t in _unwrap(c)):
            origin, args = typing.get_origin(tp), typing.get_args(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
                for name, f in tp.model_fields.items():
                    if part in (name, f.alias):
                        nxt.append(f.annotation)
            elif origin in (dict, Mapping) and len(args) == 2:
                nxt.append(args[1])
            elif origin in (list, Sequence, set, frozenset) and args and isinstance(part, int):
                nxt.append(args[0])
            elif origin is tuple and args and isinstance(part, int):
                nxt.append(args[0] if len(args) == 2 and args[1] is Ellipsis else args[min(part, len(args) - 1)])
        current = nxt
    names: list[str] = []
    for tp in (t for c in current for t in _unwrap(c)):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for name, f in tp.model_fields.items():
                key = f.alias or name
                if key not in names:
                    names.append(key)
    return names


def describe_errors(errors: Sequence[Mapping[str, Any]], data: object, root: type[BaseModel]) -> list[tuple[Loc, str]]:
    """``(key path, message)`` for each problem in pydantic's *errors* about *data* validated as *root*."""
    items = []
    for err in errors:
        loc, unions, key_error = _strip(err["loc"], data)
        items.append((loc, unions, {**err, "key_error": key_error}))
    deep = {u for loc, unions, _ in items for u in unions if len(loc) > len(u)}
    groups: dict[Loc, list[dict[str, Any]]] = {}
    for loc, unions, err in items:
        if loc in deep and unions and unions[-1] == loc:
            continue  # a branch of this union matched the type and failed inside: report that instead
        groups.setdefault(loc, []).append(err)
    out: list[tuple[Loc, str]] = []
    for loc, errs in groups.items():
        phrases = [_expected(e) for e in errs]
        if len(errs) > 1 and None in phrases and any(p is not None for p in phrases):
            errs = [e for e, p in zip(errs, phrases, strict=True) if p is None]  # a branch took the type and refused the value
        elif len(errs) > 1 and all(p is not None for p in phrases):
            wanted: list[str] = []
            for e, p in zip(errs, phrases, strict=True):
                literals = _choices(e.get("ctx") or {}) if e["type"] in ("literal_error", "enum") else []
                wanted += [f"'{c}'" for c in literals] or [str(p)]
            choices = list(dict.fromkeys(wanted))
            joined = choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]
            out.append((loc, f"expected {joined}, got {input_kind(errs[0].get('input'))}"))
            continue
        for e in errs:
            fields = fields_at(root, loc[:-1]) if e["type"] == "extra_forbidden" else []
            out.append((loc, _message(e, fields)))
    return out
