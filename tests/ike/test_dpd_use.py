"""DPD counts ESP as inbound traffic: the data plane's use stats defer the liveness check (RFC 7296 §2.4)."""

from __future__ import annotations

from ikepeers import make_peers

from ikesim.ike.config import IkePolicy


def _dpd_requests(d, now: float) -> int:  # noqa: ANN001
    return len(d.datagrams_to_send(now))


def test_esp_arriving_within_dpd_delay_defers_the_check_until_dpd_delay_after_it() -> None:
    """dpd_delay 30 s. With ESP arriving on the client's CHILD_SA at 25 s the DPD due at 30 s is re-armed for
    55 s (strongSwan's send_dpd: the next check is dpd_delay after the last inbound packet); without use stats,
    or with ESP older than dpd_delay, the DPD goes at once."""
    for last, expect_at in ((25.0, 55.0), (None, 30.0), (-5.0, 30.0)):
        peers = make_peers(client_ike=IkePolicy(dpd_delay=30.0))
        c_spi, _g = peers.establish()
        used: dict[bytes, float] = {} if last is None else {c_spi: last}
        peers.client.child_use = used.get
        assert peers.client.get_timer() == 30.0
        peers.client.handle_timer(30.0)
        if expect_at == 30.0:
            assert _dpd_requests(peers.client, 30.0) == 1
            continue
        assert _dpd_requests(peers.client, 30.0) == 0 and peers.client.get_timer() == expect_at
        peers.client.handle_timer(expect_at)
        assert _dpd_requests(peers.client, expect_at) == 1  # no ESP since 25 s: now the check goes


def test_without_a_data_plane_dpd_is_as_before() -> None:
    peers = make_peers(client_ike=IkePolicy(dpd_delay=30.0))
    peers.establish()
    assert peers.client.child_use is None
    peers.client.handle_timer(30.0)
    assert _dpd_requests(peers.client, 30.0) == 1
