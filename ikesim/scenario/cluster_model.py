"""``clusters:`` in a scenario: HA gateway clusters (``ikesim.sim.cluster``, strongSwan's ha plugin).

A cluster is a node of ``nodes:`` (its ``addresses`` are the virtual addresses; links, connections and traffic name
it) plus an entry here under the same name::

    clusters:
      gw:
        members: [gw-a, gw-b]          # default [<name>-a, <name>-b]
        mode: active_passive           # or active_active (segment s prefers member s % N)
        segments: 2                    # 1 .. 16 (strongSwan's 16-bit segment mask)
        failover: stateful             # or stateless (nothing replicated: clients reconnect)
        heartbeat_delay: 1s
        heartbeat_timeout: 2.1s
        esp_seq_margin: 4096           # outbound ESP sequence numbers jump this far on a takeover
        esp_sync_interval: 1s
        replay_delta: 4096             # the IPSEC_REPLAY_COUNTER_SYNC increment (RFC 6311)
        sync_link: {delay: 0.5ms, loss: 0, bandwidth: 1Gbit, lag: 1ms, partitions: [[60s, 70s]]}
        events:                        # scripted failures, each at its time
          - {at: 60s, crash: gw-a}
          - {at: 200s, rejoin: gw-a}
          - {at: 300s, restart: gw-b, downtime: 5s}
          - {at: 400s, partition: 10s}
          - {at: 500s, switchover: gw-a}
        failures: {mtbf: 2h, repair: 5min}   # random crashes: exponential(mtbf) per member, rejoin after repair

Each member runs the cluster node's daemon configuration (its connections, thresholds and ``cpu``). The members
are nodes of the run (events, tables and ``actions:`` name them), the cluster is not: ``actions`` run on a member,
``faults`` pick datagrams a member sends (``from: gw-a``) or that go to the cluster (``to: gw``).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from ikesim.scenario.base import Duration, PositiveDuration, Ratio, StrictModel
from ikesim.sim import linkmodels as lm
from ikesim.sim.cluster import ClusterConfig
from ikesim.sim.cluster_setup import FAILURE_KINDS
from ikesim.sim.ha_link import SyncLinkConfig

if TYPE_CHECKING:
    from ikesim.rng import Rng

__all__ = ["SyncLinkModel", "ClusterEventModel", "ClusterFailuresModel", "ClusterModel", "MEMBER_NAME", "SEGMENTS_MAX",
           "MAX_FAILURES", "random_failures"]

MEMBER_NAME = r"^[A-Za-z0-9_.-]+$"
"""What a member's name may be: it names a node of the run (and its rows in every table)."""
SEGMENTS_MAX = 16
"""strongSwan's ha plugin keeps segments in a 16-bit mask (``ha_segments.h``, ``segment_mask_t``)."""
MAX_FAILURES = 1_000_000
"""The most random crashes one member may expect in a run (duration / mtbf): more is a typo."""
_UINT32 = 2**32 - 1
_NAME = re.compile(MEMBER_NAME)


def _bandwidth(v: object) -> float:
    return lm.parse_bandwidth(v)


class SyncLinkModel(StrictModel):
    """The members' sync link (``ikesim.sim.ha_link``): heartbeats and state updates, plain UDP, never resent."""

    delay: Duration = 0.0005
    loss: Ratio = 0.0
    """Each message is lost with this probability (below 1)."""
    bandwidth: float = 1e9
    """Bits per second (``1Gbit``, ``100Mbit``)."""
    lag: Duration = 0.001
    """How long an update waits in the sender's queue (lost if the sender crashes meanwhile)."""
    partitions: list[tuple[Duration, Duration]] = Field(default_factory=list)
    """``[from, until]`` windows in which nothing crosses (split brain); each ends after it starts
    (``ikesim.scenario.cluster_checks``)."""

    _bw = field_validator("bandwidth", mode="before")(_bandwidth)

    @field_validator("loss")
    @classmethod
    def _below_one(cls, v: float) -> float:
        if v >= 1.0:
            raise ValueError("a sync link that loses every message is no link: give a loss below 1 (100%)")
        return v

    def config(self) -> SyncLinkConfig:
        """The ``ikesim.sim.ha_link`` configuration."""
        return SyncLinkConfig(delay=self.delay, loss=self.loss, bandwidth=self.bandwidth, lag=self.lag,
                              partitions=tuple((float(a), float(b)) for a, b in self.partitions))


