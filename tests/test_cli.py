"""The ``ikesim`` command: files written, exit codes, atomic results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ikesim.cli import main
from ikesim.metrics.results import Results
from ikesim.runner import MARKER

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quickstart.yaml"
FILES = {"events.parquet", "exchanges.parquet", "sas.parquet", "packets.parquet", "summary.json",
         "capture.pcap", "ikev2_decryption_table", "esp_sa", MARKER,
         "traffic.parquet", "outages.parquet", "traffic_windows.parquet"}  # the quick start has traffic


def test_run_writes_every_result_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim run --until 2h` prints the summary and writes exactly the result files."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "2h", "--out", str(out), "--seed", "5"]) == 0
    assert {p.name for p in out.iterdir()} == FILES
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 5 and summary["duration"] == 7200.0 and summary["ikesim_version"]
    assert summary["exchanges_by_type"]["ike_auth"] == 1 and summary["rekeys"]["child"] >= 1
    printed = capsys.readouterr().out
    assert "rekey" in printed and "retransmissions" in printed and str(out) in printed
    assert [p.name for p in tmp_path.iterdir()] == ["res"]  # no temp dirs left


def test_bad_scenario_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario error prints file:line: key on stderr, exits 2, creates no directory."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICK.read_text().replace("loss: 1%", "loss: lots"))
    out = tmp_path / "res"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:14: links[0].loss" in err and "Traceback" not in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]


def _break_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make Results.write fail after it has written some files."""
    original = Results.write

    def broken(self: Results, directory: str | Path, *, keys: bool = True) -> None:
        original(self, directory, keys=keys)
        (Path(directory) / "events.parquet").unlink()
        raise OSError("disk full")

    monkeypatch.setattr(Results, "write", broken)


