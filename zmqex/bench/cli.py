"""The command line: ``bin/zmqex-bench [--quick] [--json FILE] [--nodes N] [--profile-core] [--core]
[--compare-compiled [--compiled-dir DIR]]``.

:func:`main` runs the sections in order (core, depth, wire, sign, raw, mesh), logs
one progress line per section on stderr, prints :func:`~zmqex.bench.report.table`
on stdout and writes the results as JSON; it exits 1 unless every replica
converged and nothing failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, ParamSpec

from zmqex.bench.compiled import compare_core, core_build, default_compiled_dir
from zmqex.bench.core import bench_core, bench_depth, profile_core
from zmqex.bench.mesh import bench_keyed, bench_mesh
from zmqex.bench.kinds import bench_kinds
from zmqex.bench.raw import _worker_env, bench_raw_commit, bench_raw_pubsub, bench_raw_rtt
from zmqex.bench.report import _fmt, _targets, machine, table
from zmqex.bench.sign import bench_sign
from zmqex.bench.wire import bench_wire

P = ParamSpec("P")

QUICK_LIMIT_S = 54  # --quick aims to be done by then (the mesh sections share what is left)


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zmqex-bench", description="Benchmark zmqex against plain comparators.")
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute on 2 cores")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE (default: stdout)")
    parser.add_argument("--nodes", type=int, default=3, metavar="N", help="nodes in the main mesh (default 3)")
    parser.add_argument("--profile-core", action="store_true",
                        help="also run the core section under cProfile and print the top 15 by tottime")
    parser.add_argument("--core", action="store_true", help="the core sections only (no depth, wire, sign, raw, mesh)")
    parser.add_argument("--compare-compiled", action="store_true",
                        help="also run the core section on the pure and on the mypyc-compiled core, each in a "
                             "process of its own, and report compiled/pure (builds the compiled core first)")
    parser.add_argument("--compiled-dir", metavar="DIR", help="where the compiled core is built "
                        "(default: build/compiled in the source tree)")
    parser.add_argument("--timeline", action="store_true",
                        help="only where a take's time goes, stage by stage, with --sync full and normal "
                             "(zmqex.bench.timeline)")
    args = parser.parse_args(argv)
    if args.timeline:
        from zmqex.bench.timeline import bench_timeline
        from zmqex.bench.timeline import table as timeline_table

        os.environ["PYTHONPATH"] = _worker_env()["PYTHONPATH"]
        runs = [bench_timeline(100 if args.quick else 500, sync) for sync in ("full", "normal")]
        print("\n\n".join(timeline_table(r) for r in runs))
        if args.json:
            Path(args.json).write_text(json.dumps(runs, indent=2) + "\n")
        return 0
    if not 2 <= args.nodes <= 26:
        parser.error("--nodes must be 2..26")
    # node processes run `python -m zmqex.cli`: make sure they find this zmqex
    os.environ["PYTHONPATH"] = _worker_env()["PYTHONPATH"]
    quick = args.quick
    sizes: dict[str, Any] = {
        "core_ops": 10_000 if quick else 100_000,
        "depths": [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000],
        "depth_ops": 5_000 if quick else 20_000,
        "kinds_rounds": 500 if quick else 1_000,
        "wire": 10_000 if quick else 100_000,
        "sign": 2_000 if quick else 20_000,
        "sign_orders": 3_000 if quick else 20_000,
        "pubsub": 100_000 if quick else 500_000,
        "rtt": 1_000 if quick else 5_000,
        "commits": 200 if quick else 1_000,
        "takes": 200 if quick else 1_000,
        "mesh_passive": 2_000 if quick else 10_000,
        "mesh_orders": 800 if quick else 3_000,
        "mesh_budget_s": 12 if quick else 90,
        "converge_wait_s": 10 if quick else 60,
        "clients_per_node": 1,
        "window": 64,
        "by_nodes_orders": 1_500,
        "keyed_rounds": 2,
    }
    started = time.perf_counter()
    r: dict[str, Any] = {"command": " ".join([os.path.basename(sys.argv[0]), *(argv if argv is not None else
                                                                              sys.argv[1:])]),
                         "quick": quick, "machine": machine(), "sizes": sizes,
                         "core_build": core_build()}  # this process's core: pure or compiled (mypyc)

    def section(name: str, fn: Callable[P, dict[str, Any]], *a: P.args, **kw: P.kwargs) -> dict[str, Any]:
        t0 = time.perf_counter()
        log(f"{name} ...")
        out = fn(*a, **kw)
        r.update(out)
        summary = ", ".join(f"{k}={_fmt(v)}" for k, v in out.items() if isinstance(v, (int, float)) and
                            not isinstance(v, bool))[:240]
        log(f"{name}: {time.perf_counter() - t0:.1f}s: {summary}")
        return out

    def budgets(meshes_left: float) -> tuple[float, float]:
        budget_s, converge_s = sizes["mesh_budget_s"], sizes["converge_wait_s"]
        if quick:  # stay under a minute even when the mesh is slow: share what is left
            per_mesh = (started + QUICK_LIMIT_S - time.perf_counter()) / meshes_left
            budget_s = max(2.0, min(budget_s, per_mesh - 8))
            converge_s = max(3.0, min(converge_s, per_mesh / 2))
        return budget_s, converge_s

    def mesh(n: int, store: str, suffix: str, takes: int, passive: int, orders: int,
             meshes_left: float = 1) -> dict[str, Any]:
        budget_s, converge_s = budgets(meshes_left)
        m = bench_mesh(n, orders, store=store, takes=takes, passive=passive,
                       clients_per_node=sizes["clients_per_node"], window=sizes["window"],
                       budget_s=budget_s, converge_s=converge_s)
        out = {f"mesh_orders_per_s{suffix}": m["mixed"]["orders_per_s"],
               f"mesh_events_per_envelope{suffix}": m["mixed"].get("events_per_envelope")}
        if "passive" in m:
            out[f"mesh_passive_orders_per_s{suffix}"] = m["passive"]["orders_per_s"]
            out[f"mesh_passive_events_per_envelope{suffix}"] = m["passive"].get("events_per_envelope")
        if "takes_events_per_envelope" in m:
            out[f"takes_events_per_envelope{suffix}"] = m["takes_events_per_envelope"]
        for key in ("take_p50_ms", "take_p99_ms", "fok_take_p50_ms", "fok_take_p99_ms", "converge_p50_ms",
                    "converge_p99_ms"):
            if key in m:
                out[key + suffix] = m[key]
        out[f"converged{suffix}"] = m["converged"]
        out[f"mesh_detail{suffix}"] = m
        return out

    def keyed(n: int, takes: int, passive: int, orders: int, meshes_left: float) -> dict[str, Any]:
        """The mesh with keys and without, at once, taking turns (see bench_keyed): the ratio."""
        budget_s, converge_s = budgets(meshes_left)
        pair = bench_keyed(n, orders, store="full", passive=passive, takes=takes, rounds=sizes["keyed_rounds"],
                           clients_per_node=sizes["clients_per_node"], window=sizes["window"],
                           budget_s=budget_s, converge_s=converge_s)
        k, u = pair["keyed"], pair["unkeyed"]
        out: dict[str, Any] = {"mesh_orders_per_s_keyed": k["mixed"]["orders_per_s"],
                               "mesh_orders_per_s_keyed_unkeyed": u["mixed"]["orders_per_s"],
                               "mesh_events_per_envelope_keyed": k["mixed"].get("events_per_envelope")}
        if u["mixed"]["orders_per_s"]:
            out["mesh_keyed_vs_unkeyed"] = k["mixed"]["orders_per_s"] / u["mixed"]["orders_per_s"]
        if "passive" in k:
            out["mesh_passive_orders_per_s_keyed"] = k["passive"]["orders_per_s"]
            out["mesh_passive_events_per_envelope_keyed"] = k["passive"].get("events_per_envelope")
            out["mesh_passive_orders_per_s_keyed_unkeyed"] = u["passive"]["orders_per_s"]
            if u["passive"]["orders_per_s"]:
                out["mesh_passive_keyed_vs_unkeyed"] = k["passive"]["orders_per_s"] / u["passive"]["orders_per_s"]
        for key in ("take_p50_ms", "take_p99_ms"):
            if key in k:
                out[key + "_keyed"] = k[key]
        out["converged_keyed"] = bool(k["converged"] and u["converged"])
        out["mesh_detail_keyed"] = pair
        return out

    try:
        section(f"core vs plain book ({r['core_build']} core)", bench_core, sizes["core_ops"])
        section("order kinds: limit, fok, amend (simulated network)", bench_kinds, sizes["kinds_rounds"])
        if args.compare_compiled:
            compiled_dir = Path(args.compiled_dir) if args.compiled_dir else default_compiled_dir()
            section("core, pure vs compiled, a process each", compare_core, sizes["core_ops"], compiled_dir, log=log)
        if args.core:
            raise _CoreOnly
        section("cost per op by depth", bench_depth, sizes["depths"], sizes["depth_ops"])
        spread = [r["core_us_per_op_by_depth"].get(str(d)) for d in (1_000, 10_000, 100_000)]
        if all(spread):
            r["core_depth_spread_1k_100k"] = max(spread) / min(spread)
        section("wire codec vs msgpack", bench_wire, sizes["wire"])
        section("sign and verify vs codec", bench_sign, sizes["sign"], sizes["sign_orders"])
        section("raw pub/sub", bench_raw_pubsub, sizes["pubsub"])
        section("raw DEALER->ROUTER rtt", bench_raw_rtt, sizes["rtt"])
        section("raw sqlite commit (fsync)", bench_raw_commit, sizes["commits"])
        section(f"mesh, {args.nodes} nodes, sqlite store", mesh, args.nodes, "full", "", sizes["takes"],
                sizes["mesh_passive"], sizes["mesh_orders"], 4.5)
        # keys: CURVE on every connection, every event signed; beside the same mesh without, run at the same time
        section(f"mesh, {args.nodes} nodes, sqlite store, keyed vs unkeyed", keyed, args.nodes, sizes["takes"],
                sizes["mesh_passive"], sizes["mesh_orders"], 3.5)
        section(f"mesh, {args.nodes} nodes, sqlite store, --sync normal", mesh, args.nodes, "normal", "_sync_normal",
                sizes["takes"], sizes["mesh_passive"], sizes["mesh_orders"], 2)
        section(f"mesh, {args.nodes} nodes, ephemeral", mesh, args.nodes, "ephemeral", "_ephemeral", sizes["takes"],
                sizes["mesh_passive"], sizes["mesh_orders"])
        r["converged"] = bool(r["converged"] and r["converged_keyed"] and r["converged_sync_normal"]
                              and r["converged_ephemeral"])
        if r.get("mesh_orders_per_s_ephemeral"):
            r["persistence_ratio"] = r["mesh_orders_per_s"] / r["mesh_orders_per_s_ephemeral"]
        if r.get("mesh_passive_orders_per_s_ephemeral"):
            r["persistence_ratio_passive"] = (r["mesh_passive_orders_per_s"]
                                              / r["mesh_passive_orders_per_s_ephemeral"])
        if r.get("raw_pubsub_msgs_per_s"):
            r["mesh_vs_raw_pubsub"] = r["mesh_orders_per_s"] / r["raw_pubsub_msgs_per_s"]
            r["mesh_keyed_vs_raw_pubsub"] = r["mesh_orders_per_s_keyed"] / r["raw_pubsub_msgs_per_s"]
        by_nodes = {str(args.nodes): r["mesh_orders_per_s"]}
        if not quick:  # every size with the same number of orders (the main run's may differ)
            by_nodes = {}
            for n in (2, 3, 5, 8):
                out = section(f"mesh, {n} nodes, sqlite store", mesh, n, "full", f"_{n}_nodes", 0, 0,
                              sizes["by_nodes_orders"])
                by_nodes[str(n)] = out[f"mesh_orders_per_s_{n}_nodes"]
                r["converged"] = r["converged"] and out[f"converged_{n}_nodes"]
        r["mesh_orders_per_s_by_nodes"] = by_nodes
        if by_nodes.get("2") and by_nodes.get("8"):  # falls no faster than 1/fanout: (8 nodes x 7) / (2 nodes x 1)
            r["mesh_fanout_scaling"] = by_nodes["8"] * 7 / by_nodes["2"]
    except _CoreOnly:
        pass
    except Exception as exc:  # still report what was measured
        log(f"FAILED: {exc.__class__.__name__}: {exc}")
        r["error"] = f"{exc.__class__.__name__}: {exc}"
        r["converged"] = False
    r["targets"] = _targets(r)
    r["seconds_total"] = time.perf_counter() - started
    if args.profile_core:
        log(f"profiling the core section ({r['core_build']} core: compiled functions do not show) ...")
        print(profile_core(sizes["core_ops"]), file=sys.stderr)
    print(table(r))
    text = json.dumps(r, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
        log(f"wrote {args.json} ({time.perf_counter() - started:.1f}s in all)")
    else:
        print(text)
    return 0 if r.get("converged", True) and "error" not in r else 1


class _CoreOnly(Exception):
    """--core: the sections after the core's are skipped."""
