"""CHILD_SA negotiation for IKE_AUTH and CREATE_CHILD_SA (RFC 7296 §2.7, §2.9, §2.17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.crypto.prf import derive_child_keys
from ikesim.crypto.suites import Suite, select_proposal
from ikesim.errors import NoProposalChosen, TsUnacceptable
from ikesim.ike.ke_choice import select_configured_first
from ikesim.ike.profile import ChildProfile, narrow_selectors, selectors_for, strip_ke
from ikesim.ike.sa import ChildSa, IkeSa
from ikesim.wire.iana import ProtocolId
from ikesim.wire.payloads import Proposal, SaPayload, TrafficSelector, TsiPayload, TsrPayload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["ChildOffer", "choose_child", "make_child", "own_selectors", "selectors_within"]

ChildOffer = tuple[ChildProfile, Proposal, Suite, tuple[TrafficSelector, ...],
                   tuple[TrafficSelector, ...]]
"""(profile, answer proposal, suite, narrowed TSi, narrowed TSr)."""


def own_selectors(sa: IkeSa, profile: ChildProfile) -> tuple[tuple[TrafficSelector, ...],
                                                             tuple[TrafficSelector, ...]]:
    """Our configured (local, remote) selectors; ``dynamic`` is the SA's address (RFC 7296 §2.9).

    A peer behind a NAT has a ``dynamic`` address we cannot see: the inner address it proposed
    in its first CHILD_SA (``IkeSa.peer_ts_ip``, RFC 7296 §2.23.1). After a MOBIKE move both ends keep the
    addresses the IKE_SA had before its first move (``local_ts_ip``, ``peer_ts_ip``), as a virtual IP would stay:
    the CHILD_SAs' selectors do not change with the outer addresses (RFC 4555 §1.1).
    """
    pol = profile.policy
    return (selectors_for(pol.local_ts, sa.local_ts_ip or sa.local.ip),
            selectors_for(pol.remote_ts, sa.peer_ts_ip or sa.peer.ip))


def _within(ts: TrafficSelector, outer: TrafficSelector) -> bool:
    """True if every packet *ts* covers is covered by *outer* (RFC 7296 §3.13.1).

    OPAQUE ports (Start 65535, End 0) fit only in ANY ports or OPAQUE ones (RFC 4301 §4.4.1.1: ANY includes
    OPAQUE; a narrower range does not), as ``profile._port_overlap`` and strongSwan's ``get_subset`` decide."""
    if (ts.start_port, ts.end_port) == (65535, 0):
        ports_ok = (outer.start_port, outer.end_port) in ((0, 65535), (65535, 0))
    else:
        ports_ok = outer.start_port <= ts.start_port and ts.end_port <= outer.end_port
    return (ts.ts_type == outer.ts_type
            and outer.ip_protocol in (0, ts.ip_protocol)
            and ports_ok
            and outer.start_address <= ts.start_address and ts.end_address <= outer.end_address)


def selectors_within(selectors: tuple[TrafficSelector, ...], proposed: tuple[TrafficSelector, ...]) -> bool:
    """RFC 7296 §2.9: the responder's selectors are a non-empty narrowing of what was proposed."""
    return bool(selectors) and all(any(_within(ts, p) for p in proposed) for ts in selectors)


def _learn_peer_ip(sa: IkeSa, tsi: TsiPayload) -> None:
    """RFC 7296 §2.23.1: behind a NAT, the peer's own address is the single host its TSi proposes."""
    if not sa.nat_peer or sa.peer_ts_ip or not tsi.selectors:
        return
    first = tsi.selectors[0]
    if first.start_address == first.end_address:
        sa.peer_ts_ip = str(first.start)


def choose_child(sa: IkeSa, sa_payload: SaPayload | None, tsi: TsiPayload | None,
                 tsr: TsrPayload | None, *, with_ke: bool,
                 only: ChildProfile | None = None, prefer_configured: bool = False) -> ChildOffer:
    """Responder: pick a child config, a proposal and narrowed selectors (RFC 7296 §2.7, §2.9).

    *prefer_configured*: our proposal and algorithm order decides, not the peer's (strongSwan
    ``prefer_configured_proposals``, ``ike.ke_choice``). Raises NoProposalChosen or TsUnacceptable.
    """
    if sa_payload is None or tsi is None or tsr is None:
        raise NoProposalChosen("CHILD_SA request without SA, TSi or TSr")
    _learn_peer_ip(sa, tsi)
    candidates = [only] if only is not None else list(sa.profile.children.values())
    proposal_found = False
    for profile in candidates:
        specs = profile.specs if with_ke else profile.auth_specs
        offered = sa_payload.proposals
        if not with_ke:
            offered = tuple(strip_ke(p) for p in offered)
        if prefer_configured:
            chosen = select_configured_first(offered, specs, ProtocolId.ESP)
        else:
            chosen = select_proposal(offered, specs, ProtocolId.ESP)
        if chosen is None:
            continue
        proposal_found = True
        local, remote = own_selectors(sa, profile)
        narrowed_i = narrow_selectors(tsi.selectors, remote)
        narrowed_r = narrow_selectors(tsr.selectors, local)
        if not narrowed_i or not narrowed_r:
            continue
        return profile, chosen[0], chosen[1], narrowed_i, narrowed_r
    if proposal_found:
        raise TsUnacceptable("no acceptable traffic selectors")
    raise NoProposalChosen("no acceptable ESP proposal")


def make_child(core: IkeCore, sa: IkeSa, profile: ChildProfile, suite: Suite, *, spi_in: bytes,
               spi_out: bytes, initiator: bool, nonce_i: bytes, nonce_r: bytes,
               shared: bytes | None, local_ts: tuple[TrafficSelector, ...],
               remote_ts: tuple[TrafficSelector, ...], now: float,
               pfs_group: str = "none") -> ChildSa:
    """Derive CHILD_SA keys (RFC 7296 §2.17) and build the record (not yet installed)."""
    ike_suite, keys = sa.suite, sa.keys
    assert ike_suite is not None and keys is not None and ike_suite.prf_id is not None
    km = derive_child_keys(ike_suite.prf_id, keys.sk_d, suite, nonce_i, nonce_r, shared,
                           core.meter)
    if initiator:
        e_out, a_out, e_in, a_in = km.encr_i, km.integ_i, km.encr_r, km.integ_r
    else:
        e_out, a_out, e_in, a_in = km.encr_r, km.integ_r, km.encr_i, km.integ_i
    return ChildSa(profile, spi_in, spi_out, suite, initiator, local_ts, remote_ts, e_in, a_in,
                   e_out, a_out, now, sa.local_spi, pfs_group=pfs_group)
