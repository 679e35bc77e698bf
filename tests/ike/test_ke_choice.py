"""KE groups in CREATE_CHILD_SA (RFC 7296 §1.3, §1.2, §2.7), as strongSwan chooses them (``ikesim.ike.ke_choice``).

INVALID_KE_PAYLOAD makes the initiator retry once with the group asked for; a rekey offers the group negotiated
for the SA it replaces; a responder picks by its own proposal order (``prefer_configured_proposals``) unless told
otherwise; NO_PROPOSAL_CHOSEN in a rekey keeps the old SA and retries later (strongSwan ``schedule_delayed_rekey``).
"""

from __future__ import annotations

from hostile import hostile_response
from ikepeers import CLIENT, CLIENT_ID, GATEWAY, GATEWAY_ID, LONG, Peers, config, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.ke_choice import promote_group, rekey_group
from ikesim.ike.profile import ConnectionProfile
from ikesim.rng import Rng
from ikesim.wire.codec import unprotect_message
from ikesim.wire.iana import KeGroup, NotifyType, TransformType
from ikesim.wire.payloads import KePayload, NotifyPayload, SaPayload

T = 10.0
MODP_FIRST = ("aes256gcm16-modp2048", "aes256gcm16-ecp256")
ECP_FIRST = ("aes256gcm16-ecp256", "aes256gcm16-modp2048")


def _peers(client: tuple[str, ...], gateway: tuple[str, ...], *, prefer_configured: bool = True) -> Peers:
    """A client and a gateway whose CHILD_SA proposals are *client* / *gateway*; the gateway's
    ``prefer_configured_proposals`` is *prefer_configured*."""
    rng = Rng(3)
    c = config("client", CLIENT, GATEWAY, local_id=CLIENT_ID, remote_id=GATEWAY_ID,
               children=(ChildPolicy(proposals=client, lifetime=LONG),))
    g = config("gateway", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None,
               ike=IkePolicy(prefer_configured_proposals=prefer_configured),
               children=(ChildPolicy(proposals=gateway, lifetime=LONG),))
    return Peers(IkeDaemon(c, rng=rng.child("client")), IkeDaemon(g, rng=rng.child("gateway")))


def _offer(p: Peers, d: object) -> tuple[int, list[list[int]]]:
    """(KE group, KE groups of each proposal) of the client's CREATE_CHILD_SA request *d*, decrypted."""
    (sa,) = p.gateway.sas.values()
    msg = unprotect_message(d.data, sa.protect_in)  # type: ignore[attr-defined]
    sa_payload = msg.get(SaPayload)
    ke = msg.get(KePayload)
    assert sa_payload is not None and ke is not None
    return ke.group, [[t.transform_id for t in prop.transforms if t.transform_type == TransformType.KE]
                      for prop in sa_payload.proposals]


def test_invalid_ke_payload_retries_once_with_the_requested_group() -> None:
    """The client rekeys with modp2048 (its first proposal; the CHILD_SA came from IKE_AUTH, without KE); the gateway
    only takes ecp256: INVALID_KE_PAYLOAD(ecp256). The client sends the rekey again at once, ecp256 first, and it
    completes as one rekey; the next rekey offers ecp256 straight away (strongSwan ``recreate_sa``)."""
    p = _peers(MODP_FIRST, ("aes256gcm16-ecp256",))
    c_spi, _ = p.establish()
    p.client.rekey_child_sa(c_spi, T)
    (first,) = p.client.datagrams_to_send(T)
    assert _offer(p, first) == (KeGroup.MODP_2048, [[KeGroup.MODP_2048], [KeGroup.ECP_256]])
    p.gateway.receive_datagram(first.data, first.src, first.dst, T)
    (refused,) = p.gateway.datagrams_to_send(T)
    assert [(e.notify, e.exchange) for e in p.events(p.gateway) if isinstance(e, ev.ErrorNotifySent)] == [
        ("INVALID_KE_PAYLOAD", "CREATE_CHILD_SA")]
    p.client.receive_datagram(refused.data, refused.src, refused.dst, T)
    (again,) = p.client.datagrams_to_send(T)
    ec = p.events(p.client)
    assert [(type(e).__name__, getattr(e, "outcome", getattr(e, "purpose", None))) for e in ec] == [
        ("RekeyStarted", None), ("ExchangeStarted", "rekey_child"), ("ErrorNotifyReceived", None),
        ("ExchangeCompleted", "INVALID_KE_PAYLOAD"), ("ExchangeStarted", "rekey_child")]
    assert (ec[1].message_id, ec[4].message_id) == (2, 3)
    assert _offer(p, again) == (KeGroup.ECP_256, [[KeGroup.ECP_256], [KeGroup.MODP_2048]])
    assert p.client.children[c_spi].state.value == "rekeying" and p.client.children[c_spi].outbound
    p.gateway.receive_datagram(again.data, again.src, again.dst, T)
    p.settle(T)
    ec = p.events(p.client)
    assert names(ec)[:4] == ["ExchangeCompleted", "ChildSaInstalled", "RekeyCompleted", "ExchangeStarted"]
    assert (ec[1].pfs_group, ec[2].old_spi) == ("ecp256", c_spi)
    new_c = ec[1].spi_in
    p.events(p.gateway)
    p.client.rekey_child_sa(new_c, T + 1)
    (third,) = p.client.datagrams_to_send(T + 1)
    assert _offer(p, third)[0] == KeGroup.ECP_256
    p.gateway.receive_datagram(third.data, third.src, third.dst, T + 1)
    p.settle(T + 1)
    assert [e.outcome for e in p.events(p.client) if isinstance(e, ev.ExchangeCompleted)] == ["ok", "ok"]


