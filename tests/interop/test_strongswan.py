"""ikesim against a real strongSwan charon over loopback UDP (RFC 7296 interop).

charon (127.0.0.1:500/4500, config in tools/interop/) is the responder; ikesim
(127.0.0.2:1500) runs over ``ikesim.udp.UdpDriver``. For every IKE proposal:
establish, rekey the CHILD_SA without and with PFS, rekey the IKE_SA, DPD,
delete a CHILD_SA, delete the IKE_SA; after every step ikesim's events and
charon's own view (``swanctl --list-sas --raw``) must agree, and charon's log
must show nothing rejected. Also ECDSA certificates, and charon as initiator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from charon_harness import (
    BIND,
    CHARON,
    ENCR,
    GROUP,
    IKESIM_IP,
    IKESIM_PORT,
    PFS_ESP,
    PRF,
    PSK,
    STEP,
    Charon,
    assert_child_matches,
    assert_log_clean,
    charon_ike,
    installed,
)

from ikesim.ike import events as ev
from ikesim.ike.config import (
    AuthMethodName,
    ChildPolicy,
    Connection,
    Credentials,
    DaemonConfig,
    IkePolicy,
)
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.types import Address
from ikesim.udp import UdpDriver

pytestmark = pytest.mark.interop

CASES = [
    # (IKE proposal, ESP proposal of the first CHILD_SA)
    ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
    ("aes128-sha256-modp2048", "aes256-sha256"),
    ("aes256-sha256-ecp256", "aes256gcm16"),
    # issue 17's keywords, against charon's own implementations (chapoly, openssl plugins)
    ("chacha20poly1305-prfsha256-x448", "chacha20poly1305"),
    ("aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
    ("aes256-sha384-ecp521", "aes256-sha384"),
]


# ---------------------------------------------------------------------- helpers
def make_daemon(seed: int, ike: str, esp: str, *, local_id: str = "init@sim.test",
                remote_id: str = "resp@sim.test", credentials: Credentials | None = None,
                remote_addr: Address | None = CHARON) -> IkeDaemon:
    """ikesim's daemon on 127.0.0.2:1500 with children ``net`` (*esp*) and ``pfs`` (x25519 PFS)."""
    conn = Connection(
        name="vpn", local_id=local_id, remote_id=remote_id, remote_addr=remote_addr,
        credentials=credentials or Credentials(psk=PSK.encode()),
        ike=IkePolicy(proposals=(ike,)),
        children=(ChildPolicy(name="net", proposals=(esp,)), ChildPolicy(name="pfs", proposals=(PFS_ESP,))))
    return IkeDaemon(DaemonConfig(name="ikesim", addresses=(BIND,), connections=(conn,)),
                     rng=Rng(seed, "interop"))


def run_step(drv: UdpDriver, command: Callable[[], object], last: Callable[[ev.IkeEvent], bool]) -> list[ev.IkeEvent]:
    """Issue *command*, drive until *last* matches; return every event of the step."""
    drv.take_events()
    mark = len(drv.events)
    command()
    drv.run_until(last, STEP)
    return list(drv.events)[mark:]  # a bounded deque: no slicing


def names(events: list[ev.IkeEvent]) -> list[str]:
    """Event class names (with the exchange purpose for exchange events)."""
    out = []
    for e in events:
        n = type(e).__name__
        if isinstance(e, ev.ExchangeStarted | ev.ExchangeCompleted):
            n += f"({e.purpose})"
        out.append(n)
    return out


def completed(purpose: str) -> Callable[[ev.IkeEvent], bool]:
    """Predicate: the exchange *purpose* completed."""
    return lambda e: isinstance(e, ev.ExchangeCompleted) and e.purpose == purpose


