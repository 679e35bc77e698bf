"""Reauthentication (RFC 7296 §2.8.3) against a real strongSwan charon, both ways round.

- ikesim (127.0.0.2:1500, ``reauth_time`` 3 s) reauthenticates to charon (``sim-psk``, 127.0.0.1:500/4500):
  make-before-break and break-before-make; charon must end with exactly the new IKE_SA and CHILD_SA.
- charon (``sim-reauth``, ``reauth_time`` 3 s, ``charon.make_before_break`` yes or no: the 5.9 default is no, 6.0's
  yes) initiates and reauthenticates ikesim, the responder: ikesim must take the new IKE_SA and let the old go.

Each test starts its own charon (the ``charon`` fixture is overridden here): the second kind needs charon's NAT-T
socket on 4501 (charon floats to ikesim's 4500 there, as in ``test_strongswan_reverse.py``) and its own
strongswan.conf.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from string import Template

import pytest
from charon_harness import (
    BIND,
    CHARON,
    CHARON_IP,
    IKESIM_IP,
    IKESIM_PORT,
    NATT,
    PSK,
    STEP,
    Charon,
    assert_child_matches,
    assert_log_clean,
    installed,
    pem_files,
    skip_reason,
)

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.ike.daemon import IkeDaemon
from ikesim.rng import Rng
from ikesim.udp import UdpDriver
from ikesim.wire.codec import peek_header
from ikesim.wire.iana import ExchangeType

pytestmark = pytest.mark.interop

REAUTH = 3.0
"""Seconds after IKE_AUTH at which the reauthenticating end starts (no jitter)."""
NO_REKEY = Lifetime(rekey_time=0.0, life_time=0.0, rand_time=0.0)
IKE_LIFE = Lifetime(rekey_time=0.0, life_time=120.0, rand_time=0.0)
SIM_REAUTH = """\
    sim-reauth {
        version = 2
        local_addrs = ${charon_ip}
        remote_addrs = ${ikesim_ip}
        remote_port = ${ikesim_port}
        proposals = aes256gcm16-prfsha256-x25519
        mobike = no
        rekey_time = 0
        reauth_time = 3s
        over_time = 60s
        rand_time = 0
        local {
            auth = psk
            id = gw-reauth@sim.test
        }
        remote {
            auth = psk
            id = sim-reauth@sim.test
        }
        children {
            reauth {
                esp_proposals = aes256gcm16
                local_ts = dynamic
                remote_ts = dynamic
                rekey_time = 0
                life_time = 0
                start_action = none
            }
        }
    }
"""
SECRET = """\
    ike-reauth {
        id-1 = gw-reauth@sim.test
        id-2 = sim-reauth@sim.test
        secret = "${psk}"
    }
"""

StartCharon = Callable[..., Charon]


@pytest.fixture
def start_charon(tmp_path: Path, pki: dict[str, object]) -> Iterator[StartCharon]:
    """Start a charon with the harness config (plus ``sim-reauth``), optionally another NAT-T port and
    ``charon.make_before_break``; every charon started is stopped at the end."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    started: list[Charon] = []

    def start(*, port_nat_t: int = 4500, make_before_break: bool | None = None) -> Charon:
        c = Charon(tmp_path / f"charon{len(started)}", port_nat_t=port_nat_t)
        c.write_config(charon_ip=CHARON_IP, ikesim_ip=IKESIM_IP, ikesim_port=IKESIM_PORT, files=pem_files(pki))
        conf = c.swanctl_dir / "swanctl.conf"
        text = conf.read_text()
        fill = {"charon_ip": CHARON_IP, "ikesim_ip": IKESIM_IP, "ikesim_port": IKESIM_PORT, "psk": PSK}
        extra = Template(SIM_REAUTH).substitute(fill)
        secret = Template(SECRET).substitute(fill)
        assert text.count("}\nsecrets {\n") == 1
        conf.write_text(text.replace("}\nsecrets {\n", extra + "}\nsecrets {\n" + secret, 1))
        if make_before_break is not None:
            s = c.conf.read_text()
            assert s.count("\ncharon {\n") == 1
            c.conf.write_text(s.replace("\ncharon {\n", f"\ncharon {{\n    make_before_break = "
                                                        f"{'yes' if make_before_break else 'no'}\n", 1))
        started.append(c)
        c.start()
        c.load_all()
        return c

    try:
        yield start
    finally:
        for c in started:
            c.stop()


class Swanctl:
    """``swanctl ARGS`` in the background while the test drives ikesim (it blocks until charon is done)."""

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


