"""A tunnel of a scenario (``connections:``): IKE_SA and CHILD_SA policies, authentication and identities."""

from __future__ import annotations

import ipaddress
from typing import ClassVar, Literal

from pydantic import Field, StrictFloat, StrictInt, ValidationInfo, field_validator, model_validator

from ikesim.crypto.suites import parse_proposal
from ikesim.errors import ConfigError
from ikesim.scenario.base import Duration, Ratio, StrictModel
from ikesim.scenario.messages import input_kind
from ikesim.wire.iana import ProtocolId

__all__ = ["RetransmitModel", "SideValue", "IkeModel", "ChildModel", "AuthModel", "IdsModel", "EXTRA_CHILD_DELAY", "ConnectionBody",
           "ConnectionModel"]


class RetransmitModel(StrictModel):
    """RFC 7296 §2.1 retransmission schedule (strongSwan defaults)."""

    timeout: Duration = 4.0
    base: StrictFloat = Field(default=1.8, ge=1.0)
    tries: StrictInt = Field(default=5, ge=0, le=30)
    jitter: Ratio = 0.0
    limit: Duration | None = None


class SideValue(StrictModel):
    """A value that differs per side (per-side stagger)."""

    initiator: StrictFloat | None = None
    responder: StrictFloat | None = None


class _LifetimeFields(StrictModel):
    """Soft and hard lifetimes (RFC 7296 §2.8) as strongSwan's swanctl.conf spells them; 0 = never."""

    rekey_time: Duration
    life_time: Duration | None = None
    over_time: Duration | None = None
    rand_time: Duration | None = Field(default=None, validate_default=True)
    rekey_fraction: StrictFloat | SideValue | None = None
    RAND_DEFAULT: ClassVar[str] = ""
    """How rand_time is derived when not given (for messages)."""

    @classmethod
    def derived(cls, rekey_time: float, life_time: float | None, over_time: float | None) -> tuple[float, float]:
        """(life_time, rand_time) when they are not given (subclasses: strongSwan's defaults)."""
        raise NotImplementedError

    @field_validator("life_time")
    @classmethod
    def _life_after_rekey(cls, v: float | None, info: ValidationInfo) -> float | None:
        """The hard lifetime ends after the soft one (strongSwan: life_time > rekey_time)."""
        rekey = info.data.get("rekey_time")
        if v is not None and rekey and v <= rekey:
            raise ValueError(f"life_time {v:g}s must be longer than rekey_time {rekey:g}s (the SA would expire before it is rekeyed)")
        return v

    @field_validator("rand_time")
    @classmethod
    def _rand_below_rekey(cls, v: float | None, info: ValidationInfo) -> float | None:
        """strongSwan rekeys at rekey_time minus a random amount below rand_time: rand_time < rekey_time."""
        rekey = info.data.get("rekey_time")
        if not rekey or any(k not in info.data for k in ("life_time", "over_time")):
            return v
        life, rand = cls.derived(rekey, info.data["life_time"], info.data["over_time"])
        if v is not None and v >= rekey:
            raise ValueError(f"rand_time {v:g}s must be shorter than rekey_time {rekey:g}s (a rekey could fall due at once)")
        if v is None and rand >= rekey:
            raise ValueError(f"the default rand_time {rand:g}s ({cls.RAND_DEFAULT}) is not shorter than rekey_time {rekey:g}s: "
                             "give a rand_time below rekey_time")
        return v

    @field_validator("rekey_fraction")
    @classmethod
    def _fraction(cls, v: float | SideValue | None, info: ValidationInfo) -> float | SideValue | None:
        vals = [v] if isinstance(v, float) else ([v.initiator, v.responder] if v else [])
        for x in vals:
            if x is not None and not 0.0 < x <= 1.0:
                raise ValueError("rekey_fraction must be in (0, 1]")
        data = info.data
        if "rekey_time" not in data or any(k not in data for k in ("life_time", "over_time", "rand_time")):
            return v
        life, rand = cls.derived(data["rekey_time"], data["life_time"], data["over_time"])
        rand = data["rand_time"] if data["rand_time"] is not None else rand
        for x in vals:
            if x is not None and life > 0 and rand >= x * life:
                raise ValueError(f"rekey_fraction {x:g} puts the rekey at {x * life:g}s, which is not after rand_time {rand:g}s")
        return v


def _proposal_list(v: object) -> object:
    """``proposals`` is one strongSwan proposal string or a list of them."""
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list):
        raise ValueError(f"expected a proposal string or a list of them, got {input_kind(v)}")
    return v


def _check_proposals(values: list[str], protocol: ProtocolId) -> list[str]:
    for text in values:
        try:
            parse_proposal(text, protocol)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return values


