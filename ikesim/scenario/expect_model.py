"""The ``expect:`` block of a scenario: what a run must produce (checked by ``ikesim.expect``).

Every count is an integer (exactly that many) or ``{count: n}``, ``{min: n}``, ``{max: n}``,
``{min: a, max: b}``. Keys and what they count::

    expect:
      violations: 0                      # invariant violations (the default when expect: is given)
      collisions: 1                      # or {child: 1, ike: {min: 0}}: Results.collisions, per kind
      rekeys: {child: 1, ike: 0}         # summary["rekeys"]: rekeys completed, counted on the initiator
      events:                            # Results.events rows of that event, filtered by ``where``
        RekeyStarted: 2
        ChildSaDeleted: {count: 2, where: {reason: redundant, node: client}}
        RekeyCollision:                  # a list: several counts of one event, each with its own where
          - {count: 1, where: {node: client, won: true}, between: [60s, 61s]}   # recorded in [60 s, 61 s]
          - {count: 1, where: {node: gateway, old_spi: 0xa1a1a1a1}}             # SPIs as hex (0x optional)
      notifies: {TEMPORARY_FAILURE: {count: 1, node: gateway, between: [60s, 61s]}}   # ErrorNotifySent; unlisted: 0
      exchanges: {rekey_child: 2, delete_child: [{count: 1, outcome: ok, initiator: client}, {count: 2}]}
      survivors: {child: {client: 1, gateway: 0}, ike: [{created_by: client, count: 1}]}
      installed: {client: {in: [0xc2c2c2c2], out: [0xa2a2a2a2]}}   # CHILD_SA SPIs held at the end, exactly
      max_rekey_latency: 100ms           # or {child: 100ms, ike: 1s}
      summary: {datagrams.lost: 0, datagrams.held_by_fault: 1, retransmissions: {max: 3}}
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ikesim.scenario.base import Duration, StrictModel
from ikesim.wire.iana import NotifyType

__all__ = [
    "Count", "CountSpec", "EventSpec", "NotifySpec", "ExchangeSpec", "SurvivorSpec", "KindCounts", "KindDurations",
    "CountByKind", "DurationByKind", "SurvivorSet", "SurvivorsModel", "InstalledSpec", "ExpectModel", "Window",
    "spi_text",
]

_COUNT_KEYS = ("count", "min", "max")


def _count_input(v: object) -> object:
    """``3`` is short for ``{count: 3}``; a mapping is validated as it is."""
    if isinstance(v, bool) or not isinstance(v, int | dict) or (isinstance(v, int) and v < 0):
        raise ValueError(f"expected a count (an integer >= 0) or a mapping with count, min or max (got {v!r})")
    return {"count": v} if isinstance(v, int) else v


class CountSpec(StrictModel):
    """How many: exactly ``count``, or at least ``min`` and/or at most ``max``."""

    count: int | None = Field(default=None, ge=0, strict=True)
    min: int | None = Field(default=None, ge=0, strict=True)
    max: int | None = Field(default=None, ge=0, strict=True)

    @model_validator(mode="after")
    def _one_form(self) -> CountSpec:
        if self.count is not None and (self.min is not None or self.max is not None):
            raise ValueError("give count, or min and/or max, not both")
        if self.count is None and self.min is None and self.max is None:
            raise ValueError("give count, min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def accepts(self, n: int) -> bool:
        """True if *n* satisfies this count."""
        if self.count is not None:
            return n == self.count
        return (self.min is None or n >= self.min) and (self.max is None or n <= self.max)

    def describe(self) -> str:
        """``1``, ``at least 1``, ``at most 3`` or ``between 1 and 3``."""
        if self.count is not None:
            return str(self.count)
        if self.max is None:
            return f"at least {self.min}"
        if self.min is None:
            return f"at most {self.max}"
        return f"between {self.min} and {self.max}"


Count = Annotated[CountSpec, BeforeValidator(_count_input)]


def _pair(v: object) -> object:
    """``[50s, 60s]``: a list of two durations."""
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError(f"between: expected [from, to], two durations (got {v!r})")
    return v


def _ordered(v: tuple[float, float]) -> tuple[float, float]:
    """The window's start is not after its end."""
    if v[0] > v[1]:
        raise ValueError(f"between: from ({v[0]:g} s) is after to ({v[1]:g} s)")
    return v