def expected_init_events(charon: Charon) -> list[str]:
    """ikesim's events for IKE_SA_INIT + IKE_AUTH against this charon."""
    # kernel-libipsec makes charon fake a NAT (UDP encap): ikesim then floats to port 4500 (RFC 7296 §2.23)
    nat = ["NatDetected", "NatTraversalStarted"] if charon.libipsec else []
    return (["ExchangeStarted(ike_sa_init)", "IkeSaKeysDerived", "ExchangeCompleted(ike_sa_init)"] + nat
            + ["ExchangeStarted(ike_auth)", "ExchangeCompleted(ike_auth)", "IkeSaEstablished", "ChildSaInstalled"])


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize(("ike", "esp"), CASES, ids=[c[0] for c in CASES])
def test_ikesim_initiator_full_lifecycle(charon: Charon, ike: str, esp: str) -> None:
    """charon accepts ikesim's establishment, CHILD rekeys (with/without PFS), IKE rekey, DPD and deletes."""
    start = len(charon.log())
    charon.mark_log()
    daemon = make_daemon(CASES.index((ike, esp)) + 1, ike, esp)
    with UdpDriver(daemon, BIND) as drv:
        # 1. IKE_SA_INIT + IKE_AUTH
        box: dict[str, Any] = {}
        evs = run_step(drv, lambda: box.setdefault("spi", daemon.initiate("vpn", drv.now())),
                       lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted | ev.ProposalRejected))
        if isinstance(evs[-1], ev.ProposalRejected) and "unable to add SAD entry" in charon.log_since_mark():
            pytest.skip("charon cannot install CHILD_SAs here (no XFRM ESP, no TUN for kernel-libipsec); "
                        "see test_strongswan_childfail.py")
        assert names(evs) == expected_init_events(charon)
        est = next(e for e in evs if isinstance(e, ev.IkeSaEstablished))
        net = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        if charon.libipsec:
            nat = next(e for e in evs if isinstance(e, ev.NatDetected))
            assert (nat.local_behind_nat, nat.peer_behind_nat) == (False, True)
        spi_i = box["spi"]
        charon_at = Address(CHARON.ip, 4500) if charon.libipsec else CHARON
        assert (est.spi_i, est.initiator, est.peer, est.peer_id) == (spi_i, True, charon_at, "resp@sim.test")
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert view.state == "ESTABLISHED"
        assert (view.raw["local-id"], view.raw["remote-id"]) == ("resp@sim.test", "init@sim.test")
        assert (view.raw["remote-host"], view.raw["remote-port"]) == (IKESIM_IP, str(IKESIM_PORT))
        parts = ike.split("-")
        assert (view.raw["encr-alg"], view.raw.get("encr-keysize")) == ENCR[parts[0]]
        assert view.raw["dh-group"] == GROUP[parts[-1]] and est.group == parts[-1]
        # the PRF named in the proposal, or (no prf keyword) the one of its integrity algorithm, as strongSwan
        prf = next((x for x in parts if x.startswith("prf")), "prf" + next((x for x in parts if x.startswith("sha")), ""))
        assert view.raw["prf-alg"] == PRF[prf]
        assert view.raw.get("nat-fake") == ("yes" if charon.libipsec else None)
        assert_child_matches(view, net, esp)
        assert len(view.children) == 1

        # 2. CHILD_SA rekey without PFS (RFC 7296 §1.3.3), then ikesim deletes the old one (§2.8)
        evs = run_step(drv, lambda: daemon.rekey_child_sa(net.spi_in, drv.now()), completed("delete_child"))
        assert names(evs) == ["RekeyStarted", "ExchangeStarted(rekey_child)", "ExchangeCompleted(rekey_child)",
                              "ChildSaInstalled", "RekeyCompleted", "ExchangeStarted(delete_child)",
                              "ExchangeCompleted(delete_child)"]
        assert all(e.outcome == "ok" for e in evs if isinstance(e, ev.ExchangeCompleted))
        net2 = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert (net2.rekey_of, net2.rekey_of_out) == (net.spi_in, net.spi_out)
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert_child_matches(view, net2, esp)
        assert net.spi_out not in installed(view)  # charon's old inbound SA is gone or DELETED
        assert set(installed(view)) == {net2.spi_out}

        # 3. a new CHILD_SA with PFS (KE in CREATE_CHILD_SA, §1.3.1), then its rekey with PFS
        evs = run_step(drv, lambda: daemon.create_child_sa(spi_i, "pfs", drv.now()),
                       lambda e: isinstance(e, ev.ChildSaInstalled))
        assert names(evs) == ["ExchangeStarted(create_child)", "ExchangeCompleted(create_child)", "ChildSaInstalled"]
        pfs = evs[-1]
        assert isinstance(pfs, ev.ChildSaInstalled) and pfs.child == "pfs"
        assert_child_matches(charon_ike(charon, est.spi_i, est.spi_r), pfs, PFS_ESP)
        evs = run_step(drv, lambda: daemon.rekey_child_sa(pfs.spi_in, drv.now()), completed("delete_child"))
        assert names(evs)[:5] == ["RekeyStarted", "ExchangeStarted(rekey_child)", "ExchangeCompleted(rekey_child)",
                                  "ChildSaInstalled", "RekeyCompleted"]
        pfs2 = next(e for e in evs if isinstance(e, ev.ChildSaInstalled))
        assert pfs2.rekey_of == pfs.spi_in
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert_child_matches(view, pfs2, PFS_ESP)
        assert set(installed(view)) == {net2.spi_out, pfs2.spi_out}
        assert sorted(daemon.child_sa_spis()) == sorted([net2.spi_in, pfs2.spi_in])

        # 4. IKE_SA rekey (§1.3.2): new SPIs, children move, the old IKE_SA is deleted
        evs = run_step(drv, lambda: daemon.rekey_ike_sa(spi_i, drv.now()),
                       lambda e: isinstance(e, ev.IkeSaDeleted))
        assert names(evs) == ["RekeyStarted", "ExchangeStarted(rekey_ike)", "ExchangeCompleted(rekey_ike)",
                              "IkeSaEstablished", "RekeyCompleted", "ExchangeStarted(delete_ike)",
                              "ExchangeCompleted(delete_ike)", "IkeSaDeleted"]
        new = next(e for e in evs if isinstance(e, ev.IkeSaEstablished))
        assert new.rekey_of == spi_i and new.spi_i != spi_i
        deleted = evs[-1]
        assert isinstance(deleted, ev.IkeSaDeleted) and deleted.reason == "rekeyed" and deleted.spi_i == spi_i
        assert daemon.ike_sa_spis() == [new.spi_i]
        assert [v for v in charon.list_sas() if v.spi_i == spi_i] == []
        view = charon_ike(charon, new.spi_i, new.spi_r)
        assert view.state == "ESTABLISHED" and view.raw["dh-group"] == GROUP[parts[-1]]
        assert set(installed(view)) == {net2.spi_out, pfs2.spi_out}

        # 5. liveness check (§2.4): an empty INFORMATIONAL, answered
        charon.mark_log()
        evs = run_step(drv, lambda: daemon.check_liveness(new.spi_i, drv.now()), completed("dpd"))
        assert names(evs) == ["ExchangeStarted(dpd)", "ExchangeCompleted(dpd)"] and evs[-1].outcome == "ok"
        log = charon.log_since_mark()
        assert re.search(r"parsed INFORMATIONAL request 0 \[ \]", log), log[-2000:]
        assert re.search(r"generating INFORMATIONAL response 0 \[ \]", log)

        # 6. delete the PFS CHILD_SA (§1.4.1): charon answers with its own Delete
        evs = run_step(drv, lambda: daemon.delete_child_sa(pfs2.spi_in, drv.now()), completed("delete_child"))
        assert "ChildSaDeleted" in names(evs)
        gone = next(e for e in evs if isinstance(e, ev.ChildSaDeleted) and e.spi_in == pfs2.spi_in)
        assert gone.spi_out == pfs2.spi_out
        assert re.search(r"parsed INFORMATIONAL request 1 \[ D \]", charon.log_since_mark())
        assert re.search(r"generating INFORMATIONAL response 1 \[ D \]", charon.log_since_mark())
        assert set(installed(charon_ike(charon, new.spi_i, new.spi_r))) == {net2.spi_out}

        # 7. delete the IKE_SA: charon removes it and every CHILD_SA
        evs = run_step(drv, lambda: daemon.delete_ike_sa(new.spi_i, drv.now()),
                       lambda e: isinstance(e, ev.IkeSaDeleted) and e.spi_i == new.spi_i)
        assert names(evs)[:2] == ["ExchangeStarted(delete_ike)", "ExchangeCompleted(delete_ike)"]
        assert names(evs)[-1] == "IkeSaDeleted" and evs[-1].reason == "deleted_locally"
        assert any(isinstance(e, ev.ChildSaDeleted) and e.spi_in == net2.spi_in and e.reason == "ike_deleted"
                   for e in evs)
        assert daemon.ike_sa_spis() == [] and daemon.child_sa_spis() == []
        assert [v for v in charon.list_sas() if v.spi_i in (spi_i, new.spi_i)] == []
        assert drv.esp_ignored == 0
    bad = charon.problems(charon.log()[start:])
    assert bad == [], "\n".join(bad[:20])


