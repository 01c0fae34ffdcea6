/**
 * Every request op against a live mesh of two nodes (a, b), without keys.
 *
 * The tests share the mesh, so each trades under names and at prices of its own, and
 * cancels what it left resting (see `trader`): no test's orders meet another's.
 */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, test, type TestContext } from "node:test";
import { promisify } from "node:util";

import {
  Client, InvalidAmount, InvalidRequest, NotOwner, OrderClosed, Rejected, Timeout, UnknownOrder, ZmqexError,
} from "../src/index.js";
import { Mesh, REPO, waitFor } from "./mesh.js";

let mesh: Mesh;

before(async () => {
  mesh = await Mesh.start(["a", "b"]);
});

after(async () => {
  await mesh?.stop();
});

function trader(t: TestContext, node: string, name: string): Client {
  return mesh.trader(t, node, name);
}

/** `call`'s rejection, which must be an error of class `cls`. */
async function refusal<E extends ZmqexError>(call: Promise<unknown>, cls: new (...args: never[]) => E): Promise<E> {
  const err = await call.then(() => assert.fail("expected a refusal"), (reason: unknown) => reason);
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  return err;
}

test("place, order, book and status; a client order id places once", async (t) => {
  const alice = trader(t, "a", "alice-place");
  const ask = await alice.place("sell", "1.5", "1000.5", { client_order_id: "ask-1" });
  assert.equal(ask.status, "open");
  assert.equal(ask.owner, "a");
  assert.equal(ask.price, "1000.50");
  assert.equal(ask.qty, "1.50000000");
  assert.equal(ask.open, "1.50000000");
  assert.equal(ask.client_order_id, "ask-1");
  assert.deepEqual(ask.fills, []);

  const again = await alice.place("sell", "9", "1999", { client_order_id: "ask-1" }); // a retry: nothing new
  assert.equal(again.order_id, ask.order_id);
  assert.equal(again.qty, "1.50000000");
  const mine = await alice.order({ client_order_id: "ask-1" });
  assert.equal(mine.order_id, ask.order_id);
  assert.equal(mine.mine, true);
  assert.deepEqual((await alice.book(5)).asks, [["1000.50", "1.50000000", 1]]);

  const status = await alice.status();
  assert.equal(status.node, "a");
  assert.equal(status.ready, true);
  assert.equal(status.peers["b"]?.up, true);
  assert.equal(typeof status.hash, "string");

  // Node b's replica learns the order too, but neither its trader nor its client order id.
  const bob = trader(t, "b", "bob-place");
  await waitFor(async () => (await bob.book(5)).asks.length === 1, 15_000, "b to learn of the order");
  const there = await bob.order(ask.order_id);
  assert.equal(there.mine, false);
  assert.equal(there.client_order_id, "");
});

test("a trade across nodes: the fills, my_fills and trades, page by page", async (t) => {
  const alice = trader(t, "a", "alice-trade");
  const bob = trader(t, "b", "bob-trade");
  const ask = await alice.place("sell", "1", "2000.00", { client_order_id: "s-1" });
  await waitFor(async () => (await bob.book(1)).asks.length === 1, 15_000, "b to learn of the ask");
  const bid = await bob.place("buy", "0.4", "2000", { client_order_id: "b-1" }); // ack "done": with its fills
  assert.equal(bid.status, "filled");
  assert.equal(bid.fills.length, 1);
  const fill = bid.fills[0]!;
  assert.deepEqual([fill.maker, fill.taker, fill.price, fill.qty, fill.taker_side],
    [ask.order_id, bid.order_id, "2000.00", "0.40000000", "buy"]);
  const bid2 = await bob.place("buy", "0.1", "2000", { client_order_id: "b-2" }); // a second fill, for the pages

  const bobs = await bob.myFills();
  assert.deepEqual(bobs.items.map((f) => [f.order_id, f.client_order_id, f.side, f.liquidity]),
    [[bid.order_id, "b-1", "buy", "taker"], [bid2.order_id, "b-2", "buy", "taker"]]);
  assert.equal(bobs.more, false);
  await waitFor(async () => (await alice.myFills()).items.length === 2, 15_000, "a to apply both fills");
  const alices = await alice.myFills({ limit: 1 });
  assert.deepEqual([alices.items[0]?.id, alices.items[0]?.liquidity, alices.items[0]?.client_order_id, alices.more],
    [fill.id, "maker", "s-1", true]);
  assert.equal((await alice.myFills({ since: alices.next })).items[0]?.client_order_id, "s-1");

  // trades: every fill node a knows, a page of one at a time, up to status' last position
  const last = (await alice.status()).fills;
  const ids: string[] = [];
  let page = await alice.trades({ limit: 1 });
  for (let pages = 0; pages < 100; pages += 1) {
    ids.push(...page.items.map((f) => f.id));
    if (!page.more) {
      break;
    }
    page = await alice.trades({ since: page.next, limit: 1 });
  }
  assert.equal(page.next, last);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(ids.includes(fill.id));
  const recent = await alice.fills();
  assert.equal(recent.truncated, false);
  assert.deepEqual(recent.fills.map((f) => f.id), ids);
  assert.equal((await alice.order(ask.order_id)).filled, "0.50000000");
});

