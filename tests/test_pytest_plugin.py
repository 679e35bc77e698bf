"""The pytest plugin: scenario files with ``expect:`` become items (one per variant) that pass or fail with the mismatches."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import ikesim.expect  # noqa: F401  (imported here once: pytester's in-process runs cannot re-import numpy)
import ikesim.runner  # noqa: F401

pytest_plugins = ["pytester"]

SCENARIO = """\
name: {name}
seed: 3
duration: 2h
{header}nodes:
  client: {{addresses: [10.0.0.1]}}
  gateway: {{addresses: [10.0.0.2]}}
links:
  - {{between: [client, gateway], delay: 20ms}}
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {{rekey_time: 1h}}
    child: {{rekey_time: 20min}}
{actions}{expect}"""

VARIANTS = "variants:\n  - {name: client_first, vars: {first: client}}\n  - {name: gateway_first, vars: {first: gateway}}\n"
ACTION = "actions:\n  - {at: 30min, node: ${first}, action: rekey_child, connection: vpn}\n"


def scenario(name: str, *, header: str = "", actions: str = "", expect: str = "") -> str:
    return SCENARIO.format(name=name, header=header, actions=actions, expect=expect)


def plugin_args() -> list[str]:
    """``-p ikesim.pytest_plugin`` unless the installed entry point already loads the plugin."""
    names = {e.name for e in importlib.metadata.entry_points(group="pytest11")}
    return [] if "ikesim" in names else ["-p", "ikesim.pytest_plugin"]


def test_collects_one_item_per_variant_of_files_with_expectations(pytester: pytest.Pytester) -> None:
    """A file with expect: gives one item per variant, named name[variant]; a file without expect: is not collected."""
    pytester.makefile(".yaml", race=scenario("race", header=VARIANTS, actions=ACTION, expect="expect:\n  violations: 0\n"))
    pytester.makefile(".yaml", plain=scenario("plain"))
    pytester.makefile(".yml", other="just: data\n")
    result = pytester.runpytest("--collect-only", "-q", *plugin_args())
    result.stdout.fnmatch_lines(["race.yaml::race[[]client_first[]]", "race.yaml::race[[]gateway_first[]]", "2 tests collected*"])
    assert "plain" not in result.stdout.str()


def test_ini_option_opts_files_in_without_expect(pytester: pytest.Pytester) -> None:
    """ikesim_scenarios = glob collects matching files even without expect: (then only violations are checked)."""
    pytester.makefile(".yaml", plain=scenario("plain"))
    pytester.makeini("[pytest]\nikesim_scenarios = plain*.yaml\n")
    result = pytester.runpytest("-q", *plugin_args())
    result.assert_outcomes(passed=1)


def test_items_pass_and_fail_with_the_mismatch_lines(pytester: pytest.Pytester) -> None:
    """A met expectation passes; an unmet one fails with 'what: expected X, got Y' as the whole report."""
    pytester.makefile(".yaml", good=scenario("good", expect="expect:\n  exchanges: {ike_sa_init: 1, ike_auth: 1}\n"))
    pytester.makefile(".yaml", wrong=scenario("wrong", expect="expect:\n  exchanges: {ike_auth: 2}\n  events: {IkeSaEstablished: 0}\n"))
    result = pytester.runpytest("-q", *plugin_args())
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ ikesim scenario wrong _*",
        "scenario wrong (wrong.yaml): 2 expectation(s) not met:",
        "  events.IkeSaEstablished: expected 0, got *",
        "  exchanges.ike_auth: expected 2, got 1",
        "FAILED wrong.yaml::wrong - scenario wrong (wrong.yaml)*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_config_error_fails_the_item_with_file_and_line(pytester: pytest.Pytester) -> None:
    """A scenario that does not validate fails with file:line; a bad variants block fails its file's one item."""
    pytester.makefile(".yaml", bad=scenario("bad", expect="expect:\n  violations: 0\n").replace("delay: 20ms", "delay: soon"))
    pytester.makefile(".yaml", undefined=scenario("undefined", header=VARIANTS, expect="expect:\n  violations: 0\n",
                                                  actions=ACTION.replace("${first}", "${frist}")))
    result = pytester.runpytest("-q", *plugin_args())
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines_random([
        "scenario bad: bad.yaml:8: links[[]0[]].delay: invalid duration 'soon' (use e.g. 30s, 66min, 1h30m, 500ms)",
        "scenario undefined[[]client_first[]]: undefined.yaml:19: undefined variable ${frist} (defined: first) (variant client_first)",
        "scenario undefined[[]gateway_first[]]: undefined.yaml:19: undefined variable ${frist} (defined: first) (variant gateway_first)",
    ])


def test_seed_option_overrides_every_scenario_seed(pytester: pytest.Pytester) -> None:
    """--ikesim-seed N runs each scenario with seed N."""
    pytester.makefile(".yaml", seeded=scenario("seeded", expect="expect:\n  summary: {seed: 3}\n"))
    pytester.runpytest("-q", *plugin_args()).assert_outcomes(passed=1)
    result = pytester.runpytest("-q", "--ikesim-seed", "5", *plugin_args())
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  summary.seed: expected 3, got 5"])


def test_testpaths_keep_scenario_folders_out_of_a_plain_run(pytester: pytest.Pytester) -> None:
    """With testpaths = tests (as in this repository), scenarios/ is collected only when named on the command line."""
    pytester.mkdir("scenarios")
    (pytester.path / "scenarios" / "race.yaml").write_text(scenario("race", expect="expect:\n  violations: 0\n"))
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    result = pytester.runpytest("--collect-only", "-q", *plugin_args())
    result.stdout.fnmatch_lines(["tests/test_a.py::test_a", "1 test collected*"])
    result = pytester.runpytest("--collect-only", "-q", "scenarios", *plugin_args())
    result.stdout.fnmatch_lines(["scenarios/race.yaml::race", "1 test collected*"])


def test_plugin_import_is_light() -> None:
    """Loading the plugin at pytest start imports neither the simulator, pandas, pydantic nor YAML."""
    code = ("import sys, ikesim.pytest_plugin;"
            "print(','.join(m for m in ('simpy', 'pandas', 'pydantic', 'yaml', 'ikesim.runner', 'ikesim.scenario') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
