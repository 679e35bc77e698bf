"""Results tables and summary from a scripted run of two real daemons; collision counting; files."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pandas as pd
import pytest
from metrics_helpers import (
    DELAY,
    SCRIPT,
    cookie_run,
    one_bad_one_good_run,
    psk_mismatch_run,
    results_of,
    scripted_run,
)

from ikesim.ike import events as ev
from ikesim.metrics.results import Results

PURPOSES = ["ike_sa_init", "ike_auth", "create_child", "rekey_child", "delete_child", "rekey_ike", "delete_ike",
            "rekey_child", "delete_child", "delete_child", "dpd", "delete_ike"]
"""The exchanges SCRIPT causes, in order (a rekey is followed by the initiator's delete of the old SA)."""


def test_exchange_rows_follow_the_script(scripted: Results) -> None:
    """One row per exchange, in order, each answered after exactly one round trip, on the right nodes."""
    ex = scripted.exchanges
    assert ex["purpose"].tolist() == PURPOSES
    assert (ex["outcome"] == "ok").all() and (ex["retransmissions"] == 0).all()
    assert ex["latency"].tolist() == pytest.approx([2 * DELAY] * len(PURPOSES))
    assert (ex["end"] - ex["start"]).tolist() == pytest.approx(ex["latency"].tolist())
    gw_led = {"rekey_ike", "delete_ike"}
    initiators = ["gw" if p in gw_led and i < 7 else "client" for i, p in enumerate(PURPOSES)]
    initiators[9] = "gw"  # the scripted delete_child
    assert ex["initiator"].tolist() == initiators
    assert (ex["responder"] != ex["initiator"]).all() and set(ex["responder"]) == {"client", "gw"}
    assert ex["exchange"].tolist()[:3] == ["IKE_SA_INIT", "IKE_AUTH", "CREATE_CHILD_SA"]
    # the IKE rekey at 90 s moves everything after it to new SPIs with message IDs from 0
    old, new = ex.iloc[:7], ex.iloc[7:]
    assert old["spi_i"].nunique() == 1 and new["spi_i"].nunique() == 1
    assert old["spi_i"].iloc[0] != new["spi_i"].iloc[0]
    assert new[new["initiator"] == "client"]["message_id"].tolist() == [0, 1, 2, 3]


def test_scripted_actions_are_recorded_and_target_the_named_child(scripted: Results) -> None:
    """Every action becomes ActionExecuted on its node at its time; rekey_child picks the child by name."""
    acts = scripted.events[scripted.events["event"] == "ActionExecuted"]
    assert list(zip(acts["time"], acts["node"], acts["action"], strict=True)) == [(t, n, a) for t, n, a, _c in SCRIPT]
    inst = scripted.events[(scripted.events["event"] == "ChildSaInstalled") & (scripted.events["node"] == "client")]
    child_of = dict(zip(inst["spi_in"], inst["child"], strict=True))
    rekeys = acts[acts["action"] == "rekey_child"]
    assert [child_of[t] for t in rekeys["target"]] == ["net", "extra"]


def test_sas_rows_are_consistent(scripted: Results) -> None:
    """Each SA has a row per node with mirrored SPIs; created <= rekeyed_at <= deleted_at; lifetimes add up."""
    sas = scripted.sas
    assert sas.groupby("kind").size().to_dict() == {"child": 8, "ike": 4}
    for kind in ("ike", "child"):
        rows = sas[sas["kind"] == kind]
        by_node = {n: set(zip(g["spi_in"], g["spi_out"], strict=True)) for n, g in rows.groupby("node")}
        assert by_node["gw"] == {(o, i) for i, o in by_node["client"]}
    assert (sas["deleted_at"].notna()).all()
    rekeyed = sas[sas["rekeyed_at"].notna()]
    assert len(rekeyed) == 6 and (rekeyed["delete_reason"] == "rekeyed").all()
    assert (rekeyed["created"] <= rekeyed["rekeyed_at"]).all() and (rekeyed["rekeyed_at"] <= rekeyed["deleted_at"]).all()
    end = sas["rekeyed_at"].fillna(sas["deleted_at"])
    assert sas["actual_lifetime"].tolist() == pytest.approx((end - sas["created"]).tolist())
    assert sas["planned_lifetime"].tolist() == pytest.approx((sas["rekey_planned"] - sas["created"]).tolist())
    assert (sas["planned_lifetime"] > 0).all() and (sas["expire_planned"] > sas["rekey_planned"]).all()
    last = sas[(sas["kind"] == "ike") & sas["rekeyed_at"].isna()]
    assert sorted(last["delete_reason"]) == ["deleted_by_peer", "deleted_locally"]
    assert sorted(last["deleted_at"].tolist()) == pytest.approx([240.0 + DELAY, 240.0 + 2 * DELAY])


def test_rekey_latency_is_measured_on_both_sides(scripted: Results) -> None:
    """Initiator installs the new SA one round trip after the trigger, the responder one delay after."""
    rl = scripted.rekey_latencies
    triggers = list(zip(rl["node"], rl["kind"], rl["triggered"], strict=True))
    assert triggers == [("client", "child", 60.0), ("gw", "ike", 90.0), ("client", "child", 120.0)]
    assert rl["initiator_latency"].tolist() == pytest.approx([2 * DELAY] * 3)
    assert rl["responder_latency"].tolist() == pytest.approx([DELAY] * 3)
    lat = scripted.summary["rekey_latency"]
    assert lat["child"]["initiator"] == {"n": 2, "p50": 2 * DELAY, "p95": 2 * DELAY, "max": 2 * DELAY}
    assert lat["ike"]["responder"] == {"n": 1, "p50": DELAY, "p95": DELAY, "max": DELAY}


def test_events_table_has_no_key_material(scripted: Results) -> None:
    """Key columns are excluded and no key's hex appears anywhere in the events table."""
    events = scripted.events
    assert events.columns[:6].tolist() == ["time", "node", "event", "spi_i", "spi_r", "connection"]
    assert not [c for c in events.columns if re.search(r"^sk_|_key", c)]
    keys = {getattr(e, f).hex() for _t, _n, e in scripted.raw_events if isinstance(e, ev.IkeSaEstablished | ev.ChildSaInstalled)
            for f in ("sk_ei", "sk_er", "sk_ai", "sk_ar", "encr_key_in", "encr_key_out") if hasattr(e, f)}
    keys.discard("")
    assert len(keys) == 2 * 2 + 4 * 2  # two IKE_SAs (GCM: no SK_a), four CHILD_SAs (in and out)
    text = events.astype(str).to_csv()
    assert not [k for k in keys if k in text]
    assert events["time"].is_monotonic_increasing


def test_packets_table_matches_exchanges(scripted: Results) -> None:
    """One request and one response per exchange, all delivered one delay later, header fields decoded."""
    p = scripted.packets
    assert len(p) == 2 * len(PURPOSES) and (p["fate"] == "delivered").all()
    assert (p["time_delivered"] - p["time_sent"]).tolist() == pytest.approx([DELAY] * len(p))
    assert p["response"].tolist() == [False, True] * len(PURPOSES)
    reqs = p[~p["response"]]
    assert reqs["exchange"].tolist() == scripted.exchanges["exchange"].tolist()
    assert reqs["message_id"].tolist() == scripted.exchanges["message_id"].tolist()
    assert (p["size"] == p["ike_length"] + 28).all() and p["id"].tolist() == list(range(1, len(p) + 1))


def test_summary_is_json_ready_and_counts_agree(scripted: Results) -> None:
    """The summary round-trips through JSON, has no wall time, and its counts match the tables."""
    s = scripted.summary
    assert json.loads(json.dumps(s)) == s and "wall_time" not in s
    assert s["exchanges_by_type"] == scripted.exchanges["purpose"].value_counts().to_dict()
    assert s["rekeys"] == {"child": 2, "ike": 1} and s["collisions"] == 0 and s["exchanges_failed"] == 0
    assert s["datagrams"] == {"sent": 24, "delivered": 24, "lost": 0, "fragment_lost": 0, "fragments_dropped": 0,
                              "queue_overflow": 0, "link_down": 0, "fragmented": 0, "no_route": 0,
                              "dropped_by_fault": 0, "held_by_fault": 0, "in_flight": 0, "by_fate": {"delivered": 24}}
    assert s["sas"]["ike_established"] == 4 and s["sas"]["child_installed"] == 8
    assert s["crypto_ops"]["ke_keygen:31"] == 4 and s["nodes"] == ["client", "gw"]
    assert (s["name"], s["seed"], s["run"], s["duration"]) == ("metrics", 21, 0, 300.0)


def test_write_produces_every_file_and_parquet_reads_back(scripted: Results, tmp_path: Path) -> None:
    """write() creates the eight files; each parquet table reads back equal to its DataFrame."""
    scripted.write(tmp_path)
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        ["events.parquet", "exchanges.parquet", "sas.parquet", "packets.parquet", "summary.json", "capture.pcap",
         "ikev2_decryption_table", "esp_sa"])
    for name in ("events", "exchanges", "sas", "packets"):
        back = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, getattr(scripted, name), check_dtype=False)
    assert json.loads((tmp_path / "summary.json").read_text()) == scripted.summary
    assert len((tmp_path / "ikev2_decryption_table").read_text().splitlines()) == 2
    assert len((tmp_path / "esp_sa").read_text().splitlines()) == 8


