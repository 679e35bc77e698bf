"""The daemon fuzz harness (ikesim.fuzz): hostile datagrams never escape, every one is accounted for."""

from __future__ import annotations

import json
import pathlib
import time
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ikesim.fuzz import harness
from ikesim.fuzz.__main__ import main
from ikesim.fuzz.harness import Fuzzer, FuzzStats, run_fuzz
from ikesim.fuzz.mutate import mutate_bytes, mutate_payloads
from ikesim.fuzz.pairs import capture_templates
from ikesim.fuzz.workers import fuzz
from ikesim.ike import daemon as daemon_module
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.wire.payloads import UnknownPayload

TEMPLATES = capture_templates(Rng(0, "templates"))
"""One reference run's messages, shared (they are immutable) so each example builds only its pairs."""


def _table(stats: FuzzStats) -> tuple[object, ...]:
    return (stats.datagrams, stats.sealed, sorted(stats.outcomes.items()), sorted(stats.targets.items()),
            sorted(stats.mutations.items()), stats.rekey_checks_passed, stats.rekey_checks_failed,
            sorted(stats.reestablished.items()), sorted(stats.diverged.items()))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), start=st.integers(0, 10**9), count=st.integers(1, 6))
@example(seed=27849, start=27844, count=6)  # a rekey of a CHILD_SA narrowed to OPAQUE ports (RFC 7296 §3.13.1)
def test_no_exception_escapes_and_each_datagram_has_one_outcome(seed: int, start: int, count: int) -> None:
    """Any stream of fuzzed datagrams: nothing escapes receive_datagram; each is processed, answered or dropped."""
    fz = Fuzzer(seed, templates=TEMPLATES)
    stats = fz.run(count, start=start)
    assert stats.escapes == [] and stats.escapes_by_type == Counter()
    assert stats.hangs == []
    assert stats.datagrams == count == sum(stats.outcomes.values())
    assert set(stats.outcome_classes()) <= {"processed", "answered", "dropped"}
    assert stats.unaccounted == []
    assert stats.rekey_checks_failed == 0 and stats.rekey_checks_passed == 1


def test_fixed_seed_run_accounts_for_every_datagram() -> None:
    """Every datagram of a 1,000-datagram run is processed, answered or dropped with a reason.

    Duplicate SKF fragments, fragments with fewer Total Fragments than seen and non-first fragments of a
    retransmitted request are dropped with their RFC 7383 reason, not ignored silently.
    """
    stats = Fuzzer(11, templates=TEMPLATES).run(1000)
    assert stats.outcomes["unaccounted"] == 0 and stats.escapes == []
    assert stats.outcome_classes()["processed"] + stats.outcome_classes()["answered"] \
        + stats.outcome_classes()["dropped"] == 1000
    reasons = {k for k in stats.outcomes if "SKF" in k}
    assert "dropped:duplicate SKF fragment N of N (RFC N §N.N)" in reasons
    assert "dropped:non-first SKF fragment of a retransmitted request (RFC N §N.N.N)" in reasons


def test_same_seed_same_outcome_table() -> None:
    """Two runs with one seed feed the same datagrams and produce the same outcome table."""
    a = Fuzzer(5, templates=TEMPLATES).run(700)
    b = Fuzzer(5, templates=TEMPLATES).run(700)
    assert _table(a) == _table(b)
    assert _table(a) != _table(Fuzzer(6, templates=TEMPLATES).run(700))


def test_run_covers_the_mutations_the_issue_lists() -> None:
    """A 1,000-datagram run: over half sealed with real keys, every kind of mutation used, the pair still rekeys."""
    stats = Fuzzer(3, templates=TEMPLATES).run(1000)
    assert stats.datagrams == 1000
    assert stats.sealed / stats.datagrams > 0.5
    used = set(stats.mutations)
    assert {"truncate", "truncate_fix_length", "bit_flip", "length_field", "header_byte", "splice"} <= used
    assert {"duplicate_payload", "unknown_payload", "unknown_critical_payload", "critical_bit", "drop_payload"} <= used
    assert {"mid_retransmit", "mid_past", "mid_future", "mid_far", "wrong_spi_i", "wrong_spi_r"} <= used
    assert {"skf_in_order", "skf_duplicate", "skf_mismatched_total", "skf_total_zero", "skf_total_huge",
            "skf_number_zero", "skf_number_above_total"} <= used
    assert {"ts_start_after_end", "sa_spi_size", "nonce_size", "delete_many"} <= used
    assert set(stats.targets) == {"request", "response", "fragment", "init_request", "init_response",
                                  "auth_request", "auth_response"}
    assert stats.outcomes["dropped:integrity check failed"] > 0  # byte mutations of sealed datagrams
    assert stats.outcome_classes()["answered"] > 0 and stats.outcome_classes()["processed"] > 0
    assert (stats.rekey_checks_passed, stats.rekey_checks_failed) == (1, 0)


