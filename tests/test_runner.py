"""``ikesim.runner``: a results directory replaces only an earlier ikesim result; every other place is refused untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ikesim.runner import MARKER, RUN_FILES, Legacy, OutputRefused, check_out_dir, child_dir, claim_dir, run, write_dir_atomically

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quickstart.yaml"


def _write(files: dict[str, str]):  # noqa: ANN202
    def write(d: Path) -> None:
        for name, text in files.items():
            (d / name).write_text(text)
    return write


def _sentinel(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    s = d / "sentinel.txt"
    s.write_text("the user's file\n")
    return s


def _refused(out: Path, match: str, **kw: object) -> None:
    with pytest.raises(OutputRefused, match=match):
        write_dir_atomically(out, _write({"new.txt": "new"}), **kw)  # type: ignore[arg-type]


def test_the_working_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--out .` (the cwd): refused, and every file in it survives."""
    sentinel = _sentinel(tmp_path)
    monkeypatch.chdir(tmp_path)
    _refused(Path("."), "it is the working directory or one of its parents")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentinel.txt"] and sentinel.read_text() == "the user's file\n"


def test_the_working_directory_is_refused_even_with_a_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ikesim marker in the cwd does not make it replaceable: replacing it would delete the cwd itself."""
    sentinel = _sentinel(tmp_path)
    (tmp_path / MARKER).write_text(json.dumps({"ikesim_version": "0.1.0", "kind": "run"}))
    monkeypatch.chdir(tmp_path)
    _refused(tmp_path, "working directory")
    assert sentinel.read_text() == "the user's file\n"


def test_a_parent_of_the_working_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--out ..`: refused; the parent and the cwd are untouched."""
    sentinel = _sentinel(tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    _refused(Path(".."), "working directory or one of its parents")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentinel.txt", "work"] and sentinel.is_file()


def test_a_non_empty_directory_ikesim_did_not_write_is_refused(tmp_path: Path) -> None:
    """A home directory, say: not empty, no marker, refused with the reason."""
    home = tmp_path / "home"
    sentinel = _sentinel(home)
    _refused(home, f"it is not empty and ikesim did not write it \\(no {MARKER}\\)")
    assert sorted(p.name for p in home.iterdir()) == ["sentinel.txt"] and sentinel.read_text() == "the user's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # no temp directory beside it


def test_a_file_is_refused(tmp_path: Path) -> None:
    """`--out notes.txt`: refused, the file keeps its content; so is a path below a file."""
    sentinel = _sentinel(tmp_path)
    _refused(sentinel, "it is a file, not a results directory")
    _refused(sentinel / "sub", "sentinel.txt is a file, not a directory")
    assert sentinel.read_text() == "the user's file\n" and sorted(p.name for p in tmp_path.iterdir()) == ["sentinel.txt"]


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    """A symlink to a directory is refused (replacing the link would not be what its owner meant)."""
    sentinel = _sentinel(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    _refused(tmp_path / "link", "symbolic link")
    assert (tmp_path / "link").is_symlink() and sentinel.is_file() and sorted(p.name for p in (tmp_path / "real").iterdir()) == [
        "sentinel.txt"]


def test_a_parent_of_the_scenario_file_is_refused_even_with_a_marker(tmp_path: Path) -> None:
    """The directory holding the scenario is never replaced, even if an ikesim marker was planted there."""
    scenario = tmp_path / "study" / "scenario.yaml"
    scenario.parent.mkdir()
    scenario.write_text("name: x\n")
    (scenario.parent / MARKER).write_text(json.dumps({"ikesim_version": "0.1.0", "kind": "run"}))
    _refused(scenario.parent, "it contains .*scenario.yaml", protect=(scenario,))
    _refused(tmp_path, "it contains .*scenario.yaml", protect=(scenario,))
    assert scenario.read_text() == "name: x\n"


def test_another_kind_of_ikesim_result_is_refused(tmp_path: Path) -> None:
    """A sweep directory is not replaced by a single run's results."""
    sweep = claim_dir(tmp_path / "sw", "sweep")
    sentinel = _sentinel(sweep)
    _refused(sweep, "it holds ikesim sweep results", kind="run")
    assert sentinel.is_file() and json.loads((sweep / MARKER).read_text())["kind"] == "sweep"


def test_an_empty_or_missing_directory_is_written_with_its_marker(tmp_path: Path) -> None:
    """Missing and empty directories are fine; the result carries the marker: ikesim version, kind, the files written."""
    from ikesim import __version__

    (tmp_path / "empty").mkdir()
    for name in ("empty", "missing/deeper"):
        write_dir_atomically(tmp_path / name, _write({"a.txt": "a"}))
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [MARKER, "a.txt"]
        assert json.loads((tmp_path / name / MARKER).read_text()) == {"files": ["a.txt"], "ikesim_version": __version__,
                                                                      "kind": "run"}


def test_an_earlier_ikesim_result_is_replaced(tmp_path: Path) -> None:
    """A directory ikesim wrote is replaced whole: the old files go, the new ones come, no temp dir is left."""
    out = tmp_path / "res"
    write_dir_atomically(out, _write({"old.txt": "old"}))
    write_dir_atomically(out, _write({"new.txt": "new"}))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_a_failed_write_leaves_the_old_results_intact(tmp_path: Path) -> None:
    """write() raising midway: the earlier result is untouched and no temporary directory remains."""
    out = tmp_path / "res"
    write_dir_atomically(out, _write({"old.txt": "old"}))

    def broken(d: Path) -> None:
        (d / "new.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_dir_atomically(out, broken)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "old.txt"] and (out / "old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


NOTEBOOK_LEGACY = Legacy("manifest.json", "notebook", frozenset({"manifest.json", "variants.csv"}))


def test_a_notebook_manifest_counts_as_the_marker(tmp_path: Path) -> None:
    """Studies written before the marker existed carry notebooks/run.py's manifest.json: replaceable if they hold
    nothing but the study's files; a user's file beside them, or a manifest that is not ikesim's, is refused."""
    study = tmp_path / "race"
    study.mkdir()
    (study / "manifest.json").write_text(json.dumps({"notebook": "notebooks/x.ipynb", "ikesim_version": "0.1.0"}))
    (study / "variants.csv").write_text("old")
    write_dir_atomically(study, _write({"variants.csv": "new"}), kind="notebook", legacy=NOTEBOOK_LEGACY)
    assert sorted(p.name for p in study.iterdir()) == [MARKER, "variants.csv"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text('{"name": "not ikesim"}')
    _refused(tmp_path / "other", "ikesim did not write it", kind="notebook", legacy=NOTEBOOK_LEGACY)
    old = tmp_path / "old"
    sentinel = _sentinel(old)
    (old / "manifest.json").write_text(json.dumps({"notebook": "notebooks/x.ipynb", "ikesim_version": "0.1.0"}))
    _refused(old, "it holds sentinel.txt, which ikesim did not write", kind="notebook", legacy=NOTEBOOK_LEGACY)
    assert sentinel.read_text() == "the user's file\n"


def test_a_users_file_added_to_an_earlier_result_is_refused_and_survives(tmp_path: Path) -> None:
    """The marker lists what ikesim wrote: a file the user added since (here or in a sub-directory) stops the replace."""
    out = tmp_path / "res"
    write_dir_atomically(out, _write({"old.txt": "old"}))
    sentinel = _sentinel(out)
    _refused(out, "it holds sentinel.txt, which ikesim did not write")
    (out / "sentinel.txt").unlink()
    (out / "sub").mkdir()
    nested = _sentinel(out / "sub")
    _refused(out, "it holds sub/, which ikesim did not write")
    assert nested.read_text() == "the user's file\n" and (out / "old.txt").read_text() == "old"
    assert sentinel.parent == out and sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_a_copied_marker_does_not_make_a_directory_replaceable(tmp_path: Path) -> None:
    """A marker copied from a result into a folder holding thesis.tex: the thesis is not in its list, so refused."""
    write_dir_atomically(tmp_path / "res", _write({"summary.json": "{}"}))
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "thesis.tex").write_text("\\documentclass{article}\n")
    (fake / MARKER).write_bytes((tmp_path / "res" / MARKER).read_bytes())
    _refused(fake, "it holds thesis.tex, which ikesim did not write")
    assert (fake / "thesis.tex").read_text() == "\\documentclass{article}\n"


def test_a_marker_from_before_the_file_list_is_a_legacy_run(tmp_path: Path) -> None:
    """A marker without "files" (the first version of the marker): only a run's own files may be replaced."""
    out = tmp_path / "res"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"ikesim_version": "0.1.0", "kind": "run"}))
    (out / "events.parquet").write_text("x")
    sentinel = _sentinel(out)
    _refused(out, "it holds sentinel.txt, which ikesim did not write")
    sentinel.unlink()
    write_dir_atomically(out, _write({"summary.json": "{}"}))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "summary.json"]


