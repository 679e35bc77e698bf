"""A host of a scenario (``nodes:``): its addresses or interfaces, how it moves, and node-wide settings.

A multi-homed host lists interfaces instead of addresses (``ikesim.sim.mobility``); its addresses are then
its interfaces' addresses, best (lowest priority) first::

    nodes:
      phone:
        interfaces:
          wlan: {address: 192.168.1.10, priority: 1, link: {to: home-nat, delay: 5ms}}
          lte:  {address: 100.64.0.10, priority: 2, link: {to: carrier, delay: 40ms}, up: false}
        mobility:                      # one of:
          script: [{at: 60s, up: lte}, {at: 61s, down: wlan}]
          # commuter: {period: 10min, interfaces: [wlan, lte], make_before_break: true, overlap: 2s}
          # random_dwell: {mean: 5min, interfaces: [wlan, lte], make_before_break: false, gap: 3s}

An interface's ``link`` takes every key of a link (``links:``) but ``between`` and ``cost``: ``to`` names the
node, router or NAT at its other end. A NAT's ``inside`` may name one interface (``phone/wlan``) or the whole
host (all its addresses).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from ikesim.scenario.base import Count, Duration, IpAddress, PositiveDuration, StrictModel
from ikesim.scenario.link_model import PathModel
from ikesim.sim import mobility as mob

if TYPE_CHECKING:
    from ikesim.rng import Rng

__all__ = ["CpuModelSpec", "NodeModel", "CookieThreshold", "InterfaceLinkModel", "InterfaceModel", "ScriptStepModel",
           "CommuterModel", "RandomDwellModel", "MobilityModel", "INTERFACE_NAME", "check_interface_names",
           "mobility_problems", "Processing", "ProcessingSpec", "processing_model"]

INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
"""What an interface name may be: it names the vertex ``<host>/<name>`` of the topology."""

CookieThreshold = Count | Literal["always"] | None
"""A COOKIE threshold: a count (0 = off, as in strongswan.conf), ``always`` or null (off)."""


class CpuModelSpec(StrictModel):
    """A node's CPU (``ikesim.sim.cpu``): cores, per-operation costs (default: the shipped table) and a per-job base."""

    cores: StrictInt = Field(ge=1, le=1024)
    costs: str | dict[str, Duration] | None = None
    """A table written by ``ikesim calibrate --out FILE`` (path relative to the working directory), or
    operation name -> duration overriding the shipped table's entries (``ke_keygen:31: 60us``)."""
    base: Duration = 20e-6

    @field_validator("costs")
    @classmethod
    def _known_ops(cls, v: str | dict[str, float] | None) -> str | dict[str, float] | None:
        from ikesim.sim.cpu import default_costs

        if isinstance(v, dict):
            known = default_costs()
            unknown = sorted(set(v) - set(known))
            if unknown:
                raise ValueError(f"unknown operation(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        elif isinstance(v, str) and not Path(v).is_file():
            raise ValueError(f"no calibration table at {v!r} (write one with ikesim calibrate --out FILE)")
        return v

    def build(self) -> Any:
        """The ``CpuModel`` (a ConfigError-worthy ValueError if the table cannot be read)."""
        from ikesim.sim.cpu import CpuModel, default_costs, load_costs

        costs = default_costs()
        if isinstance(self.costs, str):
            try:
                costs = load_costs(self.costs)
            except OSError as exc:
                raise ValueError(f"cpu.costs: cannot read {self.costs}: {exc.strerror}") from None
        elif isinstance(self.costs, dict):
            costs.update(self.costs)
        return CpuModel(self.cores, costs, self.base)


class ProcessingSpec(StrictModel):
    """A node's per-message processing time, uniform in [low, high) (``ikesim.sim.processing``)."""

    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> ProcessingSpec:
        if self.low > self.high:
            raise ValueError(f"low {self.low:g}s must not be above high {self.high:g}s")
        return self

    def build(self) -> Any:
        """The ``ProcessingModel``."""
        from ikesim.sim.processing import ProcessingModel

        return ProcessingModel(self.low, self.high)


Processing = Literal["strongswan", "none"] | ProcessingSpec
"""A processing-time setting (``ikesim.sim.processing``): a preset name or a uniform range."""


def processing_model(setting: Processing) -> Any:
    """The ``ProcessingModel`` of *setting*, or None for ``none`` (``ikesim.sim.processing``)."""
    from ikesim.sim.processing import STRONGSWAN

    if setting == "none":
        return None
    return STRONGSWAN if setting == "strongswan" else setting.build()  # type: ignore[union-attr]


class InterfaceLinkModel(PathModel):
    """An interface's own link: every key of a link but ``between`` and ``cost``; ``to`` is its other end."""

    to: str
    """The node, router or NAT at the other end."""


class InterfaceModel(StrictModel):
    """One interface of a multi-homed host (``ikesim.sim.mobility``)."""

    address: IpAddress
    priority: Count = 0
    """Lower is preferred: the daemon's usable addresses are ordered by it (equal: in the order listed)."""
    link: InterfaceLinkModel
    up: bool = True
    """Whether it is up when the run starts."""


def check_interface_names(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """*v* if it has at least one interface and every name is a plain name (ValueError otherwise)."""
    if v is None:
        return v
    if not v:
        raise ValueError("give at least one interface")
    for name in v:
        if not INTERFACE_NAME.fullmatch(name):
            raise ValueError(f"interface name {name!r} may contain only letters, digits, '_', '-' and '.'")
    return v


class ScriptStepModel(StrictModel):
    """One scripted change: at ``at``, the interface named by ``up`` comes up, or the one named by ``down`` goes down."""

    at: Duration
    up: str | None = None
    down: str | None = None

    @model_validator(mode="after")
    def _one_change(self) -> ScriptStepModel:
        if (self.up is None) == (self.down is None):
            raise ValueError("give up: <interface> or down: <interface> (one of them)")
        return self

    def step(self) -> mob.Step:
        """The ``ikesim.sim.mobility`` step."""
        return mob.Step(self.at, self.up if self.up is not None else self.down or "", self.up is not None)


class _SwitchModel(StrictModel):
    """How a movement switches from one interface to the next."""

    interfaces: list[str] = Field(min_length=2)
    """The interfaces it moves between, in turn; it starts on the first (which must start up, the others down)."""
    make_before_break: bool = True
    """True: the next interface comes up ``overlap`` before the old one goes down; False: ``gap`` with neither up."""
    overlap: Duration = 0.0
    gap: Duration = 0.0

    @model_validator(mode="after")
    def _switch(self) -> _SwitchModel:
        if len(set(self.interfaces)) != len(self.interfaces):
            raise ValueError(f"an interface is listed twice in {self.interfaces}")
        if self.make_before_break and self.gap:
            raise ValueError("gap is the pause of a break-before-make switch: give overlap with make_before_break: true")
        if not self.make_before_break and self.overlap:
            raise ValueError("overlap belongs to a make-before-break switch: give gap with make_before_break: false")
        return self


class CommuterModel(_SwitchModel):
    """Alternate between two interfaces: a switch starts every ``period`` (at period, 2 period, ...)."""

    period: PositiveDuration
    interfaces: list[str] = Field(min_length=2, max_length=2)

    @model_validator(mode="after")
    def _fits(self) -> CommuterModel:
        if max(self.overlap, self.gap) >= self.period:
            raise ValueError(f"a switch ({max(self.overlap, self.gap):g}s) must be shorter than the period ({self.period:g}s)")
        return self


class RandomDwellModel(_SwitchModel):
    """Stay on each interface in turn for an exponential time of mean ``mean`` (one draw per stay, per node)."""

    mean: PositiveDuration


class MobilityModel(StrictModel):
    """How a multi-homed host moves: one of ``script``, ``commuter`` or ``random_dwell``."""

    script: list[ScriptStepModel] | None = None
    commuter: CommuterModel | None = None
    random_dwell: RandomDwellModel | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MobilityModel:
        given = [k for k in ("script", "commuter", "random_dwell") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give one of script, commuter or random_dwell{f' (not {given[0]} and {given[1]})' if given else ''}")
        return self

    def named(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Every interface name it uses, with its key path below ``mobility``."""
        if self.script is not None:
            for i, s in enumerate(self.script):
                yield ("script", i, "up" if s.up is not None else "down"), s.step().interface
        switch = self.commuter or self.random_dwell
        if switch is not None:
            kind = "commuter" if self.commuter is not None else "random_dwell"
            for i, name in enumerate(switch.interfaces):
                yield (kind, "interfaces", i), name

    def steps(self, rng: Rng) -> Iterator[mob.Step]:
        """The schedule (``ikesim.sim.mobility``); *rng*: the node's mobility stream (random_dwell draws from it)."""
        if self.script is not None:
            return mob.scripted(s.step() for s in self.script)
        if self.commuter is not None:
            c = self.commuter
            return mob.commuter(period=c.period, interfaces=(c.interfaces[0], c.interfaces[1]),
                                make_before_break=c.make_before_break, overlap=c.overlap, gap=c.gap)
        d = self.random_dwell
        assert d is not None  # one of the three (``_one_kind``)
        return mob.random_dwell(rng, mean=d.mean, interfaces=d.interfaces, make_before_break=d.make_before_break,
                                overlap=d.overlap, gap=d.gap)


def mobility_problems(m: MobilityModel, up: dict[str, bool]) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with *m* for a host whose interfaces start as *up* (name -> up): ``(key path, message)``.

    Key paths below ``mobility`` (``("script", 0, "up")``), or ``("interfaces", name, "up")`` for a start state.
    """
    out: list[tuple[tuple[str | int, ...], str]] = []
    for loc, name in m.named():
        if name not in up:
            out.append(((*loc,), f"no interface {name!r} (interfaces: {', '.join(up)})"))
    switch = m.commuter or m.random_dwell
    if out or switch is None:
        return out
    kind = "commuter" if m.commuter is not None else "random_dwell"
    first, *rest = switch.interfaces
    if not up[first]:
        out.append((("interfaces", first, "up"), f"mobility.{kind} starts on {first}: it must start up"))
    for name in rest:
        if up[name]:
            out.append((("interfaces", name, "up"), f"mobility.{kind} starts on {first}: {name} must start down (up: false)"))
    return out


class NodeModel(StrictModel):
    """A host: its addresses (or interfaces), how it moves, and node-wide settings."""

    addresses: list[IpAddress] = Field(default_factory=list)
    """Its IP addresses (the first one is where connections to it go); with ``interfaces``, theirs, best first."""
    interfaces: dict[str, InterfaceModel] | None = None
    """A multi-homed host's interfaces by name (instead of ``addresses``)."""
    mobility: MobilityModel | None = None
    """How its interfaces go up and down (``ikesim.sim.mobility``)."""
    cookie_threshold: CookieThreshold = 30
    """Half-open IKE_SAs (all sources) from which IKE_SA_INIT must carry a COOKIE (RFC 7296 §2.6).
    0 or null = never (as in strongswan.conf); ``always`` = every IKE_SA_INIT. strongSwan ``charon.cookie_threshold``: 30."""
    cookie_threshold_ip: CookieThreshold = 3
    """The same, counting one source IP's half-open IKE_SAs; 0 or null = never, ``always`` = every IKE_SA_INIT.
    strongSwan ``charon.cookie_threshold_ip``: 3."""
    block_threshold: Count | None = 5
    """Half-open IKE_SAs from one source IP from which its IKE_SA_INIT requests are dropped; 0 or null = never.
    strongSwan ``charon.block_threshold``: 5."""
    init_limit_half_open: Count | None = None
    """Half-open IKE_SAs in all from which every IKE_SA_INIT is dropped; 0 or null = no limit (strongSwan's default, 0)."""
    half_open_timeout: PositiveDuration = 30.0
    """How long a responder keeps a half-open IKE_SA (more than 0 s). strongSwan ``charon.half_open_timeout``: 30s."""
    ticket_secret: str | None = None
    """RFC 5723 session resumption: the secret the gateway's ticket keys derive from (any text). Nodes that share it
    (an HA cluster's members, or a gateway across a restart) accept each other's tickets; unset: a key of its own,
    from the node's seed, that the ``restart`` action loses (the new daemon draws a new one)."""
    ticket_key_rotation: PositiveDuration = 3600.0
    """Seconds each ticket key issues tickets before the next one takes over (the old stays accepted while its
    tickets may live)."""
    cpu: CpuModelSpec | None = None
    """None: the node's work takes no time. Else it queues for ``cores`` (``ikesim.sim.cpu``)."""
    processing: Processing | None = None
    """Per-message processing time (``ikesim.sim.processing``): ``strongswan`` (0.2 to 1.0 ms per datagram and per
    timer wake-up), ``none`` (every input handled the instant it arrives), or ``{low: 50us, high: 2ms}``; unset:
    the scenario's ``processing``."""

    @field_validator("addresses")
    @classmethod
    def _some(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("expected at least 1 entry, got 0")
        return v

    _names = field_validator("interfaces")(check_interface_names)

    @model_validator(mode="after")
    def _addresses_or_interfaces(self) -> NodeModel:
        if self.interfaces is None:
            if not self.addresses:
                raise ValueError("give addresses (a list of IP addresses) or interfaces")
            if self.mobility is not None:
                raise ValueError("mobility moves between interfaces: give the node interfaces instead of addresses")
            return self
        if "addresses" in self.model_fields_set:
            raise ValueError("give addresses or interfaces, not both (the addresses of a node with interfaces are theirs)")
        ranked = sorted(self.interfaces.values(), key=lambda i: i.priority)
        self.__dict__["addresses"] = [i.address for i in ranked]  # frozen: set once, while validating
        return self

    def daemon_threshold(self, key: str) -> int | None:
        """Threshold *key* as ``DaemonConfig`` counts it: strongSwan's 0 (off) is None, ``always`` is 0 (every request)."""
        value = getattr(self, key)
        if value == "always":
            return 0
        return value or None
