"""Delay distributions, loss models and size parsers for ``ikesim.sim.link``.

The distributions and models are small frozen configs shared by both directions of a link;
all randomness comes from the ``Rng`` passed to each call, and a config whose outcome is
certain (a fixed delay, a probability of 0 or 1) draws nothing, so it never shifts a stream.
Per-direction state (the Gilbert–Elliott channel state) lives in a ``LossProcess``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Protocol

from ikesim.rng import Rng

__all__ = [
    "Delay", "Fixed", "Uniform", "Normal", "Exponential", "LogNormal", "LossModel", "LossProcess", "Bernoulli",
    "GilbertElliott", "as_delay", "as_loss", "fragment_count", "parse_bandwidth", "parse_queue",
]


class Delay(Protocol):
    """A one-way propagation delay distribution in seconds."""

    def sample(self, rng: Rng) -> float:
        """Draw one delay (never negative)."""
        ...

    @property
    def mean(self) -> float:
        """The mean delay (used as the routing weight)."""
        ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always *value* seconds; draws nothing."""

    value: float

    def __post_init__(self) -> None:
        if not self.value >= 0:
            raise ValueError(f"fixed delay {self.value} is negative")

    def sample(self, rng: Rng) -> float:
        """The fixed value."""
        return self.value

    @property
    def mean(self) -> float:
        """The fixed value."""
        return self.value


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform in [low, high): one draw."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ValueError(f"uniform delay needs 0 <= low <= high (got low={self.low}, high={self.high})")

    def sample(self, rng: Rng) -> float:
        """One uniform draw."""
        return rng.uniform(self.low, self.high)

    @property
    def mean(self) -> float:
        """(low + high) / 2."""
        return (self.low + self.high) / 2


def _gauss(rng: Rng) -> float:
    """A standard normal variate by Box–Muller (two draws)."""
    u1, u2 = rng.random(), rng.random()
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@dataclass(frozen=True, slots=True)
class Normal:
    """Normal(mean, sd) clipped at 0: two draws (Box–Muller), none when sd is 0."""

    mu: float
    sd: float

    def __post_init__(self) -> None:
        if not (self.mu >= 0 and self.sd >= 0):
            raise ValueError(f"normal delay needs mean >= 0 and sd >= 0 (got mean={self.mu}, sd={self.sd})")

    def sample(self, rng: Rng) -> float:
        """One clipped normal variate."""
        return self.mu if self.sd == 0 else max(0.0, self.mu + self.sd * _gauss(rng))

    @property
    def mean(self) -> float:
        """The (unclipped) mean."""
        return self.mu


@dataclass(frozen=True, slots=True)
class Exponential:
    """*base* plus an exponential extra with mean *extra*: one draw."""

    extra: float
    base: float = 0.0

    def __post_init__(self) -> None:
        if not (self.extra > 0 and self.base >= 0):
            raise ValueError(f"exponential delay needs mean > 0 and base >= 0 (got mean={self.extra}, base={self.base})")

    def sample(self, rng: Rng) -> float:
        """base - extra * ln(1 - U)."""
        return self.base - self.extra * math.log(1.0 - rng.random())

    @property
    def mean(self) -> float:
        """base + extra."""
        return self.base + self.extra


@dataclass(frozen=True, slots=True)
class LogNormal:
    """median * exp(sigma * Z): two draws, none when sigma is 0."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        if not (self.median > 0 and self.sigma >= 0):
            raise ValueError(f"lognormal delay needs median > 0 and sigma >= 0 (got {self.median}, {self.sigma})")

    def sample(self, rng: Rng) -> float:
        """One lognormal variate."""
        return self.median if self.sigma == 0 else self.median * math.exp(self.sigma * _gauss(rng))

    @property
    def mean(self) -> float:
        """median * exp(sigma^2 / 2)."""
        return self.median * math.exp(self.sigma**2 / 2)


def as_delay(value: float | Delay) -> Delay:
    """A number of seconds as ``Fixed``; a distribution unchanged."""
    return Fixed(float(value)) if isinstance(value, (int, float)) else value


class LossProcess(Protocol):
    """One direction's loss channel: ``lost(rng)`` is called once per packet (IP fragment)."""

    def lost(self, rng: Rng) -> bool:
        """Whether the next packet is lost."""
        ...


class LossModel(Protocol):
    """A loss model config; ``process()`` starts one direction's channel."""

    def process(self) -> LossProcess:
        """A fresh per-direction channel."""
        ...

    @property
    def rate(self) -> float:
        """The long-run packet loss probability."""
        ...


def _hit(rng: Rng, p: float) -> bool:
    """True with probability *p*; draws only when 0 < p < 1."""
    return p >= 1.0 or (p > 0.0 and rng.random() < p)