test("amend: a lower qty keeps the order, a new price replaces it under the same client order id", async (t) => {
  const alice = trader(t, "a", "alice-amend");
  const bid = await alice.place("buy", "1", "3000", { client_order_id: "bid-1" });
  const smaller = await alice.amend({ client_order_id: "bid-1" }, { qty: "0.6" });
  assert.equal(smaller.order_id, bid.order_id);
  assert.equal(smaller.qty, "0.60000000");
  const moved = await alice.amend(bid.order_id, { price: "3000.01" });
  assert.notEqual(moved.order_id, bid.order_id);
  assert.deepEqual([moved.price, moved.qty, moved.client_order_id, moved.status],
    ["3000.01", "0.60000000", "bid-1", "open"]);
  const old = await alice.order(bid.order_id);
  assert.deepEqual([old.status, old.reason], ["cancelled", "amended"]);
  assert.equal((await alice.order({ client_order_id: "bid-1" })).order_id, moved.order_id);
});

test("cancel by id and by client order id; cancel_all of one side, then of both; open_orders pages", async (t) => {
  const alice = trader(t, "a", "alice-cancel");
  const bids = [await alice.place("buy", "0.1", "10.00", { client_order_id: "lo-1" }),
                await alice.place("buy", "0.1", "10.01"), await alice.place("buy", "0.1", "10.02")];
  const ask = await alice.place("sell", "0.1", "9000000");
  const first = await alice.openOrders({ limit: 3 });
  assert.deepEqual(first.items.map((o) => o.order_id), bids.map((o) => o.order_id)); // oldest first
  assert.equal(first.more, true);
  const second = await alice.openOrders({ since: first.next, limit: 3 });
  assert.deepEqual([second.items.map((o) => o.order_id), second.more], [[ask.order_id], false]);

  const cancelled = await alice.cancel({ client_order_id: "lo-1" });
  assert.deepEqual([cancelled.status, cancelled.reason, cancelled.open], ["cancelled", "user", "0.00000000"]);
  assert.equal((await alice.cancel(bids[1]!.order_id)).status, "cancelled");
  assert.deepEqual(await alice.cancelAll("buy"), [bids[2]!.order_id]);
  assert.deepEqual(await alice.cancelAll(), [ask.order_id]);
  assert.deepEqual((await alice.openOrders()).items, []);
});

test("market, ioc and post-only orders", async (t) => {
  const alice = trader(t, "a", "alice-market");
  const bob = trader(t, "a", "bob-market");
  await alice.place("sell", "0.5", "5000");
  const market = await bob.place("buy", "0.2"); // no price: a market order, an ioc at the band's edge
  assert.deepEqual([market.status, market.tif, market.filled, market.price], ["filled", "ioc", "0.20000000", "5250.00"]);
  const ioc = await bob.place("buy", "1", "5000", { tif: "ioc" });
  assert.deepEqual([ioc.status, ioc.filled, ioc.reason], ["expired", "0.30000000", "expired"]);
  await alice.place("sell", "0.1", "5000");
  await refusal(bob.place("buy", "0.1", "5000", { tif: "post_only" }), Rejected);
  const gtd = await bob.place("buy", "0.1", "4000", { tif: "gtd", expire_at: Date.now() + 600_000 });
  assert.equal(gtd.tif, "gtd");
  assert.equal(typeof gtd.expire_at, "number");
});

