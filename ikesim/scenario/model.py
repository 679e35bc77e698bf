"""The scenario schema: pydantic models (unknown keys are errors; defaults are strongSwan's)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ikesim.crypto.suites import parse_proposal
from ikesim.errors import ConfigError
from ikesim.scenario.durations import parse_duration, parse_ratio
from ikesim.wire.iana import ProtocolId

__all__ = [
    "Duration", "Ratio", "NodeModel", "LinkModel", "RetransmitModel", "SideValue", "IkeModel",
    "ChildModel", "AuthModel", "EXTRA_CHILD_DELAY", "IdsModel", "ConnectionModel", "ActionModel", "ScenarioModel",
]

Duration = Annotated[float, BeforeValidator(parse_duration)]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeModel(_Strict):
    """A host: its addresses and node-wide settings."""

    addresses: list[str] = Field(min_length=1)
    cookie_threshold: int | None = None


class LinkModel(_Strict):
    """A bidirectional link between two nodes."""

    between: tuple[str, str]
    delay: Duration = 0.0
    jitter: Duration = 0.0
    loss: Ratio = 0.0
    mtu: int = Field(default=1500, ge=68, le=65535)


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


# fleet.py builds on the models above, so it is imported last; pydantic resolves ``_fleet.FleetField`` on first use.
from ikesim.scenario import expect_model as _expect  # noqa: E402
from ikesim.scenario import faults_model as _faults  # noqa: E402
from ikesim.scenario import fleet as _fleet  # noqa: E402
from ikesim.scenario import network_model as _network  # noqa: E402
