/**
 * The protocol as this client has it, without a node: its tables against zmqex/protocol.py
 * (the one source of the protocol), amounts, requests refused before they are sent, and
 * replies and stream messages read as they must be.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as zmqex from "../src/index.js";
import {
  DecodeError, ErrorReply, ERROR_CODES, ERRORS, InsufficientBalance, InvalidAmount, InvalidRequest, NotOwner,
  parsePrice, parseQty, formatPrice, formatQty, Rejected, type Book, type Level,
} from "../src/index.js";
import { applyChanges, decodeReply, parseBook, parseOrder, parseStream } from "../src/replies.js";
import { amendArgs, orderRef, pageArgs, placeArgs, subscribeArgs } from "../src/requests.js";
import { runPython } from "./mesh.js";

const PYTHON_TABLES = `
import json
from zmqex import protocol as p
from zmqex.core.tif import RULES
print(json.dumps({
    "VERSION": p.VERSION, "ARGUMENTS": {op: list(args) for op, args in p.ARGUMENTS.items()},
    "COMMON": list(p.COMMON), "SIDES": list(p.SIDES), "TIFS": list(p.TIFS), "DEFAULT_TIF": p.DEFAULT_TIF,
    "TIF_EXPIRES": p.TIF_EXPIRES, "STPS": list(p.STPS), "DEFAULT_STP": p.DEFAULT_STP,
    "RESTING_TIFS": [t.value for t, rule in RULES.items() if rule.rests],
    "PRICED_TIFS": [t.value for t, rule in RULES.items() if rule.market is None],
    "DEFAULT_PROTECTION_BPS": p.DEFAULT_PROTECTION_BPS, "MAX_PROTECTION_BPS": p.MAX_PROTECTION_BPS,
    "STATUSES": list(p.STATUSES), "REASONS": list(p.REASONS), "ACKS": list(p.ACKS), "DEFAULT_ACK": p.DEFAULT_ACK,
    "DEFAULT_DEPTH": p.DEFAULT_DEPTH, "MAX_DEPTH": p.MAX_DEPTH, "STREAM_DEPTHS": list(p.STREAM_DEPTHS),
    "DEFAULT_PAGE": p.DEFAULT_PAGE, "MAX_PAGE": p.MAX_PAGE, "HEARTBEAT_MS": p.HEARTBEAT_MS,
    "COD_MIN_MS": p.COD_MIN_MS, "COD_MAX_MS": p.COD_MAX_MS, "MAX_REQUEST": p.MAX_REQUEST, "MAX_REPLY": p.MAX_REPLY,
    "MAX_ID_TEXT": p.MAX_ID_TEXT, "MAX_ORDER_ID": p.MAX_ORDER_ID, "TRADER_RULE": p.TRADER_RULE,
    "CLIENT_ORDER_ID_RULE": p.CLIENT_ORDER_ID_RULE, "STREAMS": list(p.STREAMS),
    "ORDER_EVENTS": list(p.ORDER_EVENTS), "LIQUIDITY": list(p.LIQUIDITY), "ENDS": list(p.ENDS),
    "DROPPED": p.DROPPED, "ERROR_CODES": sorted(p.ERROR_CODES), "ERRORS": sorted(p.ERRORS),
}))
`;

describe("the tables", () => {
  test("are zmqex/protocol.py's", () => {
    const python = JSON.parse(runPython(["-c", PYTHON_TABLES])) as Record<string, unknown>;
    const ours: Record<string, unknown> = { ...zmqex, ERROR_CODES: [...ERROR_CODES].sort(), ERRORS: Object.keys(ERRORS).sort() };
    for (const [name, value] of Object.entries(python)) {
      assert.deepEqual(ours[name], value, `${name} differs from zmqex/protocol.py's`);
    }
  });
});

describe("amounts", () => {
  test("parse to exact BigInt cents and satoshis, and format as the node writes them", () => {
    assert.equal(parsePrice("50000.5"), 5_000_050n);
    assert.equal(parseQty("0.00000001"), 1n);
    assert.equal(parseQty("21000000"), 2_100_000_000_000_000n);
    assert.equal(parseQty("1.000000000"), 100_000_000n); // zeros past the lot are still whole satoshis
    assert.equal(formatPrice(parsePrice("0.1") + parsePrice("0.2")), "0.30"); // what 0.1 + 0.2 never is in floats
    assert.equal(formatQty(50_000_000n), "0.50000000");
  });

  test("refuse numbers, bad text, too many decimals, zero and too much", () => {
    for (const bad of [1, 1.5, "1e3", ".5", "1.", " 1", "+1", "1_000", "0", "0.00", "1.001", "10000000.01", null]) {
      assert.throws(() => parsePrice(bad), InvalidAmount, `price ${JSON.stringify(bad)}`);
    }
    assert.throws(() => parsePrice(0.1), /a float cannot hold money exactly/);
    assert.throws(() => parseQty("0.000000001"), /whole number of satoshis/);
    assert.throws(() => parseQty("21000000.00000001"), /above the maximum 21000000.00000000/);
  });
});

describe("requests", () => {
  test("go out with canonical amounts and only the arguments given", () => {
    assert.deepEqual(placeArgs("buy", "1.5", "50000.5", { client_order_id: "b-1" }),
      { side: "buy", qty: "1.50000000", tif: "gtc", price: "50000.50", client_order_id: "b-1" });
    assert.deepEqual(placeArgs("sell", "0.1", null, { tif: "ioc", protection_bps: 50 }),
      { side: "sell", qty: "0.10000000", tif: "ioc", protection_bps: 50 });
    assert.deepEqual(amendArgs({ client_order_id: "b-1" }, { price: "1" }), { client_order_id: "b-1", price: "1.00" });
    assert.deepEqual(orderRef("a:17"), { order_id: "a:17" });
  });

  test("are refused before they are sent, as the node would refuse them", () => {
    const refused: [() => unknown, RegExp][] = [
      [() => placeArgs("hold" as "buy", "1", "1"), /side "hold" is not one of buy, sell/],
      [() => placeArgs("buy", "1", null, { tif: "post_only" }), /a post_only order needs a price/],
      [() => placeArgs("buy", "1", "1", { tif: "gtd" }), /needs expire_at/],
      [() => placeArgs("buy", "1", "1", { expire_at: Date.now() + 1000 }), /only a gtd order takes expire_at/],
      [() => placeArgs("buy", "1", "1", { protection_bps: 10 }), /only an order that does not rest/],
      [() => placeArgs("buy", "1", "1", { client_order_id: "has space" }), /client_order_id must be/],
      [() => orderRef({ order_id: "a:1", client_order_id: "x" } as never), /one of them/],
      [() => orderRef("a:01"), /order_id must be NODE:SEQ/],
      [() => amendArgs("a:1", {}), /needs qty, price or both/],
      [() => pageArgs(0, 1001), /limit must be an integer 1..1000/],
      [() => subscribeArgs("book", 7), /depth must be one of 1, 5, 10, 25, 50, 100/],
      [() => subscribeArgs("trades", 10), /only a book subscription takes depth/],
    ];
    for (const [call, message] of refused) {
      assert.throws(call, (err: unknown) => err instanceof InvalidRequest && message.test((err as Error).message));
    }
    assert.throws(() => placeArgs("buy", 0.5 as unknown as string, "1"), InvalidAmount);
  });
});

describe("replies", () => {
  const order = {
    order_id: "a:17", owner: "a", side: "buy", price: "50000.00", qty: "1.50000000", tif: "gtc", status: "partial",
    filled: "0.50000000", open: "1.00000000", pending: "0.00000000", available: true, ts: 1718000000000,
    reason: null, expire_at: null, client_order_id: "bot-7f3a", later_field: 1,
    fills: [{ id: "b:9", maker: "b:4", taker: "a:17", price: "50000.00", qty: "0.50000000", ts: 1718000000000,
      taker_side: "buy" }],
  };

  test("an error reply rejects with the error its code names, carrying the code", () => {
    const reply = (code: string) => ({ v: 1, id: 1, ok: false, error: { code, message: "no" } });
    assert.throws(() => decodeReply(reply("not_owner")), NotOwner);
    assert.throws(() => decodeReply(reply("insufficient_balance")),
      (err: unknown) => err instanceof InsufficientBalance && err instanceof Rejected);
    for (const code of ERROR_CODES) {
      assert.throws(() => decodeReply(reply(code)), (err: unknown) => (err as ErrorReply).code === code);
    }
    assert.throws(() => decodeReply(reply("unknown_op")), (err: unknown) => err instanceof ErrorReply);
    assert.throws(() => decodeReply({ v: 2, id: 1, ok: true, result: {} }), DecodeError);
  });

  test("an order is checked field by field; unknown fields are left out", () => {
    const parsed = parseOrder(order);
    assert.equal(parsed.filled, "0.50000000");
    assert.equal("later_field" in parsed, false);
    for (const [field, bad] of [["price", 50000], ["qty", "1.5"], ["status", "gone"], ["fills", null],
                                ["ts", 1.5], ["client_order_id", "no spaces"]] as const) {
      assert.throws(() => parseOrder({ ...order, [field]: bad }), DecodeError, `${field} ${JSON.stringify(bad)}`);
    }
    const { reason: _, ...withoutReason } = order;
    assert.throws(() => parseOrder(withoutReason), /order has no reason/);
  });

  test("a book stream's changes keep a book up to date, best first", () => {
    const empty = { bids: [] as Level[], asks: [] as Level[] };
    const snapshot = parseBook({ bids: [["100.00", "1.00000000", 1]], asks: [["101.00", "1.00000000", 2]],
                                 unavailable: empty });
    const changes = parseBook({
      bids: [["100.50", "0.50000000", 1], ["99.00", "2.00000000", 1]],
      asks: [["101.00", "0.00000000", 0], ["100.75", "1.00000000", 1]],
      unavailable: empty,
    }, true);
    const book: Book = applyChanges(snapshot, changes);
    assert.deepEqual(book.bids.map((level) => level[0]), ["100.50", "100.00", "99.00"]);
    assert.deepEqual(book.asks, [["100.75", "1.00000000", 1]]);
    assert.throws(() => parseBook({ ...snapshot, asks: [["101.00", "0.00000000", 0]] }), DecodeError);
  });

  test("stream messages: only the subscription's, each kind checked", () => {
    assert.equal(parseStream({ v: 1, id: 2, stream: "trades", seq: 1, heartbeat: true }, 1), null);
    assert.deepEqual(parseStream({ v: 1, id: 1, stream: "trades", seq: 4, heartbeat: true }, 1),
      { kind: "heartbeat", seq: 4 });
    assert.deepEqual(parseStream({ v: 1, id: 1, stream: "book", seq: 4, end: { code: "stopping", message: "bye" } }, 1),
      { kind: "end", seq: 4, code: "stopping", message: "bye" });
    assert.throws(() => parseStream({ v: 1, id: 1, stream: "orders", seq: 1, event: "placed", order: {} }, 1),
      DecodeError);
  });

  test("a level may carry what of it the node's credit lets its traders trade against", () => {
    const empty = { bids: [] as Level[], asks: [] as Level[] };
    const book = parseBook({ bids: [["100.00", "1.00000000", 1, "0.50000000"]], asks: [], unavailable: empty });
    assert.deepEqual(book.bids, [["100.00", "1.00000000", 1, "0.50000000"]]);
    for (const bad of [["100.00", "1.00000000", 1, 5], ["100.00", "1.00000000", 1, "0.5", 1]]) {
      assert.throws(() => parseBook({ bids: [bad], asks: [], unavailable: empty }), DecodeError);
    }
    assert.throws(() => parseBook({ bids: [["1.00", "0.00000000", 0, "0.00000000"]], asks: [], unavailable: empty },
      true), DecodeError);
  });
});