def test_failed_write_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A write failing midway exits 1 with the reason and leaves no result dir, temp dir or new parent."""
    _break_write(monkeypatch)
    out = tmp_path / "results" / "q"
    assert main(["run", str(QUICK), "--until", "30min", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "OSError: disk full" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_previous_results_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing fails midway, no half-written directory remains and older results are untouched."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "1h", "--out", str(out), "--quiet"]) == 0
    before = (out / "summary.json").read_bytes()
    _break_write(monkeypatch)
    assert main(["run", str(QUICK), "--until", "2h", "--out", str(out), "--quiet"]) == 1
    assert (out / "summary.json").read_bytes() == before and {p.name for p in out.iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_rerun_replaces_older_results(tmp_path: Path) -> None:
    """A second successful run into the same directory replaces the first one's files."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "1h", "--out", str(out), "--quiet"]) == 0
    assert main(["run", str(QUICK), "--until", "2h", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["duration"] == 7200.0
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_simulation_failure_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """An exception inside the simulation is a run failure: exit 1, message on stderr, nothing written."""
    from ikesim.sim.simulation import Simulation

    def explode(self: Simulation, until: float) -> Results:
        raise RuntimeError("boom")

    monkeypatch.setattr(Simulation, "run", explode)
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--out", str(out)]) == 1
    assert "RuntimeError: boom" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("args,message", [
    (["--until", "soon"], "--until: invalid duration 'soon'"),
    (["--until", "0s"], "until: the run must last longer than 0 s"),
])
def test_bad_until_exits_2(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --until is a usage error: exit 2, the reason on stderr, nothing written."""
    assert main(["run", str(QUICK), "--out", str(tmp_path / "res"), *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_scenario_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario path that does not exist exits 2 naming the file."""
    assert main(["run", str(tmp_path / "none.yaml")]) == 2
    assert f"{tmp_path / 'none.yaml'}: cannot read scenario" in capsys.readouterr().err


def test_default_out_dir_is_results_slash_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --out the results go to results/<scenario name>/ under the working directory."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(QUICK), "--until", "10min", "--quiet"]) == 0
    assert {p.name for p in (tmp_path / "results" / "quickstart").iterdir()} == FILES
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["quickstart"]


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim --version` prints the version."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("ikesim 0.")


SENTINEL = "the user's file\n"


def _run_refused(args: list[str], capsys: pytest.CaptureFixture[str], reason: str) -> None:
    """`ikesim run` with *args* exits 2 with one line on stderr naming *reason*, printing nothing else."""
    assert main(["run", str(QUICK), "--until", "10min", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("ikesim: error: refusing to write") and reason in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err and captured.out == ""


def test_out_dot_is_refused_and_the_working_directory_survives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim run X --out .` used to replace the cwd with the results; now: exit 2, every file still there."""
    (tmp_path / "sentinel.txt").write_text(SENTINEL)
    monkeypatch.chdir(tmp_path)
    _run_refused(["--out", "."], capsys, "it is the working directory or one of its parents")
    assert [p.name for p in tmp_path.iterdir()] == ["sentinel.txt"] and (tmp_path / "sentinel.txt").read_text() == SENTINEL


def test_out_dot_dot_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`--out ..` is refused: the parent directory and the cwd survive."""
    (tmp_path / "sentinel.txt").write_text(SENTINEL)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    _run_refused(["--out", ".."], capsys, "working directory or one of its parents")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "sentinel.txt"] and not list((tmp_path / "cwd").iterdir())


def test_out_into_a_foreign_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A non-empty directory without ikesim's marker (a home directory, say) is refused and left as it was."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "sentinel.txt").write_text(SENTINEL)
    _run_refused(["--out", str(home)], capsys, f"it is not empty and ikesim did not write it (no {MARKER})")
    assert [p.name for p in home.iterdir()] == ["sentinel.txt"] and [p.name for p in tmp_path.iterdir()] == ["home"]


def test_out_onto_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--out notes.txt` is refused; the file keeps its content."""
    note = tmp_path / "notes.txt"
    note.write_text(SENTINEL)
    _run_refused(["--out", str(note)], capsys, "it is a file, not a results directory")
    assert note.read_text() == SENTINEL and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_out_holding_the_scenario_is_refused_even_with_a_marker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The directory holding the scenario file is never replaced, even when it carries an ikesim marker."""
    scenario = tmp_path / "study" / "quickstart.yaml"
    scenario.parent.mkdir()
    scenario.write_text(QUICK.read_text())
    (scenario.parent / MARKER).write_text(json.dumps({"ikesim_version": "0.1.0", "kind": "run"}))
    assert main(["run", str(scenario), "--until", "10min", "--out", str(scenario.parent)]) == 2
    assert f"it contains {scenario}" in capsys.readouterr().err
    assert sorted(p.name for p in scenario.parent.iterdir()) == [MARKER, "quickstart.yaml"]
    assert scenario.read_text() == QUICK.read_text()


def test_an_earlier_ikesim_result_is_replaced_but_not_a_user_file_inside_it(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A result dir holding only what ikesim wrote is replaced whole; a file the user added since stops the run (exit 2,
    naming the file) and survives, with the earlier results."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "10min", "--out", str(out), "--quiet"]) == 0
    assert main(["run", str(QUICK), "--until", "20min", "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == FILES and json.loads((out / "summary.json").read_text())["duration"] == 1200.0
    (out / "notes.txt").write_text(SENTINEL)
    _run_refused(["--out", str(out)], capsys, "it holds notes.txt, which ikesim did not write")
    assert (out / "notes.txt").read_text() == SENTINEL and {p.name for p in out.iterdir()} == FILES | {"notes.txt"}
    assert json.loads((out / "summary.json").read_text())["duration"] == 1200.0


def test_a_copied_marker_does_not_expose_the_users_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The marker of a real result copied next to thesis.tex: the thesis is not one of its files, so exit 2, kept."""
    assert main(["run", str(QUICK), "--until", "10min", "--out", str(tmp_path / "res"), "--quiet"]) == 0
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "thesis.tex").write_text(SENTINEL)
    (fake / MARKER).write_bytes((tmp_path / "res" / MARKER).read_bytes())
    _run_refused(["--out", str(fake)], capsys, "it holds thesis.tex, which ikesim did not write")
    assert sorted(p.name for p in fake.iterdir()) == [MARKER, "thesis.tex"] and (fake / "thesis.tex").read_text() == SENTINEL


def test_a_legacy_results_directory_is_replaced(tmp_path: Path) -> None:
    """results/<name> from before the marker (a run's files, summary.json with ikesim_version) is replaced, not refused."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "10min", "--out", str(out), "--quiet"]) == 0
    (out / MARKER).unlink()
    assert main(["run", str(QUICK), "--until", "20min", "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == FILES and json.loads((out / "summary.json").read_text())["duration"] == 1200.0


def test_a_legacy_results_directory_with_a_users_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same with the user's file in it: exit 2 naming the file; everything stays."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "10min", "--out", str(out), "--quiet"]) == 0
    (out / MARKER).unlink()
    (out / "notes.txt").write_text(SENTINEL)
    _run_refused(["--out", str(out)], capsys, "it holds notes.txt, which ikesim did not write")
    assert {p.name for p in out.iterdir()} == FILES - {MARKER} | {"notes.txt"} and (out / "notes.txt").read_text() == SENTINEL


def test_plot_never_overwrites_a_png_ikesim_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim plot RES --out figs` where figs/timeline.png is the user's: exit 2 before drawing, the file kept.
    PNGs ikesim drew are listed in the marker: plotting again, and a later run over RES, replace them."""
    res = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "1h", "--out", str(res), "--quiet"]) == 0
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "timeline.png").write_text(SENTINEL)
    assert main(["plot", str(res), "--out", str(figs), "--quiet"]) == 2
    assert capsys.readouterr().err == (f"ikesim: error: refusing to overwrite {figs / 'timeline.png'}: ikesim did not write it "
                                       f"(not listed in {figs / MARKER})\n")
    assert [p.name for p in figs.iterdir()] == ["timeline.png"] and (figs / "timeline.png").read_text() == SENTINEL
    for _ in range(2):  # next to the results: drawn, then redrawn over its own PNGs
        assert main(["plot", str(res), "--quiet"]) == 0
    assert json.loads((res / MARKER).read_text())["files"] == sorted(FILES - {MARKER} | {"timeline.png", "rekey_latency.png",
                                                                                         "outages.png"})
    assert main(["run", str(QUICK), "--until", "10min", "--out", str(res), "--quiet"]) == 0
    assert {p.name for p in res.iterdir()} == FILES
    fresh = tmp_path / "fresh"
    for _ in range(2):  # a new figures folder gets a plots marker, so redrawing there works too
        assert main(["plot", str(res), "--out", str(fresh), "--quiet"]) == 0
    assert sorted(p.name for p in fresh.iterdir()) == [MARKER, "outages.png", "rekey_latency.png", "timeline.png"]


def test_no_progress_when_not_a_terminal_or_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """stderr is not a terminal (captured): no progress line at all; --quiet prints nothing anywhere."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["run", str(QUICK), "--until", "1h", "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "rekey" in captured.out and "events/s" not in captured.out
    assert main(["run", str(QUICK), "--until", "1h", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_progress_rendering_on_a_terminal() -> None:
    """On a terminal the line shows simulated time of the end, events per second and an ETA from the pace so far."""
    from io import StringIO

    from rich.console import Console

    from ikesim.cli import run_progress

    buf = StringIO()
    console = Console(force_terminal=True, file=buf, width=120)
    walls = iter([100.0, 110.0])  # start, then 10 s of wall time for a quarter of the run
    with run_progress(console, clock=lambda: next(walls)) as hook:
        assert hook is not None
        hook(1800.0, 7200.0, 5000)
    text = buf.getvalue()
    assert "0:30:00 / 2:00:00 simulated" in text and "500 events/s" in text and "ETA 0:00:30" in text
    with run_progress(Console(file=StringIO(), force_terminal=False)) as hook:
        assert hook is None
    with run_progress(console, enabled=False) as hook:
        assert hook is None


@pytest.mark.parametrize("command", [["run", "--until", "100000h", "--out", "{tmp}/res"],
                                     ["check", "--out", "{tmp}/chk"]])
def test_ctrl_c_exits_130_with_one_line_and_nothing_half_written(tmp_path: Path, command: list[str]) -> None:
    """SIGINT to a real `ikesim run`/`check`: exit 130, one line on stderr, no traceback, no temp directory."""
    import signal
    import subprocess
    import sys
    import time

    scenario = tmp_path / "long.yaml"
    scenario.write_text(QUICK.read_text().replace("duration: ", "duration: 100000h #"))
    argv = [command[0], str(scenario), *(a.format(tmp=tmp_path) for a in command[1:])]
    ready = "import sys, ikesim.cli, ikesim.runner, ikesim.check; print('ready', flush=True); "
    proc = subprocess.Popen([sys.executable, "-c", ready + f"sys.exit(ikesim.cli.main({argv!r}))"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(1.0)  # into the simulation
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert err.startswith("ikesim: interrupted, ") and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.yaml"]  # no results, no .tmp- directory


def test_calibrate_never_overwrites_a_file_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim calibrate --out notes.txt` exits 2 before measuring; the file keeps its content."""
    note = tmp_path / "notes.txt"
    note.write_text(SENTINEL)
    assert main(["calibrate", "--repeat", "10", "--out", str(note)]) == 2
    assert capsys.readouterr().err == f"ikesim: error: refusing to overwrite {note}: it is not a calibration table ikesim wrote\n"
    assert note.read_text() == SENTINEL and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("name", ["..", ".", "../elsewhere"])
def test_default_out_never_leaves_results_even_if_a_bad_name_got_through(name: str, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The loader rejects such names; should one get through, results/<name> is still refused (exit 2), results/ kept."""
    import ikesim.scenario.load as load

    real = load.load_scenario
    monkeypatch.setattr(load, "load_scenario", lambda *a, **k: real(*a, **k).model_copy(update={"name": name}))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "sentinel.txt").write_text(SENTINEL)
    assert main(["run", str(QUICK), "--until", "10min", "--quiet"]) == 2
    assert "is not a safe directory name inside results/" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["sentinel.txt"]


def test_run_writes_key_tables_0600_and_no_keys_leaves_them_out(tmp_path: Path) -> None:
    """The key tables are owner-only (0600); `--no-keys` writes every other result file and no key table."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "10min", "--out", str(out), "--quiet"]) == 0
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.name in ("ikev2_decryption_table", "esp_sa")} == {
        "ikev2_decryption_table": 0o600, "esp_sa": 0o600}
    assert main(["run", str(QUICK), "--until", "10min", "--out", str(out), "--quiet", "--no-keys"]) == 0
    assert {p.name for p in out.iterdir()} == FILES - {"ikev2_decryption_table", "esp_sa"}


def test_run_trace_summary_writes_only_the_summary(tmp_path: Path) -> None:
    """``--trace summary``: summary.json (with ``trace: summary``) and the marker listing it, nothing else; a full
    run over it afterwards replaces it (the marker lists what ikesim wrote)."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "2h", "--out", str(out), "--quiet", "--trace", "summary"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".ikesim-results.json", "summary.json"]
    assert json.loads((out / "summary.json").read_text())["trace"] == "summary"
    assert main(["run", str(QUICK), "--until", "2h", "--out", str(out), "--quiet"]) == 0
    assert {"events.parquet", "capture.pcap", "summary.json"} <= {p.name for p in out.iterdir()}


def test_scenario_trace_key_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad ``trace:`` value is a scenario error naming file, line and key (exit 2), before anything runs."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICK.read_text() + "trace: everything\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "trace" in err and not (tmp_path / "res").exists()


def test_run_prints_and_writes_the_handovers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run with moving interfaces prints the handovers table and writes handovers.parquet (one row per move)."""
    import pandas as pd

    out = tmp_path / "moves"
    scenario = ROOT / "scenarios" / "mobility" / "wifi-to-lte.yaml"
    assert main(["run", str(scenario), "--variant", "mobike-break-before-make", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "handovers (interfaces under a tunnel going down)" in printed and "restored by: mobike" in printed
    assert "3135.0 ms / 3135.0 ms / 3135.0 ms" in printed  # 3 s gap + path test and update on LTE (3 x 45 ms)
    h = pd.read_parquet(out / "handovers.parquet")
    assert list(h["method"]) == ["mobike"] and list(h["packets_lost"]) == [63]
    assert json.loads((out / "summary.json").read_text())["handovers"]["count"] == 1
