"""Drop reasons and the package's public names."""

from __future__ import annotations

import ikesim.esp
from ikesim.esp import drops


def test_drop_reasons_are_the_documented_strings():
    """Every reason has its fixed value, ALL lists each once, senders' first."""
    assert drops.ALL == ("no_sa", "sa_expired", "seq_exhausted", "unknown_spi", "icv_failure", "replayed",
                         "outside_window", "malformed")
    assert (drops.NO_SA, drops.SA_EXPIRED, drops.SEQ_EXHAUSTED, drops.UNKNOWN_SPI, drops.ICV_FAILURE, drops.REPLAYED,
            drops.OUTSIDE_WINDOW, drops.MALFORMED) == drops.ALL
    assert len(set(drops.ALL)) == 8


def test_public_names_are_exported():
    """The package re-exports the data plane, SAs, window, events, tunnel helpers and every drop reason."""
    assert set(ikesim.esp.__all__) == {
        "EspDataPlane", "ESP_PORT", "classify", "EspLimits", "OutboundEspSa", "InboundEspSa", "SEQ_MAX", "SEQ_MAX_ESN",
        "ReplayWindow", "EspEvent", "EspLimitReached", "EspPeerMoved", "inner_ipv4", "parse_inner", *drops.__all__}
    assert all(hasattr(ikesim.esp, name) for name in ikesim.esp.__all__)
