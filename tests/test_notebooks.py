"""The research notebooks: committed without outputs, public API only, and each runs top to bottom at its small size."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PUBLIC = {"ikesim", "ikesim.plots", "ikesim.sweep", "ikesim.traffic_plots"}
"""What a notebook may import from ikesim: the package's API, the figures and the sweeps."""


def _runner():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("notebooks_run", NOTEBOOKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNNER = _runner()


def test_every_notebook_is_known_to_the_runner() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(RUNNER.STUDIES)
    assert len(RUNNER.STUDIES) >= 3


@pytest.mark.parametrize("name", sorted(RUNNER.STUDIES))
def test_committed_without_outputs_and_with_a_size_parameter(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    stale = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not stale, f"{name}: code cells {stale} carry outputs; commit notebooks cleared"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'SIZE = "small"' in params[0].source and "RESULTS = None" in params[0].source
    from papermill.translators import PythonTranslator

    assert {"SIZE", "RESULTS"} <= {p.name for p in PythonTranslator.inspect(params[0])}  # papermill reads every line


@pytest.mark.parametrize("name", sorted(RUNNER.STUDIES))
def test_only_the_public_api(name: str) -> None:
    """Every ikesim module a notebook imports is public, and so is every name it takes from one (``__all__``)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    modules, names = set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))  # IPython magics
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module)
                names |= {(node.module, a.name) for a in node.names}
    ours = {m for m in modules if m.split(".")[0] == "ikesim"}
    assert ours and ours <= PUBLIC, f"{name} imports {sorted(ours - PUBLIC)}"
    for module, attr in names:
        if module in PUBLIC:
            public = set(importlib.import_module(module).__all__) | {m.rpartition(".")[2] for m in PUBLIC}
            assert attr in public, f"{name}: from {module} import {attr} is not public"


FIGURES = {"01-lifetime-stagger-tuning.ipynb": 1, "02-rekey-race-timeline.ipynb": 2, "03-loss-mtu-nat.ipynb": 2,
           "04-data-plane.ipynb": 2, "05-mobility.ipynb": 1, "06-ha.ipynb": 3,
           "07-reconnect.ipynb": 2}


def _run(name: str, tmp_path: Path) -> Path:
    out = RUNNER.execute(name, size="small", results=tmp_path / "results", executed=tmp_path / "executed", workers=1)
    assert out == tmp_path / "results" / RUNNER.STUDIES[name]
    executed = nbformat.read(tmp_path / "executed" / name, as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= FIGURES[name], f"{name} showed {len(figures)} figures"  # drawn in the notebook itself
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["notebook"], manifest["size"]) == (f"notebooks/{name}", "small")
    assert not list((tmp_path / "results").glob(".*"))  # no partial directory left behind
    return out


def test_tuning_notebook_small(tmp_path: Path) -> None:
    out = _run("01-lifetime-stagger-tuning.ipynb", tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [".ikesim-results.json", "headline.md", "manifest.json", "recommendation.txt",
                                                     "runs.csv", "summary.csv", "tuning.png"]
    summary = pd.read_csv(out / "summary.csv").set_index(["gateway_fraction", "rand_time_s"])
    assert len(summary) == 12 and (summary["replications"] == 2).all()
    assert summary.loc[(0.8, 0.0), "collisions_per_10k_mean"] > 1000  # no jitter, no stagger: most rekeys collide
    assert (summary.loc[0.9, "collisions_per_10k_mean"] == 0).all()  # the gateway 6.6 min later never collides
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 24 and sorted(runs["run"].unique()) == [0, 1]
    recommendation = (out / "recommendation.txt").read_text()
    assert recommendation.startswith(("Smallest change: rand_time", "No setting")) and "Recommendation: rand_time" in recommendation
    assert (out / "tuning.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_race_notebook_small(tmp_path: Path) -> None:
    out = _run("02-rekey-race-timeline.ipynb", tmp_path)
    variants = pd.read_csv(out / "variants.csv").set_index("variant")
    assert variants["winner"].to_dict() == {"child-simultaneous[client-first-lowest-ni_a]": "gateway",
                                            "child-simultaneous[gateway-first-lowest-ni_b]": "gateway"}
    assert (variants["redundant SAs deleted"] == 2).all() and (variants["violations"] == 0).all()
    events = pd.read_csv(out / "race-events.csv")
    collided = events[events["event"] == "RekeyCollision"].set_index("node")
    assert collided["won"].to_dict() == {"client": False, "gateway": True}
    assert (out / "race-timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_path_effects_notebook_small(tmp_path: Path) -> None:
    out = _run("03-loss-mtu-nat.ipynb", tmp_path)
    t = pd.read_csv(out / "summary.csv").set_index("case")
    assert len(t) == 20 and (t["violations"] == 0).all()
    assert t.loc["0 %, strongswan", "retransmissions"] == 0 and t.loc["0 %, strongswan", "failed_pct"] == 0
    # the same losses, so the same lost first tries, cost 4 s with strongSwan and 0.5 s with libreswan
    assert t.loc["5 %, strongswan", "max_s"] > 4 > t.loc["5 %, libreswan", "max_s"] > 0.5
    # IKE_AUTH carries the 50 + 50 traffic selectors too: over a path that drops IP fragments no tunnel comes up
    assert t.loc["fragments dropped, IP fragmentation", "rekeys_triggered"] == 0
    assert t.loc["fragments dropped, IKE fragmentation", "failed_pct"] == 0
    assert t.loc["no keepalives", "nat_no_mapping"] > 0 and t.loc["no keepalives", "failed_pct"] > 0
    assert t.loc["keepalives every 20 s", "nat_no_mapping"] == 0 and t.loc["keepalives every 20 s", "failed_pct"] == 0
    assert {p.name for p in out.iterdir()} == {"loss.png", "mtu-nat.png", "summary.csv", "manifest.json", ".ikesim-results.json"}


def test_a_failed_notebook_leaves_the_previous_results(tmp_path: Path) -> None:
    old = tmp_path / "results" / "race"
    old.mkdir(parents=True)
    (old / "variants.csv").write_text("previous\n")
    (old / "manifest.json").write_text('{"notebook": "notebooks/02-rekey-race-timeline.ipynb", "ikesim_version": "0.1.0"}')
    with pytest.raises(Exception, match="SIZE must be 'small' or 'full'"):
        RUNNER.execute("02-rekey-race-timeline.ipynb", size="huge", results=tmp_path / "results", executed=tmp_path / "ex")
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["race"]
    assert (old / "variants.csv").read_text() == "previous\n"


def test_a_study_directory_ikesim_did_not_write_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """RESULTS/<study> holding the user's files (no marker, no notebook manifest): exit 2 before the notebook runs."""
    mine = tmp_path / "results" / "race"
    mine.mkdir(parents=True)
    (mine / "sentinel.txt").write_text("the user's file\n")
    assert RUNNER.main(["02-rekey-race-timeline.ipynb", "--results", str(tmp_path / "results"),
                        "--executed", str(tmp_path / "ex")]) == 2
    assert "refusing to write results into" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["sentinel.txt"] and not (tmp_path / "ex" / "02-rekey-race-timeline.ipynb").exists()


REFERENCE = NOTEBOOKS.parent / "results"


def test_committed_reference_results_are_full_size_and_in_the_readme() -> None:
    """results/ holds every study at full size, and README.md shows the tuning headline table and figure verbatim."""
    expected = {"tuning": {"headline.md", "recommendation.txt", "runs.csv", "summary.csv", "tuning.png"},
                "race": {"race-events.csv", "race-timeline.png", "variants.csv"},
                "path-effects": {"loss.png", "mtu-nat.png", "summary.csv"}}
    for study, files in expected.items():
        d = REFERENCE / study
        assert {p.name for p in d.iterdir()} == files | {"manifest.json", ".ikesim-results.json"}, study
        assert json.loads((d / "manifest.json").read_text())["size"] == "full"
    runs = pd.read_csv(REFERENCE / "tuning" / "runs.csv")
    assert len(runs) == 120 and sorted(runs["run"].unique()) == list(range(10))
    readme = (NOTEBOOKS.parent / "README.md").read_text()
    assert (REFERENCE / "tuning" / "headline.md").read_text().strip() in readme
    assert (REFERENCE / "tuning" / "recommendation.txt").read_text().strip() in readme
    assert "](results/tuning/tuning.png)" in readme


def test_committed_markers_list_every_file_of_their_study() -> None:
    """Each committed study's marker lists exactly the files in it, so `--results results` may replace it."""
    from ikesim.runner import MARKER, check_out_dir

    for study in ("tuning", "race", "path-effects"):
        d = REFERENCE / study
        marker = json.loads((d / MARKER).read_text())
        assert marker["kind"] == "notebook" and marker["files"] == sorted(p.name for p in d.iterdir() if p.name != MARKER)
        assert check_out_dir(d, "notebook") == d


def test_a_users_file_in_a_study_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A study ikesim wrote (marker) with the user's notes added: exit 2 naming the file before the notebook runs."""
    from ikesim.runner import MARKER

    study = tmp_path / "results" / "race"
    study.mkdir(parents=True)
    (study / "variants.csv").write_text("previous\n")
    (study / "manifest.json").write_text('{"notebook": "notebooks/02-rekey-race-timeline.ipynb", "ikesim_version": "0.1.0"}')
    (study / MARKER).write_text(json.dumps({"files": ["manifest.json", "variants.csv"], "ikesim_version": "0.1.0",
                                            "kind": "notebook"}))
    (study / "notes.txt").write_text("the user's file\n")
    assert RUNNER.main(["02-rekey-race-timeline.ipynb", "--results", str(tmp_path / "results"),
                        "--executed", str(tmp_path / "ex")]) == 2
    assert "it holds notes.txt, which ikesim did not write" in capsys.readouterr().err
    assert sorted(p.name for p in study.iterdir()) == [MARKER, "manifest.json", "notes.txt", "variants.csv"]
    assert (study / "notes.txt").read_text() == "the user's file\n" and (study / "variants.csv").read_text() == "previous\n"


def test_executed_notebooks_never_overwrite_the_committed_ones(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`--executed notebooks` (the committed notebooks' folder, by any spelling): exit 2 before running, nothing changed."""
    before = {p.name: p.read_bytes() for p in NOTEBOOKS.iterdir() if p.is_file()}
    monkeypatch.chdir(NOTEBOOKS.parent)
    for spelling in ("notebooks", "notebooks/../notebooks", str(NOTEBOOKS)):
        assert RUNNER.main(["02-rekey-race-timeline.ipynb", "--executed", spelling]) == 2
        assert capsys.readouterr().err == (f"notebooks/run.py: error: refusing to write executed notebooks into {spelling}: "
                                           "it holds the committed notebooks\n")
    assert {p.name: p.read_bytes() for p in NOTEBOOKS.iterdir() if p.is_file()} == before


def test_executed_notebooks_never_overwrite_a_file_ikesim_did_not_write(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`--executed DIR` where DIR/<notebook> is the user's: exit 2 before running, the file kept."""
    ex = tmp_path / "ex"
    ex.mkdir()
    mine = ex / "02-rekey-race-timeline.ipynb"
    mine.write_text("my annotated copy\n")
    assert RUNNER.main(["02-rekey-race-timeline.ipynb", "--executed", str(ex)]) == 2
    assert capsys.readouterr().err == (f"notebooks/run.py: error: refusing to overwrite {mine}: ikesim did not write it "
                                       f"(not listed in {ex / '.ikesim-results.json'})\n")
    assert mine.read_text() == "my annotated copy\n" and [p.name for p in ex.iterdir()] == [mine.name]


def test_executed_notebook_is_written_atomically_and_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The executed copy goes through a temporary file (none left, even when papermill fails) and into the marker, so
    running again replaces it."""
    import papermill as pm

    from ikesim.runner import MARKER

    def fake(src: Path, dst: Path, **kw: object) -> None:
        Path(dst).write_text(f"executed {Path(src).name}\n")

    monkeypatch.setattr(pm, "execute_notebook", fake)
    ex = tmp_path / "ex"
    for _ in range(2):
        assert RUNNER.main(["02-rekey-race-timeline.ipynb", "--executed", str(ex)]) == 0
    assert sorted(p.name for p in ex.iterdir()) == [MARKER, "02-rekey-race-timeline.ipynb"]
    assert json.loads((ex / MARKER).read_text())["files"] == ["02-rekey-race-timeline.ipynb"]

    def broken(src: Path, dst: Path, **kw: object) -> None:
        Path(dst).write_text("half")
        raise RuntimeError("kernel died")

    monkeypatch.setattr(pm, "execute_notebook", broken)
    with pytest.raises(RuntimeError, match="kernel died"):
        RUNNER.main(["02-rekey-race-timeline.ipynb", "--executed", str(ex)])
    assert sorted(p.name for p in ex.iterdir()) == [MARKER, "02-rekey-race-timeline.ipynb"]
    assert (ex / "02-rekey-race-timeline.ipynb").read_text() == "executed 02-rekey-race-timeline.ipynb\n"


def test_data_plane_notebook_small(tmp_path: Path) -> None:
    out = _run("04-data-plane.ipynb", tmp_path)
    rekey = pd.read_csv(out / "rekey-loss.csv").set_index(["policy", "link"])
    assert len(rekey) == 9 and (rekey["rekeys"] == 1).all()
    assert (rekey.xs("strongswan")["lost"] == 0).all()  # strongSwan's order loses nothing, whatever the link
    assert rekey.loc[("early", "lost-answer"), "loss_per_rekey_max"] == 400  # 4 s x 100 packets/s
    assert rekey.loc[("early", "fifo"), "violations"] > 0 and rekey.loc[("strongswan", "fifo"), "violations"] == 0
    nat = pd.read_csv(out / "nat-rebind.csv").set_index("variant")
    assert nat.loc["both-none", "lost"] == 2 and nat.loc["reverse-none", "never_restored"] == 1
    assert nat.loc["reverse-keepalive-dpd", "restore_max_s"] == 30.0  # the client's DPD, dpd_delay after its last ESP
    assert nat.loc["both-keepalive-dpd", "keepalives"] == 0 == nat.loc["both-keepalive-dpd", "dpd_exchanges"]
    b = pd.read_csv(out / "byte-lifetime.csv").set_index("variant")
    assert b.loc["no-jitter", "collisions"] == b.loc["no-jitter", "rekeys"] > 0 and b.loc["strongswan-jitter", "collisions"] == 0
    assert {p.name for p in out.iterdir()} == {"loss-per-rekey.png", "nat-outages.png", "rekey-loss.csv", "nat-rebind.csv",
                                               "byte-lifetime.csv", "manifest.json", ".ikesim-results.json"}


def test_mobility_notebook_small(tmp_path: Path) -> None:
    out = _run("05-mobility.ipynb", tmp_path)
    s = pd.read_csv(out / "summary.csv").set_index(["method", "move"])
    assert set(s.index.get_level_values("method")) == {"mobike", "reauth", "follow", "dpd", "smart"}
    mbb = s.xs("make-before-break", level="move")
    bbm = s.xs("break-before-make", level="move")
    # the order of the ways back: §2.23 follow < MOBIKE < reauthentication < smart << DPD
    order = mbb["restore_p50_s"].sort_values().index.tolist()
    assert order == ["follow", "mobike", "reauth", "smart", "dpd"]
    assert (bbm.drop("dpd")["restore_p50_s"] - mbb.drop("dpd")["restore_p50_s"] > 2.9).all()  # the 3 s gap
    h = pd.read_csv(out / "handovers.csv")
    assert (h["detection_s"][h["method"] != "none"].dropna() >= 0).all() and len(h) > 20
    assert {p.name for p in out.iterdir()} == {"handover-strategies.png", "summary.csv", "handovers.csv", "manifest.json",
                                               ".ikesim-results.json"}


def test_ha_notebook_small(tmp_path: Path) -> None:
    out = _run("06-ha.ipynb", tmp_path)
    s = pd.read_csv(out / "summary.csv")
    assert len(s) == 2 * 2 * 2 + 2  # stateless/stateful x 2 heartbeat timeouts x 2 DPD delays, and the larger fleet
    assert (s["unrestored"] == 0).all() and (s["tunnels"] == s["clients"]).all()
    stateful, stateless = s[s["failover"] == "stateful"], s[s["failover"] == "stateless"]
    # stateful: the survivor takes over after the heartbeat timeout, no client reconnects
    assert (stateful["methods"] == "sync:" + stateful["clients"].astype(str)).all()
    assert (stateful["ike_interruption_p50_s"] < stateful["heartbeat_timeout_s"]).all()
    # stateless: every client finds out by DPD and its give-up, then builds a new IKE_SA
    assert (stateless["methods"] == "reauth:" + stateless["clients"].astype(str)).all()
    assert (stateless["ike_interruption_p50_s"] > stateless["dpd_delay_s"] + 160).all()
    assert (out / "headline.md").read_text().startswith("With 50 clients")
    assert {p.name for p in out.iterdir()} == RUNNER.STUDY_FILES["ha"] | {"manifest.json", ".ikesim-results.json"}


def test_reconnect_notebook_small(tmp_path: Path) -> None:
    out = _run("07-reconnect.ipynb", tmp_path)
    m = pd.read_csv(out / "methods.csv").set_index("method")
    assert list(m.index) == ["mobike", "resume", "psk", "ecdsa", "eap-mschapv2", "eap-tls-fast", "eap-tls"]
    assert (m["clients"] == 20).all() and (m["handovers"] == 22).all() and (m["unrestored"] == 0).all()
    assert m["ike_auth_per_reconnect"].to_dict() == {"mobike": 0, "resume": 1, "psk": 1, "ecdsa": 1, "eap-mschapv2": 4,
                                                     "eap-tls-fast": 4, "eap-tls": 9}
    cpu = m["cpu_per_reconnect_ms"]
    assert cpu["mobike"] < cpu["resume"] < cpu["psk"] < cpu["ecdsa"] < cpu["eap-mschapv2"] < cpu["eap-tls"]
    assert m.loc["eap-tls", "restore_p50_s"] > m.loc["eap-mschapv2", "restore_p50_s"] > m.loc["psk", "restore_p50_s"]
    r = pd.read_csv(out / "restart.csv").set_index("restart")
    assert (r["clients"] == 20).all() and (r["restored"] == 20).all()
    assert (r.loc["resume", "resumed"], r.loc["full", "resumed"]) == (20, 0)
    assert r.loc["resume", "cpu_per_reconnect_ms"] < r.loc["full", "cpu_per_reconnect_ms"]
    assert len(pd.read_csv(out / "restart-tunnels.csv")) == 40
    assert (out / "headline.md").read_text().startswith("Per reconnect after a Wi-Fi -> LTE move (20 clients")
    assert {p.name for p in out.iterdir()} == RUNNER.STUDY_FILES["reconnect"] | {"manifest.json", ".ikesim-results.json"}
