#!/usr/bin/env python3
"""An OTC session between two desks: desk A asks for a quote, desk B quotes, A accepts.

    python examples/otc_session.py 127.0.0.1:7001 127.0.0.1:7002 b      # A's node, B's node, B's id

(the addresses ``zmqex-demo`` prints; without keys).  The trade is known in full
to the two desks; every other node's tape gets only its report.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

try:
    import zmqex  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zmqex.client import Client


def main(node_a: str, node_b: str, desk_b: str) -> int:
    with Client(node_a, trader="alice") as alice, Client(node_b, trader="bob") as bob:
        rfq = alice.rfq("buy", "2", desks=[desk_b], answer_ms=30_000)  # A: who sells me 2 BTC?
        print("A asks:", rfq["rfq_id"], rfq["side"], rfq["qty"])
        deadline = time.monotonic() + 10
        while not any(r["rfq_id"] == rfq["rfq_id"] for r in bob.otc()["rfqs"]):  # B's desk sees it
            if time.monotonic() > deadline:
                sys.exit("desk B never saw the request")
            time.sleep(0.05)
        quote = bob.quote(rfq["rfq_id"], "50000.00", "2", valid_ms=10_000)  # B: firm for 10 s
        print("B quotes:", quote["offer_id"], quote["price"], "for", quote["qty"])
        while not any(o["offer_id"] == quote["offer_id"] for o in alice.otc()["offers"]):
            if time.monotonic() > deadline:
                sys.exit("desk A never saw the quote")
            time.sleep(0.05)
        done = alice.accept(quote["offer_id"], "2")  # all of it at that price, or nothing
        if not done["traded"]:
            print("not traded:", done["reason"])
            return 1
        trade = done["trade"]
        print(f"A bought {trade['qty']} at {trade['price']} from {trade['counterparty']}; "
              f"on the public tape as {trade['report_id']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