def _client(make_before_break: bool) -> IkeDaemon:
    """ikesim initiating charon's ``sim-psk`` with reauth_time 3 s."""
    conn = Connection(name="vpn", local_id="init@sim.test", remote_id="resp@sim.test", remote_addr=CHARON,
                      credentials=Credentials(psk=PSK.encode()),
                      ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",), lifetime=IKE_LIFE,
                                    reauth_time=REAUTH, make_before_break=make_before_break),
                      children=(ChildPolicy(name="net", proposals=("aes256gcm16",), lifetime=NO_REKEY),))
    return IkeDaemon(DaemonConfig(name="ikesim", addresses=(BIND,), connections=(conn,)), rng=Rng(31, "reauth"))


def _responder() -> IkeDaemon:
    """ikesim answering charon's ``sim-reauth``."""
    conn = Connection(name="reauth", local_id="sim-reauth@sim.test", remote_id="gw-reauth@sim.test",
                      credentials=Credentials(psk=PSK.encode()),
                      ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",), lifetime=IKE_LIFE),
                      children=(ChildPolicy(name="reauth", proposals=("aes256gcm16",), lifetime=NO_REKEY),))
    return IkeDaemon(DaemonConfig(name="ikesim", addresses=(BIND,), connections=(conn,)), rng=Rng(32, "reauth"))


def _sa_story(events: list[ev.IkeEvent]) -> list[tuple[str, ...]]:
    """The events that say which SAs exist, in order: (kind, IKE SPIi hex, detail)."""
    out: list[tuple[str, ...]] = []
    for e in events:
        if isinstance(e, ev.IkeSaReauthenticating):
            out.append(("reauthenticating", e.spi_i.hex(), e.action))
        elif isinstance(e, ev.IkeSaReestablishing):
            out.append(("reestablishing", e.spi_i.hex(), e.old_spi.hex(), e.reason, e.action))
        elif isinstance(e, ev.IkeSaEstablished):
            out.append(("established", e.spi_i.hex()))
        elif isinstance(e, ev.ChildSaInstalled):
            out.append(("installed", e.spi_i.hex(), e.spi_in.hex()))
        elif isinstance(e, ev.ChildSaDeleted):
            out.append(("deleted", e.spi_i.hex(), e.spi_in.hex()))
        elif isinstance(e, ev.IkeSaDeleted):
            out.append(("ike_deleted", e.spi_i.hex(), e.reason))
    return out


@pytest.mark.parametrize("make_before_break", [True, False], ids=["make-before-break", "break-before-make"])
def test_ikesim_reauthenticates_to_charon(start_charon: StartCharon, make_before_break: bool) -> None:
    """3 s after IKE_AUTH ikesim reauthenticates: make-before-break brings the new IKE_SA and CHILD_SA up first and
    then deletes the old IKE_SA; break-before-make deletes first. charon accepts both and ends with exactly the new
    IKE_SA (SPIs as ikesim's) and its CHILD_SA (SPIs swapped), nothing retransmitted or rejected."""
    charon = start_charon()
    daemon = _client(make_before_break)
    with UdpDriver(daemon, BIND) as drv:
        daemon.initiate("vpn", drv.now())
        first = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted | ev.ProposalRejected),
                              STEP)
        if isinstance(first, ev.ProposalRejected) and "unable to add SAD entry" in charon.log():
            pytest.skip("charon cannot install CHILD_SAs here (see test_strongswan_childfail.py)")
        assert isinstance(first, ev.ChildSaInstalled)
        old_i, old_c = first.spi_i, first.spi_in
        drv.take_events()
        if make_before_break:
            drv.run_until(lambda e: isinstance(e, ev.IkeSaDeleted) and e.spi_i == old_i, REAUTH + STEP)
        else:
            drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled) and e.spi_i != old_i, REAUTH + STEP)
        events = list(drv.events)
        story = [s for s in _sa_story(events) if s[0] != "reauthenticating" or s[1] == old_i.hex()]
        new = next(e for e in events if isinstance(e, ev.ChildSaInstalled) and e.spi_i != old_i)
        est = next(e for e in events if isinstance(e, ev.IkeSaEstablished) and e.spi_i == new.spi_i)
        mode = "make_before_break" if make_before_break else "break_before_make"
        head = [("reauthenticating", old_i.hex(), mode), ("reestablishing", new.spi_i.hex(), old_i.hex(), "reauth", mode)]
        up = [("established", new.spi_i.hex()), ("installed", new.spi_i.hex(), new.spi_in.hex())]
        down = [("deleted", old_i.hex(), old_c.hex()), ("ike_deleted", old_i.hex(), "reauth")]
        start = story.index(head[0])
        assert story[start:start + 6] == head + (up + down if make_before_break else down + up)
        assert daemon.ike_sa_spis() == [new.spi_i] and daemon.child_sa_spis() == [new.spi_in]
        views = [v for v in charon.list_sas() if v.connection == "sim-psk"]
        assert [(v.spi_i, v.spi_r, v.state) for v in views] == [(est.spi_i, est.spi_r, "ESTABLISHED")]
        assert_child_matches(views[0], new, "aes256gcm16")
        assert set(installed(views[0])) == {new.spi_out}
        assert charon.log_lines("received DELETE for IKE_SA sim-psk") or charon.log_lines("deleting IKE_SA sim-psk")
        daemon.delete_ike_sa(new.spi_i, drv.now())
        drv.run_until(lambda e: isinstance(e, ev.IkeSaDeleted) and e.spi_i == new.spi_i, STEP)
    assert_log_clean(charon)


