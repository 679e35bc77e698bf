"""Scenario variants: one file, several runs, ``${var}`` substituted line by line.

A scenario file may declare, at the top level, either an explicit list::

    variants:
      - {name: client-first, vars: {a: client, b: gateway}}
      - {name: gateway-first, vars: {a: gateway, b: client}}

or a matrix, whose cartesian product gives the variants (named by their values joined with ``-``,
in the order the matrix lists them), with optional common ``vars`` and per-value ``vars_by``::

    variants:
      matrix: {a: [client, gateway], delay: [5ms, 50ms]}      # client-5ms, client-50ms, gateway-5ms, ...
      vars: {link: 20ms}
      vars_by: {a: {client: {b: gateway}, gateway: {b: client}}}

and use ``${a}`` anywhere else in the text (``$${`` stands for a literal ``${``). Substitution is
textual and keeps every line where it was, so validation errors still point at the right line of the
file; full-line and trailing comments are left alone. The ``variants:`` block itself is blanked out
before the rest is parsed. This module only reads text and YAML: ``ikesim.scenario.load`` validates.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ikesim.errors import ConfigError
from ikesim.scenario.yaml_parse import compose_and_load

__all__ = ["Variant", "VariantText", "split_variants", "substitute", "expand_variants", "find_placeholders", "declared_name"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}\n]*)\}")
_BLOCK_START = re.compile(r"^variants[ \t]*:(?:[ \t]|$)")
_NAME_LINE = re.compile(r"^name[ \t]*:[ \t]*(['\"]?)([A-Za-z0-9_.-]+)\1[ \t]*(?:#.*)?$", re.MULTILINE)

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Variant:
    """One declared variant: its name, its variables and the line that declares it."""

    name: str
    vars: dict[str, Scalar] = field(default_factory=dict)
    line: int = 1


@dataclass(frozen=True, slots=True)
class VariantText:
    """One variant of a file (``variant`` None for a file without variants) and the text to substitute into."""

    variant: Variant | None
    template: str

    @property
    def name(self) -> str | None:
        """The variant's name (None for a file without variants)."""
        return None if self.variant is None else self.variant.name

    def render(self, source: str = "<string>") -> str:
        """The scenario text of this variant; ConfigError (file:line) for an undefined ``${var}``."""
        return self.template if self.variant is None else substitute(self.template, self.variant, source)


def _yaml_text(v: Scalar) -> str:
    """How a variable's value is written into the text (YAML spelling for booleans and null)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _comment_start(line: str) -> int:
    """Index of the ``#`` starting a comment on *line* (outside quotes), or len(line)."""
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            if c == "'":
                if line[i + 1:i + 2] == "'":
                    i += 1
                else:
                    quote = ""
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = ""
        elif c in "'\"" and (i == 0 or line[i - 1] in " \t[{,:"):
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
        i += 1
    return len(line)


def find_placeholders(text: str) -> list[tuple[int, str]]:
    """``(line, variable)`` of every ``${variable}`` outside comments, in order."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if "${" not in line:
            continue
        body = line[:_comment_start(line)]
        for m in _PLACEHOLDER.finditer(body):
            if m.group(0) != "$${":
                out.append((n, m.group(1)))
    return out


def substitute(template: str, variant: Variant, source: str) -> str:
    """*template* with every ``${var}`` replaced by the variant's value; ConfigError names file:line."""
    errors = []
    out = []
    for n, line in enumerate(template.splitlines(keepends=True), start=1):
        if "${" not in line:  # nothing to substitute: skip the scan for a comment
            out.append(line)
            continue
        cut = _comment_start(line.rstrip("\r\n"))
        body, rest = line[:cut], line[cut:]

        def repl(m: re.Match[str], n: int = n) -> str:
            if m.group(0) == "$${":
                return "${"
            var = m.group(1)
            if var not in variant.vars:
                known = ", ".join(sorted(variant.vars)) or "none"
                what = f"invalid variable name ${{{var}}}" if not _VAR.match(var) else f"undefined variable ${{{var}}}"
                errors.append(f"{source}:{n}: {what} (defined: {known})")
                return m.group(0)
            return _yaml_text(variant.vars[var])

        out.append(_PLACEHOLDER.sub(repl, body) + rest)
    if errors:
        raise ConfigError("\n".join(errors))
    return "".join(out)


