"""IKE_SA_INIT + IKE_AUTH establishment with PSK and certificates (RFC 7296 §1.2, §2.15)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from ikepeers import CLIENT, GATEWAY, Peers, make_peers, names

from ikesim.crypto.auth import make_ca, make_end_entity
from ikesim.ike import events as ev
from ikesim.ike.config import AuthMethodName, ChildPolicy, Credentials
from ikesim.rng import Rng
from ikesim.wire.codec import protect_message, unprotect_message
from ikesim.wire.iana import EncrId, TransformType
from ikesim.wire.message import Message
from ikesim.wire.payloads import Payload, SaPayload, TrafficSelector, Transform, TsrPayload


def _establish_and_check(p: Peers) -> tuple[list[ev.IkeEvent], list[ev.IkeEvent]]:
    spi_i = p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ExchangeStarted",
                        "ExchangeCompleted", "IkeSaEstablished", "ChildSaInstalled"]
    assert names(g) == ["IkeSaEstablished", "ChildSaInstalled"]
    assert [(e.exchange, e.purpose, e.message_id) for e in c
            if isinstance(e, ev.ExchangeStarted)] == [("IKE_SA_INIT", "ike_sa_init", 0),
                                                     ("IKE_AUTH", "ike_auth", 1)]
    assert all(e.outcome == "ok" for e in c if isinstance(e, ev.ExchangeCompleted))
    ce, ge = c[4], g[0]
    assert isinstance(ce, ev.IkeSaEstablished) and isinstance(ge, ev.IkeSaEstablished)
    assert ce.spi_i == ge.spi_i == spi_i and ce.spi_r == ge.spi_r != bytes(8)
    assert ce.initiator and not ge.initiator
    assert (ce.local, ce.peer, ge.local, ge.peer) == (CLIENT, GATEWAY, GATEWAY, CLIENT)
    assert (ce.peer_id, ge.peer_id) == ("gw@sim.test", "client@sim.test")
    assert (ce.sk_ei, ce.sk_er) == (ge.sk_ei, ge.sk_er)
    cc, gc = c[5], g[1]
    assert isinstance(cc, ev.ChildSaInstalled) and isinstance(gc, ev.ChildSaInstalled)
    assert cc.spi_in == gc.spi_out and cc.spi_out == gc.spi_in
    assert cc.encr_key_out == gc.encr_key_in and cc.encr_key_in == gc.encr_key_out
    assert cc.encr_key_out != cc.encr_key_in
    assert (cc.local_ts, cc.remote_ts) == ("10.0.0.1/32", "10.0.0.2/32")
    assert (gc.local_ts, gc.remote_ts) == ("10.0.0.2/32", "10.0.0.1/32")
    assert p.client.ike_sa_spis() == [spi_i] and p.gateway.ike_sa_spis() == [ce.spi_r]
    assert p.client.child_sa_spis() == [cc.spi_in] and p.gateway.child_sa_spis() == [gc.spi_in]
    return c, g


def test_psk_establishment_installs_matching_sas(peers: Peers) -> None:
    """PSK: IKE_SA_INIT + IKE_AUTH give one IKE_SA and one CHILD_SA, SPIs/keys crosswise."""
    c, g = _establish_and_check(peers)
    ce = c[4]
    assert (ce.encr, ce.prf, ce.group) == ("aes256gcm16", "prfsha256", "x25519")
    info = peers.client.ike_sa_info(ce.spi_i)
    assert (info.state, info.next_message_id, info.children) == ("established", 2,
                                                                 (c[5].spi_in,))
    assert peers.gateway.ike_sa_info(ce.spi_r).peer_message_id == 2


def test_establishment_is_deterministic() -> None:
    """Same seed, same bytes: two runs produce identical datagrams."""
    runs = []
    for _ in range(2):
        p = make_peers(seed=7)
        p.client.initiate("vpn", 0.0)
        runs.append([d.data for d in p.deliver(p.client, 0.0)] +
                    [d.data for d in p.deliver(p.gateway, 0.0)] +
                    [d.data for d in p.deliver(p.client, 0.0)])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("key_type", ["ecdsa", "ed25519"])
def test_certificate_establishment(key_type: str) -> None:
    """Signature AUTH (RFC 7427) with CERT payloads chained to a shared CA establishes the SA."""
    rng = Rng(3, "pki")
    ca_key, ca_cert = make_ca(rng, "sim CA", key_type)
    ck, cc = make_end_entity(rng, ca_key, ca_cert, "client@sim.test", key_type)
    gk, gc = make_end_entity(rng, ca_key, ca_cert, "gw@sim.test", key_type)
    method = AuthMethodName.ECDSA_P256 if key_type == "ecdsa" else AuthMethodName.ED25519
    p = make_peers(
        client_credentials=Credentials(method, private_key=ck, certificate=cc,
                                       trust_anchors=(ca_cert,)),
        gateway_credentials=Credentials(method, private_key=gk, certificate=gc,
                                        trust_anchors=(ca_cert,)))
    _establish_and_check(p)


def test_certificate_of_foreign_ca_fails_auth() -> None:
    """A certificate from an untrusted CA: the gateway answers AUTHENTICATION_FAILED."""
    rng = Rng(4, "pki")
    ca_key, ca_cert = make_ca(rng, "sim CA", "ecdsa")
    other_key, other_cert = make_ca(rng, "evil CA", "ecdsa")
    ck, cc = make_end_entity(rng, other_key, other_cert, "client@sim.test", "ecdsa")
    gk, gc = make_end_entity(rng, ca_key, ca_cert, "gw@sim.test", "ecdsa")
    p = make_peers(
        client_credentials=Credentials(AuthMethodName.ECDSA_P256, private_key=ck, certificate=cc,
                                       trust_anchors=(ca_cert,)),
        gateway_credentials=Credentials(AuthMethodName.ECDSA_P256, private_key=gk,
                                        certificate=gc, trust_anchors=(ca_cert,)))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    assert names(p.events(p.gateway)) == ["AuthFailed", "IkeSaDeleted"]
    assert p.client.ike_sa_spis() == [] and p.gateway.ike_sa_spis() == []


def test_wrong_psk_gives_clear_events_on_both_sides() -> None:
    """Wrong PSK: gateway AuthFailed(by_us) + delete; client AuthFailed(not by_us) + delete."""
    p = make_peers(gateway_credentials=Credentials(psk=b"another-secret"))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    g = p.events(p.gateway)
    assert names(g) == ["AuthFailed", "IkeSaDeleted"]
    assert g[0].by_us is True and g[1].reason == "auth_failed"
    c = p.events(p.client)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ExchangeStarted",
                        "ErrorNotifyReceived", "ExchangeCompleted", "AuthFailed", "IkeSaDeleted"]
    assert c[3].notify == "AUTHENTICATION_FAILED" and c[4].outcome == "AUTHENTICATION_FAILED"
    assert c[5].by_us is False and c[6].reason == "auth_failed"
    # The gateway keeps its AUTHENTICATION_FAILED answer for a retransmitted IKE_AUTH one window (§2.1).
    assert p.client.get_timer() is None and p.gateway.get_timer() == pytest.approx(165.06112, abs=1e-9)
    p.gateway.handle_timer(p.gateway.get_timer())
    assert p.gateway.closed == {} and p.gateway.get_timer() is None


def test_initiator_rejecting_responder_auth_notifies_peer() -> None:
    """Client expects another gateway ID: AuthFailed(by_us) + N(AUTHENTICATION_FAILED) sent."""
    p = make_peers(client_remote_id="other@sim.test")
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    c = p.events(p.client)
    # the gateway's answer to the notification arrives after the SA is gone
    assert names(c)[-6:] == ["ExchangeCompleted", "AuthFailed", "ExchangeStarted",
                             "ExchangeCompleted", "IkeSaDeleted", "MessageDropped"]
    assert c[-6].outcome == "AUTHENTICATION_FAILED"
    assert c[-5].by_us is True and c[-4].purpose == "informational"
    assert c[-3].outcome == "aborted" and c[-2].reason == "auth_failed"
    g = p.events(p.gateway)
    assert names(g) == ["IkeSaEstablished", "ChildSaInstalled", "ErrorNotifyReceived",
                        "AuthFailed", "ChildSaDeleted", "IkeSaDeleted"]
    assert g[3].by_us is False and g[5].reason == "auth_failed"


def test_child_no_proposal_chosen_keeps_ike_sa() -> None:
    """IKE_AUTH child with no common ESP proposal: IKE_SA up, no CHILD_SA (strongSwan childfail)."""
    p = make_peers(client_children=(ChildPolicy(proposals=("aes128-sha256",)),))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(g) == ["IkeSaEstablished", "ProposalRejected"]
    assert g[1].by_us is True and g[1].exchange == "IKE_AUTH"
    assert names(c)[-4:] == ["ErrorNotifyReceived", "ExchangeCompleted", "IkeSaEstablished",
                             "ProposalRejected"]
    assert c[-4].notify == "NO_PROPOSAL_CHOSEN" and c[-1].by_us is False
    assert len(p.client.ike_sa_spis()) == 1 and p.client.child_sa_spis() == []
    assert p.gateway.child_sa_spis() == []


def test_ts_unacceptable_keeps_ike_sa() -> None:
    """No TS intersection: TS_UNACCEPTABLE for the child, the IKE_SA is still established (§2.9)."""
    p = make_peers(gateway_children=(ChildPolicy(remote_ts=("192.168.0.0/24",)),))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    c, g = p.events(p.client), p.events(p.gateway)
    assert names(g) == ["IkeSaEstablished"]
    assert names(c)[-3:] == ["ErrorNotifyReceived", "ExchangeCompleted", "IkeSaEstablished"]
    assert c[-3].notify == "TS_UNACCEPTABLE"
    assert p.client.child_sa_spis() == [] and len(p.gateway.ike_sa_spis()) == 1


def test_ts_narrowing_to_gateway_subnet() -> None:
    """The responder narrows a wide TSr to its configured subnet (RFC 7296 §2.9)."""
    p = make_peers(client_children=(ChildPolicy(remote_ts=("0.0.0.0/0",)),),
                   gateway_children=(ChildPolicy(local_ts=("10.1.0.0/16",)),))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    (cc,) = [e for e in p.events(p.client) if isinstance(e, ev.ChildSaInstalled)]
    assert (cc.local_ts, cc.remote_ts) == ("10.0.0.1/32", "10.1.0.0/16")


@pytest.mark.parametrize(("case", "reason"), [
    ("intermediate_with_unparsable_extension", "certificate: unusable certificate: ValueError: "),
    ("issuer_integer", "certificate: unusable certificate: KeyError: "),
    ("issuer_bit_string", "certificate: unusable certificate: TypeError: "),
    ("ca_resigned_on_unsupported_curve", "certificate: unusable certificate: UnsupportedAlgorithm: "),
    ("unparsable_subject_alt_name", "certificate: unusable certificate: ValueError: "),
    ("rsa_end_entity", "certificate: certificate key "),
])
def test_hostile_cert_payloads_answered_with_authentication_failed(case: str, reason: str) -> None:
    """CERT payloads cryptography cannot parse or use: N(AUTHENTICATION_FAILED), AuthFailed, no exception (§2.21.2)."""
    from hostile_certs import IDENTITY, make_pki

    pki = make_pki()
    chains = {"issuer_integer": lambda: pki.issuer_with_bad_attribute(0x02),
              "issuer_bit_string": lambda: pki.issuer_with_bad_attribute(0x03)}
    cert, intermediates = chains[case]() if case in chains else getattr(pki, case)()
    gk, gc = make_end_entity(Rng(15, "gw"), pki.ca_key, pki.ca, "gw@sim.test")
    p = make_peers(
        client_credentials=Credentials(AuthMethodName.ECDSA_P256, private_key=pki.client_key, certificate=cert,
                                       intermediates=intermediates, trust_anchors=(pki.ca,)),
        gateway_credentials=Credentials(AuthMethodName.ECDSA_P256, private_key=gk, certificate=gc,
                                        trust_anchors=(pki.ca,)),
        client_id=IDENTITY)
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    g = p.events(p.gateway)
    assert names(g) == ["AuthFailed", "IkeSaDeleted"]
    assert g[0].by_us is True and g[0].reason.startswith(reason) and g[1].reason == "auth_failed"
    c = p.events(p.client)
    assert names(c)[-4:] == ["ErrorNotifyReceived", "ExchangeCompleted", "AuthFailed", "IkeSaDeleted"]
    assert c[-4].notify == "AUTHENTICATION_FAILED" and c[-3].outcome == "AUTHENTICATION_FAILED"
    assert p.client.ike_sa_spis() == [] and p.gateway.ike_sa_spis() == []


def _imported_modules(module: str) -> set[str]:
    """Every ikesim module *module*'s source imports, at any depth (function-level imports included)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("ikesim.")}


