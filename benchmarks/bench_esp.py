"""Micro-benchmark: microseconds per ESP protect and unprotect (a script, not a test).

    python benchmarks/bench_esp.py [--batch 1000] [--repeats 41]

For AES-GCM-256 and AES-CBC-256 + HMAC-SHA2-256-128 at 200- and 1400-byte inner
packets, times ``OutboundEspSa.protect`` and ``InboundEspSa.unprotect`` in batches of
``--batch`` packets (distinct sequence numbers, so the anti-replay window accepts every
one) and prints the median over ``--repeats`` batches of the mean per packet, in µs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ikesim.crypto.suites import Suite
from ikesim.esp import InboundEspSa, OutboundEspSa, inner_ipv4
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, IntegId

SUITES = {
    "aes256gcm16": Suite(EncrId.ENCR_AES_GCM_16, 256),
    "aes256-sha256": Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128),
}
SIZES = (200, 1400)
SPI = bytes.fromhex("c0ffee01")


def bench(suite: Suite, size: int, batch: int, repeats: int) -> tuple[float, float]:
    """Median µs per protect and per unprotect of *size*-byte inner packets with *suite*."""
    rng = Rng(1, "bench-esp")
    ek, ik = rng.bytes(suite.encr_key_size), rng.bytes(suite.integ_key_size)
    out = OutboundEspSa(SPI, suite, ek, ik, rng=rng.child("iv"))
    inb = InboundEspSa(SPI, suite, ek, ik, window=64)
    inner = inner_ipv4("10.1.0.1", "10.2.0.1", size)
    protect, unprotect = out.protect, inb.unprotect
    for _ in range(batch):  # warm up both directions
        unprotect(protect(inner))  # type: ignore[arg-type]
    p_us, u_us = [], []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        packets = [protect(inner) for _ in range(batch)]
        t1 = time.perf_counter_ns()
        for pkt in packets:
            unprotect(pkt)  # type: ignore[arg-type]
        t2 = time.perf_counter_ns()
        p_us.append((t1 - t0) / batch / 1000)
        u_us.append((t2 - t1) / batch / 1000)
    assert inb.packets == out.packets == batch * (repeats + 1), "every packet must pass"
    return statistics.median(p_us), statistics.median(u_us)


def main() -> None:
    """Print one line per suite and size: median µs per protect and per unprotect."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=41)
    args = ap.parse_args()
    print(f"{'suite':<16}{'inner B':>8}{'protect us':>12}{'unprotect us':>14}")
    for name, suite in SUITES.items():
        for size in SIZES:
            p, u = bench(suite, size, args.batch, args.repeats)
            print(f"{name:<16}{size:>8}{p:>12.2f}{u:>14.2f}")


if __name__ == "__main__":
    main()