def test_escaped_exception_is_recorded_and_the_run_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception out of receive_datagram is reported with seed, index and traceback; later datagrams still run."""
    real = daemon_module.verify_payloads

    def boom(payloads: tuple[object, ...]) -> None:
        if any(type(p) is UnknownPayload for p in payloads):  # only a mutant carries one
            raise KeyError("injected")
        real(payloads)  # type: ignore[arg-type]

    monkeypatch.setattr(daemon_module, "verify_payloads", boom)
    stats = Fuzzer(9, templates=TEMPLATES).run(300)
    assert stats.datagrams == 300 == sum(stats.outcomes.values())
    assert set(stats.escapes_by_type) == {"KeyError"}
    n = stats.escapes_by_type["KeyError"]
    assert n == stats.outcomes["escaped:KeyError"] == len(stats.escapes) > 0
    first = stats.escapes[0]
    assert (first.seed, first.worker, first.exception) == (9, 0, "KeyError: 'injected'")
    assert "in boom" in first.traceback and first.datagram
    assert sum(v for k, v in stats.rebuilt.items() if k.endswith(":escape")) == n
    assert sum(v for k, v in stats.outcomes.items() if not k.startswith("escaped:")) == 300 - n
    assert stats.rekey_checks_failed == 0


def test_slow_datagram_is_reported_as_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    """A datagram whose processing exceeds the wall-clock budget is flagged with its index."""
    real = IkeDaemon.receive_datagram
    slow = {4}
    fz = Fuzzer(2, templates=TEMPLATES)
    calls = []

    def timed(self: IkeDaemon, *args: object) -> None:
        calls.append(1)
        if len(calls) - 1 in slow:
            time.sleep(0.05)
        real(self, *args)  # type: ignore[arg-type]

    fz.hang_seconds = 0.04
    monkeypatch.setattr(IkeDaemon, "receive_datagram", timed)
    stats = fz.run(8)
    assert [(w, i) for w, i, _t, _s in stats.hangs] == [(0, 4)]


def test_mutators_are_pure_functions_of_the_rng() -> None:
    """The same Rng stream gives the same mutant, so a finding replays from (seed, index)."""
    data = bytes(range(60))
    assert mutate_bytes(Rng(4, "x"), data) == mutate_bytes(Rng(4, "x"), data)
    payloads = TEMPLATES[4].payloads
    assert mutate_payloads(Rng(4, "y"), payloads, payloads) == mutate_payloads(Rng(4, "y"), payloads, payloads)


def test_two_workers_are_the_two_single_worker_streams() -> None:
    """--workers 2 splits the count and gives worker w the stream (seed, w)."""
    both = fuzz(300, 8, workers=2, batch=150)
    one, two = run_fuzz(150, 8, 0, batch=150), run_fuzz(150, 8, 1, batch=150)
    assert both.datagrams == 300
    assert both.outcomes == one.outcomes + two.outcomes
    assert both.targets == one.targets + two.targets


def test_cli_writes_json_and_refuses_a_foreign_file(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI prints the totals and writes them as JSON; it never overwrites a file that is not its report."""
    out = tmp_path / "fuzz.json"
    code = main(["--count", "250", "--seed", "1", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["datagrams"] == 250 and report["written_by"] == "ikesim-fuzz-report"
    assert (code, report["unaccounted"], report["escaped_exceptions"], report["hangs"]) == (0, 0, 0, 0)
    assert "datagrams           250" in capsys.readouterr().out
    assert main(["--count", "10", "--seed", "1", "--json", str(out)]) == 0  # its own report: replaced
    assert json.loads(out.read_text())["datagrams"] == 10
    sentinel = tmp_path / "notes.json"
    sentinel.write_text('{"mine": true}')
    assert main(["--count", "10", "--json", str(sentinel)]) == 2
    assert sentinel.read_text() == '{"mine": true}'


def test_hang_budget_default_is_two_seconds() -> None:
    """The per-datagram budget the closing note's "0 hangs" refers to."""
    assert harness.HANG_SECONDS == 2.0