def test_ike_auth_and_ike_sa_init_import_one_way() -> None:
    """No import circle: ike_sa_init imports ike_auth (to start IKE_AUTH); ike_auth never imports ike_sa_init."""
    assert "ikesim.ike.ike_sa_init" not in _imported_modules("ikesim.ike.ike_auth")
    assert "ikesim.ike.ike_auth" in _imported_modules("ikesim.ike.ike_sa_init")
    assert "ikesim.ike.certreq" in _imported_modules("ikesim.ike.ike_auth") & _imported_modules("ikesim.ike.ike_sa_init")


def _mangled_auth_response(p: Peers, mangle: Callable[[tuple[Payload, ...]], tuple[Payload, ...]]) -> None:
    """Run IKE_SA_INIT and the IKE_AUTH request; hand the client the gateway's response with *mangle*d inner payloads,
    sealed again with the gateway's keys (what a responder that misbehaves would send)."""
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    p.deliver(p.client, 0.0)
    (resp,) = p.gateway.datagrams_to_send(0.0)
    (csa,) = set(p.client.sas.values())
    (gsa,) = set(p.gateway.sas.values())
    full = unprotect_message(resp.data, csa.protect_in)
    head = Message(full.spi_i, full.spi_r, full.exchange_type, full.flags, full.message_id)
    p.client.receive_datagram(protect_message(head, mangle(full.payloads), gsa.protect_out), resp.src, resp.dst, 0.0)


