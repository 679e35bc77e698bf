"""The scenario schema: pydantic models (unknown keys are errors; defaults are strongSwan's)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from ikesim.crypto.suites import parse_proposal
from ikesim.errors import ConfigError
from ikesim.scenario.durations import parse_duration, parse_ratio
from ikesim.sim import linkmodels as lm
from ikesim.wire.iana import ProtocolId

__all__ = [
    "Duration", "Ratio", "NodeModel", "DelayDistModel", "GilbertModel", "DownModel", "LinkModel", "RetransmitModel",
    "SideValue", "IkeModel", "ChildModel", "AuthModel", "EXTRA_CHILD_DELAY", "IdsModel", "ConnectionModel", "ActionModel", "ScenarioModel",
]

Duration = Annotated[float, BeforeValidator(parse_duration)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CpuModelSpec(_Strict):
    """A node's CPU (``ikesim.sim.cpu``): cores, per-operation costs (default: the shipped table) and a per-job base."""

    cores: int = Field(ge=1, le=1024)
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


class NodeModel(_Strict):
    """A host: its addresses and node-wide settings."""

    addresses: list[str] = Field(min_length=1)
    cookie_threshold: int | None = None
    cpu: CpuModelSpec | None = None
    """None: the node's work takes no time. Else it queues for ``cores`` (``ikesim.sim.cpu``)."""


def _value_or_model(v: object) -> str:
    """Union tag: a mapping is a model (``{dist: ...}``, ``{model: ...}``), anything else a plain value."""
    return "=model" if isinstance(v, dict) else "=value"


_DELAY_KEYS = {"fixed": ("value",), "uniform": ("low", "high"), "normal": ("mean", "sd"), "exponential": ("mean",),
               "lognormal": ("median", "sigma")}
_DELAY_OPTIONAL = {"exponential": ("base",)}


class DelayDistModel(_Strict):
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
    sigma: float | None = Field(default=None, ge=0)

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


class GilbertModel(_Strict):
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


class DownModel(_Strict):
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


