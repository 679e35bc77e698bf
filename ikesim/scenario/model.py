"""The scenario schema: pydantic models (unknown keys are errors; defaults are strongSwan's)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ikesim.scenario.durations import parse_duration, parse_ratio

__all__ = [
    "Duration", "Ratio", "NodeModel", "LinkModel", "RetransmitModel", "SideValue", "IkeModel",
    "ChildModel", "AuthModel", "IdsModel", "ConnectionModel", "ActionModel", "ScenarioModel",
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


class IkeModel(_LifetimeFields):
    """IKE_SA policy; ``life_time`` defaults to rekey_time + over_time (10 %), rand_time to over_time."""

    proposals: list[str] = Field(default_factory=lambda: ["aes256gcm16-prfsha256-x25519"], min_length=1)
    rekey_time: Duration = 14400.0
    retransmit: Literal["strongswan", "libreswan"] | RetransmitModel = "strongswan"
    dpd_delay: Duration = 0.0

    @field_validator("proposals", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class ChildModel(_LifetimeFields):
    """CHILD_SA policy; ``life_time`` defaults to rekey_time + 10 %, rand_time to life - rekey."""

    proposals: list[str] = Field(default_factory=lambda: ["aes256gcm16"], min_length=1)
    rekey_time: Duration = 3600.0
    local_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    remote_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    delete_rekeyed_delay: Duration = 5.0

    @field_validator("proposals", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class AuthModel(_Strict):
    """How both peers authenticate (RFC 7296 §2.15)."""

    method: Literal["psk", "ecdsa", "ed25519"] = "psk"
    psk: str | None = None

    @model_validator(mode="after")
    def _psk_needed(self) -> AuthModel:
        if self.method == "psk" and not self.psk:
            raise ValueError("method psk needs a non-empty psk")
        return self


class IdsModel(_Strict):
    """Identities of both ends (user@host = ID_RFC822_ADDR, IP = ID_IPV4_ADDR, else ID_FQDN)."""

    initiator: str = "client@sim.test"
    responder: str = "gw.sim.test"


class ConnectionModel(_Strict):
    """A tunnel between an initiator node and a responder node."""

    initiator: str
    responder: str
    start: Duration = 0.0
    auth: AuthModel = Field(default_factory=lambda: AuthModel(psk="ikesim-default-psk"))
    ids: IdsModel = Field(default_factory=IdsModel)
    ike: IkeModel = Field(default_factory=IkeModel)
    child: ChildModel = Field(default_factory=ChildModel)
    child_name: str = "net"


class ActionModel(_Strict):
    """A scripted command at a given time."""

    at: Duration
    node: str
    action: Literal["initiate", "rekey_child", "rekey_ike", "create_child", "delete_child", "delete_ike", "dpd"]
    connection: str
    child: str | None = None


class ScenarioModel(_Strict):
    """A whole scenario file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 1
    duration: Duration
    nodes: dict[str, NodeModel] = Field(min_length=1)
    links: list[LinkModel] = Field(default_factory=list)
    connections: dict[str, ConnectionModel] = Field(min_length=1)
    actions: list[ActionModel] = Field(default_factory=list)
    description: str = ""