class IkeModel(_LifetimeFields):
    """IKE_SA policy; ``life_time`` defaults to rekey_time + over_time (10 %), rand_time to over_time."""

    RAND_DEFAULT: ClassVar[str] = "= over_time"

    proposals: list[str] = Field(default_factory=lambda: ["aes256gcm16-prfsha256-x25519"], min_length=1)
    rekey_time: Duration = 14400.0
    retransmit: Literal["strongswan", "libreswan"] | RetransmitModel = "strongswan"
    dpd_delay: Duration = 0.0
    nat_keepalive: Duration = 20.0
    """Seconds between NAT keepalives while behind a NAT (RFC 3948 §2.3; 0 = none)."""
    fragmentation: bool = True
    """Offer IKE fragmentation (RFC 7383); used only if both ends offer it."""
    fragment_size: StrictInt = Field(default=1280, ge=256, le=65535)
    """Largest IP datagram of an encrypted IKE message before it is split into SKF fragments (strongSwan: 1280)."""

    @classmethod
    def derived(cls, rekey_time: float, life_time: float | None, over_time: float | None) -> tuple[float, float]:
        """strongSwan IKE_SA: over_time 10 % of rekey_time, life_time rekey_time + over_time, rand_time over_time."""
        over = over_time if over_time is not None else 0.1 * rekey_time
        return (life_time if life_time is not None else rekey_time + over), over

    _one_or_many = field_validator("proposals", mode="before")(_proposal_list)

    @field_validator("proposals")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        return _check_proposals(v, ProtocolId.IKE)


class ChildModel(_LifetimeFields):
    """CHILD_SA policy; ``life_time`` defaults to rekey_time + 10 %, rand_time to life - rekey."""

    RAND_DEFAULT: ClassVar[str] = "= life_time - rekey_time"

    proposals: list[str] = Field(default_factory=lambda: ["aes256gcm16"], min_length=1)
    rekey_time: Duration = 3600.0
    local_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    remote_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    delete_rekeyed_delay: Duration = 5.0
    start: Duration | None = None
    """When to create this CHILD_SA with CREATE_CHILD_SA (not for the first child, which IKE_AUTH creates)."""

    _one_or_many = field_validator("proposals", mode="before")(_proposal_list)

    @classmethod
    def derived(cls, rekey_time: float, life_time: float | None, over_time: float | None) -> tuple[float, float]:
        """strongSwan CHILD_SA: life_time rekey_time + 10 % (or + over_time), rand_time life_time - rekey_time."""
        life = life_time if life_time is not None else (rekey_time + over_time if over_time is not None else 1.1 * rekey_time)
        return life, max(0.0, life - rekey_time)

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


class AuthModel(StrictModel):
    """How both peers authenticate (RFC 7296 §2.15)."""

    method: Literal["psk", "ecdsa", "ed25519"] = "psk"
    psk: str | None = None
    chain: StrictInt = Field(default=1, ge=1, le=8)
    """Certificates each end sends: 1 = an end entity issued by the CA; n = the end entity and n - 1
    intermediate CAs (CA -> intermediates -> end entity), all as CERT payloads (RFC 7296 §3.6)."""

    @model_validator(mode="after")
    def _psk_needed(self) -> AuthModel:
        if self.method == "psk" and not self.psk:
            raise ValueError("method psk needs a non-empty psk")
        return self


class IdsModel(StrictModel):
    """Identities of both ends (user@host = ID_RFC822_ADDR, IP = ID_IPV4_ADDR, else ID_FQDN)."""

    initiator: str = "client@sim.test"
    responder: str = "gw.sim.test"


EXTRA_CHILD_DELAY = 10.0
"""Default delay after the connection's start before a further child (``children``) is created."""


class ConnectionBody(StrictModel):
    """What a connection shares with a fleet's connection template: authentication, identities, IKE_SA and CHILD_SA policies.

    Either ``child`` (one CHILD_SA named ``child_name``) or ``children`` (name -> policy): the first
    child is created with IKE_AUTH, each further one by CREATE_CHILD_SA at its ``start`` (default:
    the connection's start + 10 s).
    """

    auth: AuthModel = Field(default_factory=lambda: AuthModel(psk="ikesim-default-psk"))
    ids: IdsModel = Field(default_factory=IdsModel)
    ike: IkeModel = Field(default_factory=IkeModel)
    child: ChildModel | None = None
    child_name: str = "net"
    children: dict[str, ChildModel] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_child_form(self) -> ConnectionBody:
        if self.child is not None and self.children is not None:
            raise ValueError("give either child or children, not both")
        if self.children is not None and "child_name" in self.model_fields_set:
            raise ValueError("child_name goes with child; with children the keys are the names")
        first = self.child if self.children is None else next(iter(self.children.values()))
        if first is not None and first.start is not None:
            raise ValueError("the first child is created by IKE_AUTH: it takes no start")
        return self


class _Ends(StrictModel):
    """The nodes at the two ends of a connection and when it starts (listed before the body's keys)."""

    initiator: str
    responder: str
    start: Duration = 0.0


class ConnectionModel(ConnectionBody, _Ends):
    """A tunnel between an initiator node and a responder node (``_Ends``), with a ``ConnectionBody``."""

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