def test_same_seed_gives_identical_files_other_seed_other_spis(tmp_path: Path) -> None:
    """Two runs with one seed write byte-identical files; another seed changes SPIs and the capture."""
    dirs = {}
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        dirs[label] = tmp_path / label
        dirs[label].mkdir()
        r = scripted_run(seed=seed, until=100.0)
        r.write(dirs[label])
    for f in dirs["a"].iterdir():
        assert f.read_bytes() == (dirs["b"] / f.name).read_bytes(), f.name
    a, c = pd.read_parquet(dirs["a"] / "sas.parquet"), pd.read_parquet(dirs["c"] / "sas.parquet")
    assert not set(a["spi_in"]) & set(c["spi_in"])
    assert (dirs["a"] / "capture.pcap").read_bytes() != (dirs["c"] / "capture.pcap").read_bytes()


def _collision(t: float, node: str, won: bool) -> tuple[float, str, ev.RekeyCollision]:
    e = ev.RekeyCollision(spi_i=b"\x01" * 8, spi_r=b"\x02" * 8, connection="vpn", kind=ev.SaKind.IKE,
                          old_spi=b"\x01" * 8 if node == "a" else b"\x02" * 8, won=won, redundant_spi=b"",
                          resolution="nonces")
    return (t, node, e)


