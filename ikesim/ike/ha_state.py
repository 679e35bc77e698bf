"""Replicated SA state: what a cluster member synchronizes of an IKE_SA, and taking it over (sans-IO).

``export_ike_sa`` is the state strongSwan's ha plugin sends its peer node as an IKE_SA changes (``ha_ike.c``:
HA_IKE_ADD with the keys, HA_IKE_UPDATE with identities and addresses, HA_IKE_MID_* with the message IDs after
each request; ``ha_child.c``: HA_CHILD_ADD with the ESP SPIs, keys and selectors). Here it is one frozen value
per IKE_SA holding what each of those messages carries: the derived keys rather than the DH secret and nonces
strongSwan derives them from again (the same keys either way, RFC 7296 §2.14, §2.17). In-flight exchanges are not
replicated, as in strongSwan: a member that takes over knows only what its peer synchronized.

``activate`` makes such a record an established IKE_SA of this daemon (strongSwan's ``ha_segments`` turning
passive IKE_SAs active): its CHILD_SAs installed with the keys they had, its lifetimes at the deadlines the
old member drew, DPD from now on. With RFC 6311 negotiated it then synchronizes message IDs (``ike.ha_sync``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ikesim.crypto.prf import IkeKeys
from ikesim.crypto.sk import make_sk_protectors
from ikesim.crypto.suites import Suite
from ikesim.errors import LocalProtocolError
from ikesim.ike import events as ev
from ikesim.ike import ha_sync
from ikesim.ike.profile import ts_text
from ikesim.ike.sa import ChildSa, IkeSa
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.types import Address
from ikesim.wire.payloads import TrafficSelector

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["ChildRecord", "IkeSaRecord", "export_ike_sa", "activate"]


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """One CHILD_SA pair as replicated (strongSwan HA_CHILD_ADD): SPIs, keys, selectors, lifetimes."""

    child: str
    spi_in: bytes
    spi_out: bytes
    suite: Suite
    initiator: bool
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    encr_key_in: bytes
    integ_key_in: bytes
    encr_key_out: bytes
    integ_key_out: bytes
    created_at: float
    pfs_group: str
    rekey_at: float | None
    expire_at: float | None
    rekey_bytes_in: int
    """Soft limits of the inbound and of the outbound SA, each its own draw. strongSwan's passive node installs both SAs
    from HA_CHILD_ADD with a ``get_lifetime`` each, so draws anew; here the active member's draws are kept, as the
    deadlines are."""
    rekey_bytes_out: int
    life_bytes: int
    rekey_packets_in: int
    rekey_packets_out: int
    life_packets: int
    outbound: bool
    state: ChildSaState = ChildSaState.INSTALLED
    """INSTALLED, or REKEYED: replaced by ``replaced_by`` and kept until the peer deletes it (the rekey responder)
    or its ``delete_rekeyed_delay`` ends, as strongSwan's passive node still holds it."""
    replaced_by: bytes = b""


@dataclass(frozen=True, slots=True)
class IkeSaRecord:
    """One established IKE_SA as replicated (strongSwan HA_IKE_ADD/UPDATE/MID_*), with its CHILD_SAs."""

    connection: str
    initiator: bool
    spi_i: bytes
    spi_r: bytes
    local: Address
    peer: Address
    created_at: float
    peer_id: str
    suite: Suite
    keys: IkeKeys
    nonce_i: bytes
    nonce_r: bytes
    next_message_id: int
    peer_message_id: int
    rekey_at: float | None
    expire_at: float | None
    nat_local: bool
    nat_peer: bool
    fragmentation: bool
    mobike: bool
    peer_addresses: tuple[str, ...]
    local_ts_ip: str
    peer_ts_ip: str
    mid_sync: bool
    replay_sync: bool
    children: tuple[ChildRecord, ...]

    @property
    def local_spi(self) -> bytes:
        """The SPI this end chose (spi_i if it is the original initiator, RFC 7296 §2.6)."""
        return self.spi_i if self.initiator else self.spi_r


_REPLICATED_CHILD = (ChildSaState.INSTALLED, ChildSaState.REKEYING, ChildSaState.REKEYED)


def _child_record(child: ChildSa) -> ChildRecord:
    return ChildRecord(
        child.name, child.spi_in, child.spi_out, child.suite, child.initiator, child.local_ts, child.remote_ts,
        child.encr_key_in, child.integ_key_in, child.encr_key_out, child.integ_key_out, child.created_at,
        child.pfs_group, child.rekey_at, child.expire_at, child.rekey_bytes_in, child.rekey_bytes_out, child.life_bytes,
        child.rekey_packets_in, child.rekey_packets_out, child.life_packets, child.outbound,
        ChildSaState.REKEYED if child.state is ChildSaState.REKEYED else ChildSaState.INSTALLED, child.replaced_by)


def export_ike_sa(sa: IkeSa) -> IkeSaRecord | None:
    """The replicated state of an established IKE_SA and its usable CHILD_SAs; None if it is not established."""
    if sa.state is not IkeSaState.ESTABLISHED or sa.suite is None or sa.keys is None:
        return None
    children = tuple(_child_record(c) for c in sa.children.values()
                     if c.state in _REPLICATED_CHILD and not c.expired and not c.redundant)
    return IkeSaRecord(
        sa.profile.connection.name, sa.initiator, sa.spi_i, sa.spi_r, sa.local, sa.peer, sa.created_at, sa.peer_id,
        sa.suite, sa.keys, sa.nonce_i, sa.nonce_r, sa.next_message_id, sa.peer_message_id, sa.rekey_at, sa.expire_at,
        sa.nat_local, sa.nat_peer, sa.fragmentation, sa.mobike, sa.peer_addresses, sa.local_ts_ip, sa.peer_ts_ip,
        sa.mid_sync, sa.replay_sync, children)


