"""``ikesim check``: exit codes, the table, JUnit XML, errors that do not stop the others, seeds, --out, --variant."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

import ikesim
from ikesim.check import check_paths
from ikesim.cli import main
from ikesim.metrics.results import Results


def scenario(name: str, *, seed: int = 1, actions: str = "", expect: str = "", header: str = "") -> str:
    """A two-node scenario of 2 h (CHILD_SA rekey every 20 min, IKE_SA every hour) in quickstart style."""
    return f"""\
name: {name}
seed: {seed}
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
    auth: {{method: psk, psk: check-psk-0123456789}}
    ike: {{rekey_time: 1h}}
    child: {{rekey_time: 20min}}
{actions}{expect}"""


BASIC = "expect:\n  violations: 0\n  exchanges: {ike_sa_init: 1, ike_auth: 1}\n  events: {IkeSaEstablished: {min: 2}}\n"
SIMULTANEOUS = ("actions:\n  - {at: 30min, node: client, action: rekey_child, connection: vpn}\n"
                "  - {at: 30min, node: gateway, action: rekey_child, connection: vpn}\n")
VARIANTS = ("variants:\n  - {name: client_first, vars: {first: client}}\n  - {name: gateway_first, vars: {first: gateway}}\n")


def junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and [s.get("name") for s in root] == ["ikesim"]
    return root[0]


def cases(suite: ET.Element) -> list[tuple[str, str]]:
    return [(c.get("classname", ""), c.get("name", "")) for c in suite.iter("testcase")]


@pytest.fixture
def passing(tmp_path: Path) -> Path:
    """A folder of passing scenarios: a plain one, a CHILD_SA collision, a file with two variants, and a non-YAML file."""
    d = tmp_path / "races"
    (d / "sub").mkdir(parents=True)
    (d / "a.yaml").write_text(scenario("plain", seed=3, expect=BASIC))
    (d / "sub" / "b.yml").write_text(scenario("collide", actions=SIMULTANEOUS,
                                              expect="expect:\n  collisions: {child: {min: 1}, ike: 0}\n"))
    (d / "c.yaml").write_text(scenario("race", seed=4, header=VARIANTS, expect=BASIC, actions=(
        "actions:\n  - {at: 30min, node: ${first}, action: rekey_child, connection: vpn}\n")))
    (d / "notes.txt").write_text("not a scenario")
    return d


def test_passing_folder_exits_0_and_writes_junit(passing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every scenario variant under the folder passes: exit 0, a PASS row each, one testcase each in the JUnit report."""
    report = tmp_path / "reports" / "check.xml"
    assert main(["check", str(passing), "--junit", str(report)]) == 0
    out = capsys.readouterr().out
    for name in ("plain", "collide", "race[client_first]", "race[gateway_first]"):
        assert name in out
    assert out.count("PASS") == 4 and "4 passed, 0 failed, 0 errors" in out
    suite = junit(report)
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4", "failures": "0", "errors": "0", "skipped": "0"}
    assert cases(suite) == [(str(passing / "a.yaml"), "plain"), (str(passing / "c.yaml"), "race[client_first]"),
                            (str(passing / "c.yaml"), "race[gateway_first]"), (str(passing / "sub" / "b.yml"), "collide")]
    assert [c.find("failure") for c in suite.iter("testcase")] == [None] * 4
    props = [{p.get("name"): p.get("value") for p in c.iter("property")} for c in suite.iter("testcase")]
    assert props == [{"seed": "3"}, {"seed": "4", "variant": "client_first"}, {"seed": "4", "variant": "gateway_first"},
                     {"seed": "1"}]
    assert [p.name for p in report.parent.iterdir()] == ["check.xml"]  # written atomically: no temp file left


