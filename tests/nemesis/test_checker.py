"""The checker and the schedule without any node: each check finds what it is for.

A checker that finds nothing proves nothing, so each test here breaks one
property of an otherwise sound history and set of replicas, and expects that
property's finding (and only it).
"""

from __future__ import annotations

import copy

import pytest

from tests.nemesis import checker
from tests.nemesis.history import FAIL, INFO, OK, Op
from tests.nemesis.schedule import steps


def order(oid, side, price, qty, filled="0.00000000", status="open", pending="0.00000000"):
    return {"order_id": oid, "side": side, "price": price, "qty": qty, "filled": filled, "status": status,
            "pending": pending, "fills": []}


def fill(fid, maker, taker, price, qty):
    return {"id": fid, "maker": maker, "taker": taker, "price": price, "qty": qty}


def place(trader, node, coid, reply, outcome=OK, error=None):
    return Op(trader, node, "place", {"client_order_id": coid}, 1.0, 1.1, outcome,
              reply if outcome == OK else None, error)


def sound():
    """a:1 sells 1 at 100 (resting, half taken); b:1 buys 0.5 at 101, filled by a:1."""
    ask = order("a:1", "sell", "100.00", "1.00000000", "0.50000000", "partial")
    bid = order("b:1", "buy", "101.00", "0.50000000", "0.50000000", "filled")
    ops = [place("ta", "a", "ta-1", order("a:1", "sell", "100.00", "1.00000000")),
           place("tb", "b", "tb-1", {**bid, "fills": ["a:2"]}),
           place("tb", "b", "tb-2", None, INFO, {"type": "Timeout", "code": "timeout", "message": "no answer"}),
           place("tb", "b", "tb-3", None, FAIL, {"type": "Busy", "code": "busy", "message": "busy"})]
    status = {"hash": "h1", "vc": {"a": 2, "b": 1}, "ready": True, "crossed": False, "in_flight": 0}
    replicas = {node: checker.Replica(node, dict(status), [fill("a:2", "a:1", "b:1", "100.00", "0.50000000")],
                                      {"a:1": dict(ask), "b:1": dict(bid)}) for node in "ab"}
    return ops, replicas


def findings(ops, replicas):
    return checker.check(ops, replicas).problems


def test_a_sound_run_has_no_findings():
    ops, replicas = sound()
    result = checker.check(ops, replicas)
    assert result.problems == []
    assert (result.acked, result.checked, result.fills) == (2, 4, 1)
    assert result.errors == {"timeout": 1, "busy": 1}


def test_a_lost_acknowledged_order():
    ops, replicas = sound()
    ops.append(place("ta", "a", "ta-2", order("a:3", "sell", "105.00", "1.00000000")))
    replicas["b"].orders["a:3"] = None
    replicas["a"].orders["a:3"] = order("a:3", "sell", "105.00", "1.00000000")
    assert findings(ops, replicas) == [
        "b: acknowledged order a:3 is missing (placed by ta at a at 1.0s as ta-2)"]


def test_an_over_fill_and_bought_not_sold():
    ops, replicas = sound()
    replicas["a"].fills.append(fill("a:3", "a:1", "b:1", "100.00", "0.50000000"))
    replicas["a"].orders["b:1"]["filled"] = "1.00000000"
    replicas["a"].orders["a:1"]["filled"] = "1.00000000"
    replicas["a"].status["hash"] = "h2"
    found = findings(ops, replicas)
    assert "a: order b:1 over-filled: 1.00000000 of 0.50000000" in found
    assert not any("bought" in line for line in found)  # the extra fill has a buyer and a seller
    replicas["a"].orders["a:1"]["side"] = "buy"
    found = findings(ops, replicas)
    assert "a: bought 2.00000000 but sold 0" in found
    assert "a: fill a:2 has two buy sides" in found


def test_a_fill_that_was_acknowledged_is_lost():
    ops, replicas = sound()
    replicas["b"].fills.clear()
    replicas["b"].orders["a:1"]["filled"] = replicas["b"].orders["b:1"]["filled"] = "0.00000000"
    replicas["b"].orders["b:1"]["status"] = "open"
    assert "b: order b:1 filled 0.00000000, less than the 0.50000000 its reply acknowledged" in findings(ops, replicas)
    assert "b: fills ['a:2'] acknowledged to the taker of b:1 are missing" in findings(ops, replicas)