Window = Annotated[tuple[Duration, Duration], BeforeValidator(_pair), AfterValidator(_ordered)]
"""A closed time window ``[from, to]`` in seconds (``between:``)."""


def spi_text(v: object, size: int = 0) -> str:
    """An SPI as the tables write it: lower-case hex without ``0x`` (YAML reads ``0xc1c1c1c1`` as a number; *size*:
    its bytes, to restore leading zeros of a number)."""
    if isinstance(v, int) and not isinstance(v, bool):
        width = 2 * size if size else 2 * max(1, (v.bit_length() + 7) // 8)
        return f"{v:0{width}x}"
    return str(v).strip().lower().removeprefix("0x")


def _spi(v: object) -> str:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ValueError(f"expected an SPI, hex (got {v!r})")
    text = spi_text(v, 4)
    if len(text) != 8 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"expected a CHILD_SA SPI, 8 hex digits, e.g. 0xc1c1c1c1 (got {v!r})")
    return text


Spi = Annotated[str, BeforeValidator(_spi), WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": "^(0[xX])?[0-9a-fA-F]{8}$"}, {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}]})]
"""A CHILD_SA SPI: hex text or a number (``0xc1c1c1c1``), kept as the tables write it (``c1c1c1c1``)."""


class EventSpec(CountSpec):
    """A count of one event, over the rows whose fields equal ``where`` (``node`` and ``time`` included)."""

    where: dict[str, Any] = Field(default_factory=dict)
    """Field -> value (or a list of values, any of which matches); SPI fields match hex, ``0x`` optional."""
    between: Window | None = None
    """Only rows recorded in this closed window of simulated time."""

    @field_validator("where")
    @classmethod
    def _scalars(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, value in v.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(x is None or isinstance(x, str | bool | int | float) for x in values):
                raise ValueError(f"where.{key}: expected a value or a non-empty list of values (got {value!r})")
        return v


class NotifySpec(CountSpec):
    """A count of one error notify sent (``ErrorNotifySent``), optionally by one node only, in one time window."""

    node: str | None = None
    between: Window | None = None


class ExchangeSpec(CountSpec):
    """A count of exchanges of one purpose, optionally with one outcome and one initiating node."""

    outcome: str | None = None
    initiator: str | None = None


class SurvivorSpec(StrictModel):
    """Live SAs at the end created by one node (any node when ``created_by`` is not given)."""

    created_by: str | None = None
    count: Count
    connection: str | None = None


class KindCounts(StrictModel):
    """A count per kind of SA."""

    child: Count | None = None
    ike: Count | None = None


class KindDurations(StrictModel):
    """A duration per kind of SA."""

    child: Duration | None = None
    ike: Duration | None = None


def _total_or_kind(v: object) -> str:
    """A mapping of child/ike is per kind; a number or ``{count|min|max: n}`` is for both kinds together."""
    if isinstance(v, dict) and not (v and set(v) <= set(_COUNT_KEYS)):
        return "=by_kind"
    return "=total"


CountByKind = Annotated[Annotated[Count, Tag("=total")] | Annotated[KindCounts, Tag("=by_kind")], Discriminator(_total_or_kind)]
"""``1``, ``{min: 1}`` (both kinds together) or ``{child: 1, ike: 0}``."""
DurationByKind = Annotated[Annotated[Duration, Tag("=total")] | Annotated[KindDurations, Tag("=by_kind")],
                           Discriminator(_total_or_kind)]
"""``2s`` (both kinds) or ``{child: 2s, ike: 5s}``."""


def _survivor_tag(v: object) -> str:
    if isinstance(v, list):
        return "=list"
    if isinstance(v, dict) and not (v and set(v) <= set(_COUNT_KEYS)):
        return "=by_node"
    return "=total"


SurvivorSet = Annotated[
    Annotated[dict[str, Count], Tag("=by_node")] | Annotated[list[SurvivorSpec], Tag("=list")] | Annotated[Count, Tag("=total")],
    Discriminator(_survivor_tag),
]
"""``{client: 1, gateway: 0}`` (per creating node), ``[{created_by: client, count: 1}]``, or a total (``1``, ``{min: 1}``)."""


class SurvivorsModel(StrictModel):
    """Which SA pairs are live at the end (not deleted, not rekeyed), by the node that created them."""

    child: SurvivorSet | None = None
    ike: SurvivorSet | None = None
    connection: str | None = None
    """Count only the SAs of this connection."""


class InstalledSpec(StrictModel):
    """The CHILD_SA SPIs one node holds at the end of the run: exactly these, in any order (either list optional)."""

    inbound: list[Spi] | None = Field(default=None, alias="in")
    """SPIs of the inbound SAs held (``in``; a rekeyed SA still lingering counts)."""
    outbound: list[Spi] | None = Field(default=None, alias="out")
    """SPIs of the SAs the node sends with (``out``)."""


def _one_or_list(v: object) -> str:
    return "=list" if isinstance(v, list) else "=one"


_Event = Annotated[EventSpec, BeforeValidator(_count_input)]
EventSpecs = Annotated[Annotated[_Event, Tag("=one")] | Annotated[list[_Event], Tag("=list")], Discriminator(_one_or_list)]
"""One count of an event, or a list of counts, each with its own ``where`` and ``between``."""
_Notify = Annotated[NotifySpec, BeforeValidator(_count_input)]
NotifySpecs = Annotated[Annotated[_Notify, Tag("=one")] | Annotated[list[_Notify], Tag("=list")],
                        Discriminator(_one_or_list)]
"""One count of a notify, or a list of counts (e.g. one per node)."""
_Exchange = Annotated[ExchangeSpec, BeforeValidator(_count_input)]
ExchangeSpecs = Annotated[Annotated[_Exchange, Tag("=one")] | Annotated[list[_Exchange], Tag("=list")],
                          Discriminator(_one_or_list)]
"""One count of exchanges of a purpose, or a list of counts (e.g. one per outcome)."""


class ExpectModel(StrictModel):
    """What a run of the scenario must produce; ``ikesim check`` and the pytest plugin evaluate it."""

    violations: Count = Field(default_factory=lambda: CountSpec(count=0))
    """Invariant violations (``Results.violations``); 0 unless stated."""
    collisions: CountByKind | None = None
    """Rekey collisions (``Results.collisions``), in total or per kind."""
    rekeys: CountByKind | None = None
    """Rekeys completed (``summary["rekeys"]``, counted on the initiator), in total or per kind."""
    events: dict[str, EventSpecs] = Field(default_factory=dict)
    notifies: dict[str, NotifySpecs] | None = None
    """Error notifies sent, by name; when given, every notify not listed must not be sent (``{}``: none)."""
    exchanges: dict[str, ExchangeSpecs] = Field(default_factory=dict)
    survivors: SurvivorsModel | None = None
    installed: dict[str, InstalledSpec] | None = None
    """Node -> the CHILD_SA SPIs it holds at the end (``Results.installed``): ``{client: {in: [...], out: [...]}}``."""
    max_rekey_latency: DurationByKind | None = None
    """Upper bound of every rekey's initiator and responder latency (trigger to new SA installed)."""
    summary: dict[str, Any] = Field(default_factory=dict)
    """Dotted summary keys and their values (``{min, max}`` for a range), e.g. ``datagrams.lost: 0``."""

    @field_validator("notifies")
    @classmethod
    def _known_notifies(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for name in v or {}:
            if name not in NotifyType.__members__:
                close = difflib.get_close_matches(name, list(NotifyType.__members__), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ValueError(f"unknown notify type {name!r}{hint}")
        return v