def test_broken_expectation_exits_1_and_names_what_differed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A false expectation fails its scenario: exit 1, the exact line in the table and in the JUnit failure."""
    path = tmp_path / "broken.yaml"
    path.write_text(scenario("broken", expect="expect:\n  rekeys: {child: 999}\n"))
    line = f"rekeys.child: expected 999, got {ikesim.run(path).summary['rekeys']['child']}"
    report = tmp_path / "r.xml"
    assert main(["check", str(path), "--junit", str(report)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and line in out and "0 passed, 1 failed, 0 errors" in out
    suite = junit(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "1", "0")
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("message") == line and failure.text == line
    assert failure.get("type") == "ExpectationMismatch"


def test_bad_file_is_an_error_row_and_the_others_still_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that does not load is an ERROR naming file:line; a YAML syntax error too; the good one still passes."""
    (tmp_path / "a-good.yaml").write_text(scenario("good", expect=BASIC))
    bad = tmp_path / "b-bad.yaml"
    bad.write_text(scenario("bad", expect=BASIC).replace("delay: 20ms", "delay: 20ms, loss: lots"))
    broken = tmp_path / "c-broken.yaml"
    broken.write_text("name: broken\nnodes: [\n")
    report = tmp_path / "r.xml"
    assert main(["check", str(tmp_path), "--junit", str(report)]) == 1
    out = capsys.readouterr().out
    bad_line = f"{bad}:8: links[0].loss: invalid ratio 'lots'"
    assert out.count("ERROR") == 2 and "1 passed, 0 failed, 2 errors" in out
    suite = junit(report)
    assert cases(suite) == [(str(tmp_path / "a-good.yaml"), "good"), (str(bad), "bad"), (str(broken), "broken")]
    errors = [c.find("error") for c in suite.iter("testcase")]
    assert errors[0] is None and all(e is not None and e.get("type") == "ConfigError" for e in errors[1:])
    assert errors[1].get("message") == bad_line and bad_line in out  # type: ignore[union-attr]
    assert errors[2].get("message", "").startswith(f"{broken}:3: YAML syntax error")  # type: ignore[union-attr]


def test_missing_path_or_nothing_found_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist, or folders without scenarios, exit 2 and run nothing."""
    (tmp_path / "ok.yaml").write_text(scenario("ok"))
    report = tmp_path / "r.xml"
    assert main(["check", str(tmp_path / "ok.yaml"), str(tmp_path / "nope"), "--junit", str(report)]) == 2
    assert capsys.readouterr().err == f"ikesim: error: {tmp_path / 'nope'}: no such file or directory\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty)]) == 2
    assert "no scenario files (*.yaml, *.yml) under" in capsys.readouterr().err
    assert not report.exists()


def test_each_scenario_runs_on_its_own_seed_unless_overridden(tmp_path: Path) -> None:
    """Without --seed each scenario keeps its seed; --seed N runs all of them with N."""
    (tmp_path / "a.yaml").write_text(scenario("a", seed=3, expect="expect:\n  summary: {seed: 3}\n"))
    (tmp_path / "b.yaml").write_text(scenario("b", seed=4, expect="expect:\n  summary: {seed: 4}\n"))
    own = check_paths([tmp_path])
    assert [(o.name, o.seed, o.status) for o in own] == [("a", 3, "pass"), ("b", 4, "pass")]
    forced = check_paths([tmp_path], seed=5)
    assert [(o.seed, o.lines()) for o in forced] == [(5, ["summary.seed: expected 3, got 5"]), (5, ["summary.seed: expected 4, got 5"])]


def test_a_crash_is_an_error_and_the_others_still_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception inside one run is an ERROR with its type and traceback; the next scenario runs."""
    from ikesim.sim.simulation import Simulation

    real = Simulation.run

    def explode(self: Simulation, until: float) -> Results:
        if self.name == "a":
            raise RuntimeError("boom")
        return real(self, until)

    monkeypatch.setattr(Simulation, "run", explode)
    (tmp_path / "a.yaml").write_text(scenario("a"))
    (tmp_path / "b.yaml").write_text(scenario("b"))
    report = tmp_path / "r.xml"
    assert main(["check", str(tmp_path), "--junit", str(report), "--quiet"]) == 1
    outcomes = check_paths([tmp_path])
    assert [(o.name, o.status, o.error) for o in outcomes] == [("a", "error", "a crashed: RuntimeError: boom"), ("b", "pass", "")]
    error = junit(report).find("testcase/error")
    assert error is not None and error.get("type") == "RuntimeError" and "Traceback" in (error.text or "")


