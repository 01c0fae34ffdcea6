"""The report: machine details, the targets, and the table printed at the end of a run.

Each row of :func:`table` is a zmqex figure, its plain comparator from the same
run, and their ratio; :data:`TARGETS` are the thresholds the figures are held to.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import zmq

from zmqex.bench import rawpack


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "msgpack": ".".join(map(str, rawpack.version)),
        "platform": platform.platform(),
    }


TARGETS = [
    # (name, value key, comparison, threshold)
    ("keyed mesh >= 0.025x raw pub/sub", "mesh_keyed_vs_raw_pubsub", ">=", 0.025),  # mixed stream, --sync full
    ("take p99 keyed <= 4 ms (sync full)", "take_p99_ms_keyed", "<=", 4.0),
    ("take p99 <= 2 ms (sync normal)", "take_p99_ms_sync_normal", "<=", 2.0),
    ("converge p99 <= 10 ms", "converge_p99_ms", "<=", 10.0),
    ("pure core >= 0.08x plain book", "core_vs_plain_pure", ">=", 0.08),  # --compare-compiled
    ("compiled core >= 0.15x plain book", "core_vs_plain_compiled", ">=", 0.15),  # --compare-compiled
    ("2 -> 8 nodes: x fanout >= 1", "mesh_fanout_scaling", ">=", 1.0),  # full run only
    ("cost/op flat within 2x, 1k..100k", "core_depth_spread_1k_100k", "<=", 2.0),
    ("keyed mesh >= 0.5x unkeyed", "mesh_keyed_vs_unkeyed", ">=", 0.5),
]


def _targets(r: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, key, cmp, limit in TARGETS:
        value = r.get(key)
        ok = None if value is None else (value >= limit if cmp == ">=" else value <= limit)
        out[name] = {"key": key, "value": value, "target": f"{cmp} {limit}", "met": ok}
    return out


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        text = f"{value:,.0f}" if value >= 1000 else f"{value:.3g}" if value < 10 else f"{value:,.1f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".rstrip()


def table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, key: str, unit: str, comparator: str = "", comp_key: str | None = None,
            ratio: float | None = None) -> None:
        if key not in r:
            return
        comp = "" if comp_key is None else f"{comparator} {_fmt(r.get(comp_key), unit)}"
        rows.append((name, _fmt(r[key], unit), comp, "" if ratio is None else f"{ratio:.3f}x"))

    def ratio(a: str, b: str) -> float | None:
        x, y = r.get(a), r.get(b)
        return x / y if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else None

    core = f"core replica ({r['core_build']} core)" if "core_build" in r else "core replica"
    row(core, "core_orders_per_s", "ops/s", "plain book", "plain_book_orders_per_s", r.get("core_vs_plain"))
    row("core replica, compiled (mypyc), own process", "core_orders_per_s_compiled", "ops/s", "pure, own process",
        "core_orders_per_s_pure", r.get("compiled_vs_pure"))
    row("  pure core / plain book, same turn", "core_vs_plain_pure", "")
    row("  compiled core / plain book, same turn", "core_vs_plain_compiled", "")
    if "core_plain_fills_match" in r:
        rows.append(("  same fills as plain book", _fmt(r["core_plain_fills_match"]), "", ""))
    makers = r.get("kinds_makers")
    row(f"limit order filled by {makers} makers on {makers} nodes (sim)", "limit_us_per_order", "us")
    row("  the same as fill or kill (hold, confirm)", "fok_us_per_order", "us", "limit", "limit_us_per_order",
        r.get("fok_vs_limit"))
    row("  amend, lower quantity", "amend_lower_us", "us", "limit", "limit_us_per_order", r.get("amend_lower_vs_limit"))
    row("  amend, new price", "amend_price_us", "us", "limit", "limit_us_per_order", r.get("amend_price_vs_limit"))
    core_depth = r.get("core_us_per_op_by_depth", {})
    plain_depth = r.get("plain_us_per_op_by_depth", {})
    base = core_depth.get("1000")
    for depth, us in core_depth.items():
        plain = plain_depth.get(depth)
        rows.append((f"core cost/op, {int(depth):,} resting", _fmt(us, "us"),
                     f"plain {_fmt(plain, 'us')}" if plain else "",
                     f"{us / base:.2f}x of 1k; {us / plain:.0f}x plain" if base and plain else ""))
    row("wire encode+decode", "wire_events_per_s", "ev/s", "plain msgpack", "plain_msgpack_per_s",
        ratio("wire_events_per_s", "plain_msgpack_per_s"))
    row("Ed25519 sign, order event", "sign_us", "us", "encode+decode", "sign_codec_us", r.get("sign_vs_codec"))
    row("Ed25519 verify (Keyring), order event", "verify_us", "us", "encode+decode", "sign_codec_us",
        r.get("verify_vs_codec"))
    row("core own passive order, signed", "core_signed_us_per_order", "us", "unsigned",
        "core_unsigned_us_per_order", r.get("core_signed_vs_unsigned"))
    row("mesh orders (sqlite)", "mesh_orders_per_s", "ord/s", "raw pub/sub", "raw_pubsub_msgs_per_s",
        r.get("mesh_vs_raw_pubsub"))
    row("mesh orders (ephemeral)", "mesh_orders_per_s_ephemeral", "ord/s", "raw pub/sub", "raw_pubsub_msgs_per_s",
        ratio("mesh_orders_per_s_ephemeral", "raw_pubsub_msgs_per_s"))
    row("mesh orders (sqlite, --sync normal)", "mesh_orders_per_s_sync_normal", "ord/s", "raw pub/sub",
        "raw_pubsub_msgs_per_s", ratio("mesh_orders_per_s_sync_normal", "raw_pubsub_msgs_per_s"))
    row("mesh passive-only (sqlite)", "mesh_passive_orders_per_s", "ord/s", "raw pub/sub", "raw_pubsub_msgs_per_s",
        ratio("mesh_passive_orders_per_s", "raw_pubsub_msgs_per_s"))
    row("mesh passive-only (ephemeral)", "mesh_passive_orders_per_s_ephemeral", "ord/s", "raw pub/sub",
        "raw_pubsub_msgs_per_s", ratio("mesh_passive_orders_per_s_ephemeral", "raw_pubsub_msgs_per_s"))
    row("mesh orders (sqlite, keyed)", "mesh_orders_per_s_keyed", "ord/s", "without keys, alongside",
        "mesh_orders_per_s_keyed_unkeyed", r.get("mesh_keyed_vs_unkeyed"))
    row("mesh passive-only (sqlite, keyed)", "mesh_passive_orders_per_s_keyed", "ord/s", "without keys, alongside",
        "mesh_passive_orders_per_s_keyed_unkeyed", r.get("mesh_passive_keyed_vs_unkeyed"))
    row("mesh orders (sqlite, keyed)", "mesh_orders_per_s_keyed", "ord/s", "raw pub/sub", "raw_pubsub_msgs_per_s",
        r.get("mesh_keyed_vs_raw_pubsub"))
    for label, key in (("mixed", "mesh_events_per_envelope"), ("passive-only", "mesh_passive_events_per_envelope"),
                       ("mixed, keyed", "mesh_events_per_envelope_keyed"),
                       ("passive-only, keyed", "mesh_passive_events_per_envelope_keyed"),
                       ("one take at a time", "takes_events_per_envelope")):
        row(f"events per envelope, {label}", key, "")
    if "persistence_ratio" in r:
        rows.append(("persistence ratio (sqlite/ephemeral)", _fmt(r["persistence_ratio"]), "passive-only",
                     _fmt(r.get("persistence_ratio_passive"))))
    by_nodes = r.get("mesh_orders_per_s_by_nodes") or {}
    for n, v in by_nodes.items() if len(by_nodes) > 1 else ():
        rows.append((f"mesh orders, {n} nodes", _fmt(v, "ord/s"), "raw pub/sub",
                     f"{v / r['raw_pubsub_msgs_per_s']:.3f}x" if r.get("raw_pubsub_msgs_per_s") else ""))
    row("take p50 (fill on other node)", "take_p50_ms", "ms", "raw rtt p50", "raw_rtt_p50_ms",
        ratio("take_p50_ms", "raw_rtt_p50_ms"))
    row("take p99", "take_p99_ms", "ms", "raw rtt p99", "raw_rtt_p99_ms", ratio("take_p99_ms", "raw_rtt_p99_ms"))
    row("fok take p50 (hold, confirm)", "fok_take_p50_ms", "ms", "take p50", "take_p50_ms",
        ratio("fok_take_p50_ms", "take_p50_ms"))
    row("fok take p99", "fok_take_p99_ms", "ms", "take p99", "take_p99_ms", ratio("fok_take_p99_ms", "take_p99_ms"))
    row("take p99 (sqlite, --sync normal)", "take_p99_ms_sync_normal", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("take_p99_ms_sync_normal", "raw_rtt_p99_ms"))
    row("take p99 (sqlite, keyed)", "take_p99_ms_keyed", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("take_p99_ms_keyed", "raw_rtt_p99_ms"))
    row("take p99 (ephemeral)", "take_p99_ms_ephemeral", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("take_p99_ms_ephemeral", "raw_rtt_p99_ms"))
    row("raw sqlite commit with fsync, p50", "raw_commit_p50_ms", "ms")
    row("raw sqlite commit with fsync, p99", "raw_commit_p99_ms", "ms")
    row("converge p50 (first->last replica)", "converge_p50_ms", "ms", "raw rtt p50", "raw_rtt_p50_ms",
        ratio("converge_p50_ms", "raw_rtt_p50_ms"))
    row("converge p99", "converge_p99_ms", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("converge_p99_ms", "raw_rtt_p99_ms"))
    row("converge p99 (ephemeral)", "converge_p99_ms_ephemeral", "ms", "raw rtt p99", "raw_rtt_p99_ms",
        ratio("converge_p99_ms_ephemeral", "raw_rtt_p99_ms"))
    if "converged" in r:
        rows.append(("every replica converged", _fmt(r["converged"]), "", ""))
    widths = [max(len(x[i]) for x in rows + [("figure", "value", "comparator", "ratio")]) for i in range(4)]
    lines = []
    for i, cols in enumerate([("figure", "value", "comparator", "ratio"), *rows]):
        lines.append("  ".join(c.ljust(w) if j in (0, 2) else c.rjust(w) for j, (c, w) in enumerate(zip(cols, widths)))
                     .rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("targets:")
    for name, t in r.get("targets", {}).items():
        mark = {True: "met", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"  {name:<34} {_fmt(t['value']):>10}  {mark}")
    return "\n".join(lines)
