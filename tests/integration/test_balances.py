"""Trader balances on real node processes: funded traders of two nodes trade, both sides move exactly,
an order over a balance is refused, and a kill -9 loses nothing; with keys only an operator funds."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest

from zmqex.client import Client
from zmqex.errors import InsufficientBalance, InvalidRequest, NotOwner, Timeout
from zmqex.local import OPERATOR, LocalNetwork, wait_for

PRICE, QTY = "33333.33", "0.01234567"
COST = "411.52"  # 33333.33 x 0.01234567 = 411.5206..., rounded down to the cent: what both sides move


def test_funded_traders_of_two_nodes_trade_and_both_balances_move_exactly(net):
    net.start_mesh(["a", "b"])
    a, b = net.nodes["a"], net.nodes["b"]
    with Client(a.address, trader="alice") as alice, Client(b.address, trader="bob") as bob:
        alice.fund("alice", btc="1")  # without keys any connection funds (names are only claimed)
        assert bob.fund("bob", usd="1000")["usd"] == {"total": "1000.00", "reserved": "0.00", "available": "1000.00"}
        sell = alice.place("sell", QTY, PRICE)
        assert alice.balance()["btc"] == {"total": "1.00000000", "reserved": QTY, "available": "0.98765433"}
        wait_for(lambda: bob.book()["asks"] == [[PRICE, QTY, 1]], 10, "b to see alice's ask")
        with pytest.raises(InsufficientBalance, match="available"):
            bob.place("buy", "0.04", "33333.34")  # 1333.33 USD: more than bob has
        assert bob.balance()["usd"]["reserved"] == "0.00"  # refused: nothing reserved
        buy = bob.place("buy", "0.02469134", "33333.34")  # takes alice's at her price; the rest rests
        assert buy["filled"] == QTY and buy["status"] == "partial"
        rest = (Decimal("33333.34") * Decimal(QTY)).quantize(Decimal("0.01"), ROUND_DOWN)  # what the rest reserves
        expected_bob = {"trader": "bob",
                        "usd": {"total": str(Decimal("1000") - Decimal(COST)), "reserved": str(rest),
                                "available": str(Decimal("1000") - Decimal(COST) - rest)},
                        "btc": {"total": QTY, "reserved": "0.00000000", "available": QTY}}
        assert bob.balance() == expected_bob
        expected_alice = {"trader": "alice", "usd": {"total": COST, "reserved": "0.00", "available": COST},
                          "btc": {"total": "0.98765433", "reserved": "0.00000000", "available": "0.98765433"}}
        wait_for(lambda: alice.balance() == expected_alice, 10, "alice's sale in her balance")
        assert alice.order(sell["order_id"])["status"] == "filled"
        with pytest.raises(InvalidRequest, match="no account"):
            alice.balance("bob")  # balances are node-local: bob has none at a
        with pytest.raises(InsufficientBalance):
            alice.fund("alice", usd="-411.53")  # a withdrawal beyond what is available
        assert alice.fund("alice", usd="-11.52")["usd"]["total"] == "400.00"

    a.kill()  # kill -9: the fundings were committed before they were answered
    a = net.restart("a")
    wait_for(lambda: _balance(a, "alice") is not None, 10, "the restarted node to answer")
    assert _balance(a, "alice") == {**expected_alice, "usd": {"total": "400.00", "reserved": "0.00",
                                                              "available": "400.00"}}


def test_with_keys_only_an_operator_funds_and_a_node_may_require_funding(tmp_path):
    with LocalNetwork(tmp_path, keyed=["a"], traders=["alice", "bob"], extra_args=["--ephemeral"]) as keyed:
        node = keyed.start("a", args=["--require-funding"])
        with node.client(as_="alice") as alice, node.client(as_=OPERATOR) as operator:
            with pytest.raises(InsufficientBalance, match="only for funded traders"):
                alice.place("sell", "0.1", "50000")
            with pytest.raises(NotOwner, match="only an operator"):
                alice.fund("alice", btc="1")
            with pytest.raises(InvalidRequest, match="no account"):
                alice.balance()  # the refused funding changed nothing
            assert operator.fund("alice", btc="0.1")["btc"]["available"] == "0.10000000"
            assert alice.place("sell", "0.1", "50000")["status"] == "open"
            assert alice.balance()["btc"]["available"] == "0.00000000"
            with pytest.raises(NotOwner):
                alice.balance("bob")
            assert operator.balance("alice")["btc"]["reserved"] == "0.10000000"


def _balance(node, trader: str) -> dict | None:
    try:
        with node.client(timeout=2.0) as client:
            return client.balance(trader)
    except (InvalidRequest, Timeout):
        return None