@pytest.mark.parametrize(("reports", "expected", "winner"), [
    ([(1.0, "a", True), (1.1, "b", False)], 1, "a"),
    ([(1.0, "b", True)], 1, "b"),
    ([(1.0, "a", True), (1.1, "b", False), (9.0, "a", False), (9.1, "b", True)], 2, "a,b"),
    ([], 0, ""),
])
def test_collisions_are_counted_per_collision_not_per_report(
    reports: list[tuple[float, str, bool]], expected: int, winner: str
) -> None:
    """Each peer reports a collision once; a lost report still counts it; a repeated collision counts again."""
    raw = [_collision(*r) for r in reports]
    r = results_of(raw, owners={"10.0.0.1": "a"})
    assert r.summary["collisions"] == expected
    assert r.summary["collisions_by_kind"] == ({"ike_rekey": expected} if expected else {})
    assert r.summary["redundant_sas"] == {"child": 0, "ike": sum(not w for _t, _n, w in reports)}
    assert r.summary["collision_events"] == len(reports)
    if reports:
        assert r.collisions[["kind", "nodes", "reports", "count"]].values.tolist() == [
            ["ike", ",".join(sorted({n for _t, n, _w in reports})), len(reports), expected]]
        assert r.collisions["winner"].tolist() == [winner]


