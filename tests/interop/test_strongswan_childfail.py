"""charon with the kernel XFRM backend (kernel-netlink only): what happens when the kernel refuses ESP SAs.

In this sandbox the kernel has no ESP XFRM type, so charon logs "received netlink
error: Function not implemented (38)" / "unable to add SAD entry", keeps the IKE_SA
("failed to establish CHILD_SA, keeping IKE_SA") and answers IKE_AUTH with
N(NO_PROPOSAL_CHOSEN) (like tests/vectors/strongswan/childfail/). On a
kernel with XFRM ESP the CHILD_SA is installed instead; the test asserts whichever
charon reports, exactly.
"""

from __future__ import annotations

import pytest
from charon_harness import BIND, CHARON, Charon, assert_child_matches, assert_log_clean, charon_ike
from test_strongswan import make_daemon, names, run_step

from ikesim.ike import events as ev
from ikesim.udp import UdpDriver

pytestmark = pytest.mark.interop

CHARON_KERNEL = "netlink"


def test_ike_sa_survives_child_install_failure(charon: Charon) -> None:
    """Without kernel ESP, the IKE_SA is established on both sides and the child fails with NO_PROPOSAL_CHOSEN."""
    assert not charon.libipsec
    charon.mark_log()
    daemon = make_daemon(31, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
    with UdpDriver(daemon, BIND) as drv:
        evs = run_step(drv, lambda: daemon.initiate("vpn", drv.now()),
                       lambda e: isinstance(e, ev.ChildSaInstalled | ev.ProposalRejected | ev.IkeSaDeleted))
        est = next(e for e in evs if isinstance(e, ev.IkeSaEstablished))
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert view.state == "ESTABLISHED" and view.raw.get("nat-fake") is None
        log = charon.log_since_mark()
        if "unable to add SAD entry" in log:
            assert "failed to establish CHILD_SA, keeping IKE_SA" in log
            assert "generating IKE_AUTH response 1 [ IDr AUTH N(NO_PROP) ]" in log
            assert names(evs) == ["ExchangeStarted(ike_sa_init)", "IkeSaKeysDerived", "ExchangeCompleted(ike_sa_init)",
                                  "ExchangeStarted(ike_auth)", "ErrorNotifyReceived", "ExchangeCompleted(ike_auth)",
                                  "IkeSaEstablished", "ProposalRejected"]
            notify = evs[4]
            assert isinstance(notify, ev.ErrorNotifyReceived) and notify.notify == "NO_PROPOSAL_CHOSEN"
            assert evs[-1].by_us is False  # type: ignore[attr-defined]
            assert daemon.child_sa_spis() == [] and view.children == []
        else:  # a kernel with XFRM ESP: the CHILD_SA is installed
            inst = evs[-1]
            assert isinstance(inst, ev.ChildSaInstalled)
            assert_child_matches(view, inst, "aes256gcm16")
        assert est.peer == CHARON
        run_step(drv, lambda: daemon.delete_ike_sa(est.spi_i, drv.now()), lambda e: isinstance(e, ev.IkeSaDeleted))
        assert [v for v in charon.list_sas() if v.spi_i == est.spi_i] == []
    assert_log_clean(charon)
