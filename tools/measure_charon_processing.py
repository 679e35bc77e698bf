"""Measure a live strongSwan charon's processing time per CREATE_CHILD_SA request (the ``sim.processing`` default).

Runs the interop harness's charon (tests/interop/charon_harness.py; needs root and charon-systemd) on loopback,
brings up ikesim's ``vpn`` IKE_SA, then rekeys the CHILD_SA ``net`` (no PFS) and ``pfs`` (X25519) N times each.
For each rekey it times, with ``perf_counter``, from the rekey command to ``RekeyCompleted`` and subtracts the time
ikesim itself spent building the request and processing the answer: what is left is charon's processing (receiver
thread -> job -> decrypt, parse, key exchange, two SA installs, build, encrypt, send), the loopback round trip (tens
of microseconds) and the driver's polling.
Prints the quantiles in milliseconds.

    python tools/measure_charon_processing.py [N] [--verbose]
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))

from charon_harness import BIND, CHARON_IP, IKESIM_IP, IKESIM_PORT, Charon, pem_files, skip_reason  # noqa: E402

from ikesim.crypto.auth import make_ca, make_end_entity  # noqa: E402
from ikesim.ike import events as ev  # noqa: E402
from ikesim.rng import Rng  # noqa: E402
from ikesim.udp import UdpDriver  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))
from test_strongswan import make_daemon  # noqa: E402


def _print(label: str, times: list[float]) -> None:
    """One line of quantiles in milliseconds."""
    q = statistics.quantiles(times, n=20)
    print(f"{label}: n={len(times)} min {min(times) * 1e3:.3f} ms, p5 {q[0] * 1e3:.3f}, "
          f"median {statistics.median(times) * 1e3:.3f}, p95 {q[-1] * 1e3:.3f}, max {max(times) * 1e3:.3f}")


def main(n: int, quiet: bool) -> None:
    """Rekey *n* times per CHILD_SA against a live charon and print charon's answer times."""
    reason = skip_reason()
    if reason is not None:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        c = Charon(Path(tmp))
        rng = Rng(4242, "interop-pki")  # the interop tests' PKI (tests/interop/conftest.py)
        ca_key, ca = make_ca(rng.child("ca"), "ikesim interop CA")
        charon_key, charon_cert = make_end_entity(rng.child("charon"), ca_key, ca, "resp-cert@sim.test")
        sim_key, sim_cert = make_end_entity(rng.child("ikesim"), ca_key, ca, "init-cert@sim.test")
        pki = {"ca": ca, "charon_key": charon_key, "charon_cert": charon_cert, "sim_key": sim_key, "sim_cert": sim_cert}
        c.write_config(charon_ip=CHARON_IP, ikesim_ip=IKESIM_IP, ikesim_port=IKESIM_PORT, files=pem_files(pki))
        if quiet:  # a production log level: the harness's enc/ike/cfg 4 with flush_line dominate otherwise
            conf = c.conf.read_text().replace("flush_line = yes", "flush_line = no")
            c.conf.write_text(re.sub(r"(\n\s+(?:default|enc|ike|cfg|chd|knl|net|mgr)) = \d", r"\1 = 0", conf))
        print(f"charon {c.binary}, kernel {'libipsec' if c.libipsec else 'netlink'}, log {'quiet' if quiet else 'verbose'}")
        c.start()
        try:
            c.load_all()
            daemon = make_daemon(1, "aes256gcm16-prfsha256-x25519", "aes256gcm16")
            spent = [0.0]
            receive = daemon.receive_datagram

            def timed(*args: object) -> object:
                t = time.perf_counter()
                try:
                    return receive(*args)  # type: ignore[arg-type]
                finally:
                    spent[0] += time.perf_counter() - t

            daemon.receive_datagram = timed  # type: ignore[method-assign]
            with UdpDriver(daemon, BIND) as drv:
                spi_i = daemon.initiate("vpn", drv.now())
                net = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled), 5.0)
                daemon.create_child_sa(spi_i, "pfs", drv.now())
                pfs = drv.run_until(lambda e: isinstance(e, ev.ChildSaInstalled) and e.child == "pfs", 5.0)
                times = []
                for _ in range(n):  # an empty INFORMATIONAL: the floor (loopback, driver, decrypt + encrypt)
                    spent[0] = 0.0
                    t0 = time.perf_counter()
                    daemon.check_liveness(spi_i, drv.now())
                    own = time.perf_counter() - t0
                    drv.run_until(lambda e: isinstance(e, ev.ExchangeCompleted) and e.purpose == "dpd", 5.0)
                    times.append(time.perf_counter() - t0 - own - spent[0])
                _print("DPD (empty INFORMATIONAL)", times)
                for label, first in (("CREATE_CHILD_SA rekey, no PFS", net), ("CREATE_CHILD_SA rekey, X25519", pfs)):
                    spi, times = first.spi_in, []
                    for _ in range(n):
                        spent[0] = 0.0
                        t0 = time.perf_counter()
                        daemon.rekey_child_sa(spi, drv.now())
                        own = time.perf_counter() - t0
                        done = drv.run_until(lambda e: isinstance(e, ev.RekeyCompleted), 5.0)
                        times.append(time.perf_counter() - t0 - own - spent[0])  # charon's share (and loopback)
                        drv.run_until(lambda e: isinstance(e, ev.ExchangeCompleted) and e.purpose == "delete_child", 5.0)
                        spi = done.new_spi
                    _print(label, times)
        finally:
            c.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, "--verbose" not in sys.argv)
