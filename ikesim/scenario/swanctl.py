"""A reader of strongSwan's settings syntax (swanctl.conf, strongswan.conf), for ``ikesim import``.

The syntax, as libstrongswan's ``settings_lexer.l`` and ``settings_parser.y`` define it: ``name { ... }`` sections,
``name : other.section, ... { ... }`` sections that inherit from others (paths from the top), ``key = value``
settings whose value runs to the end of the line (or a ``}`` or ``#``; its words joined by one space; ``"..."``
strings keep spaces and take ``\\n``, ``\\t``, ``\\"`` escapes), ``# comments``, and ``include PATTERN`` (relative to
the including file, a glob, sorted; no match is no error). A section given twice is merged; a setting given twice
keeps the last value. Every setting and section remembers its file and line for messages.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from ikesim.errors import ConfigError

__all__ = ["Setting", "Section", "parse_settings", "parse_settings_text", "resolve"]

_NAME_STOP = set('#{}:.,="\r\n\t ')
"""Characters a section or key name cannot contain (the lexer's ``NAME``)."""
_MAX_INCLUDE_DEPTH = 10


@dataclass
class Setting:
    """``key = value`` (value None for ``key =``), and where it was written."""

    value: str | None
    file: str
    line: int


@dataclass
class Section:
    """``name { ... }``: its settings and subsections in the order first given, and the sections it references."""

    name: str
    file: str = ""
    line: int = 0
    settings: dict[str, Setting] = field(default_factory=dict)
    sections: dict[str, Section] = field(default_factory=dict)
    refs: list[tuple[str, str, int]] = field(default_factory=list)
    """(dotted path from the top, file, line) of each section this one inherits from."""

    def section(self, name: str) -> Section:
        """The subsection *name*, made empty if it is not there."""
        return self.sections.setdefault(name, Section(name))

    def find(self, path: str) -> Section | None:
        """The subsection at dotted *path* (``connections.base``), or None."""
        here: Section | None = self
        for part in path.split("."):
            here = here.sections.get(part) if here is not None else None
        return here


class _Parser:
    """A recursive-descent parser over one file's text (the lexer's start conditions as methods)."""

    def __init__(self, text: str, source: str, depth: int) -> None:
        """*text* of the file *source*, read *depth* includes deep."""
        self.text, self.source, self.depth = text, source, depth
        self.pos, self.line = 0, 1

    def error(self, message: str, line: int | None = None) -> ConfigError:
        """A ConfigError naming the file and the line (the current one unless given)."""
        return ConfigError(f"{self.source}:{line or self.line}: {message}")

    def peek(self) -> str:
        """The next character, "" at the end."""
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self) -> str:
        """The next character, consumed (counting lines)."""
        c = self.text[self.pos]
        self.pos += 1
        if c == "\n":
            self.line += 1
        return c

    def skip_blank(self, *, newlines: bool = True) -> None:
        """Spaces, tabs, carriage returns, comments to the end of the line, and (with *newlines*) newlines."""
        while self.pos < len(self.text):
            c = self.peek()
            if c in " \t\r" or (c == "\n" and newlines):
                self.advance()
            elif c == "#":
                while self.peek() not in ("", "\n"):
                    self.advance()
            else:
                return

    def name(self) -> str:
        """A section or key name (the lexer's ``NAME+``), possibly empty."""
        start = self.pos
        while self.peek() and self.peek() not in _NAME_STOP:
            self.advance()
        return self.text[start:self.pos]

    def body(self, into: Section, *, top: bool) -> None:
        """Statements up to the matching ``}`` (or the end of the file at the top)."""
        while True:
            self.skip_blank()
            c = self.peek()
            if c == "":
                if not top:
                    raise self.error(f"section {into.name!r} (line {into.line}) is not closed with '}}'")
                return
            if c == "}":
                if top:
                    raise self.error("'}' closes no section")
                self.advance()
                return
            line = self.line
            if c == '"':
                raise self.error("unexpected string: quote values only, after '='")
            name = self.name()
            if not name:
                raise self.error(f"unexpected {c!r}: expected a name, a section or a setting")
            if name == "include" and self.peek() in " \t":
                self.skip_blank(newlines=False)
                if self.peek() != "=":
                    self.include(into)
                    continue
            self.skip_blank(newlines=False)
            c = self.peek()
            if c == "=":
                self.advance()
                into.settings[name] = Setting(self.value(), self.source, line)
            elif c in ("{", ":"):
                self.section_start(into, name, line)
            else:
                raise self.error(f"{name!r}: expected '=' (a setting) or '{{' (a section) after the name", line)

    def section_start(self, into: Section, name: str, line: int) -> None:
        """``name {`` or ``name : ref, ... {``, then the section's body (merged into one given before)."""
        sub = into.sections.get(name)
        if sub is None:
            sub = into.sections[name] = Section(name, self.source, line)
        if self.peek() == ":":
            self.advance()
            while True:
                self.skip_blank()
                start, ref_line = self.pos, self.line
                while self.peek() and self.peek() not in '#{}:,="\r\n\t ':
                    self.advance()
                ref = self.text[start:self.pos]
                if not ref:
                    raise self.error(f"section {name!r}: expected the name of a section it inherits from")
                sub.refs.append((ref, self.source, ref_line))
                self.skip_blank()
                if self.peek() != ",":
                    break
                self.advance()
        self.skip_blank()
        if self.peek() != "{":
            raise self.error(f"section {name!r}: expected '{{'")
        self.advance()
        self.body(sub, top=False)

    def value(self) -> str | None:
        """The words up to the end of the line, a ``#`` or a ``}``, joined by one space; None if there are none."""
        parts: list[str] = []
        while True:
            while self.peek() in (" ", "\t", "\r") and self.peek():
                self.advance()
            c = self.peek()
            if c in ("", "\n", "#", "}"):
                return " ".join(parts) if parts else None
            if c == '"':
                parts.append(self.string())
                continue
            start = self.pos
            while self.peek() and self.peek() not in '#}"\r\n\t ':
                self.advance()
            parts.append(self.text[start:self.pos])

    def string(self) -> str:
        """A ``"..."`` string with the lexer's escapes; an escaped end of line joins two lines."""
        line = self.line
        self.advance()
        out: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.error("unterminated string", line)
            self.advance()
            if c == '"':
                return "".join(out)
            if c == "\r":
                continue
            if c == "\\":
                e = self.peek()
                if e == "":
                    raise self.error("unterminated string", line)
                self.advance()
                if e == "\r" and self.peek() == "\n":
                    self.advance()
                elif e != "\n":
                    out.append({"n": "\n", "r": "\r", "t": "\t"}.get(e, e))
                continue
            out.append(c)

    def include(self, into: Section) -> None:
        """``include PATTERN``: every file the glob matches, relative to this file's directory, in sorted order."""
        line = self.line
        if self.peek() == '"':
            pattern = self.string()
        else:
            chars: list[str] = []
            while self.peek() and self.peek() not in "#}\n\t \r":
                c = self.advance()
                if c == "\\" and self.peek() in ('"', "#", "}", " "):
                    c = self.advance()
                chars.append(c)
            pattern = "".join(chars)
        if not pattern:
            return
        if self.depth >= _MAX_INCLUDE_DEPTH:
            raise self.error(f"include {pattern}: more than {_MAX_INCLUDE_DEPTH} levels of includes (a loop?)", line)
        full = pattern if os.path.isabs(pattern) or self.source.startswith("<") else \
            os.path.join(os.path.dirname(self.source), pattern)
        for path in sorted(glob.glob(full)):
            _parse_file(Path(path), into, self.depth + 1)


