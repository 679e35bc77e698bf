"""``ikesim sweep``: grid rows, backends agree row for row, resume after SIGKILL, and clear errors."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ikesim.cli import main
from ikesim.errors import ConfigError
from ikesim.sweep import SweepSpec, expand_grid, load_sweep_file, parse_param, run_sweep
from ikesim.sweep.rows import flatten

QUICKSTART = Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml"


def _spec(replications: int = 2, duration: str = "20min") -> SweepSpec:
    return SweepSpec(QUICKSTART, (parse_param(f"duration={duration}"), parse_param("connections.vpn.child.rekey_time=7min,10min")),
                     replications=replications)


def test_param_values_parse_like_yaml_scalars() -> None:
    """Values are YAML scalars; a flow list allows commas inside values."""
    assert parse_param("a.b=10s,5%,0.7,true,3").values == ("10s", "5%", 0.7, True, 3)
    assert parse_param('x=["a-b,c", d]').values == ("a-b,c", "d")
    with pytest.raises(ConfigError, match="seed"):
        parse_param("seed=1,2")
    with pytest.raises(ConfigError, match="repeated"):
        parse_param("x=1,1")


def test_flatten_joins_keys_and_keeps_lists_as_json() -> None:
    """Nested keys are joined with '.'; lists, empty dicts and dotted keys become JSON strings."""
    flat = flatten({"a": {"b": 1, "c": {"d": None}}, "l": ["x", 2], "e": {}, "f": {"1.2": 3}})
    assert flat == {"a.b": 1, "a.c.d": None, "l": '["x", 2]', "e": "{}", "f": '{"1.2": 3}'}


def test_grid_size_and_row_contents(tmp_path: Path) -> None:
    """Rows are params x replications in grid order; the seed is constant and run numbers go 0..R-1."""
    spec = _spec(replications=3)
    assert len(expand_grid(spec)) == 6
    table = run_sweep(spec, out=tmp_path, workers=1).table
    assert len(table) == 6
    assert list(table["run_id"]) == ["p0-r0", "p0-r1", "p0-r2", "p1-r0", "p1-r1", "p1-r2"]
    assert list(table["connections.vpn.child.rekey_time"]) == ["7min"] * 3 + ["10min"] * 3
    assert list(table["duration"]) == ["20min"] * 6
    assert list(table["summary.duration"]) == [1200.0] * 6
    assert list(table["run"]) == [0, 1, 2] * 2
    assert set(table["seed"]) == {1}
    assert (table["rekeys.child"] > 0).all()
    assert "rekey_latency.child.initiator.p95" in table.columns and "datagrams.by_fate.delivered" in table.columns
    assert json.loads(table["nodes"].iloc[0]) == ["client", "gateway"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sweep.parquet"), table)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [f"{r}.parquet" for r in table["run_id"]]
    assert "wall" not in " ".join(table.columns) and set(json.loads((tmp_path / "timings.json").read_text())) == set(table["run_id"])


def test_serial_and_two_processes_give_equal_tables(tmp_path: Path) -> None:
    """The local process pool gives exactly the serial table."""
    serial = run_sweep(_spec(), out=tmp_path / "serial", workers=1).table
    pool = run_sweep(_spec(), out=tmp_path / "pool", workers=2).table
    pd.testing.assert_frame_equal(serial, pool)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dask_cluster_of_separate_processes_gives_the_same_table(tmp_path: Path) -> None:
    """A scheduler and two workers started as separate `dask` CLI processes give the serial table."""
    pytest.importorskip("distributed")
    dask = shutil.which("dask") or str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        dask_table = run_sweep(_spec(), out=tmp_path / "dask", scheduler=address).table
    finally:
        for p in reversed(procs):  # workers first, then the scheduler
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    serial = run_sweep(_spec(), out=tmp_path / "serial", workers=1).table
    pd.testing.assert_frame_equal(serial, dask_table)


def test_resume_after_sigkill_equals_an_uninterrupted_sweep(tmp_path: Path) -> None:
    """Killed with SIGKILL mid-sweep, a rerun skips the finished parts and builds the uninterrupted table."""
    out = tmp_path / "killed"
    args = ["--param", "duration=1h", "--param", "connections.vpn.child.rekey_time=7min,10min,15min", "--replications", "4"]
    proc = subprocess.Popen([sys.executable, "-m", "ikesim.cli", "sweep", str(QUICKSTART), *args, "--workers", "1", "--quiet",
                             "--out", str(out)], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "parts").glob("*.parquet"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "sweep.parquet").exists()
    parts = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")}
    assert 2 <= len(parts) < 12
    assert main(["sweep", str(QUICKSTART), *args, "--workers", "2", "--quiet", "--out", str(out)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet") if p.name in parts} == parts
    assert not list((out / "parts").glob(".*"))
    spec = SweepSpec(QUICKSTART, tuple(parse_param(a) for a in args[1:4:2]), replications=4)
    again = run_sweep(spec, out=out, workers=1)
    assert again.ran == [] and len(again.skipped) == 12
    fresh = run_sweep(spec, out=tmp_path / "fresh", workers=1).table
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), fresh)


def test_bad_key_is_reported_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown key fails with exit status 2 and a message naming the key; nothing is written."""
    rc = main(["sweep", str(QUICKSTART), "--param", "connections.vpn.child.rnd_time=1s,2s", "--out", str(tmp_path / "x")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "connections.vpn.child.rnd_time" in err and "unknown key" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="links.5"):
        run_sweep(SweepSpec(QUICKSTART, (parse_param("links.5.loss=1%"),)), out=tmp_path / "y")
    with pytest.raises(ConfigError, match="connections.vpn.child.rekey_time"):
        run_sweep(SweepSpec(QUICKSTART, (parse_param("connections.vpn.child.rekey_time=abc"),)), out=tmp_path / "z")


def test_a_different_grid_in_the_same_dir_is_an_error(tmp_path: Path) -> None:
    """sweep.json pins the grid: another grid in the same DIR is refused with a clear message."""
    run_sweep(_spec(replications=1), out=tmp_path, workers=1)
    with pytest.raises(ConfigError, match="different sweep.*replications"):
        run_sweep(_spec(replications=2), out=tmp_path, workers=1)
    with pytest.raises(ConfigError, match="different sweep.*params"):
        run_sweep(_spec(replications=1, duration="25min"), out=tmp_path, workers=1)
    (tmp_path / "sweep.json").unlink()
    with pytest.raises(ConfigError, match="sweep.json is missing"):
        run_sweep(_spec(replications=1), out=tmp_path, workers=1)


def test_sweep_file_and_keep_runs(tmp_path: Path) -> None:
    """A YAML sweep file gives the same table as --param; --keep-runs writes each run's results."""
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"scenario: {QUICKSTART}\nparams:\n  duration: [20min]\n  connections.vpn.child.rekey_time: [7min, 10min]\n"
                     "replications: 2\nout: from-file\n")
    spec = load_sweep_file(sweep)
    assert spec.out == tmp_path / "from-file" and spec.replications == 2
    assert main(["sweep", str(sweep), "--workers", "1", "--quiet", "--keep-runs"]) == 0
    table = pd.read_parquet(tmp_path / "from-file" / "sweep.parquet")
    pd.testing.assert_frame_equal(table, run_sweep(_spec(), out=tmp_path / "cli", workers=1).table)
    for run_id in table["run_id"]:
        summary = json.loads((tmp_path / "from-file" / "runs" / run_id / "summary.json").read_text())
        assert summary["run"] == int(run_id[-1])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_names_itself_and_keeps_finished_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """A run that raises stops the sweep with RunFailed naming its run id; no table is written."""
    import ikesim.runner
    from ikesim.sweep.backends import RunFailed

    if workers > 1 and multiprocessing.get_start_method() != "fork":
        pytest.skip("the patched runner reaches worker processes only when they are forked")
    real = ikesim.runner.run

    def flaky(*args: object, **kwargs: object) -> object:
        if kwargs.get("run") == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ikesim.runner, "run", flaky)
    with pytest.raises(RunFailed, match=r"p\d-r1 .*RuntimeError: boom"):
        run_sweep(_spec(), out=tmp_path, workers=workers)
    assert not (tmp_path / "sweep.parquet").exists()
    assert not list((tmp_path / "parts").glob("*-r1.parquet"))