def _legacy_run(d: Path) -> None:
    d.mkdir()
    for name in sorted(RUN_FILES - {"summary.json"}):
        (d / name).write_bytes(b"old")
    (d / "summary.json").write_text(json.dumps({"ikesim_version": "0.0.9", "name": "quickstart"}))


def test_a_legacy_run_result_is_accepted(tmp_path: Path) -> None:
    """results/<name> from before the marker (summary.json with ikesim_version, only a run's files): replaced."""
    out = tmp_path / "res"
    _legacy_run(out)
    write_dir_atomically(out, _write({"summary.json": "{}"}))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "summary.json"]


@pytest.mark.parametrize("extra", ["notes.txt", "sub/"])
def test_a_legacy_run_result_with_a_users_file_is_refused(tmp_path: Path, extra: str) -> None:
    """The same with one more file (or directory) of the user's: refused, naming it; everything stays."""
    out = tmp_path / "res"
    _legacy_run(out)
    sentinel = _sentinel(out / "sub") if extra == "sub/" else _sentinel(out).rename(out / extra)
    _refused(out, f"it holds {extra}, which ikesim did not write")
    assert sentinel.read_text() == "the user's file\n" and len(list(out.iterdir())) == len(RUN_FILES) + 1


def test_a_summary_json_without_ikesim_version_is_not_legacy(tmp_path: Path) -> None:
    """A user's own summary.json (no ikesim_version) does not make the folder an ikesim result."""
    out = tmp_path / "res"
    out.mkdir()
    (out / "summary.json").write_text('{"mine": true}')
    _refused(out, "ikesim did not write it")
    assert (out / "summary.json").read_text() == '{"mine": true}'


