/**
 * What a live node rarely does on cue, from a scripted stand-in (a zeromq.js ROUTER):
 * replies out of order, stale and unreadable replies, a code this client does not know,
 * and streams that skip a message, end, or fall silent.
 */

import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";

import { decode, encode } from "@msgpack/msgpack";
import { Router } from "zeromq";

import { Client, DecodeError, ErrorReply, StreamEnded, type Subscription } from "../src/index.js";

type WireMap = Record<string, unknown>;

/** A ROUTER on a free loopback port that answers what a test tells it to. */
class StandIn {
  readonly router = new Router({ linger: 0 });

  async bind(): Promise<string> {
    await this.router.bind("tcp://127.0.0.1:*");
    return (this.router.lastEndpoint ?? "").replace("tcp://", "");
  }

  /** The next request, and the routing id to answer it with. */
  async request(): Promise<{ to: Buffer; request: WireMap }> {
    const [to, frame] = await this.router.receive();
    return { to: to!, request: decode(frame!) as WireMap };
  }

  async send(to: Buffer, message: WireMap | Buffer): Promise<void> {
    await this.router.send([to, Buffer.isBuffer(message) ? message : encode(message)]);
  }

  /** Answer the next request, which must be `op`, with `result`; its id and routing id. */
  async answer(op: string, result: WireMap): Promise<{ to: Buffer; id: unknown }> {
    const { to, request } = await this.request();
    assert.equal(request["op"], op);
    await this.send(to, { v: 1, id: request["id"], ok: true, result });
    return { to, id: request["id"] };
  }
}

let standIn: StandIn;
let client: Client;

beforeEach(async () => {
  standIn = new StandIn();
  client = new Client(await standIn.bind(), { timeoutMs: 10_000 });
});

afterEach(() => {
  client.close();
  standIn.router.close();
});

test("replies out of order, stale ones and notices of dropped replies: each call gets its own", async () => {
  const first = client.heartbeat();
  const second = client.cancelAll();
  const one = await standIn.request();
  const two = await standIn.request();
  await standIn.send(two.to, { v: 1, id: 999, ok: true, result: {} }); // stale: nobody waits for it
  await standIn.send(two.to, { v: 1, id: null, ok: false, error: { code: "dropped", count: 2, message: "" } });
  await standIn.send(two.to, { v: 1, id: two.request["id"], ok: true, result: { cancelled: ["a:1"] } });
  await standIn.send(one.to, { v: 1, id: one.request["id"], ok: true, result: { timeout_ms: 0 } });
  assert.deepEqual(await Promise.all([first, second]), [0, ["a:1"]]);
});

test("an error code without a class of its own is an ErrorReply carrying it", async () => {
  const call = client.status();
  const { to, request } = await standIn.request();
  await standIn.send(to, { v: 1, id: request["id"], ok: false, error: { code: "unknown_op", message: "what?" } });
  await assert.rejects(call, (err: unknown) => err instanceof ErrorReply && err.code === "unknown_op");
});

test("a frame that is not a msgpack map, or a reply with a null id, fails the call waiting", async () => {
  const garbled = client.status();
  const one = await standIn.request();
  await standIn.send(one.to, Buffer.from([0xc1])); // never used in msgpack
  await assert.rejects(garbled, DecodeError);
  const unread = client.status();
  const two = await standIn.request();
  await standIn.send(two.to, { v: 1, id: null, ok: false, error: { code: "malformed", message: "unreadable" } });
  await assert.rejects(unread, (err: unknown) => err instanceof DecodeError && err.code === "malformed");
});

test("a reply of another shape is refused, not returned", async () => {
  const call = client.order("a:1");
  await standIn.answer("order", { order_id: "a:1", price: 50000.5 });
  await assert.rejects(call, DecodeError);
});

/** Subscribe to trades at the stand-in; its routing id and the subscription's id. */
async function subscribed(silenceMs = 10_000): Promise<{ sub: Subscription<unknown>; to: Buffer; id: unknown }> {
  const [sub, { to, id }] = await Promise.all([
    client.subscribe("trades", { silenceMs }), standIn.answer("subscribe", { subscribed: "trades" })]);
  return { sub, to, id };
}

const FILL = { id: "b:9", maker: "b:4", taker: "a:17", price: "50000.00", qty: "0.50000000", ts: 1, taker_side: "buy" };

test("a stream whose seq skips one ends with StreamEnded gap", async () => {
  const { sub, to, id } = await subscribed();
  await standIn.send(to, { v: 1, id, stream: "trades", seq: 1, trade: FILL });
  await standIn.send(to, { v: 1, id, stream: "trades", seq: 1, heartbeat: true });
  await standIn.send(to, { v: 1, id, stream: "trades", seq: 3, trade: FILL });
  assert.deepEqual(await sub.poll(5000), FILL);
  await assert.rejects(sub.poll(5000), (err: unknown) => err instanceof StreamEnded && err.code === "gap");
  assert.equal(sub.isClosed, true);
  assert.equal(await sub.poll(10), undefined); // closed: nothing more
});

test("a stream the node ends ends with StreamEnded and the node's code", async () => {
  const { sub, to, id } = await subscribed();
  await standIn.send(to, { v: 1, id, stream: "trades", seq: 0, end: { code: "stopping", message: "bye" } });
  await assert.rejects(async () => {
    for await (const _ of sub) {
      assert.fail("no update was sent");
    }
  }, (err: unknown) => err instanceof StreamEnded && err.code === "stopping" && err.message === "bye");
});

test("a stream with nothing, not even a heartbeat, for silenceMs ends with StreamEnded silent", async () => {
  const { sub } = await subscribed(300);
  await assert.rejects(sub.poll(), (err: unknown) => err instanceof StreamEnded && err.code === "silent");
});