test("errors carry the node's code", async (t) => {
  const alice = trader(t, "a", "alice-errors");
  const mallory = trader(t, "a", "mallory");
  const atB = trader(t, "b", "alice-errors");
  const unknown = await refusal(alice.order("a:999999999"), UnknownOrder);
  assert.equal(unknown.code, "unknown_order");
  await refusal(alice.cancel({ client_order_id: "never-placed" }), UnknownOrder);

  const ask = await alice.place("sell", "0.1", "8000000");
  assert.equal((await refusal(mallory.cancel(ask.order_id), NotOwner)).code, "not_owner"); // another trader's
  await waitFor(async () => (await atB.book(1)).asks.length > 0, 15_000, "b to learn of the ask");
  await refusal(atB.cancel(ask.order_id), NotOwner); // another node's order: cancel it at its owner
  await alice.cancel(ask.order_id);
  assert.equal((await refusal(alice.cancel(ask.order_id), OrderClosed)).code, "order_closed");

  const past = (await alice.status()).fills + 1000;
  const invalid = await refusal(alice.trades({ since: past }), InvalidRequest); // only the node can tell
  assert.equal(invalid.code, "invalid_request");
  // refused here, before anything is sent
  await refusal(alice.place("buy", 1 as unknown as string, "1"), InvalidAmount);
  await refusal(alice.place("buy", "0.1", "1.001"), InvalidAmount);
  await refusal(alice.book(0), InvalidRequest);
});

test("a node that does not answer: Timeout, the request unsent", async () => {
  const nobody = new Client("127.0.0.1:9", { timeoutMs: 300 }); // the discard port: nothing listens
  try {
    const timeout = await refusal(nobody.status(), Timeout);
    assert.equal(timeout.code, "timeout");
    assert.match(timeout.message, /not sent/);
  } finally {
    nobody.close();
  }
  await refusal(nobody.status(), InvalidRequest); // closed
});

test("calls overlap on one connection, each answered with its own reply", async (t) => {
  const alice = trader(t, "a", "alice-overlap");
  const placed = await Promise.all(["1.01", "1.02", "1.03", "1.04", "1.05"].map(
    (price, i) => alice.place("buy", "0.01", price, { client_order_id: `o-${i}` })));
  assert.deepEqual(placed.map((o) => o.client_order_id), ["o-0", "o-1", "o-2", "o-3", "o-4"]);
  const [book, orders] = await Promise.all([alice.book(10), alice.openOrders()]);
  assert.equal(orders.items.length, 5);
  assert.ok(book.bids.some((level) => level[0] === "1.05"));
});

test("the README's trader loop (examples/trader.ts) runs to its end", async () => {
  const example = join(REPO, "clients", "node", "dist", "examples", "trader.js");
  const { stdout } = await promisify(execFile)(process.execPath, [example, mesh.node("a").address],
    { timeout: 60_000 });
  const changes = stdout.trim().split("\n").slice(0, -1).map((line) => line.split(" "));
  assert.deepEqual(changes.map(([event, , coid, status, price, reason]) => [event, coid, status, price, reason]), [
    ["placed", "grid-0", "open", "49990.00", ""], ["placed", "grid-1", "open", "49980.00", ""],
    ["placed", "grid-2", "open", "49970.00", ""],
    ["cancel", "grid-2", "cancelled", "49970.00", "amended"], // the old order keeps showing its client order id
    ["placed", "grid-2", "open", "49975.00", ""],
  ]);
  assert.match(stdout, /cancelled \[ 'a:\d+', 'a:\d+', 'a:\d+' \]/);
  await mesh.waitConverged();
});
