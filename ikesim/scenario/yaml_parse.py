"""Parse scenario YAML once into both its node tree (line numbers) and its Python data.

libyaml (``yaml.CSafeLoader``) parses about 15 times faster than PyYAML's pure-Python parser, which was most
of the time spent loading a scenario. Both build the same nodes and use the same safe constructor and
resolver, so the data and the line numbers are the same, except where libyaml is more lenient or counts lines
otherwise (found by fuzzing both): tabs (PyYAML refuses a tab wherever a token could start), ``?`` (complex
keys), ``!`` (tags), line breaks other than ``\n`` and byte-order marks. Texts holding any of these, texts
libyaml rejects (its errors are worded differently) and every text when libyaml is not installed are parsed by
the pure-Python ``SafeLoader``, so errors and line numbers are exactly the ones it reports.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["compose_and_load"]

_FAST: type[Any] | None = getattr(yaml, "CSafeLoader", None)
_PURE_ONLY = ("\t", "?", "!", "\r", "\x85", "\u2028", "\u2029", "\ufeff")
"""Characters around which libyaml and PyYAML may disagree (see above): a text holding one is parsed by PyYAML only."""


def _parse(loader_class: type[Any], text: str) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        return root, None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()


def compose_and_load(text: str) -> tuple[yaml.Node | None, Any]:
    """``(yaml.compose(text), yaml.safe_load(text))`` from one parse; ``yaml.YAMLError`` as the pure parser raises it."""
    if _FAST is not None and not any(c in text for c in _PURE_ONLY):
        try:
            return _parse(_FAST, text)
        except (yaml.YAMLError, UnicodeError):
            pass  # report what the pure parser says (or accept the text, if only libyaml refused it)
    return _parse(yaml.SafeLoader, text)
