"""The long nemesis, from the command line (README, "Nemesis").

    python -m tests.nemesis --seconds 1800 --seed 7                  # every kind that can run here
    python -m tests.nemesis --seconds 120 --kinds kill,pause --nodes 3

Prints the schedule as it runs, then a summary (faults of each kind, orders
acknowledged and checked, the longest recovery after a heal) and every problem
found; exits 0 if none, 1 if any, 2 if a kind asked for cannot run here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.nemesis import faults
from tests.nemesis.run import Plan, Unavailable, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.nemesis", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300, help="how long the schedule runs (default 300)")
    parser.add_argument("--seed", type=int, default=None, help="the schedule's seed (default: from the clock)")
    parser.add_argument("--nodes", type=int, default=5, help="nodes (default 5)")
    parser.add_argument("--kinds", default=None,
                        help=f"fault kinds, comma-separated, of {','.join(faults.KINDS)} (default: all that can "
                             "run here; a kind named here that cannot run is an error)")
    parser.add_argument("--gap", type=_range, default=(2.0, 8.0), metavar="MIN,MAX",
                        help="seconds of quiet before each fault (default 2,8)")
    parser.add_argument("--duration", type=_range, default=(3.0, 20.0), metavar="MIN,MAX",
                        help="seconds each fault lasts (default 3,20)")
    parser.add_argument("--overlap", type=float, default=0.25, metavar="P",
                        help="the chance that a fault comes with a second, of another kind, on other nodes "
                             "(default 0.25)")
    parser.add_argument("--pace", type=float, default=0.1, help="seconds between a trader's requests (default 0.1)")
    parser.add_argument("--sync", choices=["full", "normal"], default="full", help="the nodes' --sync")
    parser.add_argument("--workdir", type=Path, default=None, help="node logs and history (default: a new temp dir)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    if args.kinds:
        kinds = [k for k in args.kinds.split(",") if k]
        unknown = [k for k in kinds if k not in faults.KINDS]
        if unknown:
            parser.error(f"unknown kinds {unknown}; known: {list(faults.KINDS)}")
    else:
        missing = faults.unavailable(list(faults.KINDS))
        for why in missing.values():
            print(f"SKIPPED {why}", flush=True)
        kinds = [k for k in faults.KINDS if k not in missing]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"zmqex-nemesis-{seed}-"))
    plan = Plan(workdir, seed, kinds, nodes=args.nodes, seconds=args.seconds, pace=args.pace, gap=args.gap,
                duration=args.duration, overlap=args.overlap,
                catch_up_bound=120, converge_bound=120, node_args=["--sync", args.sync], verbose=True)
    try:
        report = run(plan)
    except Unavailable as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    print(report.summary(), flush=True)
    return 1 if report.problems else 0


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX (seconds)") from None
    if not 0 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= MIN <= MAX")
    return pair


if __name__ == "__main__":
    sys.exit(main())
