"""The charon harness's pure parts: swanctl --raw parsing and the log problem filter (no charon needed)."""

from __future__ import annotations

from pathlib import Path

from charon_harness import Charon, ike_views, parse_vici_raw

RAW = ("list-sa event {sim-psk {uniqueid=1 version=2 state=ESTABLISHED local-host=127.0.0.1 local-port=500 "
       "initiator-spi=6fd90aba866d11b4 responder-spi=5e07195abb5e9886 nat-fake=yes dh-group=CURVE_25519 "
       "child-sas {net-1 {name=net uniqueid=1 state=INSTALLED spi-in=ffc2d746 spi-out=081e7dff "
       "local-ts=[127.0.0.1/32] remote-ts=[127.0.0.2/32]} net-2 {name=net uniqueid=2 state=DELETED "
       "spi-in=0000abcd spi-out=0000dcba local-ts=[10.0.0.0/8 10.1.0.0/16] remote-ts=[]}}}}\n"
       "list-sas reply {}\n")


def test_parse_vici_raw_sections_lists_and_messages() -> None:
    """Nested sections become dicts, ``k=[a b]`` lists become lists, each message is (name, body)."""
    msgs = parse_vici_raw(RAW)
    assert [m for m, _ in msgs] == ["list-sa event", "list-sas reply"]
    sa = msgs[0][1]["sim-psk"]
    assert sa["child-sas"]["net-2"]["local-ts"] == ["10.0.0.0/8", "10.1.0.0/16"]  # type: ignore[index]
    assert sa["child-sas"]["net-2"]["remote-ts"] == []  # type: ignore[index]
    assert msgs[1][1] == {}


def test_ike_views_decode_spis_and_children() -> None:
    """IKE and CHILD SPIs come back as bytes with charon's state strings."""
    (view,) = ike_views(RAW)
    assert (view.connection, view.state) == ("sim-psk", "ESTABLISHED")
    assert (view.spi_i, view.spi_r) == (bytes.fromhex("6fd90aba866d11b4"), bytes.fromhex("5e07195abb5e9886"))
    assert [(c.state, c.spi_in, c.spi_out) for c in view.children] == [
        ("INSTALLED", bytes.fromhex("ffc2d746"), bytes.fromhex("081e7dff")),
        ("DELETED", bytes.fromhex("0000abcd"), bytes.fromhex("0000dcba"))]


def test_problems_flags_rejections_not_routine_lines(tmp_path: Path) -> None:
    """Parse/integrity/AUTH failures are flagged; proposal matching chatter and normal exchanges are not."""
    log = "\n".join([
        "02:50:44 16[CFG]   no acceptable ENCRYPTION_ALGORITHM found",
        "02:50:44 15[ENC] parsed INFORMATIONAL request 0 [ ]",
        "02:50:44 09[IKE] integrity check failed",
        "02:50:44 09[ENC] parsing SECURITY_ASSOCIATION payload failed",
        "02:50:44 04[IKE] received AUTHENTICATION_FAILED notify error",
        "02:50:44 04[IKE] authentication of 'init@sim.test' with pre-shared key failed",
        "02:50:44 04[ENC] invalid IKE_SA_INIT message",
        "02:50:44 04[IKE] retransmit 1 of request with message ID 4",
    ])
    bad = Charon(tmp_path).problems(log)
    assert [line.split("] ", 1)[1] for line in bad] == [
        "integrity check failed", "parsing SECURITY_ASSOCIATION payload failed",
        "received AUTHENTICATION_FAILED notify error",
        "authentication of 'init@sim.test' with pre-shared key failed", "invalid IKE_SA_INIT message",
        "retransmit 1 of request with message ID 4"]
