"""``ikesim.run``: load, build and run a scenario; write results atomically, never over files ikesim did not write.

Every directory ikesim writes carries a marker, ``.ikesim-results.json``: the ikesim version, the kind of result
(``run``, ``sweep``, ``notebook``; ``plots`` and ``executed`` for figures and executed notebooks) and the files
ikesim wrote there (relative paths). A directory may be replaced (or, for a sweep, resumed) only when it is
missing, empty, or holds that marker with the same kind and nothing else than the files the marker lists (a
sweep: also what a sweep writes, ``SWEEP_LAYOUT``). A result written before the marker existed is recognised by
its own files (``Legacy``). Anything else is refused with ``OutputRefused`` (a ConfigError: exit status 2),
naming the first file ikesim did not write, before a file is touched.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ikesim._version import __version__
from ikesim.errors import ConfigError
from ikesim.metrics.results import Results
from ikesim.scenario.build import build_simulation
from ikesim.scenario.durations import parse_duration
from ikesim.scenario.load import load_scenario
from ikesim.scenario.model import ScenarioModel

__all__ = ["LEGACY_RUN", "MARKER", "RUN_FILES", "Legacy", "OutputRefused", "ProgressHook", "check_out_dir", "child_dir",
           "claim_dir", "ikesim_wrote", "marked_files", "register_files", "run", "write_dir_atomically", "write_results_atomically"]

MARKER = ".ikesim-results.json"
"""The file that shows ikesim wrote a directory: ``{"ikesim_version": ..., "kind": ..., "files": [...]}``."""

Kind = Literal["run", "sweep", "notebook", "plots", "executed"]

RUN_FILES = frozenset({
    "events.parquet", "exchanges.parquet", "sas.parquet", "packets.parquet", "nat_paths.parquet", "processing.parquet",
    "cpu.parquet", "summary.json", "capture.pcap", "ikev2_decryption_table", "esp_sa",
    "traffic.parquet", "outages.parquet", "traffic_windows.parquet",  # a run with traffic (``traffic:``)
    "handovers.parquet",  # a run with moving interfaces
    "restarts.parquet",  # a run with a ``restart`` action
    "timeline.png", "rekey_latency.png", "cpu.png", "outages.png",  # `ikesim plot RESULTS` draws them next to them
})
"""Every file a run's results directory can hold: ``Results.write`` and the PNGs of ``ikesim plot``."""

SWEEP_LAYOUT = ("sweep.json", "sweep.parquet", "timings.json", ".sweep.json.*.tmp", ".sweep.parquet.*.tmp",
                ".timings.json.*.tmp", "parts/", "parts/*.parquet", "parts/.*.parquet.*.tmp", "runs/",
                "runs/.*.tmp-*/", "runs/.*.old-*/")
"""What ``ikesim sweep`` writes into its directory (``ikesim.sweep.storage``; a trailing ``/``: a directory, whole).
``runs/<run-id>/`` (``--keep-runs``) must each be a run result ikesim wrote."""

ProgressHook = Callable[[float, float, int], None]
"""Called during a run with (simulated now, simulated end, events recorded so far)."""


@dataclass(frozen=True, slots=True)
class Legacy:
    """A result ikesim wrote before the marker existed: *proof* is a JSON object with an ``ikesim_version`` (and
    *key*), and every other entry is one of *files* (regular files, directly in the directory)."""

    proof: str
    key: str
    files: frozenset[str]


LEGACY_RUN = Legacy("summary.json", "ikesim_version", RUN_FILES)
"""A run's results from before the marker: ``summary.json`` with ``ikesim_version``, and only files a run writes."""


class OutputRefused(ConfigError):
    """ikesim will not write into a directory: it holds files ikesim did not write, or it is a protected place."""