def test_responder_prefers_its_own_proposal_order() -> None:
    """Both support both groups, in opposite orders. By default (strongSwan ``prefer_configured_proposals = yes``) the
    gateway picks its first, ecp256, and asks for it with INVALID_KE_PAYLOAD; with ``no`` it takes the client's
    modp2048 and the rekey needs one exchange."""
    for prefer, outcomes, group in ((True, ["INVALID_KE_PAYLOAD", "ok"], "ecp256"), (False, ["ok"], "modp2048")):
        p = _peers(MODP_FIRST, ECP_FIRST, prefer_configured=prefer)
        c_spi, _ = p.establish()
        p.client.rekey_child_sa(c_spi, T)
        p.settle(T)
        ec = p.events(p.client)
        assert [e.outcome for e in ec if isinstance(e, ev.ExchangeCompleted) and e.purpose == "rekey_child"] == outcomes
        assert [e.pfs_group for e in ec if isinstance(e, ev.ChildSaInstalled)] == [group]


def test_no_proposal_chosen_in_a_rekey_keeps_the_old_sa_and_retries_later() -> None:
    """The gateway accepts no group the client offers (IKE_AUTH made the CHILD_SA without KE): NO_PROPOSAL_CHOSEN.
    The old SA stays installed and outbound, nothing is deleted, and the rekey is tried again 5-15 s later (strongSwan
    child_rekey ``schedule_delayed_rekey``); that retry is refused the same way."""
    p = _peers(("aes256gcm16-modp2048",), ("aes256gcm16-ecp256",))
    c_spi, g_spi = p.establish()
    p.client.rekey_child_sa(c_spi, T)
    p.settle(T)
    ec = p.events(p.client)
    assert [(type(e).__name__, getattr(e, "outcome", getattr(e, "by_us", None))) for e in ec
            if isinstance(e, (ev.ExchangeCompleted, ev.ProposalRejected, ev.ChildSaDeleted))] == [
        ("ExchangeCompleted", "NO_PROPOSAL_CHOSEN"), ("ProposalRejected", False)]
    child = p.client.children[c_spi]
    assert child.state.value == "installed" and child.outbound and p.client.child_sa_spis() == [c_spi]
    assert p.gateway.child_sa_spis() == [g_spi]
    retry = p.client.timers.deadline(("retry_child", c_spi))
    assert retry is not None and T + 5.0 <= retry <= T + 15.0
    p.client.handle_timer(retry)
    p.settle(retry)
    ec = p.events(p.client)
    assert [(type(e).__name__, getattr(e, "trigger", getattr(e, "outcome", None))) for e in ec
            if isinstance(e, (ev.RekeyStarted, ev.ExchangeCompleted))] == [
        ("RekeyStarted", "retry"), ("ExchangeCompleted", "NO_PROPOSAL_CHOSEN")]
    assert p.client.child_sa_spis() == [c_spi]


