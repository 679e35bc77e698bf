"""Fuzz harness for the sans-IO IKE daemon (not part of the protocol core).

``python -m ikesim.fuzz --count N --seed S --workers 2`` feeds N mutated datagrams, more than half of
them sealed with a pair's real SK keys, to established and half-open daemon pairs; see
``ikesim.fuzz.harness``. Everything is drawn from ``ikesim.rng.Rng``: a run is reproducible.
"""

from __future__ import annotations

from ikesim.fuzz.harness import Escape, Fuzzer, FuzzStats, run_fuzz
from ikesim.fuzz.mutate import mutate_bytes, mutate_payloads

__all__ = ["Escape", "Fuzzer", "FuzzStats", "run_fuzz", "mutate_bytes", "mutate_payloads"]