def run(
    scenario: str | Path | ScenarioModel, *, seed: int | None = None, until: float | str | None = None, run: int = 0,
    on_progress: ProgressHook | None = None, trace: str | None = None,
) -> Results:
    """Run a scenario (file, YAML text or model) and return its Results; ``seed`` overrides the file's.

    ``trace`` (``full``, ``exchanges`` or ``summary``) overrides the scenario's trace level.

    ``until`` (seconds or a duration such as ``"6h"``) overrides the scenario's duration. ``on_progress``
    is called as simulated time passes; the results are the same with or without it.
    """
    model = scenario if isinstance(scenario, ScenarioModel) else load_scenario(scenario)
    try:
        end = model.duration if until is None else parse_duration(until)
    except ValueError as exc:
        raise ConfigError(f"until: {exc}") from None
    if end <= 0:
        raise ConfigError(f"until: the run must last longer than 0 s (got {end:g})")
    sim = build_simulation(model, seed=seed, run=run, trace=trace)
    return sim.run(end) if on_progress is None else sim.run(end, on_progress=on_progress)


def child_dir(base: str | Path, name: str) -> Path:
    """``base/name``, refused unless it is a direct child of *base* (a name is no path: no ``/``, ``.`` or ``..``)."""
    base = Path(base)
    target = base / name
    if name in ("", ".", "..") or target.absolute().resolve().parent != base.absolute().resolve():
        raise OutputRefused(f"name {name!r} is not a safe directory name inside {base}/ "
                            "(no path separators, not '.' or '..')")
    return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _marker(d: Path) -> tuple[str, frozenset[str] | None] | None:
    """(kind, files listed) from *d*'s marker; files None for a marker written before they were listed."""
    data = _read_json(d / MARKER)
    if not (isinstance(data, dict) and isinstance(data.get("ikesim_version"), str) and isinstance(data.get("kind"), str)):
        return None
    files = data.get("files")
    if not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
        return data["kind"], None
    return data["kind"], frozenset(files)


def marked_files(d: str | Path) -> frozenset[str]:
    """The files (relative paths) *d*'s marker says ikesim wrote; empty without a marker."""
    found = _marker(Path(d))
    return frozenset() if found is None or found[1] is None else found[1]


def _is_legacy(d: Path, legacy: Legacy) -> bool:
    data = _read_json(d / legacy.proof)
    return isinstance(data, dict) and isinstance(data.get("ikesim_version"), str) and legacy.key in data


def _entries(d: Path) -> list[tuple[str, bool]]:
    """(relative posix path, is a real directory) of everything under *d*, sorted, without following symlinks."""
    out: list[tuple[str, bool]] = []

    def unreadable(exc: OSError) -> None:
        raise exc  # a folder that cannot be listed may hold anything: never treated as empty

    for top, dirs, files in os.walk(d, onerror=unreadable):
        rel = Path(top).relative_to(d)
        real_dirs = [x for x in dirs if not (Path(top) / x).is_symlink()]
        dirs[:] = sorted(real_dirs)
        out += [((rel / x).as_posix(), True) for x in real_dirs]
        out += [((rel / x).as_posix(), False) for x in files]
        out += [((rel / x).as_posix(), False) for x in dirs if x not in real_dirs]
    return sorted(out)


def _foreign(d: Path, kind: str, listed: frozenset[str]) -> str | None:
    """The first entry under *d* that ikesim did not write (not the marker, not *listed*, not in the *kind*'s layout)."""
    parents = {p.as_posix() for f in listed for p in Path(f).parents}
    skip: list[str] = []
    for rel, is_dir in _entries(d):
        if any(rel.startswith(s + "/") for s in skip):
            continue
        if rel == MARKER and _marker(d) is not None:
            continue
        if not is_dir and (rel in listed or fnmatch.fnmatchcase(rel, f"{MARKER}.*.tmp")):
            continue
        if is_dir and rel in parents:
            continue
        if kind == "sweep" and is_dir and rel.startswith("runs/") and "/" not in rel[5:] and not rel[5:].startswith("."):
            bad = _foreign_in_run(d / rel)
            if bad is not None:
                return f"{rel}/{bad}"
            skip.append(rel)
            continue
        if kind == "sweep":
            pattern = next((p for p in SWEEP_LAYOUT if p.endswith("/") == is_dir and fnmatch.fnmatchcase(rel, p.rstrip("/"))),
                           None)
            if pattern is not None:
                if is_dir and "*" in pattern:
                    skip.append(rel)  # the temporary directory of an interrupted --keep-runs write: left alone
                continue
        return rel + ("/" if is_dir else "")
    return None


