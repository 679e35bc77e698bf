"""After each batch: do the two ends still agree, and do they still rekey?"""

from __future__ import annotations

from ikesim.fuzz.pairs import Pair

__all__ = ["divergence", "rekey_check"]


def divergence(pair: Pair) -> str:
    """'' if the two ends agree on the current IKE_SA, its message IDs and its CHILD_SAs; else what differs."""
    cur = pair.current()
    if cur is None:
        return "ike_sa_gone"
    c, g = cur
    if c.active is not None or g.active is not None or c.queue or g.queue:
        return "exchange_pending"
    if c.next_message_id != g.peer_message_id or g.next_message_id != c.peer_message_id:
        return "message_ids"
    c_in = {ch.spi_in: ch.spi_out for ch in c.children.values()}
    g_in = {ch.spi_in: ch.spi_out for ch in g.children.values()}
    if {v: k for k, v in c_in.items()} != g_in:
        return "child_sas"
    c_usable = {spi for spi in pair.client.child_sa_spis() if spi in c_in}
    g_usable = {spi for spi in pair.gateway.child_sa_spis() if spi in g_in}
    if not c_usable:
        return "no_child_sa"
    if {c_in[spi] for spi in c_usable} != g_usable:
        return "child_sa_states"
    return ""


def rekey_check(pair: Pair, now: float) -> tuple[str, float]:
    """Rekey a CHILD_SA, then the IKE_SA, of the current IKE_SA by hand (RFC 7296 §1.3.2, §1.3.3).

    Returns ('' if both ends have the new SAs, else what went wrong; the time reached).
    """
    cur = pair.current()
    if cur is None:
        return "no current IKE_SA", now
    c_sa, g_sa = cur
    old_child = set(c_sa.children)
    usable = [spi for spi in pair.client.child_sa_spis() if spi in old_child]
    if not usable:
        return "no CHILD_SA to rekey", now
    try:
        pair.client.rekey_child_sa(usable[0], now)
        pair.settle(now)
        now = pair.run_until(now + 30.0, now)
        pair.drain()
        new_child = set(c_sa.children)
        why = divergence(pair)
        if why or usable[0] in new_child or not new_child - old_child:
            return f"CHILD_SA rekey: {len(old_child)} -> {len(new_child)} CHILD_SAs ({why})", now
        pair.gateway.rekey_ike_sa(g_sa.local_spi, now)
        pair.settle(now)
        now = pair.run_until(now + 30.0, now)
        pair.drain()
        if not c_sa.replaced_by:
            return "IKE_SA rekey: the client's IKE_SA was not replaced", now
        pair.cur = c_sa.replaced_by
        why = divergence(pair)
        if why or pair.client.sas.get(c_sa.local_spi) is not None:
            return f"IKE_SA rekey: {why or 'old IKE_SA still there'}", now
    except Exception as exc:  # a rekey that raises is a failed check, recorded
        return f"rekey raised {type(exc).__name__}: {exc}", now
    return "", now
