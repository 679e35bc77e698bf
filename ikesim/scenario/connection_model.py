"""A tunnel of a scenario (``connections:``): IKE_SA and CHILD_SA policies, authentication and identities."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, ClassVar, Literal

from pydantic import Field, StrictFloat, StrictInt, ValidationInfo, field_validator, model_validator

from ikesim.crypto.proposal_lists import parse_proposals
from ikesim.errors import ConfigError
from ikesim.scenario.base import Duration, PositiveDuration, Ratio, StrictModel
from ikesim.scenario.eap_model import EapModel
from ikesim.scenario.messages import input_kind, quoted
from ikesim.scenario.peers import merge_peers, peer_role
from ikesim.wire.iana import ProtocolId

__all__ = ["RetransmitModel", "SideValue", "IkeModel", "ChildModel", "AuthModel", "IdsModel", "EXTRA_CHILD_DELAY", "ConnectionBody",
           "ConnectionModel", "PeerModel", "parse_byte_size", "derived_volume"]


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
    """Every proposal parses (``default``, ``!`` and ipsec.conf ``ike=``/``esp=`` values: ``ikesim.crypto.proposal_lists``)."""
    try:
        parse_proposals(values, protocol)
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
    dpd_action: Literal["clear", "trap", "restart"] = "clear"
    """After DPD or any request gets no answer (RFC 7296 §2.4): ``clear`` the tunnel, ``trap`` it again (the next
    packet re-establishes), or ``restart`` it at once with a new IKE_SA (strongSwan ``dpd_action``: clear)."""
    close_action: Literal["none", "trap", "restart", "start"] = "none"
    """When the peer deletes the IKE_SA: ``none``, ``trap`` it again, or ``restart`` it at once with a new IKE_SA
    (``start``, swanctl.conf's spelling, is ``restart``; strongSwan ``close_action``: none)."""
    keyingtries: StrictInt = Field(default=1, ge=0, le=2**32 - 1)
    """Attempts to establish (and re-establish) a tunnel whose peer does not answer, each a full retransmission
    schedule; 0 = forever (strongSwan ``keyingtries``: 1)."""
    mobike: bool = False
    """Offer MOBIKE (RFC 4555): with both ends offering it, the IKE_SA and CHILD_SAs move when an address changes."""
    mobike_no_nats: bool = False
    """Send N(NO_NATS_ALLOWED) with UPDATE_SA_ADDRESSES (RFC 4555 §3.9); needs ``mobike: true``."""
    mobike_return_routability: bool = False
    """Check a peer's new address with N(COOKIE2) before moving to it (RFC 4555 §3.5); needs ``mobike: true``."""
    roam: Literal["reauth", "follow", "keep", "smart"] = "reauth"
    """What the client does when its path breaks (its address goes away, or a liveness probe fails): ``reauth`` a new
    IKE_SA from another address (strongSwan), ``follow`` move its address and let the gateway follow it (only behind a
    NAT, RFC 7296 §2.23), ``keep`` stay until DPD notices, ``smart`` CREATE_CHILD_SA, then MOBIKE, then new IKE_SAs
    with backoff (``ikesim.ike.reconnect``). ``follow`` and ``keep`` need ``mobike: false`` (MOBIKE moves the IKE_SA)."""
    liveness_probe: Duration = 0.0
    """Seconds of inbound silence after which the client probes its path with an empty INFORMATIONAL (1 s x 3); a
    failed probe is a broken path, handled as ``roam`` says (0 = off)."""
    reauth_time: Duration = 0.0
    """Seconds after which the initiator reauthenticates the IKE_SA: a new IKE_SA_INIT and IKE_AUTH with new CHILD_SAs,
    then the old IKE_SA deleted (RFC 7296 §2.8.3; strongSwan ``reauth_time``, minus up to ``rand_time``; 0 = never).
    It bounds the hard lifetime too: at most ``over_time`` after it (``ikesim.ike.reauth``)."""
    make_before_break: bool = True
    """Reauthentication builds the new IKE_SA before it deletes the old one (strongSwan ``charon.make_before_break``:
    yes); ``false``: the old one is deleted first (break-before-make)."""
    message_id_sync: bool = False
    """Offer RFC 6311 message ID synchronization (N(IKEV2_MESSAGE_ID_SYNC_SUPPORTED) in IKE_AUTH): an HA cluster that
    takes the IKE_SA over synchronizes the message IDs with an INFORMATIONAL on message ID 0 (both ends must offer
    it; strongSwan always does)."""
    replay_counter_sync: bool = False
    """Offer RFC 6311 replay counter synchronization (N(IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED)): after a takeover the
    cluster asks the peer to advance its outbound ESP sequence numbers (strongSwan never offers it)."""
    childless: Literal["never", "allow", "prefer", "force"] = "never"
    """Childless IKE_SAs (RFC 6023), strongSwan's ``childless``, for both ends: ``allow`` (the responder announces and
    accepts them), ``prefer`` (the initiator also goes childless when the responder announces it, and creates the first
    CHILD_SA with CREATE_CHILD_SA), ``force`` (only childless: the initiator gives up on a responder that does not
    announce it, the responder refuses a regular IKE_AUTH), ``never`` (strongSwan's default is ``allow``)."""
    resumption: bool = False
    """IKEv2 session resumption (RFC 5723; strongSwan has none), for both ends: the client asks for a ticket in IKE_AUTH,
    refreshes it before it expires, and re-establishes (DPD or close_action restart, roaming without MOBIKE, a
    reconnect, a new initiate) with IKE_SESSION_RESUME while its ticket is valid; the gateway issues tickets and
    accepts them. A reauthentication never resumes. ``ikesim.ike.resumption``."""
    ticket_lifetime: PositiveDuration = 3600.0
    """How long a ticket the gateway issues is valid (more than 0 s), at most ``reauth_time`` when that is set."""
    prefer_configured_proposals: bool = True
    """As a responder, pick CHILD_SA proposals - and so their KE group - by this end's own order, not the peer's
    (strongSwan ``charon.prefer_configured_proposals``: yes). A KE payload of another group than the picked one gets
    INVALID_KE_PAYLOAD (RFC 7296 §1.3). Per end with ``peers:``."""
    prefer_previous_dh_group: bool = True
    """An IKE_SA rekey offers the old IKE_SA's KE group first, not the first configured one (strongSwan
    ``charon.prefer_previous_dh_group``: yes)."""

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

    @field_validator("ticket_lifetime")
    @classmethod
    def _ticket_needs_resumption(cls, v: float, info: ValidationInfo) -> float:
        """A ticket lifetime acts only with resumption (RFC 5723): without ``resumption: true`` it would do nothing."""
        if v != 3600.0 and not info.data.get("resumption", False):
            raise ValueError("needs resumption: true (tickets are issued only with RFC 5723 session resumption)")
        return v

    @field_validator("mobike_no_nats", "mobike_return_routability")
    @classmethod
    def _needs_mobike(cls, v: bool, info: ValidationInfo) -> bool:
        """The MOBIKE options act only on a MOBIKE IKE_SA (RFC 4555): without ``mobike: true`` they would do nothing."""
        if v and not info.data.get("mobike", False):
            raise ValueError("needs mobike: true (it acts only on a MOBIKE IKE_SA, RFC 4555)")
        return v

    @field_validator("reauth_time")
    @classmethod
    def _reauth_after_rand(cls, v: float, info: ValidationInfo) -> float:
        """strongSwan reauthenticates at reauth_time minus a random amount below rand_time: rand_time < reauth_time;
        without IKE rekeying the hard lifetime must come after it."""
        data = info.data
        if not v or any(k not in data for k in ("rekey_time", "life_time", "over_time", "rand_time")):
            return v
        life, rand = cls.derived(data["rekey_time"], data["life_time"], data["over_time"])
        given = data["rand_time"]
        if given is not None and given >= v:
            raise ValueError(f"rand_time {given:g}s must be shorter than reauth_time {v:g}s (a reauthentication could "
                             "fall due at once)")
        if given is None and rand >= v:
            raise ValueError(f"the default rand_time {rand:g}s ({cls.RAND_DEFAULT}) is not shorter than reauth_time "
                             f"{v:g}s: give a rand_time below reauth_time")
        if not data["rekey_time"] and 0 < life <= v:
            raise ValueError(f"reauth_time {v:g}s must be shorter than life_time {life:g}s (the IKE_SA would expire "
                             "before it is reauthenticated)")
        return v

    @field_validator("roam")
    @classmethod
    def _roam_without_mobike(cls, v: str, info: ValidationInfo) -> str:
        """``follow`` and ``keep`` act only without MOBIKE: with ``mobike: true`` both ends offer it and MOBIKE moves the
        IKE_SA instead (RFC 4555 §3.5 turns the §2.23 follow off), so they would do nothing."""
        if v in ("follow", "keep") and info.data.get("mobike", False):
            raise ValueError(f"{v!r} needs mobike: false (with MOBIKE the IKE_SA moves by MOBIKE, RFC 4555 §3.5); "
                             "use 'reauth' or 'smart'")
        return v


UINT64_MAX = 2**64 - 1
"""strongSwan keeps volume lifetimes in 64-bit counters."""
_SIZE = re.compile(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*) *([kKmMgG]?)")
"""strongSwan ``vici_config.c`` ``parse_bytes``: ``strtoull(v, 0)`` (decimal, 0x hex, 0 octal), spaces, then k, m or g."""
_SUFFIX = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _whole(key: str, v: object) -> int:
    """*v* if it is a whole number in 0 .. 2^64 - 1, else ValueError naming *key*."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{key} must be a whole number, got {input_kind(v)}")
    if v < 0:
        raise ValueError(f"{key} {v} is negative: give 0 (no limit) or more")
    if v > UINT64_MAX:
        raise ValueError(f"{key} {v} is more than 2^64 - 1")
    return v


def parse_byte_size(key: str, v: object) -> int:
    """A byte count as swanctl.conf takes it (strongSwan ``parse_bytes``): a whole number, or text with an optional
    k, m or g suffix, 1024-based (``512k`` = 524288, ``1 G`` = 1073741824); ValueError naming *key* otherwise."""
    if not isinstance(v, str):
        return _whole(key, v)
    m = _SIZE.fullmatch(v.strip())
    if m is None:
        if v.strip().startswith("-"):
            raise ValueError(f"{key} {quoted(v)} is negative: give 0 (no limit) or more")
        raise ValueError(f"{key} {quoted(v)} is not a size: give bytes as a whole number, or with k, m or g "
                         "(1024-based, as swanctl.conf), e.g. 512k, 2m, 1g")
    digits = m.group(1)
    number = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if digits[0] == "0" else int(digits)
    return _whole(key, number * _SUFFIX[m.group(2).lower()])


def derived_volume(rekey: int | None, life: int | None, rand: int | None) -> tuple[int, int, int]:
    """(rekey, life, rand) of a volume lifetime with strongSwan's defaults for the ones not given (``vici_config.c``
    ``check_lifetimes``): rekey = life / 1.1 (else 0, no limit), life = rekey * 1.1, rand = life - rekey, whole numbers
    rounded down as strongSwan's 64-bit integers are."""
    if rekey is None:
        rekey = int(life / 1.1) if life is not None else 0
    if life is None:
        life = min(int(rekey * 1.1), UINT64_MAX)
    if rand is None:
        rand = life - min(life, rekey)
    return rekey, life, rand


