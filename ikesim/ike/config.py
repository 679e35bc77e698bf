"""Configuration of the IKE core: policies with documented defaults and units.

Plain frozen dataclasses (STYLE.md rule 12). The scenario layer converts YAML
into these; the core never sees pydantic or YAML. Every duration is a float
number of seconds. Defaults are strongSwan's (shared/REFERENCE.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ikesim.types import Address

__all__ = [
    "RetransmitPolicy",
    "pluto_timeouts",
    "Lifetime",
    "AuthMethodName",
    "Credentials",
    "IkePolicy",
    "ChildPolicy",
    "Connection",
    "DaemonConfig",
]


@dataclass(frozen=True, slots=True)
class RetransmitPolicy:
    """Request retransmission schedule (RFC 7296 §2.1).

    The n-th retransmission (n = 1..tries) is sent ``timeout * base**(n-1)``
    seconds after the previous transmission (capped at ``limit`` if set); the
    exchange is given up ``timeout * base**tries`` after the last one.
    strongSwan: 4 s, 1.8, 5 tries: retransmits at 4, 11.2, 24.2, 47.5, 89.5 s,
    gives up at 165.1 s. ``jitter`` (fraction, 0..1) subtracts a random share of
    each timeout, as strongSwan's ``retransmit_jitter``. With ``give_up`` set the
    schedule is libreswan pluto's instead (``pluto_timeouts``): 0.5 s, 0.5 s, then
    doubling, given up once the waits add up to ``give_up``.
    """

    timeout: float = 4.0
    """Seconds before the first retransmission."""
    base: float = 1.8
    """Multiplier between successive timeouts."""
    tries: int = 5
    """Number of retransmissions before giving up."""
    jitter: float = 0.0
    """Fraction of each timeout subtracted at random (0 = none)."""
    limit: float | None = None
    """Upper bound on a single timeout in seconds (None = no cap)."""
    give_up: float | None = None
    """libreswan pluto's ``retransmit-timeout`` in seconds: when set, the schedule is pluto's (``timeouts``,
    ``pluto_timeouts``) and ``tries`` is pluto's retransmission limit; None: charon's schedule above."""

    @classmethod
    def strongswan(cls) -> RetransmitPolicy:
        """strongSwan charon defaults."""
        return cls()

    @classmethod
    def libreswan(cls, retransmit_timeout: float = 60.0) -> RetransmitPolicy:
        """libreswan pluto (``retransmit.c``): ``retransmit-interval`` 500 ms, ``retransmit-timeout`` 60 s (the
        default of libreswan up to 5.3 and of its ipsec.conf(5); pluto 5.4 lowered the built-in one to 30 s,
        ``libreswan(30.0)``), at most ``MAXIMUM_RETRANSMITS_PER_EXCHANGE`` = 12 retransmissions. Retransmits
        0.5, 1, 2, 4, 8, 16 and 32 s after the first send, gives up at 64 s (with 30 s: six, at 32 s)."""
        return cls(timeout=0.5, base=2.0, tries=12, give_up=retransmit_timeout)

    def timeouts(self) -> list[float]:
        """Waits after each transmission: ``tries`` retransmission waits plus the final give-up wait
        (pluto's when ``give_up`` is set, RFC 7296 §2.1)."""
        if self.give_up is not None:
            return pluto_timeouts(self.timeout, self.give_up, self.tries, self.base)
        out = []
        for n in range(self.tries + 1):
            t = self.timeout * self.base**n
            if self.limit is not None:
                t = min(t, self.limit)
            out.append(t)
        return out


def pluto_timeouts(interval: float, timeout: float, limit: int = 12, base: float = 2.0) -> list[float]:
    """libreswan pluto's waits after each transmission (RFC 7296 §2.1; ``retransmit.c``): the first retransmission
    *interval* after the send, the next after *interval* again, then each wait *base* times the previous one while
    that stays below *timeout* (``double_delay``); the exchange is given up at the retransmission event where the
    accumulated waits reach *timeout* or *limit* retransmissions were sent. The last entry is the wait from the
    last retransmission to giving up."""
    delay = interval
    waited = interval
    out = [interval]
    for n in range(limit):
        if waited >= timeout:
            break
        if n > 0 and delay * base < timeout:
            delay *= base
        waited += delay
        out.append(delay)
    return out


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Soft and hard lifetimes of an SA (RFC 7296 §2.8), strongSwan semantics.

    The rekey (soft) deadline is ``rekey_time`` after the SA is created, or
    ``rekey_fraction * life_time`` when ``rekey_fraction`` is set (per-side
    stagger: the client rekeys at 0.7, the gateway at 0.8), minus a random
    whole number of seconds drawn as strongSwan draws it (``ike.lifetimes``):
    a CHILD_SA rekeys at the earlier of its inbound and outbound SAs' draws of
    ``apply_jitter`` (0 .. ``rand_time`` s each), an IKE_SA at ``rekey_time``
    minus 0 .. ``rand_time`` - 1 s. ``rand_time`` counts in whole seconds. The
    hard deadline is ``life_time`` after creation for a CHILD_SA, ``over_time``
    (``life_time - rekey_time``) after the drawn rekey time for an IKE_SA.
    0 means "never" for each of them.

    CHILD_SAs also have volume lifetimes, which the data plane counts (RFC 4301 §4.4.2.1): the soft byte
    limit of each SA a CHILD_SA installs, inbound and outbound, is ``rekey_bytes - U{0..rand_bytes}``, its own
    draw (strongSwan ``child_cfg.c`` ``apply_jitter`` per ``child_sa.c`` ``install_internal``: a whole number, at
    least 1), the hard one ``life_bytes``; the same for packets. The CHILD_SA rekeys when the first of its SAs
    reaches its soft limit. 0 = no limit.
    """

    rekey_time: float = 3600.0
    """Seconds after creation at which to rekey (before jitter)."""
    life_time: float = 3960.0
    """Seconds after creation at which the SA expires (hard lifetime)."""
    rand_time: float = 360.0
    """Upper bound of the random amount subtracted from the rekey time (seconds, whole seconds count)."""
    rekey_fraction: float | None = None
    """If set, rekey at this fraction of ``life_time`` instead of at ``rekey_time``."""
    rekey_bytes: int = 0
    """Soft byte limit for the data plane, before jitter (0 = none; strongSwan ``rekey_bytes``)."""
    life_bytes: int = 0
    """Hard byte limit (0 = none; strongSwan ``life_bytes``)."""
    rekey_packets: int = 0
    """Soft packet limit, before jitter (0 = none; strongSwan ``rekey_packets``)."""
    life_packets: int = 0
    """Hard packet limit (0 = none; strongSwan ``life_packets``)."""
    rand_bytes: int = 0
    """Upper bound of the random number of bytes subtracted from ``rekey_bytes`` (strongSwan ``rand_bytes``)."""
    rand_packets: int = 0
    """Upper bound of the random number of packets subtracted from ``rekey_packets`` (strongSwan ``rand_packets``)."""

    @classmethod
    def ike_default(cls) -> Lifetime:
        """strongSwan IKE_SA: rekey 4 h, over_time 24 min, rand_time 24 min."""
        return cls(rekey_time=14400.0, life_time=15840.0, rand_time=1440.0)

    @classmethod
    def child_default(cls) -> Lifetime:
        """strongSwan CHILD_SA: rekey 1 h, life 66 min, rand_time 6 min."""
        return cls(rekey_time=3600.0, life_time=3960.0, rand_time=360.0)

    def soft_after(self) -> float | None:
        """Nominal soft deadline before jitter, in seconds after creation; None if never."""
        if self.rekey_fraction is not None:
            return self.rekey_fraction * self.life_time if self.life_time > 0 else None
        return self.rekey_time if self.rekey_time > 0 else None

    def hard_after(self) -> float | None:
        """Hard deadline in seconds after creation; None if never."""
        return self.life_time if self.life_time > 0 else None


class AuthMethodName(enum.Enum):
    """How this node authenticates itself (RFC 7296 §2.15, RFC 7427)."""

    PSK = "psk"
    ECDSA_P256 = "ecdsa"
    ED25519 = "ed25519"
    EAP_MD5 = "eap-md5"
    """EAP-MD5 client (RFC 3748 §5.4) in IKE_AUTH (RFC 7296 §2.16; ``ike.eap_auth``)."""
    EAP_MSCHAPV2 = "eap-mschapv2"
    """EAP-MSCHAPv2 client (RFC 2759, MSK per RFC 3079)."""
    EAP_TLS = "eap-tls"
    """EAP-TLS client, as a round-trip and cost model (``ike.eap_methods``)."""

    @property
    def is_eap(self) -> bool:
        """This node authenticates itself with EAP (RFC 7296 §2.16): its first IKE_AUTH request carries no AUTH."""
        return self.value.startswith("eap-")


@dataclass(frozen=True, slots=True)
class Credentials:
    """A node's authentication material.

    For PSK, ``psk`` is the shared secret. For signatures, ``private_key`` is a
    ``cryptography`` private key, ``certificate`` this node's X.509 certificate,
    ``trust_anchors`` the CA certificates that peer certificates must chain to
(through the intermediates the peer sends).
    """

    method: AuthMethodName = AuthMethodName.PSK
    psk: bytes = field(default=b"", repr=False)
    """The pre-shared key: never in the repr."""
    private_key: Any = field(default=None, repr=False)
    certificate: Any = None
    trust_anchors: tuple[Any, ...] = ()
    intermediates: tuple[Any, ...] = ()
    """CA certificates between ``certificate`` and the peer's trust anchor, sent as further CERT
    payloads after the end-entity one (RFC 7296 §3.6)."""
    eap_identity: str = ""
    """EAP client: the identity sent in EAP-Identity and as the MS-CHAPv2 name ("" = the connection's ``local_id``,
    as strongSwan without ``eap_id``)."""
    eap_secret: str = field(default="", repr=False)
    """EAP client: the password (EAP-MD5, EAP-MSCHAPv2): never in the repr."""
    eap_method: str = ""
    """EAP server: ``md5``, ``mschapv2`` or ``tls``, run for an initiator whose first IKE_AUTH has no AUTH
    (RFC 7296 §2.16); "" = no EAP server (such a request fails with AUTHENTICATION_FAILED)."""
    eap_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """EAP server: (EAP identity, password) pairs."""
    eap_identity_request: bool = False
    """EAP server: ask for the identity with EAP-Identity first (strongSwan ``eap_id = %any``); else the EAP
    identity is the IDi."""
    eap_aaa: bool = False
    """EAP server: each EAP answer waits for an AAA (RADIUS) backend: ``AaaRequested`` events, answered with
    ``IkeDaemon.deliver_aaa`` (``ike.eap_auth``)."""
    eap_tls_sizes: tuple[int, int, int] = (3500, 1200, 1024)
    """EAP-TLS model: octets of the server's and the client's Certificate messages, largest EAP-TLS message
    (``ike.eap_methods.TlsModel``)."""
    eap_tls_resumption: bool = False
    """EAP-TLS client and server: keep TLS sessions and resume them with the abbreviated handshake (RFC 5216 §2.1.3,
    RFC 5246 §7.3; ``ike.tls_sessions``); both ends need it."""
    eap_tls_session_lifetime: float = 3600.0
    """EAP-TLS resumption: seconds a session stays resumable after its full handshake (``ike.tls_sessions``)."""
    peer_method: AuthMethodName | None = None
    """How the peer authenticates; None: as we do, or for an EAP client PSK if ``psk`` is set, else certificates."""

    def peer_auth(self) -> AuthMethodName:
        """The method the peer's AUTH is checked with (RFC 7296 §2.15, §2.16)."""
        if self.peer_method is not None:
            return self.peer_method
        if self.method.is_eap:
            return AuthMethodName.PSK if self.psk else AuthMethodName.ECDSA_P256
        return self.method


@dataclass(frozen=True, slots=True)
class IkePolicy:
    """IKE_SA policy: proposals, lifetimes, retransmissions, liveness."""

    proposals: tuple[str, ...] = ("aes256gcm16-prfsha256-x25519",)
    """strongSwan-style proposal strings, in order of preference (``aes128-sha256-modp2048``)."""
    lifetime: Lifetime = field(default_factory=Lifetime.ike_default)
    retransmit: RetransmitPolicy = field(default_factory=RetransmitPolicy)
    dpd_delay: float = 0.0
    """Seconds of inbound silence after which a liveness check is sent (0 = off)."""
    nonce_size: int = 32
    """Nonce length in bytes (RFC 7296 §2.10: at least half the PRF key size)."""
    collision_retry_base: float = 15.0
    """Rekey retry after TEMPORARY_FAILURE: base seconds (strongSwan: 15 s ...)."""
    collision_retry_jitter: float = 10.0
    """... minus a random amount below this many seconds."""
    prefer_configured_proposals: bool = True
    """As a responder, pick CHILD_SA proposals (and so their KE group) by our own order, not the peer's (strongSwan
    ``charon.prefer_configured_proposals``: yes; RFC 7296 §2.7, ``ikesim.ike.ke_choice``)."""
    prefer_previous_dh_group: bool = True
    """An IKE_SA rekey offers the old IKE_SA's KE group first, not the first configured one (strongSwan
    ``charon.prefer_previous_dh_group``: yes; RFC 7296 §1.3.2, ``ikesim.ike.ke_choice``)."""
    nat_keepalive: float = 20.0
    """Seconds between NAT keepalives while behind a NAT (RFC 3948 §2.3; strongSwan: 20 s; 0 = none)."""
    collision_delete_timeout: float = 30.0
    """The winner of an IKE_SA rekey collision deletes the redundant IKE_SA itself if the peer has not
    after this many seconds (RFC 7296 §2.8.2; strongSwan: 30 s)."""
    fragmentation: bool = True
    """Offer IKE fragmentation (RFC 7383 §2.3: N(IKEV2_FRAGMENTATION_SUPPORTED) in IKE_SA_INIT); used
    on an IKE_SA only if both ends offered it (strongSwan: ``fragmentation = yes``)."""
    fragment_size: int = 1280
    """Largest IP datagram, IP and UDP headers (and the non-ESP marker on port 4500) included, that
    an encrypted IKE message is sent in before it is split into SKF fragments (RFC 7383 §2.5.1;
    strongSwan ``charon.fragment_size``: 1280)."""
    mobike: bool = False
    """Offer MOBIKE (RFC 4555 §3.1: N(MOBIKE_SUPPORTED) in IKE_AUTH); used on an IKE_SA only if both ends offered
    it. With it the initiator floats to port 4500 after IKE_SA_INIT even without a NAT, as strongSwan does
    (``ike_natd.c``). strongSwan's ``mobike`` defaults to yes; ikesim's to False so that existing scenarios keep
    their results (set ``mobike: true`` per connection, as a mobile client does)."""
    mobike_no_nats: bool = False
    """MOBIKE initiator: send N(NO_NATS_ALLOWED) with UPDATE_SA_ADDRESSES (RFC 4555 §3.9; strongSwan never does)."""
    mobike_return_routability: bool = False
    """MOBIKE responder: check a new initiator address with N(COOKIE2) before moving the CHILD_SAs there
    (RFC 4555 §3.5, §5.2.3); strongSwan moves at once (``ike_mobike.c``), hence False."""
    dpd_action: str = "clear"
    """After a liveness check or any request times out (RFC 7296 §2.4): ``clear`` (close), ``trap`` (re-arm the
    trap policy: the next packet re-establishes), ``restart`` (re-establish at once). strongSwan ``dpd_action``: clear."""
    close_action: str = "none"
    """When the peer deletes the IKE_SA: ``none``, ``trap`` or ``restart`` (strongSwan ``close_action``: none)."""
    keyingtries: int = 1
    """Attempts to establish (or re-establish) before giving up; 0 = forever (strongSwan ``keyingtries``: 1)."""
    roam: str = "reauth"
    """What a client (a connection with ``remote_addr``) does when its path under an IKE_SA breaks: its address went
    away, or a liveness probe failed (``ikesim.ike.reconnect``). ``reauth``: a new IKE_SA from another address
    (strongSwan ``roam``); ``follow``: keep the IKE_SA, move our address to the best usable one and send a liveness
    check from there (the peer follows only if it sees us behind a NAT, RFC 7296 §2.23); ``keep``: stay (DPD or a
    timeout notices, as strongSwan with a static local address); ``smart``: CREATE_CHILD_SA from the new address,
    then a MOBIKE update if negotiated, then new IKE_SAs with exponential backoff. With MOBIKE negotiated ``reauth``,
    ``follow`` and ``keep`` all use MOBIKE (RFC 4555 §3.5)."""
    liveness_probe: float = 0.0
    """Client: seconds of inbound silence after which an empty INFORMATIONAL probes the path (sent 3 times, 1 s apart,
    given up after 3 s); one that fails is a broken path, handled as ``roam`` says (``ikesim.ike.reconnect``; RFC
    7296 §2.4). 0 = off."""
    reauth_time: float = 0.0
    """Seconds after which the IKE_SA is reauthenticated: a new IKE_SA_INIT and IKE_AUTH with its CHILD_SAs, then the
    old IKE_SA deleted (RFC 7296 §2.8.3; strongSwan ``reauth_time``, default 0: off). ``ikesim.ike.reauth``."""
    make_before_break: bool = True
    """Reauthentication builds the new IKE_SA before deleting the old one (strongSwan ``charon.make_before_break``:
    yes since 6.0, no in 5.9); False: the old IKE_SA is deleted first (break-before-make)."""
    childless: str = "never"
    """RFC 6023 childless IKE_SAs (strongSwan ``childless``: ``allow``, ``prefer``, ``force``, ``never``). ``never``:
    no N(CHILDLESS_IKEV2_SUPPORTED); ``allow``: sent in IKE_SA_INIT and childless IKE_AUTH requests accepted;
    ``prefer``: the initiator goes childless if the responder supports it; ``force``: always childless.
    strongSwan's default is ``allow``; ikesim's is ``never`` so that existing scenarios keep their bytes.
    ``ikesim.ike.childless``."""
    message_id_sync: bool = False
    """Send N(IKEV2_MESSAGE_ID_SYNC_SUPPORTED) in IKE_AUTH (RFC 6311): a cluster that took this IKE_SA over may
    then synchronize message IDs with an INFORMATIONAL on message ID 0 (``ikesim.ike.ha_sync``). strongSwan sends it
    in every first IKE_AUTH request (``ike_auth.c``) and answers the synchronization; ikesim's default is False so
    that existing scenarios keep their bytes (set it on the client and the cluster's connection)."""
    replay_counter_sync: bool = False
    """Send N(IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED) in IKE_AUTH (RFC 6311): after a takeover the cluster may ask
    this peer to advance the sequence numbers of its outbound ESP SAs (N(IPSEC_REPLAY_COUNTER_SYNC)). strongSwan
    never offers it."""
    resumption: bool = False
    """RFC 5723 session resumption (``ikesim.ike.resumption``; strongSwan has none). A client sends N(TICKET_REQUEST) in
    IKE_AUTH, keeps the ticket after the IKE_SA is gone, refreshes it in an INFORMATIONAL before it expires, and comes
    back with IKE_SESSION_RESUME while it holds a valid one. A gateway issues tickets (N(TICKET_LT_OPAQUE)) to
    clients that ask and accepts IKE_SESSION_RESUME for this connection. Default False: no new payloads."""
    ticket_lifetime: float = 3600.0
    """Gateway: seconds a ticket it issues is valid, bounded by ``reauth_time`` when set (RFC 5723 §6.2)."""


@dataclass(frozen=True, slots=True)
class ChildPolicy:
    """CHILD_SA policy (RFC 7296 §1.3, §2.9, §2.17)."""

    name: str = "net"
    proposals: tuple[str, ...] = ("aes256gcm16",)
    """ESP proposals; a KE group in the string (``aes256gcm16-x25519``) requests PFS on rekey."""
    lifetime: Lifetime = field(default_factory=Lifetime.child_default)
    local_ts: tuple[str, ...] = ("dynamic",)
    """CIDRs; ``dynamic`` means this node's own address /32."""
    remote_ts: tuple[str, ...] = ("dynamic",)
    delete_rekeyed_delay: float = 5.0
    responder_switch: str = "delete"
    """When a rekey responder sends with the new SA: ``delete`` (once the old one is deleted, RFC 7296 §2.8) or
    ``early`` (as soon as it answers the CREATE_CHILD_SA request)."""
    """Seconds the old inbound SA lingers after a rekey so late packets still decrypt."""
    mode: str = "tunnel"


@dataclass(frozen=True, slots=True)
class Connection:
    """One configured connection on one node (strongSwan's ``conn``)."""

    name: str
    local_id: str
    """Identity: an e-mail-like ``user@host`` (ID_RFC822_ADDR), an IP (ID_IPV4_ADDR) or an FQDN."""
    remote_id: str | None = None
    """Expected peer identity; None accepts any."""
    remote_addr: Address | None = None
    """Peer address, needed to initiate."""
    local_addr: Address | None = None
    """Source address to use; None = the daemon's first address."""
    credentials: Credentials = field(default_factory=Credentials)
    ike: IkePolicy = field(default_factory=IkePolicy)
    children: tuple[ChildPolicy, ...] = field(default_factory=lambda: (ChildPolicy(),))


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Node-wide settings of an ``IkeDaemon``; the IKE_SA_INIT flood defaults are strongSwan charon's
    (``conf/options/charon.opt``, ``src/libcharon/network/receiver.c``)."""

    name: str
    addresses: tuple[Address, ...]
    connections: tuple[Connection, ...]
    cookie_threshold: int | None = 30
    """With this many responder half-open IKE_SAs (answered IKE_SA_INIT, no IKE_AUTH yet), IKE_SA_INIT
    requests must carry a COOKIE (RFC 7296 §2.6); 0 = always; None = never (strongSwan's 0).
    strongSwan ``charon.cookie_threshold``: 30."""
    cookie_threshold_ip: int | None = 3
    """The same, counting only the half-open IKE_SAs from the request's source IP; None = never.
    strongSwan ``charon.cookie_threshold_ip``: 3."""
    block_threshold: int | None = 5
    """With this many half-open IKE_SAs from one source IP, IKE_SA_INIT requests from it are dropped;
    None = never. strongSwan ``charon.block_threshold``: 5 (raised to ``cookie_threshold_ip + 1`` if not above it)."""
    init_limit_half_open: int | None = None
    """With this many half-open IKE_SAs in all, every IKE_SA_INIT request is dropped; None = no limit
    (strongSwan ``charon.init_limit_half_open``: 0, off)."""
    half_open_timeout: float = 30.0
    """Seconds a responder keeps a half-open IKE_SA waiting for IKE_AUTH (strongSwan ``charon.half_open_timeout``: 30)."""
    ticket_secret: bytes = field(default=b"", repr=False)
    """RFC 5723 §6.3: the secret the session resumption ticket keys are derived from (``ikesim.ike.tickets``); a
    cluster sharing it accepts each other's tickets, and tickets survive a restart. Empty: drawn from the daemon's
    seeded ``ticket`` stream."""
    ticket_key_rotation: float = 3600.0
    """Seconds each ticket key is used to issue tickets; an older key is accepted while tickets under it may live."""
