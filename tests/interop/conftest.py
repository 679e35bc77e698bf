"""Interop fixtures: the ``interop`` marker and a real strongSwan charon (module-scoped, always stopped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from charon_harness import CHARON_IP, IKESIM_IP, IKESIM_PORT, Charon, pem_files, skip_reason

from ikesim.crypto.auth import make_ca, make_end_entity
from ikesim.rng import Rng


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``interop`` marker (tests against a real strongSwan)."""
    config.addinivalue_line("markers", "interop: needs root and a real strongSwan charon + swanctl")


@pytest.fixture(scope="session")
def pki() -> dict[str, object]:
    """An ECDSA P-256 CA with end-entity certificates for charon and ikesim (fixed seed)."""
    rng = Rng(4242, "interop-pki")
    ca_key, ca = make_ca(rng.child("ca"), "ikesim interop CA")
    charon_key, charon_cert = make_end_entity(rng.child("charon"), ca_key, ca, "resp-cert@sim.test")
    sim_key, sim_cert = make_end_entity(rng.child("ikesim"), ca_key, ca, "init-cert@sim.test")
    return {"ca": ca, "charon_key": charon_key, "charon_cert": charon_cert,
            "sim_key": sim_key, "sim_cert": sim_cert}


@pytest.fixture(scope="module")
def charon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           pki: dict[str, object]) -> Iterator[Charon]:
    """A running charon on 127.0.0.1 with the tools/interop/ config loaded; stopped at the end.

    A test module may set ``CHARON_PORT_NAT_T`` to move charon's NAT-T socket off 4500, and
    ``CHARON_KERNEL = "netlink"`` to use the kernel XFRM backend instead of kernel-libipsec.
    """
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    workdir: Path = tmp_path_factory.mktemp("charon")
    netlink = getattr(request.module, "CHARON_KERNEL", None) == "netlink"
    c = Charon(workdir, port_nat_t=getattr(request.module, "CHARON_PORT_NAT_T", 4500),
               libipsec=False if netlink else None)
    c.write_config(charon_ip=CHARON_IP, ikesim_ip=IKESIM_IP, ikesim_port=IKESIM_PORT, files=pem_files(pki))
    try:
        c.start()
        c.load_all()
        yield c
    finally:
        c.stop()