def test_eta_is_remaining_runs_times_mean_wall_per_worker() -> None:
    """ETA = remaining runs x mean wall time of finished runs / workers; unknown before a run finishes."""
    from ikesim.sweep.progress import clock, sweep_eta

    assert sweep_eta(10, [], 4) is None
    assert sweep_eta(40, [30.0, 60.0, 45.0], 4) == 450.0  # 40 x 45 s / 4: the case that showed 15 s
    assert sweep_eta(12, [12.0], 1) == 144.0
    assert sweep_eta(2, [60.0, 60.0], 4) == 60.0  # two runs left: two workers busy, one run's time
    assert sweep_eta(0, [5.0], 4) == 0.0
    assert (clock(None), clock(450.0), clock(3600.2), clock(0.0)) == ("-:--:--", "0:07:30", "1:00:01", "0:00:00")


def test_eta_shown_on_the_bar_updates_as_runs_finish() -> None:
    """The bar's ETA reads '-:--:--' until the first run ends, then follows finished work per worker."""
    from io import StringIO

    from rich.console import Console

    from ikesim.sweep.progress import sweep_progress

    buf = StringIO()
    with sweep_progress(total=10, done=2, enabled=True, console=Console(file=buf, force_terminal=True, width=150)) as finished:
        assert finished is not None
        finished(60.0, 2)  # 7 left x 60 s / 2 workers = 3:30
        finished(120.0, 2)  # 6 left x 90 s / 2 workers = 4:30
    text = buf.getvalue()
    assert "ETA -:--:--" in text and "ETA 0:04:30" in text and "4/10" in text
    with sweep_progress(total=10, done=0, enabled=False) as finished:
        assert finished is None