def _cert_daemon(pki: dict[str, Any], seed: int) -> IkeDaemon:
    creds = Credentials(method=AuthMethodName.ECDSA_P256, private_key=pki["sim_key"],
                        certificate=pki["sim_cert"], trust_anchors=(pki["ca"],))
    return make_daemon(seed, "aes256gcm16-prfsha256-x25519", "aes256gcm16", local_id="init-cert@sim.test",
                       remote_id="resp-cert@sim.test", credentials=creds)


def _establish_cert(charon: Charon, daemon: IkeDaemon, drv: UdpDriver) -> list[ev.IkeEvent]:
    """Initiate; stop at ChildSaInstalled, at charon's rejection of IKE_SA_INIT, or after 3 s."""
    daemon.initiate("vpn", drv.now())
    deadline = drv.now() + 3.0
    while drv.now() < deadline:
        drv.step(0.05)
        if any(isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted) for e in drv.events):
            break
        if "IKE_SA_INIT request with message ID 0 processing failed" in charon.log_since_mark():
            break
    return drv.take_events()


def test_ecdsa_certificate_auth(charon: Charon, pki: dict[str, Any]) -> None:
    """ikesim (ECDSA P-256 cert) establishes with charon (ECDSA cert from the same CA)."""
    charon.mark_log()
    daemon = _cert_daemon(pki, 11)
    with UdpDriver(daemon, BIND) as drv:
        evs = _establish_cert(charon, daemon, drv)
        assert "payload type CERTREQ was not encrypted" not in charon.log_since_mark()
        assert names(evs) == expected_init_events(charon), [repr(e) for e in evs]


