"""charon as the original initiator (``swanctl --initiate``), ikesim as the responder.

charon runs kernel-libipsec, which fakes a NAT to force UDP encapsulation, so
after IKE_SA_INIT charon floats to the NAT-T ports and always sends to the
peer's port 4500 (strongSwan ``float_ports``). ikesim therefore owns
127.0.0.2:4500 here, and charon's own NAT-T socket moves to 4501 (its wildcard
bind of 0.0.0.0:4500 would otherwise take that port).
"""

from __future__ import annotations

import subprocess

import pytest
from charon_harness import BIND, CHARON, NATT, PSK, STEP, Charon, assert_child_matches, assert_log_clean, charon_ike, installed

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.types import Address
from ikesim.udp import UdpDriver

pytestmark = pytest.mark.interop

CHARON_PORT_NAT_T = 4501


class Swanctl:
    """``swanctl ARGS`` running in the background while the test drives ikesim (it blocks until charon is done)."""

    def __init__(self, charon: Charon, *args: str) -> None:
        self.proc = subprocess.Popen(["swanctl", *args, "--uri", f"unix://{charon.vici}"], env=charon.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self, drv: UdpDriver, timeout: float = STEP) -> str:
        """Keep driving ikesim until swanctl exits (bounded); return its output; kill it on timeout."""
        deadline = drv.now() + timeout
        while self.proc.poll() is None and drv.now() < deadline:
            drv.step(0.02)
        if self.proc.poll() is None:
            self.proc.kill()
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, out
        return out


def responder_daemon() -> IkeDaemon:
    """ikesim as a responder for charon's ``sim-rev`` connection."""
    conn = Connection(name="rev", local_id="sim-rev@sim.test", remote_id="gw-rev@sim.test",
                      credentials=Credentials(psk=PSK.encode()),
                      ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",)),
                      children=(ChildPolicy(name="rev", proposals=("aes256gcm16",), delete_rekeyed_delay=0.2),))
    return IkeDaemon(DaemonConfig(name="ikesim", addresses=(BIND,), connections=(conn,)), rng=Rng(21, "rev"))


def test_charon_initiates_rekeys_and_terminates(charon: Charon) -> None:
    """charon initiates (floating to 127.0.0.2:4500), rekeys the CHILD_SA and deletes; ikesim answers each."""
    charon.mark_log()
    daemon = responder_daemon()
    with UdpDriver(daemon, BIND, natt=NATT) as drv:
        # IKE_SA_INIT on 500/1500, then IKE_AUTH from charon's NAT-T socket (4501) to ikesim's 4500
        init = Swanctl(charon, "--initiate", "--child", "rev", "--ike", "sim-rev", "--timeout", "5")
        inst = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted), STEP)
        out = init.finish(drv)
        assert "initiate completed successfully" in out
        assert isinstance(inst, ev.ChildSaInstalled) and not inst.initiator
        est = next(e for e in drv.events if isinstance(e, ev.IkeSaEstablished))
        assert (est.initiator, est.peer_id, est.local_id) == (False, "gw-rev@sim.test", "sim-rev@sim.test")
        assert [d.dst for d in drv.received] == [BIND, NATT]  # charon floated for IKE_AUTH
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert view.connection == "sim-rev" and view.state == "ESTABLISHED"
        assert_child_matches(view, inst, "aes256gcm16")

        # charon rekeys the CHILD_SA (ikesim is the rekey responder), then deletes the old one
        mark = len(drv.events)
        rekey = Swanctl(charon, "--rekey", "--child", "rev")
        new = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled), STEP)
        rekey.finish(drv)
        drv.run_until(lambda e: isinstance(e, ev.ChildSaDeleted) and e.spi_in == inst.spi_in, STEP)
        assert isinstance(new, ev.ChildSaInstalled) and new.rekey_of == inst.spi_in and not new.initiator
        step = [type(e).__name__ for e in list(drv.events)[mark:]]
        assert step[-1] == "ChildSaDeleted" and step.count("ChildSaInstalled") == 1, step
        assert daemon.child_sa_spis() == [new.spi_in]
        view = charon_ike(charon, est.spi_i, est.spi_r)
        assert set(installed(view)) == {new.spi_out}

        # charon deletes the IKE_SA
        term = Swanctl(charon, "--terminate", "--ike", "sim-rev", "--timeout", "5")
        gone = drv.run_until(lambda e: isinstance(e, ev.IkeSaDeleted), STEP)
        term.finish(drv)
        assert isinstance(gone, ev.IkeSaDeleted) and gone.spi_i == est.spi_i
        assert daemon.ike_sa_spis() == [] and daemon.child_sa_spis() == []
        assert [v for v in charon.list_sas() if v.connection == "sim-rev"] == []
        # IKE_SA_INIT is answered on 1500 -> 500; from IKE_AUTH on ikesim follows charon's float (RFC 7296
        # §2.23) and answers from where each request arrived to where it came from (4500 -> 4501, §2.11)
        assert [(d.src, d.dst) for d in drv.sent] == [(BIND, CHARON)] + [(NATT, Address(CHARON.ip, 4501))] * (len(drv.sent) - 1)
    assert_log_clean(charon)


def test_responses_follow_the_request_addresses(charon: Charon) -> None:
    """Every response ikesim sends goes back to where the request came from, from where it arrived."""
    daemon = responder_daemon()
    with UdpDriver(daemon, BIND, natt=NATT) as drv:
        init = Swanctl(charon, "--initiate", "--child", "rev", "--ike", "sim-rev", "--timeout", "5")
        drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted), STEP)
        init.finish(drv)
        pairs = [((d.dst, d.src), (s.src, s.dst)) for d, s in zip(drv.received, drv.sent, strict=True)]
        term = Swanctl(charon, "--terminate", "--ike", "sim-rev", "--timeout", "5")
        drv.run_until(lambda e: isinstance(e, ev.IkeSaDeleted), STEP)
        term.finish(drv)
    assert [p[0] for p in pairs] == [p[1] for p in pairs]
