"""What a fuzz run found: totals, outcomes by class and drop reason, escapes with where to replay them."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Escape", "FuzzStats", "normalize_reason"]

_REASON_DETAIL = re.compile(r"\d+|0x[0-9a-f]+|'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True, slots=True)
class Escape:
    """An exception that escaped ``receive_datagram``: where to replay it and what it was."""

    seed: int
    worker: int
    index: int
    target: str
    mutations: str
    exception: str
    traceback: str
    datagram: str


@dataclass
class FuzzStats:
    """Totals of a run (one worker's, or several merged)."""

    datagrams: int = 0
    sealed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    escapes: list[Escape] = field(default_factory=list)
    escapes_by_type: Counter[str] = field(default_factory=Counter)
    hangs: list[tuple[int, int, str, float]] = field(default_factory=list)
    unaccounted: list[tuple[int, int, str, str]] = field(default_factory=list)
    rekey_checks_passed: int = 0
    rekey_checks_failed: int = 0
    rekey_failures: list[str] = field(default_factory=list)
    diverged: Counter[str] = field(default_factory=Counter)
    rebuilt: Counter[str] = field(default_factory=Counter)
    reestablished: Counter[str] = field(default_factory=Counter)
    generation_fallbacks: int = 0
    generation_errors: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    seconds: float = 0.0

    def merge(self, other: FuzzStats) -> None:
        """Add *other*'s totals to these."""
        for name in ("datagrams", "sealed", "rekey_checks_passed", "rekey_checks_failed", "generation_fallbacks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("outcomes", "targets", "mutations", "escapes_by_type", "diverged", "rebuilt", "reestablished",
                     "generation_errors"):
            getattr(self, name).update(getattr(other, name))
        for name in ("escapes", "hangs", "unaccounted", "rekey_failures"):
            getattr(self, name).extend(getattr(other, name))
        self.slowest = max(self.slowest, other.slowest)
        self.seconds = max(self.seconds, other.seconds)

    def outcome_classes(self) -> Counter[str]:
        """Outcomes folded to processed / answered / dropped / unaccounted."""
        out: Counter[str] = Counter()
        for k, v in self.outcomes.items():
            out[k.split(":", 1)[0]] += v
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "datagrams": self.datagrams, "sealed": self.sealed,
            "sealed_share": self.sealed / self.datagrams if self.datagrams else 0.0,
            "outcome_classes": dict(self.outcome_classes()), "outcomes": dict(sorted(self.outcomes.items())),
            "targets": dict(sorted(self.targets.items())), "mutations": dict(sorted(self.mutations.items())),
            "escaped_exceptions": len(self.escapes), "escapes_by_type": dict(self.escapes_by_type),
            "escapes": [e.__dict__ if hasattr(e, "__dict__") else _escape_dict(e) for e in self.escapes[:50]],
            "hangs": len(self.hangs), "hang_samples": self.hangs[:20],
            "unaccounted": self.outcomes.get("unaccounted", 0), "unaccounted_samples": self.unaccounted[:20],
            "rekey_checks_passed": self.rekey_checks_passed, "rekey_checks_failed": self.rekey_checks_failed,
            "rekey_failures": self.rekey_failures[:20], "diverged": dict(self.diverged),
            "rebuilt": dict(self.rebuilt), "reestablished": dict(self.reestablished), "generation_fallbacks": self.generation_fallbacks,
            "generation_errors": dict(self.generation_errors),
            "slowest_datagram_s": self.slowest, "seconds": self.seconds,
            "datagrams_per_s": self.datagrams / self.seconds if self.seconds else 0.0,
        }


def _escape_dict(e: Escape) -> dict[str, Any]:
    return {f: getattr(e, f) for f in Escape.__slots__}


def normalize_reason(reason: str) -> str:
    """A drop reason with numbers and quoted details folded, so the table stays small."""
    return _REASON_DETAIL.sub("N", reason)[:80]