def _block_range(lines: list[str], source: str) -> tuple[int, int] | None:
    """[start, end) line indexes of the top-level ``variants:`` block, or None."""
    starts = [i for i, line in enumerate(lines) if _BLOCK_START.match(line)]
    if not starts:
        return None
    if len(starts) > 1:
        raise ConfigError(f"{source}:{starts[1] + 1}: variants: duplicate key")
    start = end = starts[0]
    for i in range(start + 1, len(lines)):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] in " \t" or (line.startswith("-") and not line.startswith("---")):
            end = i
            continue
        break
    return start, end + 1


def _scalar_ok(v: object) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


class _Lines:
    """Line numbers of the nodes of the parsed ``variants:`` block, by key path."""

    def __init__(self, root: yaml.Node) -> None:
        self.lines: dict[tuple[Any, ...], int] = {}
        self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple[Any, ...]) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[path + (key.value,)] = key.start_mark.line + 1
                self._walk(value, path + (key.value,))
                self.lines[path + (key.value,)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))

    def __call__(self, *path: Any) -> int:
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in self.lines:
                return self.lines[tuple(path[:n])]
        return 1


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _vars(value: object, path: tuple[Any, ...], at: _Lines, source: str) -> dict[str, Scalar]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}:{at(*path)}: {_dotted(path)}: expected a mapping of variable -> value")
    for k, v in value.items():
        if not isinstance(k, str) or not _VAR.match(k):
            raise ConfigError(f"{source}:{at(*path, k)}: {_dotted(path)}: invalid variable name {k!r} "
                              "(letters, digits and _, not starting with a digit)")
        if not _scalar_ok(v) or (isinstance(v, str) and "\n" in v):
            raise ConfigError(f"{source}:{at(*path, k)}: {_dotted(path + (k,))}: a variable's value is one line of text "
                              f"or a number (got {v!r})")
    return dict(value)


def _explicit(items: list[Any], at: _Lines, source: str) -> list[Variant]:
    out = []
    for i, item in enumerate(items):
        path = ("variants", i)
        if not isinstance(item, dict):
            raise ConfigError(f"{source}:{at(*path)}: {_dotted(path)}: expected a mapping with name and vars")
        extra = sorted(str(k) for k in item if k not in ("name", "vars"))
        if extra:
            raise ConfigError(f"{source}:{at(*path, extra[0])}: {_dotted(path + (extra[0],))}: unknown key")
        name = item.get("name")
        if name is None:
            raise ConfigError(f"{source}:{at(*path)}: {_dotted(path)}.name: required key missing")
        out.append(Variant(name=_yaml_text(name), vars=_vars(item.get("vars"), path + ("vars",), at, source),
                           line=at(*path)))
    return out