def test_sweep_into_a_foreign_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep --out that ikesim did not write (not empty, no marker) is refused: exit 2, the user's file survives."""
    foreign = tmp_path / "data"
    foreign.mkdir()
    (foreign / "sentinel.txt").write_text("keep me\n")
    assert main(["sweep", str(QUICKSTART), "--param", "duration=10min", "--workers", "1", "--quiet", "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ikesim: error: refusing to write results into") and "ikesim did not write it" in err
    assert [p.name for p in foreign.iterdir()] == ["sentinel.txt"]


def test_sweep_into_the_working_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim sweep --out .`: exit 2, nothing written into the cwd."""
    (tmp_path / "sentinel.txt").write_text("keep me\n")
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(QUICKSTART), "--param", "duration=10min", "--workers", "1", "--quiet", "--out", "."]) == 2
    assert "working directory" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["sentinel.txt"]


def test_a_sweep_directory_is_resumed_only_with_its_marker(tmp_path: Path) -> None:
    """The sweep directory carries the marker (kind sweep); a run's results directory is not resumed as a sweep."""
    from ikesim.runner import MARKER, OutputRefused, write_dir_atomically

    run_sweep(_spec(replications=1), out=tmp_path / "sw", workers=1)
    assert json.loads((tmp_path / "sw" / MARKER).read_text())["kind"] == "sweep"
    assert run_sweep(_spec(replications=1), out=tmp_path / "sw", workers=1).ran == []
    write_dir_atomically(tmp_path / "single", lambda d: (d / "summary.json").write_text("{}"))
    with pytest.raises(OutputRefused, match="holds ikesim run results"):
        run_sweep(_spec(replications=1), out=tmp_path / "single", workers=1)
    assert sorted(p.name for p in (tmp_path / "single").iterdir()) == [MARKER, "summary.json"]


@pytest.mark.parametrize("user_file", ["notes.txt", ".draft.tmp", "parts/notes.txt", "runs/p0-r0/notes.txt"])
def test_a_users_file_in_a_sweep_directory_stops_the_resume_and_survives(tmp_path: Path, user_file: str) -> None:
    """A sweep resumes only over what sweeps write: any other file (even one named like a temporary, which the old
    stale-file cleanup deleted) stops it with OutputRefused naming the file, and the file keeps its content."""
    from ikesim.runner import OutputRefused

    spec = SweepSpec(QUICKSTART, (parse_param("duration=10min"),), replications=1)
    out = tmp_path / "sw"
    run_sweep(spec, out=out, workers=1, keep_runs=True)
    (out / "parts" / "p0-r0.parquet").unlink()  # one run left to do: the resume would write
    sentinel = out / user_file
    sentinel.write_text("the user's file\n")
    with pytest.raises(OutputRefused, match=f"it holds {user_file}, which ikesim did not write"):
        run_sweep(spec, out=out, workers=1, keep_runs=True)
    assert sentinel.read_text() == "the user's file\n" and not (out / "parts" / "p0-r0.parquet").exists()


def test_a_sweep_resumes_with_everything_a_sweep_and_plot_wrote(tmp_path: Path) -> None:
    """Kept runs, timings, the table, a plotted sweep.png and leftover temporaries of an interruption are all the
    sweep's own: the resume runs, and removes only those temporaries."""
    spec = SweepSpec(QUICKSTART, (parse_param("duration=10min"),), replications=2)
    out = tmp_path / "sw"
    run_sweep(spec, out=out, workers=1, keep_runs=True)
    assert main(["plot", str(out), "--x", "duration", "--y", "rekeys.child", "--quiet"]) == 0
    (out / "parts" / "p0-r1.parquet").unlink()
    (out / "parts" / ".p0-r1.parquet.abc123.tmp").write_text("half")
    (out / ".sweep.parquet.abc123.tmp").write_text("half")
    outcome = run_sweep(spec, out=out, workers=1, keep_runs=True)
    assert outcome.ran == ["p0-r1"] and outcome.skipped == ["p0-r0"]
    assert sorted(p.name for p in out.iterdir()) == [".ikesim-results.json", "parts", "runs", "sweep.json", "sweep.parquet",
                                                      "sweep.png", "timings.json"]
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["p0-r0.parquet", "p0-r1.parquet"]


def test_ctrl_c_stops_a_parallel_sweep_cleanly(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) with 2 workers and --keep-runs:
    exit 130, one line on stderr, no traceback from any worker, no temporary file or directory left."""
    out = tmp_path / "sw"
    args = ["--param", "duration=12h", "--param", "connections.vpn.child.rekey_time=20min,30min,40min", "--replications", "8"]
    proc = subprocess.Popen([sys.executable, "-m", "ikesim.cli", "sweep", str(QUICKSTART), *args, "--workers", "2", "--quiet",
                             "--keep-runs", "--out", str(out)], start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "parts").glob("*.parquet"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 130
    assert err == "ikesim: interrupted, finished runs are kept: run the same command again to resume\n"
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name or ".old-" in p.name]
    assert leftovers == [] and not (out / "sweep.parquet").exists()
    for run_dir in (out / "runs").iterdir():  # every kept run is whole
        assert (run_dir / "summary.json").is_file()
