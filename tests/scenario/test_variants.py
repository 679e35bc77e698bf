"""Scenario variants: expansion, textual ${var} substitution with lines kept, names, and errors naming file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ikesim.errors import ConfigError
from ikesim.scenario.load import load_scenario, load_scenario_text, load_scenarios, load_scenarios_text, load_variants
from ikesim.scenario.variants import declared_name, expand_variants, find_placeholders, split_variants

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """\
# two peers rekey at once; ${first} acts first
name: race
seed: 7
duration: 2h
variants:
  - name: client_first
    vars: {first: client, second: gateway, delay: 10ms}
  - name: gateway_first
    vars: {first: gateway, second: client, delay: 30ms}
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
links:
  - {between: [client, gateway], delay: ${delay}}
connections:
  vpn: {initiator: client, responder: gateway, child: {rekey_time: 20min}}
actions:
  - {at: 30min, node: ${first}, action: rekey_child, connection: vpn}   # ${first} first
  - {at: 30.01min, node: ${second}, action: rekey_child, connection: vpn}
"""


def test_list_form_gives_one_model_per_variant() -> None:
    """Each variant is named <name>[<variant>] and sees its own values."""
    models = load_scenarios_text(TEMPLATE, "race.yaml")
    assert [m.name for m in models] == ["race[client_first]", "race[gateway_first]"]
    assert [(m.actions[0].node, m.actions[1].node) for m in models] == [("client", "gateway"), ("gateway", "client")]
    assert [m.links[0].delay for m in models] == [0.01, 0.03]
    assert [m.seed for m in models] == [7, 7]


def test_substitution_keeps_every_line_in_place() -> None:
    """The variants block becomes blank lines, comments are left as written, values replace ${var}."""
    template, variants = split_variants(TEMPLATE, "race.yaml")
    assert variants is not None and [(v.name, v.line) for v in variants] == [("client_first", 6), ("gateway_first", 8)]
    text = expand_variants(TEMPLATE, "race.yaml")[1].render("race.yaml")
    lines = text.splitlines()
    assert len(lines) == len(TEMPLATE.splitlines())
    assert lines[0] == "# two peers rekey at once; ${first} acts first"
    assert lines[4:9] == ["", "", "", "", ""]
    assert lines[13] == "  - {between: [client, gateway], delay: 30ms}"
    assert lines[17] == "  - {at: 30min, node: gateway, action: rekey_child, connection: vpn}   # ${first} first"


def test_a_validation_error_names_the_right_line_and_the_variant(tmp_path: Path) -> None:
    """An error in substituted text points at the template's line, once per variant that has it."""
    path = tmp_path / "race.yaml"
    path.write_text(TEMPLATE.replace("delay: 30ms", "delay: slow"))
    with pytest.raises(ConfigError) as exc:
        load_scenarios(path)
    assert str(exc.value) == (f"{path}:14: links[0].delay: invalid duration 'slow' (use e.g. 30s, 66min, 1h30m, 500ms) "
                              "(variant gateway_first)")
    loaded = load_variants(path.read_text(), str(path))
    assert [v for v, _ in loaded] == ["client_first", "gateway_first"]
    assert loaded[0][1].name == "race[client_first]"  # type: ignore[union-attr]
    assert isinstance(loaded[1][1], ConfigError)


def test_undefined_variable_is_an_error_with_file_line_and_variant() -> None:
    """${x} that a variant does not define names the file, the line, the variable and the variant."""
    text = TEMPLATE.replace("connection: vpn}\n", "connection: ${conn}}\n", 1)
    with pytest.raises(ConfigError) as exc:
        load_scenarios_text(text, "race.yaml")
    assert str(exc.value).splitlines() == [
        "race.yaml:19: undefined variable ${conn} (defined: delay, first, second) (variant client_first)",
        "race.yaml:19: undefined variable ${conn} (defined: delay, first, second) (variant gateway_first)",
    ]


def test_placeholder_without_variants_is_an_error() -> None:
    """${x} in a file that declares no variants is reported, not passed on to YAML."""
    text = "name: x\nduration: 1h\nseed: ${seed}\n"
    with pytest.raises(ConfigError) as exc:
        load_scenario_text(text, "x.yaml")
    assert str(exc.value).startswith("x.yaml:3: ${seed} is used but the file declares no variants")


def test_dollar_dollar_is_a_literal_and_comments_are_ignored() -> None:
    """$${ stays ${ in the text; placeholders inside comments or quotes' # are handled."""
    assert find_placeholders("a: $${x}  # ${y}\nb: '#${z}'\n# ${w}\n") == [(2, "z")]
    _, variants = split_variants("variants:\n  - {name: v, vars: {z: 1}}\nb: '#${z}' # ${nope}\nc: $${z}\n")
    assert variants is not None
    vt = expand_variants("variants:\n  - {name: v, vars: {z: 1}}\nb: '#${z}' # ${nope}\nc: $${z}\n")[0]
    assert vt.render().splitlines()[2:] == ["b: '#1' # ${nope}", "c: ${z}"]


def test_matrix_form_is_the_cartesian_product() -> None:
    """matrix values are joined with '-' in the order listed; vars are common, vars_by depend on one value."""
    text = TEMPLATE.replace(
        "variants:\n  - name: client_first\n    vars: {first: client, second: gateway, delay: 10ms}\n"
        "  - name: gateway_first\n    vars: {first: gateway, second: client, delay: 30ms}\n",
        "variants:\n  matrix: {first: [client, gateway], delay: [10ms, 30ms]}\n  vars: {}\n"
        "  vars_by: {first: {client: {second: gateway}, gateway: {second: client}}}\n\n")
    models = load_scenarios_text(text, "race.yaml")
    assert [m.name for m in models] == ["race[client-10ms]", "race[client-30ms]", "race[gateway-10ms]", "race[gateway-30ms]"]
    assert [(m.actions[1].node, m.links[0].delay) for m in models] == [
        ("gateway", 0.01), ("gateway", 0.03), ("client", 0.01), ("client", 0.03)]


