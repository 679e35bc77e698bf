"""The ``ikesim`` command: files written, exit codes, atomic results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ikesim.cli import main
from ikesim.metrics.results import Results

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quickstart.yaml"
FILES = {"events.parquet", "exchanges.parquet", "sas.parquet", "packets.parquet", "summary.json",
         "capture.pcap", "ikev2_decryption_table", "esp_sa"}


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

    def broken(self: Results, directory: str | Path) -> None:
        original(self, directory)
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
