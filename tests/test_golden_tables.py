"""Golden runs: every table, the capture, the key tables and the summary are bit-identical to a committed digest.

The digests (``tests/golden/tables.json``) were taken before the columnar trace and the lean message path
(issue 12) and must not move for a speed change. Regenerate after an intended behaviour change with
``python -m pytest tests/test_golden_tables.py --update-golden`` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ikesim.runner import run
from ikesim.scenario.load import load_scenario, load_scenarios

sys.path.insert(0, str(Path(__file__).parent))
from golden_tables import digests  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "tables.json"
RUNS: dict[str, tuple[str, str | None]] = {
    "quickstart": ("scenarios/quickstart.yaml", None),
    "certs-ecdsa": ("scenarios/certs-ecdsa.yaml", None),
    "nat-rebinding": ("scenarios/nat-rebinding.yaml", None),
    "libreswan-lossy": ("scenarios/libreswan-lossy.yaml", None),
    "fragmentation-rfc7383": ("scenarios/fragmentation-rfc7383.yaml", None),
    "fragmentation-off": ("scenarios/fragmentation-off.yaml", None),
    "nat-firewall-4500": ("scenarios/network/nat-firewall-4500.yaml", None),
    "pfs-modp": ("scenarios/pfs-modp.yaml", None),
    "fleet-tuning-20min": ("scenarios/fleet/fleet-tuning.yaml", "20min"),
    "nat-appears": ("scenarios/mobility/nat-appears.yaml", None),
}
"""Golden run name -> (scenario file, ``until`` override); every variant of scenarios/races/*.yaml is added."""


TRAFFIC_RUNS: list[tuple[str, str, str | None, str]] = [
    ("scenarios/traffic/esp-natt.yaml", "cbc", None, "packet"),
    ("scenarios/traffic/nat-rebind-loss.yaml", "reverse-keepalive-dpd", "30min", "packet"),
    ("scenarios/traffic/agreement-child-rekey.yaml", "early-lost", None, "packet"),
    ("scenarios/traffic/agreement-child-rekey.yaml", "early-lost", None, "fleet"),
    ("scenarios/mobility/wifi-to-lte.yaml", "mobike-break-before-make", None, "packet"),
    ("scenarios/mobility/wifi-to-lte.yaml", "reauth-make-before-break", None, "packet"),
    ("scenarios/mobility/strategies.yaml", "smart-make-before-break", "20min", "packet"),
    ("scenarios/mobility/strategies.yaml", "dpd-break-before-make", "20min", "packet"),
]
"""Runs with user traffic: (file, variant, ``until``, data-plane mode); named ``<scenario>[<variant>]`` (+ ``-fleet``)."""


def _traffic_case(path: str, variant: str, until: str | None, mode: str) -> tuple[str, object, str | None]:
    m = load_scenario(ROOT / path, variant=variant)
    if mode != m.data_plane.mode:
        m = m.model_copy(update={"data_plane": m.data_plane.model_copy(update={"mode": mode})})
    return (m.name + ("-fleet" if mode == "fleet" else ""), m, until)


def _cases() -> list[tuple[str, object, str | None]]:
    out: list[tuple[str, object, str | None]] = [(k, ROOT / p, u) for k, (p, u) in RUNS.items()]
    out += [_traffic_case(*c) for c in TRAFFIC_RUNS]
    for path in sorted((ROOT / "scenarios" / "races").glob("*.yaml")):
        for m in load_scenarios(path):
            out.append((m.name, m, None))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def golden(request: pytest.FixtureRequest) -> dict[str, object]:
    data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    yield data
    if request.config.getoption("--update-golden"):
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize(("name", "scenario", "until"), CASES, ids=[c[0] for c in CASES])
def test_golden_run_is_bit_identical(name: str, scenario: object, until: str | None, golden: dict[str, object],
                                     request: pytest.FixtureRequest) -> None:
    """Tables (values and dtype family), capture.pcap, key tables and summary.json equal the golden digests."""
    got = digests(run(scenario, until=until))  # type: ignore[arg-type]
    if request.config.getoption("--update-golden"):
        golden[name] = got
    assert name in golden, f"no golden digest for {name}: run with --update-golden"
    want = golden[name]
    assert isinstance(want, dict)
    diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not diff, f"{name}: {', '.join(diff)} differ from the golden run"