def test_ecdsa_auth_signatures_interoperate(charon: Charon, pki: dict[str, Any]) -> None:
    """ECDSA CERT + AUTH verify in both directions (CERTREQ travels in IKE_AUTH, RFC 7296 §1.2)."""
    charon.mark_log()
    daemon = _cert_daemon(pki, 12)
    with UdpDriver(daemon, BIND) as drv:
        evs = _establish_cert(charon, daemon, drv)
        assert names(evs) == expected_init_events(charon), [repr(e) for e in evs]
        est = next(e for e in evs if isinstance(e, ev.IkeSaEstablished))
        assert est.peer_id == "resp-cert@sim.test"
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert view.connection == "sim-cert" and view.state == "ESTABLISHED"
        log = charon.log_since_mark()
        # ikesim signs with RFC 7427 Digital Signature (ecdsa-with-SHA256); charon answers with RFC 7296 ECDSA-256
        assert "authentication of 'init-cert@sim.test' with ECDSA_WITH_SHA256_DER successful" in log
        assert "authentication of 'resp-cert@sim.test' (myself) with ECDSA-256 signature successful" in log
        assert re.search(r"parsed IKE_AUTH request 1 \[ IDi CERT CERTREQ IDr AUTH SA TSi TSr \]", log)
        assert_child_matches(view, evs[-1], "aes256gcm16")  # type: ignore[arg-type]
        run_step(drv, lambda: daemon.delete_ike_sa(est.spi_i, drv.now()), lambda e: isinstance(e, ev.IkeSaDeleted))
        assert [v for v in charon.list_sas() if v.spi_i == est.spi_i] == []
    assert_log_clean(charon)