def _arm(core: IkeCore, kind: str, key: bytes, at: float | None, now: float) -> None:
    if at is not None:
        core.timers.arm((kind, key), max(at, now))


def activate(core: IkeCore, record: IkeSaRecord, now: float, *, replay_delta: int = 0) -> IkeSa:
    """Make *record* an established IKE_SA of this daemon (a takeover); with RFC 6311 negotiated, queue the
    message ID synchronization, asking for *replay_delta* if replay counter sync was negotiated too .

    Raises LocalProtocolError if its connection is not configured here or its SPI is in use."""
    profile = core.profiles.get(record.connection)
    if profile is None:
        raise LocalProtocolError(f"no connection {record.connection!r} to take the IKE_SA over into")
    local_spi = record.local_spi
    if local_spi in core.sas or any(c.spi_in in core.children for c in record.children):
        raise LocalProtocolError(f"IKE_SA {local_spi.hex()} or one of its CHILD_SAs is in use here")
    sa = IkeSa(profile, record.initiator, record.spi_i, record.spi_r, record.local, record.peer, record.created_at)
    sa.state = IkeSaState.ESTABLISHED
    sa.suite, sa.keys, sa.nonce_i, sa.nonce_r = record.suite, record.keys, record.nonce_i, record.nonce_r
    sa.protect_out, sa.protect_in = make_sk_protectors(record.suite, record.keys, record.initiator, core.rng_iv,
                                                       core.meter)
    sa.peer_id, sa.next_message_id, sa.peer_message_id = record.peer_id, record.next_message_id, record.peer_message_id
    sa.nat_local, sa.nat_peer, sa.fragmentation = record.nat_local, record.nat_peer, record.fragmentation
    sa.mobike, sa.peer_addresses = record.mobike, record.peer_addresses
    sa.local_ts_ip, sa.peer_ts_ip = record.local_ts_ip, record.peer_ts_ip
    sa.mid_sync, sa.replay_sync = record.mid_sync, record.replay_sync
    sa.rekey_at, sa.expire_at = record.rekey_at, record.expire_at
    core.sas[local_spi] = sa
    _arm(core, "ike_soft", local_spi, sa.rekey_at, now)
    _arm(core, "ike_hard", local_spi, sa.expire_at, now)
    sa.last_received_at = now
    core.arm_dpd(sa)
    taken = [r for r in record.children if r.child in profile.children]  # others: not configured here
    core.emit(ev.IkeSaActivated(**sa.ids(), initiator=sa.initiator, local=sa.local, peer=sa.peer,
                                next_message_id=sa.next_message_id, peer_message_id=sa.peer_message_id,
                                child_count=len(taken), rekey_at=sa.rekey_at, expire_at=sa.expire_at))
    for r in taken:
        _activate_child(core, sa, r, now)
    ha_sync.queue(core, sa, now, replay_delta=replay_delta)
    return sa


def _activate_child(core: IkeCore, sa: IkeSa, r: ChildRecord, now: float) -> None:
    """Install one replicated CHILD_SA pair under *sa* with its old deadlines (RFC 7296 §2.8)."""
    profile = sa.profile.children[r.child]
    child = ChildSa(profile, r.spi_in, r.spi_out, r.suite, r.initiator, r.local_ts, r.remote_ts, r.encr_key_in,
                    r.integ_key_in, r.encr_key_out, r.integ_key_out, r.created_at, sa.local_spi, r.pfs_group)
    child.rekey_at, child.expire_at = r.rekey_at, r.expire_at
    child.rekey_bytes_in, child.rekey_bytes_out, child.life_bytes = r.rekey_bytes_in, r.rekey_bytes_out, r.life_bytes
    child.rekey_packets_in, child.rekey_packets_out = r.rekey_packets_in, r.rekey_packets_out
    child.life_packets = r.life_packets
    child.outbound = r.outbound
    child.state, child.replaced_by = r.state, r.replaced_by
    sa.children[r.spi_in] = child
    core.children[r.spi_in] = child
    if core.by_spi_out is not None:
        core.by_spi_out[r.spi_out] = r.spi_in
    if r.state is ChildSaState.REKEYED:
        if not r.outbound:  # it was lingering inbound only: it goes after its delay from now (RFC 7296 §2.8)
            core.timers.arm(("linger", r.spi_in), now + profile.policy.delete_rekeyed_delay)
    else:
        _arm(core, "child_soft", r.spi_in, r.rekey_at, now)
    _arm(core, "child_hard", r.spi_in, r.expire_at, now)
    s = r.suite
    core.emit(ev.ChildSaActivated(
        **sa.ids(), child=r.child, spi_in=r.spi_in, spi_out=r.spi_out, encr=s.encr_name, integ=s.integ_name,
        local_ts=ts_text(r.local_ts), remote_ts=ts_text(r.remote_ts), outbound=r.outbound, rekey_at=r.rekey_at,
        expire_at=r.expire_at, local=sa.local, peer=sa.peer, encr_key_in=r.encr_key_in, integ_key_in=r.integ_key_in,
        encr_key_out=r.encr_key_out, integ_key_out=r.integ_key_out))