@dataclass(frozen=True, slots=True)
class Bernoulli:
    """Each packet is lost independently with probability *p* (one draw per packet when 0 < p < 1)."""

    p: float

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ValueError(f"loss {self.p} is outside [0, 1]")

    def process(self) -> Bernoulli:
        """Stateless: the model is its own process."""
        return self

    def lost(self, rng: Rng) -> bool:
        """One Bernoulli trial."""
        return _hit(rng, self.p)

    @property
    def rate(self) -> float:
        """p."""
        return self.p


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Two-state burst loss: p = P(good->bad), r = P(bad->good) per packet; loss_good = 1-k, loss_bad = 1-h.

    Per packet: lost with the current state's probability, then the state moves (draws only for
    probabilities strictly between 0 and 1). The channel starts good. Bursts in the bad state
    last 1/r packets on average; the stationary loss rate is (r*loss_good + p*loss_bad)/(p+r).
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_good", "loss_bad"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"gilbert {name}={getattr(self, name)} is outside [0, 1]")

    def process(self) -> _GilbertProcess:
        """A channel starting in the good state."""
        return _GilbertProcess(self)

    @property
    def rate(self) -> float:
        """The stationary loss probability."""
        if self.p + self.r == 0:
            return self.loss_good
        return (self.r * self.loss_good + self.p * self.loss_bad) / (self.p + self.r)


class _GilbertProcess:
    """The per-direction state of a ``GilbertElliott`` channel."""

    __slots__ = ("model", "bad")

    def __init__(self, model: GilbertElliott) -> None:
        self.model = model
        self.bad = False

    def lost(self, rng: Rng) -> bool:
        """Loss in the current state, then one state transition."""
        m = self.model
        if self.bad:
            lost = _hit(rng, m.loss_bad)
            self.bad = not _hit(rng, m.r)
        else:
            lost = _hit(rng, m.loss_good)
            self.bad = _hit(rng, m.p)
        return lost


def as_loss(value: float | LossModel) -> LossModel:
    """A probability as ``Bernoulli``; a model unchanged."""
    return Bernoulli(float(value)) if isinstance(value, (int, float)) else value


def fragment_count(ip_size: int, mtu: int) -> int:
    """IPv4 fragments for an *ip_size*-byte packet on *mtu* (each carries 8*floor((mtu-20)/8) payload bytes)."""
    if ip_size <= mtu:
        return 1
    per = 8 * ((mtu - 20) // 8)
    return -(-(ip_size - 20) // per)


_BW = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:bit|bps|b/s)?(?:/s)?", re.IGNORECASE)
_BW_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_bandwidth(value: object) -> float:
    """Bits per second from a number or ``10Mbit``, ``512kbit``, ``1Gbit``, ``2Mbps`` (SI prefixes)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid bandwidth {value!r}")
    if isinstance(value, (int, float)):
        bw = float(value)
    elif isinstance(value, str) and (m := _BW.fullmatch(value.strip())):
        bw = float(m.group(1)) * _BW_PREFIX[m.group(2).lower()]
    else:
        raise ValueError(f"invalid bandwidth {value!r} (use bits/s or e.g. 512kbit, 10Mbit, 1Gbit)")
    if not bw > 0:
        raise ValueError(f"bandwidth {value!r} must be positive")
    return bw


_QUEUE = re.compile(r"(\d+)\s*(b|kb|kib|mb|mib|p|pkt|pkts|packets)?", re.IGNORECASE)
_QUEUE_UNIT = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1_000_000, "mib": 1 << 20}


def parse_queue(value: object) -> tuple[int, str]:
    """``(limit, "packets" | "bytes")`` from ``64`` (packets) or ``"64KB"``, ``"1500B"``, ``"1MiB"`` (bytes)."""
    if isinstance(value, bool):
        raise ValueError(f"invalid queue {value!r}")
    if isinstance(value, int):
        n, unit = value, "packets"
    elif isinstance(value, str) and (m := _QUEUE.fullmatch(value.strip())):
        suffix = (m.group(2) or "p").lower()
        n = int(m.group(1)) * _QUEUE_UNIT.get(suffix, 1)
        unit = "bytes" if suffix in _QUEUE_UNIT else "packets"
    elif isinstance(value, (tuple, list)) and len(value) == 2 and value[1] in ("packets", "bytes"):
        n, unit = int(value[0]), str(value[1])
    else:
        raise ValueError(f"invalid queue {value!r} (packets, e.g. 64, or bytes, e.g. 64KB)")
    if n < 0:
        raise ValueError(f"queue {value!r} is negative")
    return n, unit
