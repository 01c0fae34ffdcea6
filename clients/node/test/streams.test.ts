/**
 * Every stream (trades, orders, book; and the deprecated watch), unsubscribe, and cancel
 * on disconnect, against a live mesh of two nodes without keys.
 */

import assert from "node:assert/strict";
import { after, before, test, type TestContext } from "node:test";

import { type Client, type OrderEvent, type Subscription } from "../src/index.js";
import { Mesh, waitFor } from "./mesh.js";

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

/** Closed after the test, whatever happens. */
function closing<T>(t: TestContext, subscription: Subscription<T>): Subscription<T> {
  t.after(() => subscription.close());
  return subscription;
}

/** The next update, which must come within 15 s. */
async function next<T>(subscription: Subscription<T>): Promise<T> {
  const update = await subscription.poll(15_000);
  assert.ok(update !== undefined, `no ${subscription.stream} update within 15 s`);
  return update;
}

test("orders: placed, each fill, the cancel, in order, seq counting up", async (t) => {
  const alice = trader(t, "a", "alice-orders");
  const bob = trader(t, "b", "bob-orders");
  const orders = closing(t, await alice.subscribe("orders"));
  assert.equal(orders.seq, 0);
  const ask = await alice.place("sell", "1", "6000", { client_order_id: "watched" });
  await waitFor(async () => (await bob.book(1)).asks.length === 1, 15_000, "b to learn of the ask");
  await bob.place("buy", "0.25", "6000");
  await alice.cancel({ client_order_id: "watched" });

  const events: OrderEvent[] = [await next(orders), await next(orders), await next(orders)];
  assert.deepEqual(events.map((e) => [e.event, e.order.order_id, e.order.status]),
    [["placed", ask.order_id, "open"], ["fill", ask.order_id, "partial"], ["cancel", ask.order_id, "cancelled"]]);
  assert.equal(orders.seq, 3);
  const fill = events[1]!.fill!;
  assert.deepEqual([fill.order_id, fill.client_order_id, fill.side, fill.liquidity, fill.qty, fill.price],
    [ask.order_id, "watched", "sell", "maker", "0.25000000", "6000.00"]);
  assert.deepEqual([events[2]!.order.reason, events[2]!.order.filled, events[2]!.order.client_order_id],
    ["user", "0.25000000", "watched"]);
  assert.equal("fills" in events[0]!.order, false); // an update carries the order without its fills
  assert.equal(await orders.poll(200), undefined); // nothing more
});

test("trades, and the deprecated watch: every fill as the node applies it", async (t) => {
  const alice = trader(t, "a", "alice-trades");
  const bob = trader(t, "a", "bob-trades");
  const trades = closing(t, await bob.subscribe("trades"));
  const watch = closing(t, await bob.watch());
  await alice.place("sell", "0.3", "6500");
  const bid = await bob.place("buy", "0.3", "6500");
  const fill = bid.fills[0]!;
  assert.deepEqual(await next(trades), fill);
  assert.deepEqual(await next(watch), fill);
  assert.deepEqual([trades.seq, watch.seq], [1, 1]);
});

test("book: a snapshot, then changes that keep it equal to the node's book", async (t) => {
  const alice = trader(t, "a", "alice-book");
  const book = closing(t, await alice.subscribe("book", { depth: 5 }));
  assert.deepEqual(await next(book), await alice.book(5)); // the snapshot
  assert.equal(book.seq, 1);

  const sameAsNode = async (): Promise<boolean> => {
    await book.poll(100); // an update, if one came
    return JSON.stringify(book.book) === JSON.stringify(await alice.book(5));
  };
  const low = await alice.place("buy", "0.1", "7000");
  await alice.place("buy", "0.2", "7000.01");
  await alice.place("sell", "0.5", "7100");
  await waitFor(sameAsNode, 15_000, "the streamed book to show the three orders");
  assert.deepEqual(book.book?.bids, [["7000.01", "0.20000000", 1], ["7000.00", "0.10000000", 1]]);
  await alice.cancel(low.order_id);
  await waitFor(sameAsNode, 15_000, "the streamed book to drop the cancelled level");
  assert.deepEqual(book.book?.bids, [["7000.01", "0.20000000", 1]]);
  assert.ok(book.seq >= 3);
});

test("unsubscribe: the node confirms, and nothing of the stream follows", async (t) => {
  const alice = trader(t, "a", "alice-unsub");
  const orders = await alice.subscribe("orders");
  await orders.unsubscribe();
  assert.equal(orders.isClosed, true);
  await alice.place("buy", "0.1", "10");
  assert.equal(await orders.poll(200), undefined);
});

test("a for await loop ends the subscription when it is left", async (t) => {
  const alice = trader(t, "a", "alice-loop");
  const orders = await alice.subscribe("orders", { silenceMs: 10_000 });
  await Promise.all(["0.01", "0.02", "0.03"].map((qty) => alice.place("buy", qty, "11")));
  const seen: string[] = [];
  for await (const change of orders) {
    seen.push(change.order.qty);
    if (seen.length === 3) {
      break;
    }
  }
  assert.deepEqual(seen.sort(), ["0.01000000", "0.02000000", "0.03000000"]);
  assert.equal(orders.isClosed, true);
});

test("heartbeats keep a quiet stream alive", async (t) => {
  const alice = trader(t, "a", "alice-quiet");
  // Taken for dead after 2.5 s without a message; the node sends a heartbeat after each quiet second.
  const trades = closing(t, await alice.subscribe("trades", { silenceMs: 2500 }));
  assert.equal(await trades.poll(3000), undefined); // heartbeats only: consumed here, none an update
  assert.equal(trades.isClosed, false);
  assert.equal(trades.seq, 0);
});

test("cancel on disconnect: the orders of a client that falls silent are cancelled", async (t) => {
  const carol = trader(t, "a", "carol");
  const gone = mesh.client("a", { trader: "carol" });
  try {
    assert.equal(await gone.cancelOnDisconnect(500), 500);
    assert.equal(await gone.heartbeat(), 500);
    const bid = await gone.place("buy", "0.1", "12", { client_order_id: "cod-1" });
    assert.equal(await carol.heartbeat(), 0); // the setting is the connection's, not the trader's
    gone.close(); // silent from now on
    await waitFor(async () => (await carol.order(bid.order_id)).status === "cancelled", 15_000,
      "the node to cancel the silent connection's order");
    assert.equal((await carol.order({ client_order_id: "cod-1" })).reason, "disconnect");
  } finally {
    gone.close();
  }
});
