"""Apply dotted-key overrides to scenario YAML data and validate them through the normal loader."""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from ikesim.errors import ConfigError
from ikesim.scenario.load import load_scenario_text
from ikesim.scenario.model import ScenarioModel

__all__ = ["apply_override", "scenario_text", "validate"]


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    """Set *key* (``a.b.c``; an integer part indexes a list) to *value* in *data*, creating missing mappings."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "<root>"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--param {key}: {where} is a list of {len(node)}; {part!r} is not an index into it")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError(f"--param {key}: {where} is a value ({node!r}), not a mapping or list")


def scenario_text(base: dict[str, Any], overrides: tuple[tuple[str, Any], ...]) -> str:
    """YAML text of *base* with *overrides* applied (the input is not modified)."""
    data = copy.deepcopy(base)
    for key, value in overrides:
        apply_override(data, key, value)
    return yaml.safe_dump(data, sort_keys=False)


def validate(text: str, label: str) -> ScenarioModel:
    """Validate scenario *text* with the loader; errors are prefixed with *label* (line numbers of dumped text dropped)."""
    try:
        return load_scenario_text(text, "<sweep>")
    except ConfigError as exc:
        lines = [re.sub(r"^<sweep>(:\d+)?: ", "", line) for line in str(exc).splitlines()]
        raise ConfigError("\n".join(f"{label}: {line}" for line in lines)) from None
