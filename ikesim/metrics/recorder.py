"""What models record besides the protocol events, and the Recorder protocol (``ikesim.metrics.trace`` implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ikesim.types import Address

__all__ = ["Recorder", "ActionSkipped", "ActionExecuted", "InvariantViolated", "VIOLATION_KINDS", "NatEvent",
           "InterfaceChanged", "ClusterChanged", "CLUSTER_KINDS"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionExecuted:
    """A scripted action ran on a node."""

    action: str
    connection: str
    target: str
    """Hex SPI the action applied to (empty for initiate before the SPI exists)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSkipped:
    """A scripted action could not apply at its time (e.g. no such SA); never an exception."""

    action: str
    connection: str
    reason: str


VIOLATION_KINDS = (
    "sa_mismatch",
    "outbound_without_inbound",
    "duplicate_outbound",
    "used_after_hard_lifetime",
    "message_id_reused",
)
"""What the invariant checker (``ikesim.sim.invariants``) watches for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InvariantViolated:
    """The invariant checker saw a state no correct pair of peers may reach (RFC 7296 §2.8, §2.3)."""

    kind: str
    """One of ``VIOLATION_KINDS``."""
    connection: str
    spi: str
    """Hex SPI concerned (a CHILD_SA spi or an IKE SPI pair)."""
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NatEvent:
    """Something a NAT box did to its mappings (recorded on the NAT's name; ``ikesim.sim.nat``)."""

    kind: str
    """``mapping_created``, ``expired``, ``rebind`` or ``reboot``."""
    inside: str
    """Inside endpoint concerned, ``ip[port]``."""
    old: str
    """Public endpoint before, ``ip[port]`` (empty for a new mapping)."""
    new: str
    """Public endpoint after (empty when the mapping is gone)."""
    at: float
    """When it happened: an expiry is noticed when the mapping is next needed, after the fact."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceChanged:
    """An interface of a multi-homed host went up or down (recorded on the host's name; ``ikesim.sim.mobility``)."""

    node: str
    """The host."""
    interface: str
    """The interface's name (``wlan``)."""
    address: str
    """The IP address it carries."""
    up: bool
    """True: it came up; False: it went down."""


CLUSTER_KINDS = ("crash", "restart", "rejoin", "partition", "heal", "switchover", "detected", "take", "drop",
                 "takeover", "resync")
"""``ClusterChanged.kind``: a failure injected (``crash``, ``restart``, ``partition``), its end (``rejoin``, ``heal``),
a planned ``switchover``; a member noticing a peer's missing heartbeats (``detected``); segments taken or dropped
(``take``, ``drop``); replicated IKE_SAs made active (``takeover``); a full state push to a rejoined member
(``resync``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterChanged:
    """Something happened to an HA cluster (recorded on the member's name; ``ikesim.sim.cluster``)."""

    cluster: str
    member: str
    kind: str
    """One of ``CLUSTER_KINDS``."""
    failure: int
    """Number of the failure it belongs to (1, 2, ...; 0: none, e.g. a resync after a planned switchover)."""
    segments: str
    """Segments concerned, space-separated (take/drop/detected), else empty."""
    count: int = 0
    """IKE_SAs taken over (``takeover``) or pushed (``resync``)."""


class Recorder(Protocol):
    """Where models report what happened (ns-3 trace sink)."""

    def record(self, event: Any, *, now: float, node: str) -> None:
        """Record *event* seen on *node* at simulated time *now*."""
        ...

    def record_sent(self, dgram_id: int, now: float, node: str, src: Address, dst: Address, data: bytes) -> None:
        """Record a datagram as it leaves its sender."""
        ...

    def record_fate(self, dgram_id: int, fate: str, now: float, where: str) -> None:
        """Record what became of a datagram (delivered, or why not)."""
        ...

    def record_job(self, node: str, arrived: float, start: float, end: float, what: str) -> None:
        """Record one CPU job: when it arrived, started and ended."""
        ...

    def record_fragmented(self, dgram_id: int, mtu: int) -> None:
        """Record that a link of *mtu* IP-fragmented a datagram."""
        ...