class ChildModel(_LifetimeFields):
    """CHILD_SA policy; ``life_time`` defaults to rekey_time + 10 %, rand_time to life - rekey; the byte and packet
    limits (swanctl.conf's ``rekey_bytes`` ... ``rand_packets``) likewise, as ``derived_volume``."""

    RAND_DEFAULT: ClassVar[str] = "= life_time - rekey_time"

    proposals: list[str] = Field(default_factory=lambda: ["aes256gcm16"], min_length=1)
    rekey_time: Duration = 3600.0
    local_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    remote_ts: list[str] = Field(default_factory=lambda: ["dynamic"])
    delete_rekeyed_delay: Duration = 5.0
    responder_switch: Literal["delete", "early"] = "delete"
    """When a rekey responder starts sending with the new SA: ``delete`` (when the initiator deletes the old one,
    RFC 7296 §2.8, strongSwan) or ``early`` (as soon as it answers: what some implementations do)."""
    start: Duration | None = None
    """When to create this CHILD_SA with CREATE_CHILD_SA (not for the first child, which IKE_AUTH creates)."""
    rekey_bytes: int | None = None
    """Bytes through an SA before it is rekeyed (``512k``, ``2m``, ``1g``: 1024-based); default life_bytes / 1.1, else 0 = no limit."""
    life_bytes: int | None = Field(default=None, validate_default=True)
    """Bytes through an SA before it is no longer used and deleted; default rekey_bytes + 10 % (0 = no limit)."""
    rand_bytes: int | None = Field(default=None, validate_default=True)
    """Upper bound of the random number of bytes subtracted from rekey_bytes; default life_bytes - rekey_bytes."""
    rekey_packets: int | None = None
    """Packets through an SA before it is rekeyed; default life_packets / 1.1, else 0 = no limit."""
    life_packets: int | None = Field(default=None, validate_default=True)
    """Packets through an SA before it is no longer used; default rekey_packets + 10 % (0 = no limit)."""
    rand_packets: int | None = Field(default=None, validate_default=True)
    """Upper bound of the random number of packets subtracted from rekey_packets; default life_packets - rekey_packets."""

    _one_or_many = field_validator("proposals", mode="before")(_proposal_list)

    @field_validator("rekey_bytes", "life_bytes", "rand_bytes", mode="before")
    @classmethod
    def _bytes(cls, v: object, info: ValidationInfo) -> int | None:
        return None if v is None else parse_byte_size(str(info.field_name), v)

    @field_validator("rekey_packets", "life_packets", "rand_packets", mode="before")
    @classmethod
    def _packets(cls, v: object, info: ValidationInfo) -> int | None:
        return None if v is None else _whole(str(info.field_name), v)

    @field_validator("life_bytes", "life_packets")
    @classmethod
    def _volume_life_after_rekey(cls, v: int | None, info: ValidationInfo) -> int | None:
        """The hard volume limit lies beyond the soft one (as life_time > rekey_time); 0 = no hard limit."""
        unit = str(info.field_name).removeprefix("life_")
        rekey = info.data.get(f"rekey_{unit}")
        if v and rekey and v <= rekey:
            raise ValueError(f"life_{unit} {v} must be more than rekey_{unit} {rekey} (the SA would expire before it is rekeyed)")
        return v

    @field_validator("rand_bytes", "rand_packets")
    @classmethod
    def _volume_rand_below_rekey(cls, v: int | None, info: ValidationInfo) -> int | None:
        """strongSwan rekeys at rekey minus a random amount up to rand: rand < rekey (as rand_time < rekey_time)."""
        unit = str(info.field_name).removeprefix("rand_")
        if f"life_{unit}" not in info.data or f"rekey_{unit}" not in info.data:
            return v  # refused already
        rekey, life, rand = derived_volume(info.data.get(f"rekey_{unit}"), info.data[f"life_{unit}"], v)
        if rekey == 0:
            return v
        if v is not None and v >= rekey:
            raise ValueError(f"rand_{unit} {v} must be less than rekey_{unit} {rekey} (a rekey could fall due at once)")
        if v is None and rand >= rekey:
            raise ValueError(f"the default rand_{unit} {rand} (= life_{unit} - rekey_{unit}) is not less than rekey_{unit} "
                             f"{rekey}: give a rand_{unit} below rekey_{unit}")
        return v

    def volume(self) -> dict[str, Any]:
        """``Lifetime`` keywords of the byte and packet limits, strongSwan's defaults filled in (``derived_volume``)."""
        rb, lb, jb = derived_volume(self.rekey_bytes, self.life_bytes, self.rand_bytes)
        rp, lp, jp = derived_volume(self.rekey_packets, self.life_packets, self.rand_packets)
        return {"rekey_bytes": rb, "life_bytes": lb, "rand_bytes": jb,
                "rekey_packets": rp, "life_packets": lp, "rand_packets": jp}

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
    eap: EapModel | None = None
    """The initiator authenticates with EAP instead (RFC 7296 §2.16); ``method`` is then the responder's only."""

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


