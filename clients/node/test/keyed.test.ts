/**
 * A keyed mesh (docs/security.md): every connection is CURVE, with keys made by
 * `zmqex-keygen`; the node knows each trader by its key, and admits no other key.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { Client, InvalidRequest, KeyFileError, loadCurveKeys, NotOwner, Timeout } from "../src/index.js";
import { curveSecretOfSeed, x25519Public, z85Decode } from "../src/keys.js";
import { Mesh, REPO, runPython, waitFor } from "./mesh.js";

let mesh: Mesh;

before(async () => {
  mesh = await Mesh.start(["a", "b"], { traders: ["alice", "bob"] });
});

after(async () => {
  await mesh?.stop();
});

/** A client of node `id` with the keys of `party` (closed after the test). */
function keyed(t: { after: (fn: () => void) => void }, party: string, id: string, trader?: string): Client {
  const client = mesh.client(id, { as: party, ...(trader === undefined ? {} : { trader }) });
  t.after(() => client.close());
  return client;
}

describe("a keyed mesh", () => {
  test("traders, known by their keys, trade across nodes; their streams come over CURVE too", async (t) => {
    const alice = keyed(t, "alice", "a");
    const bob = keyed(t, "bob", "b");
    const orders = await alice.subscribe("orders");
    t.after(() => orders.close());
    const ask = await alice.place("sell", "1", "50000", { client_order_id: "k-1" });
    await waitFor(async () => (await bob.book(1)).asks.length === 1, 15_000, "b to learn of alice's ask");
    const bid = await bob.place("buy", "0.5", "50000");
    assert.equal(bid.status, "filled");
    assert.equal(bid.fills[0]?.maker, ask.order_id);
    assert.equal((await orders.poll(15_000))?.event, "placed");
    const fill = await orders.poll(15_000);
    assert.deepEqual([fill?.event, fill?.fill?.client_order_id, fill?.fill?.liquidity], ["fill", "k-1", "maker"]);
    assert.deepEqual((await alice.myFills()).items.map((f) => f.id), [bid.fills[0]?.id]);
    await alice.cancelAll();
    await mesh.waitConverged();
  });

  test("the key names the trader: a request naming another gets not_owner", async (t) => {
    const posing = keyed(t, "alice", "a", "bob");
    const err = await posing.status().then(() => assert.fail("bob's name on alice's key"), (e: unknown) => e);
    assert.ok(err instanceof NotOwner);
    assert.equal(err.code, "not_owner");
    assert.equal((await keyed(t, "alice", "a", "alice").status()).node, "a"); // her own name is fine
  });

  test("only its trader, or an operator, may cancel an order", async (t) => {
    const alice = keyed(t, "alice", "a");
    const bob = keyed(t, "bob", "a");
    const operator = keyed(t, "harness", "a");
    const bid = await alice.place("buy", "0.1", "100");
    await assert.rejects(bob.cancel(bid.order_id), NotOwner);
    assert.equal((await operator.order(bid.order_id)).mine, true); // an operator sees every order of the node as its
    assert.equal((await operator.cancel(bid.order_id)).status, "cancelled");
  });

  test("a key the node does not list gets no answer at all", async (t) => {
    const dir = join(mesh.workdir, "outsider");
    runPython([join(REPO, "bin", "zmqex-keygen"), dir, "stranger"]);
    const stranger = new Client(mesh.node("a").address, {
      timeoutMs: 1500, secret: join(dir, "stranger.key_secret"), server: mesh.keysOf("alice", "a").server,
    });
    t.after(() => stranger.close());
    await assert.rejects(stranger.status(), Timeout);
  });
});

describe("key files", () => {
  test("the CURVE keys in them are read, and checked against the signing seed they come from", () => {
    for (const party of ["alice", "bob", "harness"]) {
      const { secret, server } = mesh.keysOf(party, "a");
      const keys = loadCurveKeys(secret, server);
      const text = readFileSync(secret, "utf8");
      const seed = /sign-seed = "(.{40})"/.exec(text)?.[1] ?? "";
      assert.deepEqual(curveSecretOfSeed(z85Decode(seed)), z85Decode(keys.secretKey)); // libsodium's conversion
      assert.deepEqual(x25519Public(z85Decode(keys.secretKey)), z85Decode(keys.publicKey));
      assert.match(readFileSync(server, "utf8"), new RegExp(`public-key = "${escape(keys.serverKey)}"`));
    }
  });

  test("a key file that is missing, malformed or mixed up is refused before connecting", () => {
    const { secret, server } = mesh.keysOf("alice", "a");
    const bobs = mesh.keysOf("bob", "a").secret;
    const text = readFileSync(secret, "utf8");
    const bobPublic = /public-key = "(.{40})"/.exec(readFileSync(bobs, "utf8"))?.[1] ?? "";
    const mixed = join(mesh.workdir, "mixed.key_secret");
    writeFileSync(mixed, text.replace(/public-key = ".{40}"/, `public-key = "${bobPublic}"`));
    const short = join(mesh.workdir, "short.key_secret");
    writeFileSync(short, text.replace(/secret-key = ".{40}"/, 'secret-key = "tooshort"'));
    for (const [path, message] of [[join(mesh.workdir, "none"), /cannot read key file/],
                                   [mixed, /not the public half of its secret-key/],
                                   [short, /secret-key is not a 32-byte Z85 key/]] as const) {
      assert.throws(() => loadCurveKeys(path, server), (err: unknown) => err instanceof KeyFileError
        && err.code === "keys" && message.test(err.message));
    }
    assert.throws(() => new Client(mesh.node("a").address, { secret }), InvalidRequest); // no server key
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