def _child_answer(payloads: tuple[Payload, ...], **changes: object) -> tuple[Payload, ...]:
    out = []
    for x in payloads:
        if isinstance(x, SaPayload):
            x = SaPayload((replace(x.proposals[0], **changes),))  # type: ignore[arg-type]
        out.append(x)
    return tuple(out)


@pytest.mark.parametrize(("mangle", "reason"), [
    (lambda ps: _child_answer(ps, number=2), "answer proposal number 2 was not offered"),
    (lambda ps: _child_answer(ps, transforms=(Transform.make(TransformType.ENCR, EncrId.ENCR_AES_CBC, 128),
                                              Transform.make(TransformType.INTEG, 12),
                                              Transform.make(TransformType.ESN, 0))),
     "answer ENCR transform 12 was not offered"),
    (lambda ps: tuple(TsrPayload((TrafficSelector.from_network("10.9.0.0/16"),)) if isinstance(x, TsrPayload) else x
                      for x in ps), "response traffic selectors are not within those proposed"),
], ids=["number_not_offered", "transform_not_offered", "tsr_wider"])
def test_ike_auth_child_answer_not_offered_is_deleted(mangle, reason: str) -> None:  # type: ignore[no-untyped-def]
    """IKE_AUTH's CHILD_SA answer outside our offer: the IKE_SA is kept, no CHILD_SA installed, the responder's
    one deleted by our SPI (RFC 7296 §3.3.6, §2.9; strongSwan child_create)."""
    p = make_peers()
    _mangled_auth_response(p, mangle)
    c = p.events(p.client)
    assert names(c)[-4:] == ["ExchangeCompleted", "IkeSaEstablished", "ResponseRejected", "ExchangeStarted"]
    assert (c[-2].exchange, c[-2].purpose, c[-2].reason) == ("IKE_AUTH", "ike_auth", reason)
    assert (c[-1].exchange, c[-1].purpose, c[-1].reason) == ("INFORMATIONAL", "delete_failed_child", "failed")
    assert len(p.client.ike_sa_spis()) == 1 and p.client.child_sa_spis() == []
    (delete,) = p.client.datagrams_to_send(0.0)
    assert delete.dst == GATEWAY


def test_first_child_answer_is_checked_against_the_selectors_sent() -> None:
    """RFC 7296 §2.9: the IKE_AUTH answer narrows the TSi/TSr the initiator sent. Had the IKE_SA's peer address moved
    meanwhile (as NAT following or MOBIKE move it), a ``dynamic`` TSr recomputed at response time would name the new
    address and refuse the answer; the selectors sent are kept with the pending CHILD_SA instead."""
    from hostile import only_sa

    from ikesim.types import Address

    p = make_peers()
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)  # IKE_SA_INIT request
    p.deliver(p.gateway, 0.0)  # its response; the client sends IKE_AUTH with TSr 10.0.0.2/32
    p.deliver(p.client, 0.0)  # IKE_AUTH request; the gateway answers
    only_sa(p.client).peer = Address("10.0.0.9")  # the IKE_SA moved before the answer came
    p.events(p.client)
    p.deliver(p.gateway, 0.0)
    c = p.events(p.client)
    assert names(c) == ["ExchangeCompleted", "IkeSaEstablished", "ChildSaInstalled"]
    assert (c[2].local_ts, c[2].remote_ts) == ("10.0.0.1/32", "10.0.0.2/32")
