"""A link of a scenario (``links:``) and what it does to datagrams: delay, loss, outages, bandwidth, MTU."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Discriminator, Field, StrictFloat, StrictInt, Tag, field_validator, model_validator

from ikesim.scenario.base import Duration, Ratio, StrictModel
from ikesim.sim import linkmodels as lm

__all__ = ["DelayDistModel", "GilbertModel", "DownModel", "DelaySpec", "LossSpec", "PathModel", "LinkModel"]


def _value_or_model(v: object) -> str:
    """Union tag: a mapping is a model (``{dist: ...}``, ``{model: ...}``), anything else a plain value."""
    return "=model" if isinstance(v, dict) else "=value"


_DELAY_KEYS = {"fixed": ("value",), "uniform": ("low", "high"), "normal": ("mean", "sd"), "exponential": ("mean",),
               "lognormal": ("median", "sigma")}
_DELAY_OPTIONAL = {"exponential": ("base",)}


class DelayDistModel(StrictModel):
    """A delay distribution: fixed{value}, uniform{low, high}, normal{mean, sd} (clipped at 0),
    exponential{mean, base} (base + an exponential extra) or lognormal{median, sigma}."""

    dist: Literal["fixed", "uniform", "normal", "exponential", "lognormal"]
    value: Duration | None = None
    low: Duration | None = None
    high: Duration | None = None
    mean: Duration | None = None
    sd: Duration | None = None
    base: Duration | None = None
    median: Duration | None = None
    sigma: StrictFloat | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _keys(self) -> DelayDistModel:
        need = _DELAY_KEYS[self.dist]
        given = {k for k in type(self).model_fields if k != "dist" and getattr(self, k) is not None}
        missing = [k for k in need if k not in given]
        if missing:
            raise ValueError(f"{self.dist} delay needs {', '.join(need)}")
        extra = sorted(given - set(need) - set(_DELAY_OPTIONAL.get(self.dist, ())))
        if extra:
            raise ValueError(f"{self.dist} delay takes no {', '.join(extra)}")
        self.build()
        return self

    def build(self) -> lm.Delay:
        """The ``ikesim.sim.linkmodels`` distribution (raises ValueError when inconsistent)."""
        f = {k: getattr(self, k) for k in ("value", "low", "high", "mean", "sd", "base", "median", "sigma")}
        if self.dist == "fixed":
            return lm.Fixed(f["value"])
        if self.dist == "uniform":
            return lm.Uniform(f["low"], f["high"])
        if self.dist == "normal":
            return lm.Normal(f["mean"], f["sd"])
        if self.dist == "exponential":
            return lm.Exponential(f["mean"], f["base"] or 0.0)
        return lm.LogNormal(f["median"], f["sigma"])


class GilbertModel(StrictModel):
    """Gilbert–Elliott burst loss: p = P(good->bad), r = P(bad->good) per packet, loss in each state.

    ``loss_good``/``loss_bad`` (default 0 and 100 %) or the classic k = 1 - loss_good, h = 1 - loss_bad.
    """

    model: Literal["gilbert", "gilbert-elliott"]
    p: Ratio
    r: Ratio
    loss_good: Ratio | None = None
    loss_bad: Ratio | None = None
    k: Ratio | None = None
    h: Ratio | None = None

    @model_validator(mode="after")
    def _one_style(self) -> GilbertModel:
        if self.loss_good is not None and self.k is not None:
            raise ValueError("give loss_good or k (= 1 - loss_good), not both")
        if self.loss_bad is not None and self.h is not None:
            raise ValueError("give loss_bad or h (= 1 - loss_bad), not both")
        return self

    def build(self) -> lm.GilbertElliott:
        """The ``ikesim.sim.linkmodels`` loss model."""
        good = self.loss_good if self.loss_good is not None else (1.0 - self.k if self.k is not None else 0.0)
        bad = self.loss_bad if self.loss_bad is not None else (1.0 - self.h if self.h is not None else 1.0)
        return lm.GilbertElliott(self.p, self.r, good, bad)


class DownModel(StrictModel):
    """A scheduled outage: the link drops everything sent in [from, until)."""

    start: Duration = Field(alias="from")
    until: Duration

    @model_validator(mode="after")
    def _ordered(self) -> DownModel:
        if self.until < self.start:
            raise ValueError(f"until {self.until:g}s is before from {self.start:g}s")
        return self


def _bandwidth(v: object) -> object:
    return None if v is None else lm.parse_bandwidth(v)


def _queue(v: object) -> object:
    return None if v is None else lm.parse_queue(v)


DelaySpec = Annotated[Annotated[Duration, Tag("=value")] | Annotated[DelayDistModel, Tag("=model")],
                      Discriminator(_value_or_model)]
LossSpec = Annotated[Annotated[Ratio, Tag("=value")] | Annotated[GilbertModel, Tag("=model")], Discriminator(_value_or_model)]


class PathModel(StrictModel):
    """What a link does to datagrams (``ikesim.sim.link``): every key of a link but its two ends and routing cost."""

    delay: DelaySpec = 0.0
    jitter: Duration = 0.0
    reorder: bool = True
    """False: jitter never lets a datagram overtake one sent earlier in the same direction."""
    bandwidth: Annotated[float | None, BeforeValidator(_bandwidth)] = None
    """Bits per second (``10Mbit``, ``512kbit``); None = no serialization delay and no queue."""
    queue: Annotated[tuple[int, Literal["packets", "bytes"]] | None, BeforeValidator(_queue)] = None
    """Tail-drop limit of the transmit queue: packets (``64``) or bytes (``64KB``); needs a bandwidth."""
    loss: LossSpec = 0.0
    duplicate: Ratio = 0.0
    down: list[DownModel] = Field(default_factory=list)
    mtu: StrictInt = Field(default=1500, ge=68, le=65535)
    drop_fragments: bool = False
    """Drop every datagram that needs IP fragmentation (a PMTU black hole)."""

    @model_validator(mode="after")
    def _queue_needs_bandwidth(self) -> PathModel:
        if self.queue is not None and self.bandwidth is None:
            raise ValueError("queue needs a bandwidth")
        return self

    def delay_model(self) -> float | lm.Delay:
        """The delay for ``Simulation.add_link``: seconds or a distribution."""
        return self.delay.build() if isinstance(self.delay, DelayDistModel) else self.delay

    def loss_model(self) -> float | lm.LossModel:
        """The loss for ``Simulation.add_link``: a probability or a Gilbert–Elliott model."""
        return self.loss.build() if isinstance(self.loss, GilbertModel) else self.loss


class LinkModel(PathModel):
    """A bidirectional link between two nodes (both directions share it; ``ikesim.sim.link``)."""

    between: tuple[str, str]
    cost: tuple[StrictFloat, StrictFloat] | None = None
    """Routing weights [first->second, second->first] (default: the mean delay both ways): unequal costs
    make the two directions take different paths (asymmetric routing)."""

    @field_validator("cost")
    @classmethod
    def _cost(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and min(v) < 0:
            raise ValueError("routing costs must not be negative")
        return v