def _foreign_in_run(d: Path) -> str | None:
    """The first entry of a sweep's ``runs/<run-id>/`` that ikesim did not write (``""``: the directory is not a run result)."""
    found = _marker(d)
    if found is None:
        return _foreign(d, "run", RUN_FILES) if _is_legacy(d, LEGACY_RUN) else ""
    if found[0] != "run":
        return ""
    return _foreign(d, "run", found[1] if found[1] is not None else RUN_FILES)


def check_out_dir(out: str | Path, kind: Kind = "run", *, protect: Iterable[str | Path] = (),
                  legacy: Legacy | None = None) -> Path:
    """Raise OutputRefused unless ikesim may (re)write *out*; return it as an absolute path.

    Allowed: a missing or empty directory, or an earlier ikesim result of the same *kind* holding only what
    ikesim wrote there (its marker's files; a sweep's layout), or a *legacy* result (default for runs:
    ``LEGACY_RUN``). Refused even with a marker: the working directory or one of its parents, and a parent of a
    *protect* file (the scenario). Refused always: a file, a symbolic link, any other non-empty directory.
    """
    path = Path(out).absolute()
    real = path.resolve()
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise OutputRefused(f"refusing to write results into {out}: it is the working directory or one of its parents")
    for p in protect:
        if real in Path(p).absolute().resolve().parents:
            raise OutputRefused(f"refusing to write results into {out}: it contains {p}")
    above = next(d for d in path.parents if d.exists())
    if not above.is_dir():
        raise OutputRefused(f"refusing to write results into {out}: {above} is a file, not a directory")
    if path.is_symlink():
        raise OutputRefused(f"refusing to write results into {out}: it is a symbolic link (give the directory it points to)")
    if not path.exists():
        return path
    if not path.is_dir():
        raise OutputRefused(f"refusing to write results into {out}: it is a file, not a results directory")
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as exc:
        raise OutputRefused(f"refusing to write results into {out}: {exc.strerror or exc}") from None
    if empty:
        return path
    legacy = legacy if legacy is not None else LEGACY_RUN if kind == "run" else None
    found = _marker(path)
    if found is None and legacy is not None and _is_legacy(path, legacy):
        found = (kind, None)
    if found is None:
        raise OutputRefused(f"refusing to write results into {out}: it is not empty and ikesim did not write it "
                            f"(no {MARKER}); choose another directory")
    if found[0] != kind:
        raise OutputRefused(f"refusing to write {kind} results into {out}: it holds ikesim {found[0]} results")
    listed = found[1] if found[1] is not None else legacy.files if legacy is not None else frozenset()
    try:
        foreign = _foreign(path, kind, listed)
    except OSError as exc:
        raise OutputRefused(f"refusing to write results into {out}: {exc.strerror or exc}: {exc.filename}") from None
    if foreign is not None:
        raise OutputRefused(f"refusing to write {kind} results into {out}: it holds {foreign}, which ikesim did not write "
                            "(move it away, or choose another directory)")
    return path