def test_violations_fail_even_without_expectations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario with no expect: passes when no invariant broke, and fails when one did."""
    (tmp_path / "a.yaml").write_text(scenario("a"))
    assert [o.status for o in check_paths([tmp_path])] == ["pass"]
    row = pd.DataFrame([{"time": 1.5, "node": "client", "kind": "sa_mismatch", "connection": "vpn", "spi": "ab", "detail": "x"}])
    monkeypatch.setattr(Results, "violations", property(lambda self: row))
    [outcome] = check_paths([tmp_path])
    assert outcome.status == "fail" and outcome.lines() == ["violations: expected 0, got 1 (1.5s client sa_mismatch vpn ab: x)"]


def test_out_writes_each_run_and_nothing_is_written_without_it(passing: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """--out DIR writes DIR/<scenario name> per variant; without it check leaves no files behind."""
    monkeypatch.chdir(tmp_path)
    assert main(["check", str(passing), "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["races"]
    assert main(["check", str(passing), "--quiet", "--out", "res"]) == 0
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["collide", "plain", "race[client_first]", "race[gateway_first]"]
    assert json.loads((tmp_path / "res" / "race[gateway_first]" / "summary.json").read_text())["name"] == "race[gateway_first]"


def test_quiet_prints_only_what_did_not_pass(passing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet: nothing at all when everything passes; otherwise only the failing rows."""
    assert main(["check", str(passing), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    (passing / "z.yaml").write_text(scenario("zfail", expect="expect:\n  exchanges: {ike_auth: 2}\n"))
    assert main(["check", str(passing), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "zfail" in out and "exchanges.ike_auth: expected 2, got 1" in out and "plain" not in out
    assert "4 passed, 1 failed, 0 errors" in out


def test_run_picks_one_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim run FILE --variant NAME` runs that variant; without --variant a file with several is a usage error."""
    path = tmp_path / "race.yaml"
    path.write_text(scenario("race", header=VARIANTS, actions=(
        "actions:\n  - {at: 30min, node: ${first}, action: rekey_child, connection: vpn}\n")))
    out = tmp_path / "res"
    assert main(["run", str(path), "--variant", "gateway_first", "--until", "1h", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["name"] == "race[gateway_first]"
    assert main(["run", str(path), "--out", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert "declares 2 variants (client_first, gateway_first)" in err and "--variant NAME" in err
    assert main(["run", str(path), "--variant", "nope", "--out", str(tmp_path / "other")]) == 2
    assert "no variant 'nope' (variants: client_first, gateway_first)" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_out_never_replaces_a_directory_ikesim_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check --out DIR: DIR/<name> that holds the user's files (no ikesim marker) stops the check with exit 2
    before that scenario runs; the file survives. An earlier ikesim result there is replaced."""
    d = tmp_path / "one"
    d.mkdir()
    (d / "a.yaml").write_text(scenario("plain", seed=3, expect=BASIC))
    res = tmp_path / "res"
    assert main(["check", str(d), "--quiet", "--out", str(res)]) == 0
    assert main(["check", str(d), "--quiet", "--out", str(res)]) == 0  # its own earlier result: replaced
    (res / "plain" / "summary.json").unlink()
    (res / "plain" / ".ikesim-results.json").unlink()
    (res / "plain" / "notes.txt").write_text("the user's file\n")
    assert main(["check", str(d), "--quiet", "--out", str(res)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ikesim: error: refusing to write results into {res / 'plain'}: it is not empty") and err.count("\n") == 1
    assert (res / "plain" / "notes.txt").read_text() == "the user's file\n" and not (res / "plain" / "summary.json").exists()
    assert main(["check", str(d), "--quiet", "--out", str(d / "a.yaml")]) == 2  # DIR is a file
    assert "a.yaml is a file, not a directory" in capsys.readouterr().err


def test_out_with_no_keys_writes_no_key_tables(tmp_path: Path) -> None:
    """check --out DIR --no-keys: each DIR/<name> has its results but no key table; without it, 0600 key tables."""
    d = tmp_path / "s"
    d.mkdir()
    (d / "a.yaml").write_text(scenario("plain", seed=3, expect=BASIC))
    assert main(["check", str(d), "--quiet", "--out", str(tmp_path / "keys")]) == 0
    assert (tmp_path / "keys" / "plain" / "esp_sa").stat().st_mode & 0o777 == 0o600
    assert main(["check", str(d), "--quiet", "--out", str(tmp_path / "nokeys"), "--no-keys"]) == 0
    written = {p.name for p in (tmp_path / "nokeys" / "plain").iterdir()}
    assert "summary.json" in written and "capture.pcap" in written
    assert not written & {"ikev2_decryption_table", "esp_sa"}


NOT_OURS = {
    "notes.md": "# my notes\n",
    "other.xml": '<?xml version="1.0"?>\n<testsuites><testsuite name="pytest" tests="1"/></testsuites>\n',
    "two.xml": '<testsuites><testsuite name="ikesim"/><testsuite name="mine"/></testsuites>\n',
    "entities.xml": '<!DOCTYPE t [<!ENTITY a "x">]>\n<testsuites><testsuite name="ikesim">&a;</testsuite></testsuites>\n',
    "broken.xml": '<testsuites><testsuite name="ikesim">\n',
    "empty.xml": "",
}


@pytest.mark.parametrize("name", sorted(NOT_OURS))
def test_junit_never_overwrites_a_file_ikesim_did_not_write(name: str, passing: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`--junit notes.md`: exit 2 with one line before any scenario runs; the file keeps its content, no temp is left."""
    report = tmp_path / name
    report.write_text(NOT_OURS[name])
    assert main(["check", str(passing), "--junit", str(report), "--out", str(tmp_path / "res")]) == 2
    out, err = capsys.readouterr()
    assert err == (f"ikesim: error: refusing to overwrite {report}: it is not a JUnit report ikesim wrote "
                   "(use another --junit FILE)\n") and out == ""
    assert report.read_text() == NOT_OURS[name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["races", name])  # nothing ran: no res/


def test_junit_replaces_a_report_ikesim_wrote(passing: Path, tmp_path: Path) -> None:
    """A report from an earlier `ikesim check` is replaced by the new one."""
    report = tmp_path / "report.xml"
    assert main(["check", str(passing / "a.yaml"), "--junit", str(report), "--quiet"]) == 0
    assert [c[1] for c in cases(junit(report))] == ["plain"]
    assert main(["check", str(passing / "sub"), "--junit", str(report), "--quiet"]) == 0
    assert [c[1] for c in cases(junit(report))] == ["collide"]


def test_junit_write_failure_keeps_the_old_report_and_leaves_no_temp(passing: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The report is written to a temporary sibling and renamed: a failure midway keeps the old one, no temp remains."""
    import ikesim.check as check

    report = tmp_path / "report.xml"
    assert main(["check", str(passing / "a.yaml"), "--junit", str(report), "--quiet"]) == 0
    before = report.read_bytes()

    def disk_full(outcomes: object) -> ET.ElementTree:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(check, "junit_xml", disk_full)
    assert main(["check", str(passing / "a.yaml"), "--junit", str(report), "--quiet"]) == 1
    assert report.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["races", "report.xml"]


def test_junit_into_a_directory_is_refused(passing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--junit DIR`: exit 2 before running, the directory untouched."""
    (tmp_path / "d").mkdir()
    assert main(["check", str(passing / "a.yaml"), "--junit", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err == f"ikesim: error: --junit {tmp_path / 'd'}: it is a directory, not a file\n"
    assert list((tmp_path / "d").iterdir()) == []


def test_workers_give_the_same_outcomes_in_file_order(tmp_path: Path) -> None:
    """``workers=2`` (forked processes) returns what one process returns, in file and variant order, and writes the
    same results with --out."""
    races = Path(__file__).resolve().parents[1] / "scenarios" / "races"
    files = [races / "child-finished-first.yaml", races / "rekey-vs-delete.yaml", races / "child-simultaneous.yaml"]
    serial = check_paths(files, out=tmp_path / "one", workers=1)
    forked = check_paths(files, out=tmp_path / "two", workers=2)
    strip = [(o.path, o.name, o.variant, o.status, o.mismatches, o.seed) for o in serial]
    assert [(o.path, o.name, o.variant, o.status, o.mismatches, o.seed) for o in forked] == strip
    assert len(strip) > len(files) and [o.path for o in forked][0] == files[0]
    for run in sorted(p.name for p in (tmp_path / "one").iterdir()):
        a = pd.read_parquet(tmp_path / "one" / run / "events.parquet")
        b = pd.read_parquet(tmp_path / "two" / run / "events.parquet")
        pd.testing.assert_frame_equal(a, b)