def test_a_fill_beyond_the_limit_or_off_the_makers_price():
    ops, replicas = sound()
    replicas["a"].fills[0]["price"] = "102.00"
    found = findings(ops, replicas)
    assert "a: fill a:2 at 102.00, not its maker's price 100.00" in found
    assert "a: fill a:2 at 102.00 beyond its taker's limit 101.00" in found


def test_replicas_that_differ_or_are_not_quiet():
    ops, replicas = sound()
    replicas["b"].status.update(hash="h9", crossed=True, ready=False)
    found = findings(ops, replicas)
    assert "b: book crossed at the end" in found and "b: not ready at the end" in found
    assert any(line.startswith("replicas differ: a hash h1") for line in found)


def test_a_retry_that_placed_twice():
    ops, replicas = sound()
    ops.append(place("ta", "a", "ta-1", order("a:5", "sell", "100.00", "1.00000000")))
    replicas["a"].orders["a:5"] = replicas["b"].orders["a:5"] = order("a:5", "sell", "100.00", "1.00000000")
    assert findings(ops, replicas) == [
        "client order id ta-1 of ta at a acknowledged as two orders: a:1 and a:5 (a retry placed twice)"]


@pytest.mark.parametrize("final, pending, ok", [("0.50000000", "0.00000000", True), ("0.75000000", "0.00000000", False),
                                                ("0.75000000", "0.25000000", True), ("1.00000000", "0.50000000", True)])
def test_a_cancel_is_final_but_what_was_pending_may_settle(final, pending, ok):
    ops, replicas = sound()
    cancelled = order("a:1", "sell", "100.00", "1.00000000", "0.50000000", "cancelled", pending)
    ops.append(Op("ta", "a", "cancel", {"order_id": "a:1"}, 2.0, 2.1, OK, cancelled))
    for replica in replicas.values():
        replica.orders["a:1"].update(filled=final, status="filled" if final == "1.00000000" else "cancelled")
        replica.orders["b:1"].update(filled=final, qty="1.00000000")
        replica.fills[0]["qty"] = final
    found = [line for line in findings(ops, replicas) if "cancelled" in line]
    assert (found == []) == ok, found


def test_client_errors_the_protocol_does_not_name():
    ops, replicas = sound()
    ops.append(place("ta", "a", "ta-9", None, FAIL, {"type": "ZMQError", "code": "", "message": "boom",
                                                      "unexpected": "yes"}))
    ops.append(place("ta", "a", "ta-9", None, FAIL, {"type": "ErrorReply", "code": "made_up", "message": "?"}))
    found = findings(ops, replicas)
    assert len(found) == 2 and all("none the protocol names" in line for line in found)


def test_many_findings_of_one_kind_are_summed_up():
    ops, replicas = sound()
    for n in range(10):
        ops.append(place("ta", "a", f"ta-x{n}", order(f"a:{10 + n}", "sell", "100.00", "1.00000000")))
        replicas["a"].orders[f"a:{10 + n}"] = order(f"a:{10 + n}", "sell", "100.00", "1.00000000")
    found = findings(ops, copy.deepcopy(replicas))
    assert len(found) == checker.Findings.SHOWN + 1
    assert found[-1] == "... and 7 more: b: acknowledged orders missing"


def test_a_schedule_is_its_seed():
    ids, kinds = ["a", "b", "c", "d", "e"], ["kill", "pause", "partition", "slow"]
    first = [str(s) for _, s in zip(range(12), steps(7, kinds, ids))]
    assert first == [str(s) for _, s in zip(range(12), steps(7, kinds, ids))]
    assert first != [str(s) for _, s in zip(range(12), steps(8, kinds, ids))]
    rounds = [sorted(s.split()[1] for s in first[i:i + 4]) for i in (0, 4, 8)]
    assert rounds == [sorted(kinds)] * 3  # every kind once in each round
    for step in steps(7, ["partition"], ids):
        assert 1 <= len(step.targets) <= 2  # a minority of five
        break


def test_overlapping_faults_touch_other_nodes_and_leave_one_alone():
    ids, kinds = ["a", "b", "c"], ["kill", "pause", "partition"]
    both = [s for _, s in zip(range(60), steps(3, kinds, ids, overlap=0.5)) if s.also]
    assert len(both) > 10
    for step in both:
        first, second = step.parts
        assert first.kind != second.kind and not set(first.targets) & set(second.targets)
        assert len(set(first.targets) | set(second.targets)) < len(ids)
        assert (second.gap, second.duration) == (0.0, step.duration)
    assert not any(s.also for _, s in zip(range(60), steps(3, kinds, ids)))  # none without overlap