def _write_marker(d: Path, kind: Kind, files: Iterable[str] = ()) -> None:
    text = json.dumps({"files": sorted(set(files)), "ikesim_version": __version__, "kind": kind}, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f"{MARKER}.", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, d / MARKER)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ikesim_wrote(path: str | Path) -> bool:
    """True when the file *path* is one ikesim wrote: listed in its directory's marker, or a file of a legacy run."""
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    found = _marker(p.parent)
    if found is None:
        return p.name in RUN_FILES and _is_legacy(p.parent, LEGACY_RUN)
    listed = found[1] if found[1] is not None else RUN_FILES if found[0] == "run" else frozenset()
    return p.name in listed


def refuse_targets(d: Path, names: Iterable[str], what: str) -> str | None:
    """Why *names* may not be written into *d* (None if they may): *d* is a file, or one exists that ikesim did not write.

    *what* names the files in the message (``figures``, ``executed notebooks``).
    """
    if d.exists() and not d.is_dir():
        return f"refusing to write {what} into {d}: it is a file, not a directory"
    for name in names:
        target = d / name
        if (target.exists() or target.is_symlink()) and not ikesim_wrote(target):
            return f"refusing to overwrite {target}: ikesim did not write it (not listed in {d / MARKER})"
    return None


def register_files(d: str | Path, names: Iterable[str], kind: Kind = "plots") -> None:
    """Add *names* (relative to *d*) to *d*'s marker, keeping its kind; without one, a new *kind* marker listing only
    *names* (so ikesim may replace them later, and nothing else there). A legacy run gets no marker (it is known by
    its files), and a ``.ikesim-results.json`` that is not ikesim's marker is left as it is."""
    d = Path(d)
    found = _marker(d)
    if found is not None:
        listed = found[1] if found[1] is not None else RUN_FILES & {p.name for p in d.iterdir()} if found[0] == "run" else ()
        _write_marker(d, found[0], set(listed) | set(names))  # type: ignore[arg-type]
    elif not (d / MARKER).exists() and not (d / MARKER).is_symlink() and not _is_legacy(d, LEGACY_RUN):
        _write_marker(d, kind, names)


def claim_dir(out: str | Path, kind: Kind, *, protect: Iterable[str | Path] = ()) -> Path:
    """Check *out* (``check_out_dir``), create it if missing, and mark it: for a directory filled in place (a sweep)."""
    path = check_out_dir(out, kind, protect=protect)
    path.mkdir(parents=True, exist_ok=True)
    if _marker(path) is None:
        _write_marker(path, kind)
    return path


def write_results_atomically(results: Results, out: Path, *, protect: Iterable[str | Path] = (), keys: bool = True) -> None:
    """Write *results* into a temporary sibling directory, then rename it into place: no half-written results.

    ``keys=False``: no key tables (``Results.write``).
    """
    write_dir_atomically(out, lambda d: results.write(d, keys=keys), kind="run", protect=protect)


def write_dir_atomically(out: Path, write: Callable[[Path], object], *, kind: Kind = "run",
                         protect: Iterable[str | Path] = (), legacy: Legacy | None = None) -> None:
    """Call ``write(tmp)`` on a temporary sibling of *out*, mark it, then rename it into place, replacing an old *out*.

    *out* is checked first (``check_out_dir``, with *legacy*): OutputRefused, and nothing is touched, unless it is
    missing, empty or an earlier ikesim result of *kind* holding only files ikesim wrote. The marker lists every file
    ``write`` made. If ``write`` raises (or Ctrl-C), nothing is left behind and an old *out*
    is kept as it was.
    """
    protect = tuple(protect)
    out = check_out_dir(out, kind, protect=protect, legacy=legacy)
    created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except BaseException:
        _remove_empty(created)
        raise
    try:
        write(tmp)
        _write_marker(tmp, kind, (rel for rel, is_dir in _entries(tmp) if not is_dir and rel != MARKER))
        check_out_dir(out, kind, protect=protect, legacy=legacy)  # again: it may have changed while write() ran
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / out.name, out)
                shutil.rmtree(old, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def _remove_empty(dirs: list[Path]) -> None:
    """Remove the parent directories a failed write created (innermost first), if still empty."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return
