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


def test_failed_write_leaves_previous_results_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing fails midway, no half-written directory remains and older results are untouched."""
    out = tmp_path / "res"
    assert main(["run", str(QUICK), "--until", "1h", "--out", str(out), "--quiet"]) == 0
    before = (out / "summary.json").read_bytes()
    original = Results.write

    def broken(self: Results, directory: str | Path) -> None:
        original(self, directory)
        (Path(directory) / "events.parquet").unlink()
        raise OSError("disk full")

    monkeypatch.setattr(Results, "write", broken)
    with pytest.raises(OSError, match="disk full"):
        main(["run", str(QUICK), "--until", "2h", "--out", str(out), "--quiet"])
    assert (out / "summary.json").read_bytes() == before and {p.name for p in out.iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim --version` prints the version."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("ikesim 0.")