class PeerModel(StrictModel):
    """One end's own settings (``ikesim.scenario.peers``): its ``ike``, ``child`` or ``children`` keys replace the
    connection's, key by key; its ``local_ts``/``remote_ts`` are its own view, as in its swanctl.conf."""

    ike: IkeModel | None = None
    child: ChildModel | None = None
    children: dict[str, ChildModel] | None = None


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
    peers: dict[str, PeerModel] | None = None
    """Each end's own settings over the connection's (``initiator``/``responder``, or the node's name): proposals,
    lifetimes, rand_time, retransmission, DPD ..., as two swanctl.conf files (``ikesim.scenario.peers``)."""
    start_action: Literal["start", "trap", "none"] = "start"
    """strongSwan's ``start_action``: ``start`` initiates at ``start``; ``trap`` installs a trap policy, and the
    first packet of a flow from the initiator that finds no CHILD_SA initiates (the kernel's acquire); ``none``
    never initiates (scripted actions only)."""

    _merge_peers = model_validator(mode="before")(merge_peers)

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

    def peer(self, side: str) -> PeerModel | None:
        """The ``peers`` entry of the *side* end (``initiator`` or ``responder``), if any."""
        for key, p in (self.peers or {}).items():
            if peer_role(key, self.initiator, self.responder) == side:
                return p
        return None

    def ike_for(self, side: str) -> IkeModel:
        """The IKE_SA policy of the *side* end: its own (``peers``), else the connection's."""
        p = self.peer(side)
        return p.ike if p is not None and p.ike is not None else self.ike

    def child_items(self, side: str | None = None) -> list[tuple[str, ChildModel]]:
        """(name, policy) of every CHILD_SA, the one IKE_AUTH creates first (RFC 7296 §1.2); with *side*, that end's
        own policies (``peers``) where it has them."""
        if self.children is not None:
            items = list(self.children.items())
        else:
            items = [(self.child_name, self.child if self.child is not None else ChildModel())]
        p = self.peer(side) if side is not None else None
        if p is None:
            return items
        if p.child is not None:
            return [(items[0][0], p.child)]
        return [(name, (p.children or {}).get(name, cm)) for name, cm in items]

    def child_start(self, index: int) -> float | None:
        """When the *index*-th child is created by CREATE_CHILD_SA (None for the first, which IKE_AUTH creates)."""
        if index == 0:
            return None
        start = self.child_items()[index][1].start
        return self.start + EXTRA_CHILD_DELAY if start is None else start
