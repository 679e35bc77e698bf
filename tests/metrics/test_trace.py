"""The columnar trace: levels record less and agree with ``full``; spooling to Parquet changes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ikesim.errors import TraceNotRecorded
from ikesim.metrics.trace import Trace
from ikesim.runner import run
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario, load_scenarios

ROOT = Path(__file__).resolve().parents[2]
NAT = ROOT / "scenarios" / "nat-rebinding.yaml"
RACE = ROOT / "scenarios" / "races" / "child-simultaneous-lost-response.yaml"


def _without_trace_key(summary: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in summary.items() if k != "trace"}


@pytest.mark.parametrize("level", ["exchanges", "summary"])
def test_lower_levels_give_the_same_summary_and_exchanges(level: str) -> None:
    """``exchanges`` and ``summary`` compute the same summary and exchanges table as ``full``; the summary says the level."""
    full, low = run(NAT), run(NAT, trace=level)
    assert low.summary["trace"] == level and "trace" not in full.summary
    assert _without_trace_key(low.summary) == full.summary
    pd.testing.assert_frame_equal(low.exchanges, full.exchanges)
    pd.testing.assert_frame_equal(low.rekey_latencies, full.rekey_latencies)
    pd.testing.assert_frame_equal(low.nat_paths, full.nat_paths)
    with pytest.raises(TraceNotRecorded, match=f"events table is not recorded with trace: {level}"):
        _ = low.events
    with pytest.raises(TraceNotRecorded, match="packets"):
        _ = low.packets
    if level == "exchanges":
        pd.testing.assert_frame_equal(low.sas, full.sas)
    else:
        with pytest.raises(TraceNotRecorded, match="sas table .* needs trace: exchanges"):
            _ = low.sas


@pytest.mark.parametrize(("level", "files"), [
    ("exchanges", {"exchanges.parquet", "sas.parquet", "nat_paths.parquet", "summary.json"}),
    ("summary", {"nat_paths.parquet", "summary.json"}),
])
def test_lower_levels_write_only_their_files(level: str, files: set[str], tmp_path: Path) -> None:
    """No events, packets, capture or key tables below ``full``; ``written_files`` names exactly what is written."""
    r = run(NAT, trace=level)
    r.write(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == files == set(r.written_files())


def test_spooled_trace_gives_identical_tables(tmp_path: Path) -> None:
    """Tiny batches and row groups (every table and key table spilled to files) give the same results as in memory."""
    model = load_scenarios(RACE)[0]
    mem = run(model)
    small = Trace("full", batch=3, rows_per_group=2)
    sim = build_simulation(model, trace=small)
    spooled = sim.run(model.duration)
    spill = sorted(p.name for p in small.dir.path.iterdir())
    assert any(n.startswith("events-") for n in spill) and any(n.startswith("exchanges-") for n in spill)
    assert any(n.startswith("datagrams-") for n in spill)
    for name in ("events", "exchanges", "sas", "packets", "rekey_latencies", "collisions"):
        pd.testing.assert_frame_equal(getattr(spooled, name), getattr(mem, name), check_exact=True)
    assert spooled.summary == mem.summary
    assert any(n in ("esp_sa", "ikev2_decryption_table") for n in spill)
    (tmp_path / "mem").mkdir()
    (tmp_path / "spooled").mkdir()
    mem.write(tmp_path / "mem")
    spooled.write(tmp_path / "spooled")
    for name in ("capture.pcap", "ikev2_decryption_table", "esp_sa", "summary.json"):
        assert (tmp_path / "spooled" / name).read_bytes() == (tmp_path / "mem" / name).read_bytes(), name


def test_spool_directory_is_private_and_removed() -> None:
    """The spool is a 0700 directory, and closing the trace removes it with everything in it."""
    t = Trace("full", batch=1, rows_per_group=1)
    model = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    sim = build_simulation(model, trace=t)
    sim.run(3600.0)
    d = t.dir.path
    assert d.stat().st_mode & 0o777 == 0o700 and any(d.iterdir())
    t.close()
    assert not d.exists()


def test_unknown_trace_level_is_refused() -> None:
    """A typo in the level is a ValueError naming the choices, not a silent full trace."""
    with pytest.raises(ValueError, match="full, exchanges, summary"):
        Trace("everything")  # type: ignore[arg-type]


@pytest.mark.parametrize("batch", [32_768, 5])
def test_streamed_files_read_back_as_the_tables(batch: int, tmp_path: Path) -> None:
    """events.parquet and packets.parquet, written from the spool one row group at a time, read back as the tables."""
    model = load_scenario(NAT)
    r = build_simulation(model, trace=Trace("full", batch=batch, rows_per_group=max(2, batch))).run(model.duration)
    r.write(tmp_path)
    for name in ("events", "packets"):
        back = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, getattr(r, name), check_exact=True)


def test_rekey_latency_join_keeps_first_reports_and_trigger_order() -> None:
    """The first start per SA and node counts, the first completion per old SPI and side, rows in trigger order."""
    import pyarrow as pa

    from ikesim.metrics.builders import _REKEY_DONE, _REKEY_STARTED
    from ikesim.metrics.rekeys import rekey_latency_table

    started = pa.table([["a", "b", "a"], ["child"] * 3, [b"\x01", b"\x02", b"\x01"], [1.0, 2.0, 9.0],
                        [b"\x11", b"\x12", b"\x11"]], schema=_REKEY_STARTED)
    empty = rekey_latency_table(started, _REKEY_DONE.empty_table())
    assert empty["old_spi"].tolist() == ["01", "02"] and empty["initiator_latency"].tolist() == [None, None]
    done = pa.table([["child"] * 4, [b"\x01", b"\x01", b"\x11", b"\x02"], [True, True, False, True],
                     [1.5, 7.0, 1.25, 2.5], ["a", "a", "b", "a"]], schema=_REKEY_DONE)
    t = rekey_latency_table(started, done)
    assert t["initiator_latency"].tolist()[0] == 0.5  # the first completion, not the one at 7.0
    assert t["responder_latency"].tolist()[0] == 0.25
    assert pd.isna(t["initiator_latency"].tolist()[1])  # completed by another node: no initiator latency