@pytest.mark.parametrize("name", [".", "..", "", "a/b", "../escape", "/abs"])
def test_an_unsafe_name_never_leaves_the_base_directory(tmp_path: Path, name: str) -> None:
    """results/<name> must be a direct child of results/: '.', '..', separators and absolute paths are refused."""
    with pytest.raises(OutputRefused, match="is not a safe directory name inside"):
        child_dir(tmp_path / "results", name)


def test_a_plain_name_is_a_child_of_the_base(tmp_path: Path) -> None:
    """A name with brackets (a variant) is a direct child."""
    assert child_dir(tmp_path / "results", "race[client_first]") == tmp_path / "results" / "race[client_first]"


def test_check_out_dir_touches_nothing(tmp_path: Path) -> None:
    """Checking a missing directory creates nothing."""
    check_out_dir(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []


def test_progress_leaves_the_results_bit_identical() -> None:
    """A run with a progress hook gives the same summary and tables as one without; sim time only grows."""
    calls: list[tuple[float, float, int]] = []
    plain = run(QUICK, until="3h", seed=7)
    watched = run(QUICK, until="3h", seed=7, on_progress=lambda now, end, events: calls.append((now, end, events)))
    assert watched.summary == plain.summary
    for table in ("events", "exchanges", "sas", "packets"):
        pd.testing.assert_frame_equal(getattr(watched, table), getattr(plain, table))
    assert len(calls) == 1001 and calls[-1] == (10800.0, 10800.0, len(plain.events))
    times = [c[0] for c in calls]
    assert all(a < b for a, b in zip(times, times[1:], strict=False)) and times[0] == pytest.approx(10.8)
    assert {c[1] for c in calls} == {10800.0}
    assert all(a <= b for a, b in zip([c[2] for c in calls], [c[2] for c in calls][1:], strict=False))



def test_ctrl_c_while_writing_leaves_the_old_results_and_no_temp_dir(tmp_path: Path) -> None:
    """KeyboardInterrupt inside write(): the earlier result stays whole, no ``.res.tmp-`` directory is left."""
    out = tmp_path / "res"
    write_dir_atomically(out, _write({"old.txt": "old"}))

    def interrupted(d: Path) -> None:
        (d / "new.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dir_atomically(out, interrupted)
    assert [p.name for p in tmp_path.iterdir()] == ["res"] and (out / "old.txt").read_text() == "old"


def test_figures_drawn_into_a_legacy_run_keep_it_a_legacy_run(tmp_path: Path) -> None:
    """`ikesim plot` on a pre-marker run: its PNGs are a run's files, so no marker is added and the run stays replaceable."""
    from ikesim.runner import ikesim_wrote, register_files

    out = tmp_path / "res"
    _legacy_run(out)
    assert ikesim_wrote(out / "timeline.png")
    register_files(out, ["timeline.png"])
    assert not (out / MARKER).exists()
    write_dir_atomically(out, _write({"summary.json": "{}"}))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "summary.json"]


def test_a_users_file_named_like_the_marker_is_never_rewritten(tmp_path: Path) -> None:
    """A folder holding its own `.ikesim-results.json` (not ikesim's): registering figures leaves it as it was,
    and nothing in the folder counts as ikesim's."""
    from ikesim.runner import ikesim_wrote, register_files

    (tmp_path / MARKER).write_text("my own notes\n")
    (tmp_path / "timeline.png").write_text("mine")
    register_files(tmp_path, ["timeline.png"])
    assert (tmp_path / MARKER).read_text() == "my own notes\n" and not ikesim_wrote(tmp_path / "timeline.png")


def test_figures_in_a_users_folder_get_a_marker_of_their_own(tmp_path: Path) -> None:
    """Figures written beside the user's files: a `plots` marker lists only them, so they may be redrawn, and the
    folder is still never replaced as a result."""
    from ikesim.runner import ikesim_wrote, register_files

    sentinel = _sentinel(tmp_path / "figs")
    (tmp_path / "figs" / "timeline.png").write_text("drawn")
    register_files(tmp_path / "figs", ["timeline.png"])
    assert ikesim_wrote(tmp_path / "figs" / "timeline.png") and not ikesim_wrote(sentinel)
    assert json.loads((tmp_path / "figs" / MARKER).read_text())["files"] == ["timeline.png"]
    _refused(tmp_path / "figs", "it holds ikesim plots results")
    assert sentinel.read_text() == "the user's file\n"


def test_a_users_file_named_like_the_marker_in_a_legacy_run_is_refused(tmp_path: Path) -> None:
    """A legacy run holding a `.ikesim-results.json` that is no marker (the user's): it is not ikesim's, so refused."""
    out = tmp_path / "res"
    _legacy_run(out)
    (out / MARKER).write_text("my own notes\n")
    _refused(out, f"it holds {MARKER}, which ikesim did not write")
    assert (out / MARKER).read_text() == "my own notes\n"