@pytest.mark.parametrize("make_before_break", [True, False], ids=["make-before-break", "break-before-make"])
def test_charon_reauthenticates_ikesim(start_charon: StartCharon, make_before_break: bool) -> None:
    """charon initiates ``sim-reauth`` (reauth_time 3 s) and reauthenticates: ikesim, the responder, answers a new
    IKE_SA_INIT and IKE_AUTH and the old IKE_SA's Delete, in charon's order (make-before-break: new first), and ends
    with exactly charon's new IKE_SA and CHILD_SA."""
    charon = start_charon(port_nat_t=4501, make_before_break=make_before_break)
    daemon = _responder()
    with UdpDriver(daemon, BIND, natt=NATT) as drv:
        init = Swanctl(charon, "--initiate", "--child", "reauth", "--ike", "sim-reauth", "--timeout", "5")
        first = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled | ev.IkeSaDeleted), STEP)
        assert "initiate completed successfully" in init.finish(drv)
        assert isinstance(first, ev.ChildSaInstalled) and not first.initiator
        old_i, old_c = first.spi_i, first.spi_in
        if make_before_break:
            drv.run_until(lambda e: isinstance(e, ev.IkeSaDeleted) and e.spi_i == old_i, REAUTH + STEP)
        else:
            drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled) and e.spi_i != old_i, REAUTH + STEP)
        events = list(drv.events)
        new = next(e for e in events if isinstance(e, ev.ChildSaInstalled) and e.spi_i != old_i)
        est = next(e for e in events if isinstance(e, ev.IkeSaEstablished) and e.spi_i == new.spi_i)
        story = [s for s in _sa_story(events) if s[0] != "installed" or s[1] != old_i.hex()]
        up = [("established", new.spi_i.hex()), ("installed", new.spi_i.hex(), new.spi_in.hex())]
        down = [("deleted", old_i.hex(), old_c.hex()), ("ike_deleted", old_i.hex(), "deleted_by_peer")]
        assert story[1:5] == (up + down if make_before_break else down + up)
        assert (est.initiator, est.peer_id) == (False, "gw-reauth@sim.test")
        assert daemon.ike_sa_spis() == [est.spi_r] and daemon.child_sa_spis() == [new.spi_in]
        views = [v for v in charon.list_sas() if v.connection == "sim-reauth"]
        assert [(v.spi_i, v.spi_r, v.state) for v in views] == [(est.spi_i, est.spi_r, "ESTABLISHED")]
        assert set(installed(views[0])) == {new.spi_out}
        assert charon.log_lines("reauthenticating IKE_SA sim-reauth")
        # strongSwan reauthenticates "to the same addresses": the new IKE_SA_INIT comes from charon's NAT-T socket to
        # ikesim's (the old IKE_SA had floated, kernel-libipsec fakes a NAT), with the non-ESP marker. charon registers
        # the new IKE_SA only after sending its IKE_SA_INIT (``trigger_mbb_reauth``/``reestablish``: ``checkin`` after
        # ``initiate``), so on loopback ikesim's answer may come too early to be found: charon then sends the same
        # request again 2 s later and ikesim answers it from its cache (RFC 7296 §2.1).
        got = [(d.src.port, d.dst.port, ExchangeType(peek_header(d.data)[2]).name, d.data) for d in drv.received]
        again = [i for i in range(1, len(got)) if got[i] == got[i - 1]]
        assert all(got[i][2] == "IKE_SA_INIT" for i in again) and len(again) <= 1
        reauth = [("IKE_SA_INIT",), ("IKE_AUTH",), ("INFORMATIONAL",)]
        order = reauth if make_before_break else reauth[2:] + reauth[:2]
        assert [g[:3] for i, g in enumerate(got) if i not in again] == [
            (500, IKESIM_PORT, "IKE_SA_INIT"), (4501, 4500, "IKE_AUTH")] + [(4501, 4500) + o for o in order]
        term = Swanctl(charon, "--terminate", "--ike", "sim-reauth", "--timeout", "5")
        drv.run_until(lambda e: isinstance(e, ev.IkeSaDeleted) and e.spi_i == new.spi_i, STEP)
        term.finish(drv)
    bad = [line for line in charon.problems() if not (again and "retransmit 1 of request with message ID 0" in line)]
    assert bad == []
