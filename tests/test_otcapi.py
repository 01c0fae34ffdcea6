"""The OTC ops and the rfqs stream without sockets: two desks, each a replica and its client api.

Bad requests (garbage ids, amounts that are not decimal strings, out-of-range
times, ids of other desks) get a clear error and change nothing.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from zmqex import otcwire
from zmqex.api import ClientApi
from zmqex.core import messages
from zmqex.core.outputs import Delivered, OtcChanged, Publish, Reply, Send
from zmqex.core.replica import Replica

ALICE, BOB = b"\x00alice", b"\x00bob"


class Desks:
    """Replicas a and b with their apis, their outputs carried out as a node does (messages encoded)."""

    def __init__(self) -> None:
        self.replicas = {n: Replica(n, peers=[p for p in "ab" if p != n]) for n in "ab"}
        self.apis = {n: ClientApi(r) for n, r in self.replicas.items()}
        self.inbox: dict[bytes, list[dict[str, Any]]] = {}
        self.now = 0

    def ask(self, node: str, who: bytes, trader: str, op: str, **args: Any) -> dict[str, Any] | None:
        raw = self.apis[node].handle(who, msgpack.packb({"v": 1, "id": op, "op": op, "trader": trader, **args}),
                                     now=self.now)
        self.pump()
        return None if raw is None else msgpack.unpackb(raw)

    def pump(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            moved = False
            for node, replica in self.replicas.items():
                api = self.apis[node]
                for out in replica.take_outputs():
                    if isinstance(out, Send):
                        moved = True
                        self.replicas[out.to].receive(node, messages.decode(messages.encode(out.message)), self.now)
                    elif isinstance(out, Publish):
                        for other in self.replicas:
                            if other != node:
                                moved = True
                                self.replicas[other].receive(node, messages.decode(messages.encode(out.message)),
                                                             self.now)
                    elif isinstance(out, Reply):
                        self._deliver([api.finish(out.token, out.result)])
                    elif isinstance(out, OtcChanged):
                        self._deliver(api.streams.on_otc(out.item))
                    elif isinstance(out, Delivered):
                        self._deliver(api.on_delivered([out.event]))
            if not moved:
                return

    def _deliver(self, frames: Any) -> None:
        for who, frame in filter(None, frames):
            self.inbox.setdefault(who, []).append(msgpack.unpackb(frame))

    def take(self, who: bytes) -> list[dict[str, Any]]:
        return self.inbox.pop(who, [])


def test_an_rfq_its_quote_and_the_accept_come_on_the_rfqs_stream_and_the_trade_on_the_tape() -> None:
    desks = Desks()
    assert desks.ask("a", ALICE, "alice", "subscribe", stream="rfqs")["ok"]
    assert desks.ask("a", ALICE, "alice", "subscribe", stream="trades", id="tape")["ok"]
    assert desks.ask("b", BOB, "bob", "subscribe", stream="rfqs")["ok"]
    rfq = desks.ask("a", ALICE, "alice", "rfq", side="buy", qty="1.5", desks=["b"], answer_ms=60_000)["result"]
    assert otcwire.parse_rfq(rfq)["desks"] == ["b"]
    seen = [m["rfq"] for m in desks.take(BOB) if "rfq" in m]
    assert [r["rfq_id"] for r in seen] == [rfq["rfq_id"]] and seen[0]["desks"] == [], "b is not told whom else a asked"
    quote = desks.ask("b", BOB, "bob", "quote", rfq_id=rfq["rfq_id"], price="50000", qty="1.5",
                      valid_ms=10_000)["result"]
    offers = [m["offer"] for m in desks.take(ALICE) if "offer" in m]
    assert [o["offer_id"] for o in offers] == [quote["offer_id"]] and offers[0]["price"] == "50000.00"
    reply = desks.ask("a", ALICE, "alice", "accept", offer_id=quote["offer_id"], qty="1.5")
    assert reply is None  # answered when b has decided
    messages_ = desks.take(ALICE)
    [accepted] = [m for m in messages_ if m.get("id") == "accept"]
    answer = otcwire.parse_accept(accepted["result"])
    assert answer["traded"] and answer["trade"]["side"] == "buy" and answer["trade"]["counterparty"] == "b"
    assert [m["trade"]["qty"] for m in messages_ if m.get("stream") == "rfqs" and "trade" in m] == ["1.50000000"]
    tape = [m["trade"] for m in messages_ if m.get("stream") == "trades"]
    assert [(t["maker"], t["taker"], t["price"]) for t in tape] == [("", "", "50000.00")]
    assert [m["trade"]["side"] for m in desks.take(BOB) if "trade" in m] == ["sell"]


def test_a_trader_sees_only_its_own_private_trades_an_operator_all_of_the_desk() -> None:
    desks = Desks()
    rfq = desks.ask("a", ALICE, "alice", "rfq", side="sell", qty="1", desks=["b"])["result"]
    quote = desks.ask("b", BOB, "bob", "quote", rfq_id=rfq["rfq_id"], price="100", qty="1", valid_ms=5000)["result"]
    desks.ask("a", ALICE, "alice", "accept", offer_id=quote["offer_id"], qty="1")
    assert len(desks.ask("a", ALICE, "alice", "otc")["result"]["trades"]) == 1
    assert desks.ask("a", b"\x00carol", "carol", "otc")["result"]["trades"] == []


@pytest.mark.parametrize("op, args, code", [
    ("rfq", {"side": "buy", "qty": 1, "desks": ["b"]}, "invalid_amount"),  # not a decimal string
    ("rfq", {"side": "buy", "qty": "1", "desks": ["b"], "answer_ms": 10**12}, "invalid_request"),
    ("rfq", {"side": "buy", "qty": "1", "desks": "b"}, "invalid_request"),
    ("rfq", {"side": "buy", "qty": "1", "desks": ["zz"]}, "invalid_request"),  # not a member
    ("rfq", {"side": "buy", "qty": "-1", "desks": ["b"]}, "invalid_amount"),
    ("rfq", {"side": "up", "qty": "1"}, "invalid_request"),
    ("quote", {"rfq_id": "b:r1", "price": "1", "qty": "1", "valid_ms": 1000}, "unknown_order"),
    ("quote", {"rfq_id": "b:17", "price": "1", "qty": "1", "valid_ms": 1000}, "invalid_request"),
    ("quote", {"rfq_id": "b:r1", "price": 1.5, "qty": "1", "valid_ms": 1000}, "invalid_amount"),
    ("accept", {"offer_id": "b:q1", "qty": "1"}, "unknown_order"),
    ("accept", {"offer_id": ["b:q1"], "qty": "1"}, "invalid_request"),
    ("accept", {"offer_id": "b:q1", "qty": "1", "disclose": "yes"}, "invalid_request"),
    ("accept", {"offer_id": "b:q1", "qty": "99999999999"}, "invalid_amount"),
    ("withdraw", {"item_id": "b:q1"}, "unknown_order"),
    ("withdraw", {"item_id": None}, "invalid_request"),
    ("place", {"side": "sell", "qty": "1", "price": "1", "only": []}, "invalid_request"),
    ("place", {"side": "sell", "qty": "1", "tif": "ioc", "price": "1", "only": ["b"]}, "invalid_request"),
    ("place", {"side": "sell", "qty": "1", "only": ["b"]}, "invalid_request"),  # no price
    ("place", {"side": "sell", "qty": "1", "price": "1", "only": ["a"]}, "invalid_request"),  # itself
])
def test_bad_otc_requests_get_a_clear_error_and_change_nothing(op: str, args: dict[str, Any], code: str) -> None:
    desks = Desks()
    reply = desks.ask("a", ALICE, "alice", op, **args)
    assert reply is not None and not reply["ok"] and reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    desk = desks.replicas["a"].otc
    assert not desk.offers and not desk.rfqs and not desk.trades
    desks.replicas["a"]._check()
