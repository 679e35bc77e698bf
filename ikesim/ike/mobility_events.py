"""Events of mobility and reconnection (RFC 4555 MOBIKE, re-establishment, a client's reconnect strategies).

Part of the event catalogue ``ikesim.ike.events`` (which re-exports them; same conventions): ``ike.mobike``,
``ike.reestablish``, ``ike.reconnect`` and ``ike.reauth`` emit them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.ike.event_base import IkeEvent
from ikesim.types import Address

__all__ = [
    "IkeSaMoved",
    "MobikeNegotiated",
    "PeerAddressesUpdated",
    "IkeSaRoaming",
    "IkeSaReestablishing",
    "IkeSaReauthenticating",
    "TrapReinstalled",
    "ReconnectStep",
    "ReconnectEnded",
    "LivenessProbeFailed",
]


@dataclass(slots=True, kw_only=True)
class IkeSaMoved(IkeEvent):
    """The IKE_SA and its CHILD_SAs now use *local* and *peer* (RFC 4555 §3.5: a MOBIKE update, sent or received).

    ``method``: ``mobike`` (UPDATE_SA_ADDRESSES), ``mobike_probe`` (a path test answered from another path,
    RFC 4555 §3.6), ``mobike_responder`` (the peer's update), ``follow`` (a client without MOBIKE moved itself and
    relies on the peer's RFC 7296 §2.23 follow, ``ike.reconnect``). The CHILD_SAs' ESP follows (as strongSwan's
    ``update_hosts`` with ``UPDATE_HOSTS_FORCE_ALL``); ``nat_local``/``nat_peer`` are the NAT state after the move."""

    old_local: Address
    old_peer: Address
    local: Address
    peer: Address
    method: str
    nat_local: bool
    nat_peer: bool


@dataclass(slots=True, kw_only=True)
class MobikeNegotiated(IkeEvent):
    """Both ends sent N(MOBIKE_SUPPORTED) in IKE_AUTH (RFC 4555 §3.1): this IKE_SA can move."""

    peer_addresses: str
    """The peer's additional addresses (ADDITIONAL_IP4/6_ADDRESS, RFC 4555 §3.4), besides its current one,
    space-separated (empty: NO_ADDITIONAL_ADDRESSES)."""


@dataclass(slots=True, kw_only=True)
class PeerAddressesUpdated(IkeEvent):
    """The peer sent a new address list (ADDITIONAL_*_ADDRESS or NO_ADDITIONAL_ADDRESSES, RFC 4555 §3.4, §3.6)."""

    peer_addresses: str
    """Space-separated; empty after NO_ADDITIONAL_ADDRESSES."""


@dataclass(slots=True, kw_only=True)
class IkeSaRoaming(IkeEvent):
    """This node's addresses changed under an established IKE_SA (strongSwan ``ike_sa.roam``).

    ``action``: ``keep`` (the current path still works, or a client's ``roam: keep``), ``address_list`` (MOBIKE: send
    the new list), ``mobike`` (MOBIKE: test paths and update, RFC 4555 §3.5–§3.6), ``reestablish`` (no MOBIKE: a new
    IKE_SA from another address, strongSwan's reauth on an address change), ``follow`` / ``smart`` (a client's
    ``roam`` strategy, ``ike.reconnect``), ``stale`` (no usable address: wait); afterwards ``refused``
    (UNACCEPTABLE_ADDRESSES) or ``return_routability_failed`` (a responder's check got no answer)."""

    local: Address
    addresses: str
    """The usable local addresses, best first, space-separated (empty: none)."""
    action: str


@dataclass(slots=True, kw_only=True)
class IkeSaReestablishing(IkeEvent):
    """A new IKE_SA (``spi_i``; ``spi_r`` zeros) replaces one that failed: its IKE_SA_INIT follows (RFC 7296 §2.4).

    strongSwan ``ike_sa.reestablish`` (``dpd_action``/``close_action`` restart: a full IKE_SA_INIT and IKE_AUTH,
    then CREATE_CHILD_SA for further CHILD_SAs) or a ``keyingtries`` retry of an initiation that got no answer
    (``ike_sa.retransmit``: "peer not responding, trying again"). Emitted just before the new IKE_SA's
    ``ExchangeStarted``: metrics attribute the new IKE_SA to the failure through ``old_spi``.
    """

    old_spi: bytes
    """Local SPI of the IKE_SA it replaces (removed at the same instant: break-before-make; a make-before-break
    reauthentication deletes it once the new one has its CHILD_SAs)."""
    reason: str
    """Why the old one went: ``dpd_timeout``, ``timeout`` (any request, or the initiation, got no answer),
    ``deleted_by_peer``, ``reauth`` (``IkePolicy.reauth_time``, ``ike.reauth``), or what the caller of
    ``ikesim.ike.reestablish.reestablish`` says (e.g. ``roam``)."""
    action: str
    """``restart`` (dpd_action/close_action, or a caller's reestablish), ``retry`` (keyingtries), or for a
    reauthentication ``make_before_break`` / ``break_before_make``."""
    attempt: int
    """1 for a re-establishment, n for the n-th initiation attempt; ``keyingtries`` bounds it (0 = forever)."""
    children: str
    """Child configurations re-created, space-separated: the first with IKE_AUTH, the others by CREATE_CHILD_SA."""


@dataclass(slots=True, kw_only=True)
class IkeSaReauthenticating(IkeEvent):
    """The IKE_SA's reauthentication time came (``IkePolicy.reauth_time``, RFC 7296 §2.8.3; strongSwan
    ``rekey_ike_sa_job`` with reauth, ``ike_sa.reauth``): what this node does about it (``ikesim.ike.reauth``).

    ``spi_i``/``spi_r`` name the IKE_SA to reauthenticate; the new one is linked to it by
    ``IkeSaReestablishing.old_spi`` (reason ``reauth``)."""

    action: str
    """``make_before_break`` (a new IKE_SA with the CHILD_SAs' configurations at once, the old one deleted when they
    are up), ``break_before_make`` (the old IKE_SA's Delete first, the new IKE_SA once it is answered), ``delayed``
    (an exchange is under way: tried again at ``retry_at``) or ``refused`` (this end cannot initiate: the IKE_SA
    lives until its hard lifetime)."""
    reason: str
    """``delayed``: what is under way (``ike_rekeying``, ``child_rekeying``, ``child_deleting``, ``deleting``, ...);
    ``refused``: ``responder``; ``make_before_break``/``break_before_make``: ``no_children`` when no CHILD_SA is
    left to re-create (strongSwan: "unable to reauthenticate IKE_SA, no CHILD_SA to recreate"), else empty."""
    retry_at: float | None = None
    """``delayed``: when the reauthentication is tried again (strongSwan: 15 s minus up to 10 s); else None."""


@dataclass(slots=True, kw_only=True)
class TrapReinstalled(IkeEvent):
    """``dpd_action``/``close_action`` trap: the driver installs the trap policy of (``connection``, ``child``)
    again, so the next packet it catches re-initiates (strongSwan ``trap_manager.install``; the sim's
    ``NodeDataPlane.acquire``). ``spi_i``/``spi_r`` name the IKE_SA that failed (RFC 7296 §2.4); one event per child
    configuration it had. Only a connection with a ``remote_addr`` is trapped (strongSwan: "installing trap
    failed, remote address unknown")."""

    child: str
    """The child configuration's name."""
    reason: str
    """``dpd_timeout``, ``timeout`` or ``deleted_by_peer``."""


@dataclass(slots=True, kw_only=True)
class ReconnectStep(IkeEvent):
    """A client's smart reconnect (``IkePolicy.roam = "smart"``, ``ikesim.ike.reconnect``) starts a step for the
    IKE_SA whose path broke; ``spi_i``/``spi_r`` name that IKE_SA in every step (the new IKE_SAs of step 3 are linked
    to it by ``IkeSaReestablishing.old_spi``). Emitted before the step's first request."""

    step: str
    """``create_child`` (CREATE_CHILD_SA on the IKE_SA from the new address, RFC 7296 §1.3.1, §2.23), ``mobike`` (the
    path test and UPDATE_SA_ADDRESSES, RFC 4555 §3.5, §3.6) or ``reestablish`` (a new IKE_SA, RFC 7296 §1.2)."""
    attempt: int
    """1; for ``reestablish`` the n-th new IKE_SA (``keyingtries`` bounds it, 0 = forever)."""
    reason: str
    """What broke the path: ``address_change`` (the host's address went away) or ``liveness_probe`` (a probe failed)."""


@dataclass(slots=True, kw_only=True)
class ReconnectEnded(IkeEvent):
    """A client's smart reconnect is over (``ikesim.ike.reconnect``); ``spi_i``/``spi_r`` as in ``ReconnectStep``."""

    step: str
    """The step it ended in (``create_child``, ``mobike`` or ``reestablish``)."""
    attempt: int
    """That step's attempt."""
    outcome: str
    """``restored`` (step 1 answered, the MOBIKE update answered, or a new IKE_SA established), ``failed`` (every
    attempt of step 3 used up, or nothing to bring back), ``superseded`` (the path broke again: a new run starts) or
    ``aborted`` (the IKE_SA went away otherwise, e.g. deleted by the peer)."""


@dataclass(slots=True, kw_only=True)
class LivenessProbeFailed(IkeEvent):
    """A client's local liveness probe (``IkePolicy.liveness_probe``, an empty INFORMATIONAL, RFC 7296 §2.4) got no
    answer: its path is taken as broken (``ikesim.ike.reconnect``)."""

    local: Address
    """The address the probe left from."""
    peer: Address
    addresses: str
    """The usable local addresses afterwards, best first, space-separated (the probe's own one taken out while
    another one is left)."""
    action: str
    """What follows: ``mobike`` (the probe becomes a path test, RFC 4555 §3.6), ``smart`` (the smart reconnect's
    steps), ``follow`` (our address moves, the probe is sent again from there), ``reauth`` (a new IKE_SA from another
    address) or ``dead`` (no other address, or ``roam = keep``: ``DeadPeerDetected`` and ``dpd_action``, as DPD)."""
