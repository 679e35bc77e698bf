"""CHILD_SA byte and packet lifetimes in scenario files: swanctl.conf's keys, sizes and defaults (strongSwan
``vici_config.c`` ``parse_bytes``/``check_lifetimes``), errors naming file, line and key, and the built configs."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.ike.config import Lifetime
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.limits import VolumeLimits
from ikesim.rng import Rng
from ikesim.scenario.build import daemon_configs
from ikesim.scenario.connection_model import derived_volume, parse_byte_size
from ikesim.scenario.load import load_scenario_text

BASE = """\
name: volume
seed: 7
duration: 1h
nodes:
  client: {addresses: [10.0.0.1]}
  gateway: {addresses: [10.0.0.2]}
links:
  - between: [client, gateway]
connections:
  vpn:
    initiator: client
    responder: gateway
    child:
      proposals: aes256gcm16
"""
"""A scenario whose child keys start at line 15."""


def _lifetimes(keys: str) -> tuple[Lifetime, Lifetime]:
    """The CHILD_SA lifetimes the client and the gateway get from the child *keys* (YAML lines)."""
    configs = {c.name: c for c in daemon_configs(load_scenario_text(BASE + keys, "v.yaml"))}
    return configs["client"].connections[0].children[0].lifetime, configs["gateway"].connections[0].children[0].lifetime


def _volume(life: Lifetime) -> tuple[int, ...]:
    return (life.rekey_bytes, life.life_bytes, life.rand_bytes, life.rekey_packets, life.life_packets, life.rand_packets)


@pytest.mark.parametrize(("text", "size"), [
    (1000, 1000), ("1000", 1000), ("512k", 524_288), ("512K", 524_288), ("2m", 2_097_152), ("1 G", 1_073_741_824),
    ("0", 0), ("0x100", 256), ("010", 8), (2**64 - 1, 2**64 - 1),
])
def test_byte_sizes_as_swanctl_reads_them(text: object, size: int) -> None:
    """A whole number, or text as strtoull(v, 0) reads it (0x hex, 0 octal), spaces, then k, m or g: 1024-based."""
    assert parse_byte_size("rekey_bytes", text) == size


@pytest.mark.parametrize(("text", "message"), [
    (-5, "rekey_bytes -5 is negative: give 0 (no limit) or more"),
    ("-5k", "rekey_bytes '-5k' is negative: give 0 (no limit) or more"),
    ("1KB", "rekey_bytes '1KB' is not a size: give bytes as a whole number, or with k, m or g (1024-based, as "
            "swanctl.conf), e.g. 512k, 2m, 1g"),
    ("1.5m", "rekey_bytes '1.5m' is not a size"), ("08", "rekey_bytes '08' is not a size"),
    ("1t", "rekey_bytes '1t' is not a size"), (1.5, "rekey_bytes must be a whole number, got the number 1.5"),
    (True, "rekey_bytes must be a whole number, got true"), (2**64, "rekey_bytes 18446744073709551616 is more than 2^64 - 1"),
])
def test_bad_byte_sizes(text: object, message: str) -> None:
    """Anything else is a ValueError that names the key."""
    with pytest.raises(ValueError) as err:
        parse_byte_size("rekey_bytes", text)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize(("keys", "volume"), [
    ("", (0, 0, 0, 0, 0, 0)),
    ("      rekey_bytes: 1m\n", (1_048_576, 1_153_433, 104_857, 0, 0, 0)),
    ("      life_bytes: 1100000\n", (999_999, 1_100_000, 100_001, 0, 0, 0)),
    ("      rekey_bytes: 512k\n      life_bytes: 600k\n", (524_288, 614_400, 90_112, 0, 0, 0)),
    ("      rekey_bytes: 512k\n      rand_bytes: 0\n", (524_288, 576_716, 0, 0, 0, 0)),
    ("      rekey_bytes: 1m\n      life_bytes: 0\n", (1_048_576, 0, 0, 0, 0, 0)),
    ("      life_bytes: 1g\n      rekey_bytes: 0\n", (0, 1_073_741_824, 1_073_741_824, 0, 0, 0)),
    ("      rekey_packets: 1000\n", (0, 0, 0, 1_000, 1_100, 100)),
    ("      life_packets: 11000\n      rand_packets: 50\n", (0, 0, 0, 10_000, 11_000, 50)),
    ("      rekey_bytes: 10\n      rekey_packets: 5\n", (10, 11, 1, 5, 5, 0)),
])
def test_defaults_are_strongswans(keys: str, volume: tuple[int, ...]) -> None:
    """rekey defaults to life / 1.1 (else 0 = no limit), life to rekey + 10 %, rand to life - rekey, rounded down as
    strongSwan's 64-bit integers are; both ends get the same limits; time lifetimes are untouched."""
    client, gateway = _lifetimes(keys)
    assert _volume(client) == _volume(gateway) == volume
    assert (client.rekey_time, client.life_time, client.rand_time) == (3600.0, 1.1 * 3600.0, 1.1 * 3600.0 - 3600.0)