def _parse_file(path: Path, into: Section, depth: int) -> None:
    """The statements of the file at *path*, into *into* (an include's section, or the top)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from None
    _Parser(text, str(path), depth).body(into, top=True)


def parse_settings(path: str | Path) -> Section:
    """The top section of a settings file and the files it includes (ConfigError naming file and line)."""
    root = Section("")
    _parse_file(Path(path), root, 0)
    return root


def parse_settings_text(text: str, source: str = "<string>") -> Section:
    """The top section of settings *text* (includes relative to *source*'s directory)."""
    root = Section("")
    _Parser(text, source, 0).body(root, top=True)
    return root


def resolve(section: Section, root: Section, _seen: tuple[str, ...] = ()) -> Section:
    """*section* with the sections it references merged under it (its own settings and subsections win), as
    libstrongswan looks keys up; a reference to a missing section is an error naming its file and line."""
    out = Section(section.name, section.file, section.line)
    for ref, file, line in section.refs:
        base = root.find(ref)
        if base is None:
            raise ConfigError(f"{file}:{line}: section {section.name!r} inherits from {ref!r}, which does not exist")
        if ref in _seen:
            raise ConfigError(f"{file}:{line}: section {section.name!r} inherits from {ref!r} in a loop")
        _merge(out, resolve(base, root, (*_seen, ref)))
    _merge(out, Section(section.name, section.file, section.line, section.settings,
                        {k: resolve(v, root, _seen) for k, v in section.sections.items()}))
    return out


def _merge(into: Section, other: Section) -> None:
    """*other*'s settings and subsections over *into*'s."""
    into.settings.update(other.settings)
    for name, sub in other.sections.items():
        if name in into.sections:
            _merge(into.sections[name], sub)
        else:
            into.sections[name] = Section(sub.name, sub.file, sub.line, dict(sub.settings), dict(sub.sections))