class ClusterEventModel(StrictModel):
    """A scripted failure or repair at ``at``: one of ``crash``, ``rejoin``, ``switchover``, ``restart`` (a member;
    ``restart`` with its ``downtime``) or ``partition`` (how long the sync link carries nothing)."""

    at: Duration
    crash: str | None = None
    rejoin: str | None = None
    restart: str | None = None
    switchover: str | None = None
    partition: PositiveDuration | None = None
    downtime: PositiveDuration | None = None
    """``restart``: seconds until the member rejoins."""

    @model_validator(mode="after")
    def _one_kind(self) -> ClusterEventModel:
        given = [k for k in FAILURE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            extra = f" (not {' and '.join(given)})" if given else ""
            raise ValueError(f"give one of {', '.join(FAILURE_KINDS[:-1])} or {FAILURE_KINDS[-1]}{extra}")
        if given[0] == "restart" and self.downtime is None:
            raise ValueError("restart needs a downtime (how long the member stays down, e.g. 5s)")
        if given[0] != "restart" and self.downtime is not None:
            raise ValueError(f"downtime goes with restart, not {given[0]}")
        return self

    @property
    def kind(self) -> str:
        """``crash``, ``rejoin``, ``restart``, ``partition`` or ``switchover``."""
        return next(k for k in FAILURE_KINDS if getattr(self, k) is not None)

    @property
    def member(self) -> str:
        """The member it acts on (empty for a partition)."""
        value = getattr(self, self.kind)
        return value if isinstance(value, str) else ""

    @property
    def duration(self) -> float:
        """A restart's downtime or a partition's length (0 otherwise)."""
        if self.partition is not None:
            return self.partition
        return self.downtime or 0.0


class ClusterFailuresModel(StrictModel):
    """Random crashes: each member fails after an exponential time of mean ``mtbf`` and rejoins ``repair`` later,
    again and again; every member draws from its own stream (``cluster-failures/<seed_stream>/<member>``)."""

    mtbf: PositiveDuration
    repair: PositiveDuration
    seed_stream: str | None = Field(default=None, pattern=MEMBER_NAME)
    """Names the streams (default: the cluster's name): two clusters (or scenarios) with the same name and seed fail
    at the same times."""


class ClusterModel(StrictModel):
    """An HA gateway cluster (``ikesim.sim.cluster``); defaults are strongSwan's ha plugin's."""

    members: list[str] | None = None
    """Its member nodes, in preference order (default ``[<name>-a, <name>-b]``)."""
    mode: Literal["active_passive", "active_active"] = "active_passive"
    segments: StrictInt = Field(default=1, ge=1, le=SEGMENTS_MAX)
    failover: Literal["stateful", "stateless"] = "stateful"
    heartbeat_delay: PositiveDuration = 1.0
    heartbeat_timeout: PositiveDuration = 2.1
    esp_seq_margin: StrictInt = Field(default=4096, ge=0, le=_UINT32)
    esp_sync_interval: PositiveDuration = 1.0
    replay_delta: StrictInt = Field(default=4096, ge=0, le=_UINT32)
    sync_link: SyncLinkModel = Field(default_factory=SyncLinkModel)
    events: list[ClusterEventModel] = Field(default_factory=list)
    failures: ClusterFailuresModel | None = None

    @field_validator("members")
    @classmethod
    def _members(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if len(v) < 2:
            raise ValueError(f"a cluster needs at least two members, got {len(v)}")
        for name in v:
            if not _NAME.fullmatch(name):
                raise ValueError(f"member name {name!r} may contain only letters, digits, '_', '-' and '.'")
        twice = sorted({n for n in v if v.count(n) > 1})
        if twice:
            raise ValueError(f"member {twice[0]!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _heartbeats(self) -> ClusterModel:
        if self.heartbeat_timeout <= self.heartbeat_delay:
            raise ValueError(f"heartbeat_timeout {self.heartbeat_timeout:g}s must be longer than heartbeat_delay "
                             f"{self.heartbeat_delay:g}s (a member would miss every peer between two heartbeats)")
        return self

    def member_names(self, name: str) -> list[str]:
        """The members of cluster *name*: as listed, or ``<name>-a``, ``<name>-b``."""
        return list(self.members) if self.members is not None else [f"{name}-a", f"{name}-b"]

    def config(self) -> ClusterConfig:
        """The ``ikesim.sim.cluster`` configuration."""
        return ClusterConfig(mode=self.mode, segments=self.segments, failover=self.failover,
                             heartbeat_delay=self.heartbeat_delay, heartbeat_timeout=self.heartbeat_timeout,
                             esp_seq_margin=self.esp_seq_margin, esp_sync_interval=self.esp_sync_interval,
                             replay_delta=self.replay_delta)


def random_failures(failures: ClusterFailuresModel, members: list[str], duration: float,
                    rng: Rng) -> list[tuple[float, str, str]]:
    """``(time, kind, member)`` of every random crash and rejoin before *duration* (the scenario's: a longer
    ``--until`` adds none), in time order: per member, up for an exponential time of mean ``mtbf`` (drawn from
    ``rng.child(member)``), then down for ``repair``."""
    out: list[tuple[float, str, str]] = []
    for member in members:
        stream, t = rng.child(member), 0.0
        while True:
            t += -failures.mtbf * math.log(1.0 - stream.random())
            if t >= duration:
                break
            out.append((t, "crash", member))
            t += failures.repair
            if t < duration:
                out.append((t, "rejoin", member))
    return sorted(out, key=lambda e: (e[0], members.index(e[2]), e[1] != "rejoin"))