def test_key_tables_are_written_0600_and_the_rest_is_not(scripted: Results, tmp_path: Path) -> None:
    """The two key tables are owner-only (0600); the other files keep the umask's mode."""
    old = os.umask(0o022)
    try:
        scripted.write(tmp_path)
    finally:
        os.umask(old)
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in tmp_path.iterdir()}
    assert modes.pop("ikev2_decryption_table") == modes.pop("esp_sa") == 0o600
    assert set(modes.values()) == {0o644}


def test_write_without_keys_writes_no_key_table(scripted: Results, tmp_path: Path) -> None:
    """keys=False: every file but the two key tables, and no key's hex anywhere in what was written."""
    scripted.write(tmp_path, keys=False)
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        ["events.parquet", "exchanges.parquet", "sas.parquet", "packets.parquet", "summary.json", "capture.pcap"])
    keys = {e.sk_ei.hex() for _t, _n, e in scripted.raw_events if isinstance(e, ev.IkeSaEstablished)}
    assert len(keys) == 2
    blob = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    assert not [k for k in keys if bytes.fromhex(k) in blob or k.encode() in blob]


def test_decryption_table_has_the_ike_sa_whose_ike_auth_failed(tmp_path: Path) -> None:
    """PSK mismatch: no IKE_SA is established, yet the table has its row, from IkeSaKeysDerived (RFC 7296 §2.14)."""
    r = psk_mismatch_run()
    assert r.summary["sas"]["ike_established"] == 0 and r.summary["auth_failures"] == 2
    derived = [e for _t, _n, e in r.raw_events if isinstance(e, ev.IkeSaKeysDerived)]
    assert sorted(e.initiator for e in derived) == [False, True]
    assert len({(e.spi_i, e.spi_r, e.sk_ei, e.sk_er) for e in derived}) == 1  # both ends derived the same keys
    r.write(tmp_path)
    e = derived[0]
    assert (tmp_path / "ikev2_decryption_table").read_text().splitlines() == [
        f'{e.spi_i.hex()},{e.spi_r.hex()},{e.sk_ei.hex()},{e.sk_er.hex()},"AES-GCM-256 with 16 octet ICV [RFC5282]",,,'
        '"NONE [RFC4306]"']


def test_run_with_a_cookie_round_writes_its_events_with_the_retry_rows(tmp_path: Path) -> None:
    """cookie_threshold=0: the IKE_SA_INIT retried after N(COOKIE) (RFC 7296 §2.6) and the established SA share the
    ``group`` column as text, so the events table is written and reads back with the retry row."""
    r = cookie_run()
    r.write(tmp_path)
    back = pd.read_parquet(tmp_path / "events.parquet")
    pd.testing.assert_frame_equal(back, r.events, check_dtype=False)
    rows = back[back["event"].isin(["IkeSaInitRetried", "IkeSaEstablished"])]
    assert list(zip(rows["node"], rows["event"], rows["group"], strict=True)) == [
        ("client", "IkeSaInitRetried", "x25519"), ("gw", "IkeSaEstablished", "x25519"),
        ("client", "IkeSaEstablished", "x25519")]
    assert rows["reason"].iloc[0] == "cookie"
    assert back["event"].tolist().count("CookieRequired") == 1


def test_run_with_a_failed_and_a_good_connection_writes_its_events(tmp_path: Path) -> None:
    """AuthFailed's ``by_us`` (bool) and IkeSaEstablished's ``local`` (address) are separate columns, so a run with
    a PSK mismatch on one connection and a good one on another is written and reads back."""
    r = one_bad_one_good_run()
    r.write(tmp_path)
    back = pd.read_parquet(tmp_path / "events.parquet")
    pd.testing.assert_frame_equal(back, r.events, check_dtype=False)
    failed = back[back["event"] == "AuthFailed"]
    assert list(zip(failed["node"], failed["connection"], failed["by_us"], strict=True)) == [
        ("gw", "bad", True), ("client", "bad", False)]
    est = back[back["event"] == "IkeSaEstablished"]
    assert list(zip(est["node"], est["connection"], est["local"], strict=True)) == [
        ("gw", "good", "10.0.0.2[500]"), ("client", "good", "10.0.0.1[500]")]
