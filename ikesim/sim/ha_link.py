"""The sync link of an HA cluster: heartbeats and state updates between members (strongSwan ha plugin, UDP 4510).

Each direction is a FIFO with its own stream: a message waits ``lag`` seconds in the sender's queue (the ha
plugin pushes from a job queue), then is serialized at ``bandwidth`` bit/s behind the ones before it, then
propagates ``delay`` seconds. It is lost with probability ``loss``, while the link is partitioned, if the sender
crashed before it left the queue (``drop_queued``), or if the receiver is down when it arrives. Nothing is
retransmitted: strongSwan's ha plugin sends plain UDP and repairs with a resync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import simpy

    from ikesim.rng import Rng

__all__ = ["SyncLinkConfig", "SyncLink"]


@dataclass(frozen=True, slots=True)
class SyncLinkConfig:
    """The sync link's properties (seconds, probability, bit/s)."""

    delay: float = 0.0005
    loss: float = 0.0
    bandwidth: float = 1e9
    lag: float = 0.001
    """Seconds an update waits in the sender's queue before it is sent (lost if the sender crashes meanwhile)."""
    partitions: tuple[tuple[float, float], ...] = ()
    """(from, until) windows in which nothing crosses (split brain)."""

    def __post_init__(self) -> None:
        if self.delay < 0 or self.lag < 0 or not 0.0 <= self.loss < 1.0 or self.bandwidth <= 0:
            raise ValueError("sync link: delay and lag >= 0, 0 <= loss < 1, bandwidth > 0")
        for a, b in self.partitions:
            if b <= a:
                raise ValueError(f"sync link partition ({a}, {b}): it must end after it starts")


class SyncLink:
    """Messages between the members of one cluster (see the module docstring)."""

    def __init__(self, env: simpy.Environment, rng: Rng, config: SyncLinkConfig, members: Sequence[str]) -> None:
        self.env, self.config = env, config
        self._rng = {(a, b): rng.child("sync", a, b) for a in members for b in members if a != b}
        self._busy: dict[tuple[str, str], float] = dict.fromkeys(self._rng, 0.0)
        self._epoch: dict[str, int] = dict.fromkeys(members, 0)
        """Member -> how many times it crashed: a queued message of an earlier life is dropped."""
        self.partitioned = False
        """Set by partition windows (``partitions``) and by ``Cluster.partition``."""
        self.sent = 0
        self.bytes = 0
        self.lost = 0

    def crashed(self, member: str) -> None:
        """*member* lost its queue: every message it has not sent yet is dropped."""
        self._epoch[member] += 1

    def send(self, src: str, dst: str, size: int, deliver: Callable[[Any], None], message: Any) -> None:
        """Queue *message* (*size* bytes) from *src* to *dst*; *deliver(message)* runs on arrival unless it is lost."""
        self.sent += 1
        self.bytes += size
        cfg = self.config
        if cfg.loss > 0 and self._rng[(src, dst)].random() < cfg.loss:
            self.lost += 1
            return
        epoch = self._epoch[src]
        now = self.env.now
        start = max(now + cfg.lag, self._busy[(src, dst)])
        done = start + size * 8 / cfg.bandwidth
        self._busy[(src, dst)] = done

        def left(_ev: object) -> None:
            if self._epoch[src] != epoch or self.partitioned or self._in_partition(self.env.now):
                self.lost += 1
                return
            self.env.timeout(done - self.env.now + cfg.delay).callbacks.append(lambda _e: deliver(message))

        self.env.timeout(start - now).callbacks.append(left)

    def _in_partition(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.config.partitions)

    def up(self, t: float) -> bool:
        """Whether a message sent at *t* can cross."""
        return not self.partitioned and not self._in_partition(t)
