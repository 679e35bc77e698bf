"""One YAML parse (libyaml when it agrees with PyYAML) gives what ``yaml.compose`` and ``yaml.safe_load`` give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ikesim.scenario.variants import expand_variants
from ikesim.scenario.yaml_parse import compose_and_load

SCENARIOS = sorted(Path(__file__).resolve().parents[2].glob("scenarios/**/*.yaml"))


def _tree(node: yaml.Node | None) -> Any:
    """A node tree as nested tuples: kind, tag, value and start line of every node."""
    if node is None:
        return None
    value = node.value
    if isinstance(node, yaml.MappingNode):
        value = [(_tree(k), _tree(v)) for k, v in value]
    elif isinstance(node, yaml.SequenceNode):
        value = [_tree(item) for item in value]
    return type(node).__name__, node.tag, value, node.start_mark.line


def _pure(text: str) -> tuple[Any, Any]:
    return _tree(yaml.compose(text, Loader=yaml.SafeLoader)), yaml.safe_load(text)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_scenario_parses_as_pyyaml_parses_it(path: Path) -> None:
    """Each shipped scenario, and each of its variants, gives PyYAML's nodes (lines included) and data."""
    assert SCENARIOS
    for vt in expand_variants(path.read_text(), str(path)):
        text = vt.render(str(path))
        root, data = compose_and_load(text)
        assert (_tree(root), data) == _pure(text)


@pytest.mark.parametrize("text", ["a:\t1\n", "a: [1,\t2]\n", "a: {b: 1,\tc: 2}\n"])
def test_tabs_libyaml_accepts_are_refused_as_pyyaml_refuses_them(text: str) -> None:
    """libyaml takes a tab as a separator where PyYAML refuses it: the text is refused, with PyYAML's words."""
    with pytest.raises(yaml.YAMLError, match="found character '\\\\t' that cannot start any token"):
        compose_and_load(text)


def test_a_syntax_error_is_reported_in_pyyaml_words() -> None:
    """A text libyaml refuses is parsed again by PyYAML, whose problem and line are the ones raised."""
    with pytest.raises(yaml.MarkedYAMLError) as err:
        compose_and_load("a: 1\nb: [1, ]]\n")
    assert err.value.problem == "expected <block end>, but found ']'" and err.value.problem_mark is not None
    assert err.value.problem_mark.line == 1


def test_an_empty_text_is_none() -> None:
    """An empty document composes to no node and loads as None, as with yaml.compose and yaml.safe_load."""
    assert compose_and_load("") == (None, None)
    assert compose_and_load("# only a comment\n") == (None, None)
