"""The race library (scenarios/races): every variant passes ``ikesim check``, a broken expectation fails it,
and the scripted faults and pins do what the files say."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ikesim.cli import main
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario, load_scenarios
from ikesim.sim.inspect import MessageInspector
from ikesim.wire.iana import ExchangeType
from ikesim.wire.payloads import NoncePayload

RACES = Path(__file__).resolve().parents[1] / "scenarios" / "races"


def test_race_library_passes_check_with_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ikesim check scenarios/races --junit report.xml` exits 0 with at least 40 scenarios (variants) passing."""
    report = tmp_path / "report.xml"
    assert main(["check", str(RACES), "--junit", str(report)]) == 0
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    total = int(suite.get("tests", "0"))
    assert total >= 40
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")
    assert f"{total} passed, 0 failed, 0 errors" in capsys.readouterr().out
    assert total == sum(len(load_scenarios(p)) for p in RACES.glob("*.yaml"))


def test_a_broken_race_expectation_fails_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Swapping which peer's CHILD_SA survives a simultaneous rekey fails all 8 variants: exit 1."""
    text = (RACES / "child-simultaneous.yaml").read_text()
    good = "survivors: {child: {${winner}: 1, ${loser}: 0}}"
    assert good in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(good, "survivors: {child: {${winner}: 0, ${loser}: 1}}"))
    report = tmp_path / "r.xml"
    assert main(["check", str(broken), "--junit", str(report)]) == 1
    out = capsys.readouterr().out
    assert "0 passed, 8 failed, 0 errors" in out
    assert "survivors.child" in out
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("8", "8")


def _run(name: str, variant: str):  # noqa: ANN202
    m = load_scenario(RACES / f"{name}.yaml", variant=variant)
    sim = build_simulation(m)
    return sim, sim.run(m.duration)


@pytest.mark.parametrize("variant", ["client-first", "gateway-first"])
def test_delete_overtakes_the_held_response(variant: str) -> None:
    """The held answer leaves only once A's Delete has been delivered, and arrives 20 ms after it."""
    _sim, r = _run("child-delete-overtakes-response", variant)
    fa = r.events[r.events["event"] == "FaultApplied"].set_index("rule")
    held, delete = int(fa.loc["late-answer", "datagram"]), int(fa.loc["a-deletes-old", "datagram"])
    p = r.packets.set_index("id")
    assert p.loc[held, "time_delivered"] == pytest.approx(p.loc[delete, "time_delivered"] + 0.02)
    assert p.loc[held, "time_sent"] < p.loc[delete, "time_sent"]


@pytest.mark.parametrize("variant,nonces", [
    ("client-first-lowest-ni_a", {("client", False): "00", ("client", True): "b0", ("gateway", False): "a0", ("gateway", True): "90"}),
    ("gateway-first-lowest-nr_a", {("gateway", False): "80", ("gateway", True): "00", ("client", False): "a0", ("client", True): "90"}),
])
def test_pinned_nonces_reach_the_wire(variant: str, nonces: dict[tuple[str, bool], str]) -> None:
    """Decrypted from the wire: each rekey request and answer carries the nonce pinned for it."""
    sim, r = _run("child-simultaneous", variant)
    inspector = MessageInspector({n: node.daemon for n, node in sim.nodes.items()})
    seen = {}
    for _id, _t, node, _src, _dst, data in sim.collector.datagrams_sent():
        h = inspector.header(data)
        if h is None or h.exchange is not ExchangeType.CREATE_CHILD_SA:
            continue
        msg = inspector.open(node, h)
        assert msg is not None
        nonce = msg.get(NoncePayload)
        assert nonce is not None and len(nonce.data) == 32
        seen[(node, h.response)] = nonce.data[:1].hex()
    assert seen == nonces