def test_rekey_group_and_promotion() -> None:
    """The replaced SA's group if still configured, else the first; promotion keeps the objects when nothing moves."""
    specs = ConnectionProfile.build(config("c", CLIENT, GATEWAY, local_id=CLIENT_ID, remote_id=GATEWAY_ID,
                                           children=(ChildPolicy(proposals=MODP_FIRST),)).connections[0]
                                    ).children["net"].specs
    groups = frozenset({int(KeGroup.MODP_2048), int(KeGroup.ECP_256)})
    assert rekey_group(int(KeGroup.MODP_2048), groups, "ecp256") == KeGroup.ECP_256
    assert rekey_group(int(KeGroup.MODP_2048), groups, "none") == KeGroup.MODP_2048
    assert rekey_group(int(KeGroup.MODP_2048), groups, "x25519") == KeGroup.MODP_2048
    assert promote_group(specs, int(KeGroup.MODP_2048)) is specs and promote_group(specs, 0) is specs
    assert [list(s.ke) for s in promote_group(specs, int(KeGroup.ECP_256))] == [[KeGroup.ECP_256], [KeGroup.MODP_2048]]


def test_ike_rekey_prefer_previous_dh_group() -> None:
    """IKE_SA_INIT settled on ecp256 after INVALID_KE_PAYLOAD (the gateway takes nothing else). An IKE_SA rekey
    offers that group again by default (strongSwan ``prefer_previous_dh_group = yes``) and needs one exchange; with
    ``no`` it offers the first configured group, x25519, gets INVALID_KE_PAYLOAD(ecp256) and retries once with it."""
    for previous, outcomes in ((True, ["ok"]), (False, ["INVALID_KE_PAYLOAD", "ok"])):
        rng = Rng(5)
        c = config("client", CLIENT, GATEWAY, local_id=CLIENT_ID, remote_id=GATEWAY_ID,
                   ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519", "aes256gcm16-prfsha256-ecp256"),
                                 prefer_previous_dh_group=previous))
        g = config("gateway", GATEWAY, None, local_id=GATEWAY_ID, remote_id=None,
                   ike=IkePolicy(proposals=("aes256gcm16-prfsha256-ecp256",)))
        p = Peers(IkeDaemon(c, rng=rng.child("client")), IkeDaemon(g, rng=rng.child("gateway")))
        p.establish()
        assert [e.group for e in p.log["client"] if isinstance(e, ev.IkeSaEstablished)] == ["ecp256"]
        (ike,) = p.client.ike_sa_spis()
        p.client.rekey_ike_sa(ike, T)
        p.settle(T)
        ec = p.events(p.client)
        assert [e.outcome for e in ec if isinstance(e, ev.ExchangeCompleted) and e.purpose == "rekey_ike"] == outcomes
        assert [(e.group, e.rekey_of) for e in ec if isinstance(e, ev.IkeSaEstablished)] == [("ecp256", ike)]
        assert [e.kind for e in ec if isinstance(e, ev.RekeyStarted)] == [ev.SaKind.IKE]


def test_ike_rekey_refused_with_no_proposal_chosen_keeps_the_ike_sa_and_retries_later() -> None:
    """The gateway answers the IKE_SA rekey with NO_PROPOSAL_CHOSEN (a response rewritten to it): the old IKE_SA stays
    and the rekey is tried again 5-15 s later (strongSwan ike_rekey ``schedule_delayed_rekey``, RFC 7296 §2.25)."""
    p = make_peers()
    p.establish()
    (ike,) = p.client.ike_sa_spis()
    p.client.rekey_ike_sa(ike, T)
    hostile_response(p, lambda _payloads: [NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN)], T)
    ec = p.events(p.client)
    assert [(type(e).__name__, getattr(e, "outcome", None)) for e in ec
            if isinstance(e, (ev.ExchangeCompleted, ev.ProposalRejected, ev.IkeSaDeleted))] == [
        ("ExchangeCompleted", "NO_PROPOSAL_CHOSEN"), ("ProposalRejected", None)]
    assert p.client.ike_sa_spis() == [ike]
    retry = p.client.timers.deadline(("retry_ike", ike))
    assert retry is not None and T + 5.0 <= retry <= T + 15.0