def test_derived_volume_matches_strongswan_integer_arithmetic() -> None:
    """check_lifetimes assigns doubles to uint64_t: 1100000 / 1.1 is 999999.99..., so 999999."""
    assert derived_volume(None, 1_100_000, None) == (999_999, 1_100_000, 100_001)
    assert derived_volume(3, None, None) == (3, 3, 0)  # 3 * 1.1 = 3.3000000000000003
    assert derived_volume(None, None, None) == (0, 0, 0)


@pytest.mark.parametrize(("keys", "expected"), [
    ("      rekey_bytes: -5\n", "v.yaml:15: connections.vpn.child.rekey_bytes: rekey_bytes -5 is negative"),
    ("      life_bytes: 1KB\n", "v.yaml:15: connections.vpn.child.life_bytes: life_bytes '1KB' is not a size"),
    ("      rand_bytes: -1\n", "v.yaml:15: connections.vpn.child.rand_bytes: rand_bytes -1 is negative"),
    ("      rekey_packets: -1\n", "v.yaml:15: connections.vpn.child.rekey_packets: rekey_packets -1 is negative"),
    ("      life_packets: 10k\n",
     "v.yaml:15: connections.vpn.child.life_packets: life_packets must be a whole number, got the text '10k'"),
    ("      rand_packets: 1.5\n",
     "v.yaml:15: connections.vpn.child.rand_packets: rand_packets must be a whole number, got the number 1.5"),
    ("      rekey_bytes: 2m\n      life_bytes: 1m\n",
     "v.yaml:16: connections.vpn.child.life_bytes: life_bytes 1048576 must be more than rekey_bytes 2097152 "
     "(the SA would expire before it is rekeyed)"),
    ("      rekey_packets: 100\n      life_packets: 100\n",
     "v.yaml:16: connections.vpn.child.life_packets: life_packets 100 must be more than rekey_packets 100"),
    ("      rekey_bytes: 1m\n      rand_bytes: 1m\n",
     "v.yaml:16: connections.vpn.child.rand_bytes: rand_bytes 1048576 must be less than rekey_bytes 1048576 "
     "(a rekey could fall due at once)"),
    ("      rekey_bytes: 1m\n      life_bytes: 3m\n",
     "v.yaml:13: connections.vpn.child.rand_bytes: the default rand_bytes 2097152 (= life_bytes - rekey_bytes) is not "
     "less than rekey_bytes 1048576: give a rand_bytes below rekey_bytes"),
    ("      rekey_byte: 1m\n", "v.yaml:15: connections.vpn.child.rekey_byte: unknown key"),
])
def test_errors_name_file_line_and_key(keys: str, expected: str) -> None:
    """Each bad value is a ConfigError at file:line: key path: with the key in the reason, as the time keys."""
    with pytest.raises(ConfigError) as err:
        load_scenario_text(BASE + keys, "v.yaml")
    assert str(err.value).startswith(expected), str(err.value)


def test_built_daemons_draw_jittered_limits() -> None:
    """The scenario's limits reach the CHILD_SAs: each SA of each end draws its own soft limits (seed 7, by hand)."""
    configs = {c.name: c for c in daemon_configs(load_scenario_text(
        BASE + "      rekey_bytes: 1m\n      life_packets: 11000\n", "v.yaml"))}
    rng = Rng(7)
    client = IkeDaemon(configs["client"], rng=rng.child("client"))
    gateway = IkeDaemon(configs["gateway"], rng=rng.child("gateway"))
    client.initiate("vpn", 0.0)
    for _ in range(10):
        moved = 0
        for a, b in ((client, gateway), (gateway, client)):
            for d in a.datagrams_to_send(0.0):
                b.receive_datagram(d.data, d.src, d.dst, 0.0)
                moved += 1
        if not moved:
            break
    (c,), (g,) = client.child_sa_spis(), gateway.child_sa_spis()
    assert client.child_sa_volume_limits(c) == VolumeLimits(
        rekey_bytes_in=981_095, rekey_bytes_out=957_447, life_bytes=1_153_433,
        rekey_packets_in=9_162, rekey_packets_out=9_616, life_packets=11_000)
    assert gateway.child_sa_volume_limits(g) == VolumeLimits(
        rekey_bytes_in=957_644, rekey_bytes_out=957_805, life_bytes=1_153_433,
        rekey_packets_in=9_218, rekey_packets_out=9_103, life_packets=11_000)
    # rekey - U{0..rand} (rand = life - rekey: 104857 bytes, 1000 packets) from each node's volume_jitter stream,
    # inbound SA (bytes, packets) then outbound SA:
    stream = Rng(7).child("client", "volume_jitter")
    assert [1_048_576 - stream.below(104_858), 10_000 - stream.below(1_001), 1_048_576 - stream.below(104_858),
            10_000 - stream.below(1_001)] == [981_095, 9_162, 957_447, 9_616]
