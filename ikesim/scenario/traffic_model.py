"""The data plane of a scenario: ``traffic:`` (packet generators through CHILD_SAs) and ``data_plane:`` options.

::

    data_plane:
      mode: packet              # packet: real ESP per packet, captured; fleet: figures from the SA/path timeline
      replay_window: 32         # strongSwan's charon.replay_window (packets; 0 = anti-replay off)
      capture_per_sa: 20        # ESP packets per SA and direction written to capture.pcap
      keepalives: datagrams     # NAT-T keepalives as 1-byte datagrams, or analytic (the default with fleet:)
    traffic:
      - connection: vpn         # the tunnel (fleet: omitted under fleet.traffic, one flow per client)
        child: net              # default: the connection's first child
        direction: both         # forward (initiator -> responder), reverse, or both
        pattern: constant       # constant | poisson | onoff | request_response
        rate: 100               # packets per second in each direction (or bitrate: 100Mbit)
        size: 1000              # inner IP packet bytes, or {dist: uniform, low: 64, high: 1400},
                                # {dist: choice, values: [64, 576, 1500], weights: [7, 4, 1]}, imix
        start: 0s
        stop: 24h               # default: the end of the run
        on: 1s                  # onoff: mean on and off periods (exponential), constant rate while on
        off: 4s
        response_size: 1400     # request_response: the responder answers each delivered request
        think: 0s               #   after this long
        queue: 0                # packets held while the flow has no SA (sent when one appears); beyond: dropped
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StrictFloat, StrictInt, model_validator

from ikesim.scenario.base import Count, Duration, PositiveDuration, StrictModel
from ikesim.sim.linkmodels import parse_bandwidth

__all__ = ["SizeModel", "TrafficModel", "DataPlaneModel", "IMIX", "MIN_SIZE", "MAX_SIZE"]

MIN_SIZE = 28
"""The smallest inner packet: an IPv4 header (20) and a UDP header (8)."""
MAX_SIZE = 65535
"""The largest IPv4 packet (RFC 791 total length)."""

IMIX = ((40, 7), (576, 4), (1500, 1))
"""The simple IMIX (packet size, weight): 7 : 4 : 1 of 40, 576 and 1500 bytes (inner sizes below 28 become 28)."""


def _size_input(v: object) -> object:
    """``1000`` is a fixed size; ``imix`` the simple IMIX; a mapping is a distribution."""
    if v == "imix":
        return {"dist": "choice", "values": [max(MIN_SIZE, s) for s, _ in IMIX], "weights": [w for _, w in IMIX]}
    if isinstance(v, bool) or not isinstance(v, int | dict):
        raise ValueError(f"expected a packet size in bytes, 'imix' or a distribution mapping (got {v!r})")
    return {"dist": "fixed", "value": v} if isinstance(v, int) else v


_SIZE_KEYS = {"fixed": ("value",), "uniform": ("low", "high"), "choice": ("values",)}


class SizeModel(StrictModel):
    """Inner packet sizes in bytes: fixed{value}, uniform{low, high} (whole bytes) or choice{values, weights}."""

    dist: Literal["fixed", "uniform", "choice"]
    value: StrictInt | None = None
    low: StrictInt | None = None
    high: StrictInt | None = None
    values: list[StrictInt] | None = None
    weights: list[StrictFloat | StrictInt] | None = None

    @model_validator(mode="after")
    def _keys(self) -> SizeModel:
        need = _SIZE_KEYS[self.dist]
        given = {k for k in ("value", "low", "high", "values", "weights") if getattr(self, k) is not None}
        missing = [k for k in need if k not in given]
        if missing:
            raise ValueError(f"{self.dist} size needs {', '.join(need)}")
        extra = sorted(given - set(need) - ({"weights"} if self.dist == "choice" else set()))
        if extra:
            raise ValueError(f"{self.dist} size takes no {', '.join(extra)}")
        for s in self.sizes:
            if not MIN_SIZE <= s <= MAX_SIZE:
                raise ValueError(f"packet size {s} is outside {MIN_SIZE} .. {MAX_SIZE} bytes")
        if self.dist == "uniform" and self.low > self.high:  # type: ignore[operator]
            raise ValueError(f"low {self.low} is greater than high {self.high}")
        if self.dist == "choice":
            if not self.values:
                raise ValueError("choice size needs at least one value")
            if self.weights is not None and (len(self.weights) != len(self.values) or any(w < 0 for w in self.weights)
                                             or not sum(self.weights) > 0):
                raise ValueError("weights: one weight >= 0 per value, not all 0")
        return self

    @property
    def sizes(self) -> list[int]:
        """Every size this distribution names (its bounds for uniform)."""
        return [s for s in (self.value, self.low, self.high, *(self.values or ())) if s is not None]

    @property
    def mean(self) -> float:
        """The mean size in bytes."""
        if self.dist == "fixed":
            return float(self.value)  # type: ignore[arg-type]
        if self.dist == "uniform":
            return (self.low + self.high) / 2  # type: ignore[operator]
        values = self.values or []
        weights = self.weights or [1] * len(values)
        return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


SizeSpec = Annotated[SizeModel, BeforeValidator(_size_input)]


class TrafficModel(StrictModel):
    """One flow of user packets through a connection's CHILD_SA (see the module docstring)."""

    connection: str | None = None
    """The tunnel; required in ``traffic:``, not allowed in ``fleet.traffic`` (every client gets the flow)."""
    child: str | None = None
    direction: Literal["forward", "reverse", "both"] = "both"
    pattern: Literal["constant", "poisson", "onoff", "request_response"] = "constant"
    rate: StrictFloat | StrictInt | None = Field(default=None, gt=0)
    """Packets per second in each direction (request_response: requests per second)."""
    bitrate: float | str | None = None
    """Bits per second (``100Mbit``) instead of a rate: rate = bitrate / (8 * mean size)."""
    size: SizeSpec = Field(default_factory=lambda: SizeModel(dist="fixed", value=1000))
    start: Duration = 0.0
    stop: Duration | None = None
    on: PositiveDuration | None = None
    off: PositiveDuration | None = None
    response_size: SizeSpec | None = None
    think: Duration = 0.0
    queue: Count = 0

    @model_validator(mode="after")
    def _shape(self) -> TrafficModel:
        if (self.rate is None) == (self.bitrate is None):
            raise ValueError("give rate (packets/s) or bitrate (e.g. 100Mbit), one of them")
        if self.bitrate is not None:
            parse_bandwidth(self.bitrate)
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop:g} s) must be after start ({self.start:g} s)")
        onoff = self.pattern == "onoff"
        if onoff != (self.on is not None) or onoff != (self.off is not None):
            raise ValueError("on and off (mean periods) go with pattern: onoff, and it needs both")
        rr = self.pattern == "request_response"
        if not rr and (self.response_size is not None or self.think):
            raise ValueError("response_size and think go with pattern: request_response")
        if rr and self.direction == "both":
            raise ValueError("request_response: give direction forward (the initiator asks) or reverse")
        return self

    @property
    def packets_per_second(self) -> float:
        """Packets per second in each direction (while on, for onoff)."""
        if self.rate is not None:
            return float(self.rate)
        return parse_bandwidth(self.bitrate) / (8 * self.size.mean)


class DataPlaneModel(StrictModel):
    """``data_plane:``: how user traffic is simulated and what of it is kept."""

    mode: Literal["packet", "fleet"] = "packet"
    """packet: every packet is real ESP through the links (captured); fleet: loss and outage figures come from the
    exact per-direction timeline of SA and path state (for big fleets)."""
    replay_window: Count = 32
    """Anti-replay window in packets (strongSwan's ``charon.replay_window``, default 32; 0 = off)."""
    capture_per_sa: Count = 20
    """ESP packets per SA and direction written to capture.pcap (the first ones; 0 = none)."""
    keepalives: Literal["datagrams", "analytic"] | None = None
    """NAT-T keepalives (RFC 3948 §2.3): ``datagrams`` (one 0xFF octet when nothing else went to the peer for
    ``nat_keepalive`` s, as strongSwan; lost like any datagram) or ``analytic`` (no datagrams: the NAT mapping counts
    as refreshed at every keepalive instant). Default: datagrams, analytic in a scenario with ``fleet:``."""