@pytest.mark.parametrize("block,message", [
    ("variants:\n  - {name: a}\n  - {name: a}\n", "v.yaml:3: variants: duplicate variant name 'a' (also line 2)"),
    ("variants:\n  - {name: 'a b'}\n", "v.yaml:2: variants: invalid variant name 'a b' (letters, digits, '_', '.', '-')"),
    ("variants:\n  - {name: a, vars: {1x: y}}\n",
     "v.yaml:2: variants[0].vars: invalid variable name '1x' (letters, digits and _, not starting with a digit)"),
    ("variants:\n  - {name: a, vars: {x: [1, 2]}}\n",
     "v.yaml:2: variants[0].vars.x: a variable's value is one line of text or a number (got [1, 2])"),
    ("variants:\n  - {name: a, colour: red}\n", "v.yaml:2: variants[0].colour: unknown key"),
    ("variants:\n  - {vars: {x: 1}}\n", "v.yaml:2: variants[0].name: required key missing"),
    ("variants: []\n", "v.yaml:1: variants: expected a non-empty list of {name, vars} or {matrix: ...}"),
    ("variants:\n  matrix: {x: []}\n", "v.yaml:2: variants.matrix.x: expected a non-empty list of values"),
    ("variants:\n  matrix: {x: [a, b]}\n  vars_by: {x: {a: {y: 1}}}\n", "v.yaml:3: variants.vars_by.x: no entry for 'b'"),
    ("variants:\n  matrix: {x: [a]}\n  vars: {x: 1}\n",
     "v.yaml:1: variants: variable 'x' is defined twice (matrix, vars and vars_by must not overlap)"),
    ("variants:\n  - {name: a}\nvariants:\n  - {name: b}\n", "v.yaml:3: variants: duplicate key"),
])
def test_bad_variants_blocks(block: str, message: str) -> None:
    """A malformed variants block is one ConfigError naming file:line."""
    with pytest.raises(ConfigError) as exc:
        load_scenarios_text(block + "name: x\nduration: 1h\n", "v.yaml")
    assert str(exc.value) == message


def test_load_scenario_needs_a_variant_when_there_are_several(tmp_path: Path) -> None:
    """load_scenario refuses a file with several variants unless one is picked by name."""
    path = tmp_path / "race.yaml"
    path.write_text(TEMPLATE)
    with pytest.raises(ConfigError) as exc:
        load_scenario(path)
    assert str(exc.value) == (f"{path}: the scenario declares 2 variants (client_first, gateway_first): run them all with "
                              "`ikesim check` or load_scenarios(), or pick one with --variant NAME (load_scenario(..., variant=))")
    assert load_scenario(path, variant="gateway_first").name == "race[gateway_first]"
    with pytest.raises(ConfigError, match=r"no variant 'other' \(variants: client_first, gateway_first\)"):
        load_scenario(path, variant="other")
    with pytest.raises(ConfigError, match="declares no variants"):
        load_scenario(ROOT / "scenarios" / "quickstart.yaml", variant="x")
    assert [m.name for m in load_scenarios(ROOT / "scenarios" / "quickstart.yaml")] == ["quickstart"]


def test_a_single_variant_loads_with_load_scenario() -> None:
    """A file with exactly one variant needs no --variant."""
    one = TEMPLATE.replace("  - name: gateway_first\n    vars: {first: gateway, second: client, delay: 30ms}\n", "")
    assert load_scenario_text(one, "one.yaml").name == "race[client_first]"


def test_declared_name_reads_the_top_level_name() -> None:
    """Reports on files that do not load still use the scenario's name when it is readable."""
    assert declared_name(TEMPLATE, "file") == "race" and declared_name("duration: 1h\n", "file") == "file"


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").rglob("*.yaml")), ids=lambda p: p.stem)
def test_repository_scenarios_expand_to_plain_yaml(path: Path) -> None:
    """Every scenario in the repository expands; each variant's text is YAML with no ${...} left outside comments."""
    text = path.read_text()
    for vt in expand_variants(text, str(path)):
        rendered = vt.render(str(path))
        assert find_placeholders(rendered) == []
        assert isinstance(yaml.safe_load(rendered), dict)


def test_readme_check_example_loads() -> None:
    """The variants/expect example of README.md's CI section validates on a two-node scenario (docs cannot drift)."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Checking race scenarios in CI"):]
    block = re.search(r"```yaml expect\n(.*?)```", section, re.S)
    assert block is not None
    base = ("name: readme\nduration: 2min\nnodes:\n  client: {addresses: [10.0.0.1]}\n  gateway: {addresses: [10.0.0.2]}\n"
            "links:\n  - {between: [client, gateway]}\nconnections:\n  vpn: {initiator: client, responder: gateway}\n")
    models = load_scenarios_text(base + block.group(1), "README.md")
    assert [m.name for m in models] == ["readme[client-first]", "readme[gateway-first]"]
    survivors = models[1].expect.survivors.child  # type: ignore[union-attr]
    assert isinstance(survivors, dict) and {node: c.count for node, c in survivors.items()} == {"gateway": 1, "client": 0}