class PathModel(_Strict):
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
    mtu: int = Field(default=1500, ge=68, le=65535)
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
    cost: tuple[float, float] | None = None
    """Routing weights [first->second, second->first] (default: the mean delay both ways): unequal costs
    make the two directions take different paths (asymmetric routing)."""

    @field_validator("cost")
    @classmethod
    def _cost(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and min(v) < 0:
            raise ValueError("routing costs must not be negative")
        return v


class RetransmitModel(_Strict):
    """RFC 7296 §2.1 retransmission schedule (strongSwan defaults)."""

    timeout: Duration = 4.0
    base: float = Field(default=1.8, ge=1.0)
    tries: int = Field(default=5, ge=0, le=30)
    jitter: Ratio = 0.0
    limit: Duration | None = None


class SideValue(_Strict):
    """A value that differs per side (per-side stagger)."""

    initiator: float | None = None
    responder: float | None = None


class _LifetimeFields(_Strict):
    rekey_time: Duration
    life_time: Duration | None = None
    over_time: Duration | None = None
    rand_time: Duration | None = None
    rekey_fraction: float | SideValue | None = None

    @field_validator("rekey_fraction")
    @classmethod
    def _fraction(cls, v: float | SideValue | None) -> float | SideValue | None:
        vals = [v] if isinstance(v, float) else ([v.initiator, v.responder] if v else [])
        for x in vals:
            if x is not None and not 0.0 < x <= 1.0:
                raise ValueError("rekey_fraction must be in (0, 1]")
        return v

    @model_validator(mode="after")
    def _life_after_rekey(self) -> _LifetimeFields:
        if self.life_time is not None and self.rekey_time > 0 and self.life_time < self.rekey_time:
            raise ValueError(f"life_time {self.life_time:g}s is shorter than rekey_time {self.rekey_time:g}s")
        return self


def _check_proposals(values: list[str], protocol: ProtocolId) -> list[str]:
    for text in values:
        try:
            parse_proposal(text, protocol)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return values


class IkeModel(_LifetimeFields):
    """IKE_SA policy; ``life_time`` defaults to rekey_time + over_time (10 %), rand_time to over_time."""

    proposals: list[str] = Field(default_factory=lambda: ["aes256gcm16-prfsha256-x25519"], min_length=1)
    rekey_time: Duration = 14400.0
    retransmit: Literal["strongswan", "libreswan"] | RetransmitModel = "strongswan"
    dpd_delay: Duration = 0.0
    nat_keepalive: Duration = 20.0
    """Seconds between NAT keepalives while behind a NAT (RFC 3948 §2.3; 0 = none)."""
    fragmentation: bool = True
    """Offer IKE fragmentation (RFC 7383); used only if both ends offer it."""
    fragment_size: int = Field(default=1280, ge=256, le=65535)
    """Largest IP datagram of an encrypted IKE message before it is split into SKF fragments (strongSwan: 1280)."""

    @field_validator("proposals", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("proposals")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        return _check_proposals(v, ProtocolId.IKE)


class ChildModel(_LifetimeFields):
    """CHILD_SA policy; ``life_time`` defaults to rekey_time + 10 %, rand_time to life - rekey."""

    proposals: list[str] = Field(default_factory=lambda: ["aes256gcm16"], min_length=1)
    rekey_time: Duration = 3600.0
    local_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    remote_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    delete_rekeyed_delay: Duration = 5.0
    start: Duration | None = None
    """When to create this CHILD_SA with CREATE_CHILD_SA (not for the first child, which IKE_AUTH creates)."""

    @field_validator("proposals", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("proposals")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        return _check_proposals(v, ProtocolId.ESP)

    @field_validator("local_ts", "remote_ts")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for ts in v:
            if ts != "dynamic":
                try:
                    ipaddress.ip_network(ts, strict=False)
                except ValueError:
                    raise ValueError(f"invalid traffic selector {ts!r} (a CIDR or 'dynamic')") from None
        return v


class AuthModel(_Strict):
    """How both peers authenticate (RFC 7296 §2.15)."""

    method: Literal["psk", "ecdsa", "ed25519"] = "psk"
    psk: str | None = None
    chain: int = Field(default=1, ge=1, le=8)
    """Certificates each end sends: 1 = an end entity issued by the CA; n = the end entity and n - 1
    intermediate CAs (CA -> intermediates -> end entity), all as CERT payloads (RFC 7296 §3.6)."""

    @model_validator(mode="after")
    def _psk_needed(self) -> AuthModel:
        if self.method == "psk" and not self.psk:
            raise ValueError("method psk needs a non-empty psk")
        return self


class IdsModel(_Strict):
    """Identities of both ends (user@host = ID_RFC822_ADDR, IP = ID_IPV4_ADDR, else ID_FQDN)."""

    initiator: str = "client@sim.test"
    responder: str = "gw.sim.test"


EXTRA_CHILD_DELAY = 10.0
"""Default delay after the connection's start before a further child (``children``) is created."""


class ConnectionModel(_Strict):
    """A tunnel between an initiator node and a responder node.

    Either ``child`` (one CHILD_SA named ``child_name``) or ``children`` (name -> policy): the first
    child is created with IKE_AUTH, each further one by CREATE_CHILD_SA at its ``start`` (default:
    the connection's start + 10 s).
    """

    initiator: str
    responder: str
    start: Duration = 0.0
    auth: AuthModel = Field(default_factory=lambda: AuthModel(psk="ikesim-default-psk"))
    ids: IdsModel = Field(default_factory=IdsModel)
    ike: IkeModel = Field(default_factory=IkeModel)
    child: ChildModel | None = None
    child_name: str = "net"
    children: dict[str, ChildModel] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_child_form(self) -> ConnectionModel:
        if self.child is not None and self.children is not None:
            raise ValueError("give either child or children, not both")
        if self.children is not None and "child_name" in self.model_fields_set:
            raise ValueError("child_name goes with child; with children the keys are the names")
        first = self.child if self.children is None else next(iter(self.children.values()))
        if first is not None and first.start is not None:
            raise ValueError("the first child is created by IKE_AUTH: it takes no start")
        return self

    def child_items(self) -> list[tuple[str, ChildModel]]:
        """(name, policy) of every CHILD_SA, the one IKE_AUTH creates first (RFC 7296 §1.2)."""
        if self.children is not None:
            return list(self.children.items())
        return [(self.child_name, self.child if self.child is not None else ChildModel())]

    def child_start(self, index: int) -> float | None:
        """When the *index*-th child is created by CREATE_CHILD_SA (None for the first, which IKE_AUTH creates)."""
        if index == 0:
            return None
        start = self.child_items()[index][1].start
        return self.start + EXTRA_CHILD_DELAY if start is None else start


class ActionModel(_Strict):
    """A scripted command at a given time; ``pin_*`` queue a value (hex, a prefix) for the node's next draw."""

    at: Duration
    node: str
    action: Literal["initiate", "rekey_child", "rekey_ike", "create_child", "delete_child", "delete_ike", "dpd",
                    "pin_nonce", "pin_child_spi", "pin_ike_spi"]
    connection: str | None = None
    """Required except for pin actions (a node's random stream serves all its connections)."""
    child: str | None = None
    value: str | None = None
    """Pin actions: hex bytes the next nonce / CHILD SPI / IKE SPI begins with (e.g. ``"00"``)."""

    @field_validator("value")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is None:
            return v
        text = v.strip().lower().removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"value {v!r} is not hex bytes (e.g. \"00\" or \"0x8000\")") from None
        if not 1 <= len(raw) <= 256:
            raise ValueError(f"value {v!r}: give 1 to 256 bytes")
        return text

    @model_validator(mode="after")
    def _shape(self) -> ActionModel:
        pin = self.action.startswith("pin_")
        if pin and self.value is None:
            raise ValueError(f"{self.action} needs a value (hex, e.g. \"00\")")
        if not pin and self.value is not None:
            raise ValueError(f"{self.action} takes no value")
        if not pin and self.connection is None:
            raise ValueError(f"{self.action} needs a connection")
        if pin and self.child is not None:
            raise ValueError(f"{self.action} takes no child")
        return self

    @property
    def value_bytes(self) -> bytes:
        """The pinned value as bytes (empty for other actions)."""
        return bytes.fromhex(self.value) if self.value is not None else b""


class ScenarioModel(_Strict):
    """A whole scenario file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 1
    duration: Duration
    warmup: Duration = 0.0
    """The first part of the run that the summary's CPU figures (peak, mean, queue, waits) leave out."""
    nodes: dict[str, NodeModel] = Field(default_factory=dict)
    links: list[LinkModel] = Field(default_factory=list)
    connections: dict[str, ConnectionModel] = Field(default_factory=dict)
    actions: list[ActionModel] = Field(default_factory=list)
    nats: dict[str, _network.NatModel] = Field(default_factory=dict)
    """NAT boxes (``ikesim.scenario.network_model``)."""
    routers: dict[str, _network.RouterModel] = Field(default_factory=dict)
    """Forwarding nodes, optionally UDP firewalls."""
    faults: list[_faults.FaultModel] = Field(default_factory=list)
    """Scripted faults on datagrams (``ikesim.scenario.faults_model``)."""
    fleet: _fleet.FleetField = Field(default=None, validate_default=True)
    """N client tunnels to one gateway (``ikesim.scenario.fleet``); without it, nodes and connections are required."""
    description: str = ""
    expect: _expect.ExpectModel | None = None
    """What a run must produce (``ikesim.scenario.expect_model``), checked by ``ikesim check`` and the pytest plugin."""

    @field_validator("warmup")
    @classmethod
    def _warmup_within_run(cls, v: float, info: Any) -> float:
        if "duration" in info.data and v >= info.data["duration"]:
            raise ValueError(f"warmup ({v:g} s) must be shorter than duration ({info.data['duration']:g} s)")
        return v


# fleet.py builds on the models above, so it is imported last; pydantic resolves ``_fleet.FleetField`` on first use.
from ikesim.scenario import expect_model as _expect  # noqa: E402
from ikesim.scenario import faults_model as _faults  # noqa: E402
from ikesim.scenario import fleet as _fleet  # noqa: E402
from ikesim.scenario import network_model as _network  # noqa: E402