def _matrix(spec: dict[str, Any], at: _Lines, source: str) -> list[Variant]:
    extra = sorted(str(k) for k in spec if k not in ("matrix", "vars", "vars_by"))
    if extra:
        raise ConfigError(f"{source}:{at('variants', extra[0])}: variants.{extra[0]}: unknown key (matrix, vars, vars_by)")
    matrix = spec.get("matrix")
    if not isinstance(matrix, dict) or not matrix:
        raise ConfigError(f"{source}:{at('variants', 'matrix')}: variants.matrix: expected a mapping of variable -> list of values")
    for k, values in matrix.items():
        p = ("variants", "matrix", k)
        if not isinstance(k, str) or not _VAR.match(k):
            raise ConfigError(f"{source}:{at(*p)}: variants.matrix: invalid variable name {k!r}")
        if not isinstance(values, list) or not values or not all(_scalar_ok(v) for v in values):
            raise ConfigError(f"{source}:{at(*p)}: variants.matrix.{k}: expected a non-empty list of values")
        texts = [_yaml_text(v) for v in values]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"{source}:{at(*p)}: variants.matrix.{k}: duplicate value")
    common = _vars(spec.get("vars"), ("variants", "vars"), at, source)
    by = spec.get("vars_by") or {}
    if not isinstance(by, dict):
        raise ConfigError(f"{source}:{at('variants', 'vars_by')}: variants.vars_by: expected a mapping of matrix variable -> "
                          "{value: {variable: value}}")
    derived: dict[str, dict[str, dict[str, Scalar]]] = {}
    for k, table in by.items():
        p = ("variants", "vars_by", k)
        if k not in matrix:
            raise ConfigError(f"{source}:{at(*p)}: variants.vars_by.{k}: not a matrix variable ({', '.join(map(str, matrix))})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}:{at(*p)}: variants.vars_by.{k}: expected a mapping of value -> {{variable: value}}")
        keyed = {_yaml_text(v): _vars(vs, p + (v,), at, source) for v, vs in table.items()}
        for v in matrix[k]:
            if _yaml_text(v) not in keyed:
                raise ConfigError(f"{source}:{at(*p)}: variants.vars_by.{k}: no entry for {_yaml_text(v)!r}")
        derived[k] = keyed
    names = list(matrix)
    out = []
    for combo in itertools.product(*(matrix[k] for k in names)):
        texts = [_yaml_text(v) for v in combo]
        vars_: dict[str, Scalar] = dict(common)
        for k, v, t in zip(names, combo, texts, strict=True):
            for name, value in [(k, v), *derived.get(k, {}).get(t, {}).items()]:
                if name in vars_:
                    raise ConfigError(f"{source}:{at('variants')}: variants: variable {name!r} is defined twice "
                                      "(matrix, vars and vars_by must not overlap)")
                vars_[name] = value
        out.append(Variant(name="-".join(texts), vars=vars_, line=at("variants", "matrix")))
    return out


def split_variants(text: str, source: str = "<string>") -> tuple[str, list[Variant] | None]:
    """The text with its ``variants:`` block blanked (same line count) and the variants it declares.

    None when the file declares no variants. ConfigError (file:line) for a malformed block.
    """
    lines = text.splitlines(keepends=True)
    span = _block_range([ln.rstrip("\r\n") for ln in lines], source)
    if span is None:
        return text, None
    start, end = span
    block = "\n" * start + "".join(lines[start:end])
    try:
        root, data = compose_and_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else start + 1
        raise ConfigError(f"{source}:{line}: variants: YAML syntax error: {getattr(exc, 'problem', None) or exc}") from None
    at = _Lines(root)
    spec = data.get("variants") if isinstance(data, dict) else None
    if isinstance(spec, list) and spec:
        variants = _explicit(spec, at, source)
    elif isinstance(spec, dict):
        variants = _matrix(spec, at, source)
    else:
        raise ConfigError(f"{source}:{start + 1}: variants: expected a non-empty list of {{name, vars}} or {{matrix: ...}}")
    seen: dict[str, int] = {}
    for v in variants:
        if not _NAME.match(v.name):
            raise ConfigError(f"{source}:{v.line}: variants: invalid variant name {v.name!r} (letters, digits, '_', '.', '-')")
        if v.name in seen:
            raise ConfigError(f"{source}:{v.line}: variants: duplicate variant name {v.name!r} (also line {seen[v.name]})")
        seen[v.name] = v.line
    blanked = "".join("\n" if lines[i].endswith(("\n", "\r")) else "" for i in range(start, end))
    return "".join(lines[:start]) + blanked + "".join(lines[end:]), variants


def expand_variants(text: str, source: str = "<string>") -> list[VariantText]:
    """One text per variant, in declaration order; a file without variants gives one text, unchanged.

    ConfigError (file:line) for a malformed ``variants:`` block or, in a file without variants, a
    ``${var}`` that nothing defines. Undefined variables of one variant are raised by ``substitute``.
    """
    template, variants = split_variants(text, source)
    if variants is None:
        used = find_placeholders(text)
        if used:
            line, var = used[0]
            raise ConfigError(f"{source}:{line}: ${{{var}}} is used but the file declares no variants "
                              "(add a top-level variants: block, or write $${ for a literal ${)")
        return [VariantText(None, text)]
    return [VariantText(v, template) for v in variants]


def declared_name(text: str, default: str) -> str:
    """The top-level ``name:`` of scenario *text* without parsing it (for reports on files that fail to load)."""
    m = _NAME_LINE.search(text)
    return m.group(2) if m else default
