"""The JSON Schema of scenario files: shipped as generated, and every scenario in scenarios/ valid under it."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from ikesim.cli import main
from ikesim.scenario.load import read_scenario_text
from ikesim.scenario.schema import scenario_schema, schema_text, shipped_schema_text
from ikesim.scenario.swanctl_scenario import import_swanctl, render_yaml
from ikesim.scenario.variants import expand_variants

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").rglob("*.yaml"))
VALIDATOR = jsonschema.Draft202012Validator(scenario_schema())


def test_shipped_schema_is_the_generated_one() -> None:
    """ikesim/data/scenario.schema.json equals ``ikesim schema`` (regenerate: ikesim schema -o FILE --force)."""
    assert shipped_schema_text() == schema_text()


def test_the_schema_is_valid_draft_2020_12() -> None:
    """Editors read it as a draft 2020-12 schema."""
    jsonschema.Draft202012Validator.check_schema(scenario_schema())


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(ROOT / "scenarios")))
def test_every_scenario_is_valid_under_the_schema(path: Path) -> None:
    """Each variant of each shipped scenario, as the loader reads it, is valid under the schema."""
    text = read_scenario_text(path)
    for vt in expand_variants(text, str(path)):
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in VALIDATOR.iter_errors(yaml.safe_load(vt.render(str(path))))]
        assert errors == []


def test_imported_scenarios_are_valid_under_the_schema() -> None:
    """What ``ikesim import`` writes is valid too (peers, children, durations as text)."""
    here = Path(__file__).resolve().parent / "swanctl"
    data = yaml.safe_load(render_yaml(import_swanctl([here / "moon.conf", here / "sun.conf"])))
    assert list(VALIDATOR.iter_errors(data)) == []


@pytest.mark.parametrize(("value", "valid"), [
    ("1h", True), ("1h30m", True), ("500ms", True), ("66min", True), ("2.5", True), (90, True), (0.5, True),
    ("1x", False), ("-1s", False), (-1, False), ("h", False), ("", False), (True, False),
])
def test_durations_are_numbers_or_strings_with_units(value: object, valid: bool) -> None:
    """A duration is seconds as a number, or a string of number+unit parts (a generated schema took numbers only)."""
    base = {"name": "d", "duration": "1h", "nodes": {}, "connections": {}}
    assert VALIDATOR.is_valid({**base, "warmup": value}) is valid


def test_schema_command_prints_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ikesim schema`` prints the schema; with --out it writes a new file, an existing one only with --force."""
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == schema_text()
    out = tmp_path / "s.json"
    out.write_text("{}")
    assert main(["schema", "--out", str(out)]) == 2
    assert out.read_text() == "{}"
    assert main(["schema", "--out", str(out), "--force"]) == 0
    assert out.read_text() == schema_text()
