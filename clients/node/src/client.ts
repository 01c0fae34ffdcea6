/**
 * A client of one zmqex node: every op of docs/protocol.md as an async method.
 *
 *     const node = new Client("127.0.0.1:7001", { trader: "alice" });
 *     const order = await node.place("buy", "0.5", "50000.00", { client_order_id: "b-1" });
 *     console.log(order.order_id, order.status, order.fills);
 *     for await (const fill of await node.subscribe("trades")) console.log(fill.qty, "@", fill.price);
 *     node.close();
 *
 * A request is checked before it is sent (InvalidRequest, InvalidAmount) and a reply
 * before it is returned (DecodeError); an error reply rejects with the error its code
 * names (errors.ts). Every call waits at most `timeoutMs`, then rejects with Timeout: a
 * `place` that timed out after it was sent may still execute, so place with a
 * `client_order_id` and send it again. Calls may overlap: they share one connection,
 * and each gets its own reply.
 *
 * `trader` sends `"trader": NAME` with every request: on a node without keys, the orders
 * then belong to NAME, and any connection naming NAME may cancel them (taken on trust).
 * Without it such a node takes the connection as the trader. A keyed node knows the
 * trader by its key: give `secret` (the trader's `NAME.key_secret`) and `server` (the
 * node's public `ID.key`), as `zmqex-keygen` writes them.
 */

import { Connection, type Settings } from "./connection.js";
import { InvalidRequest } from "./errors.js";
import { loadCurveKeys } from "./keys.js";
import {
  DEFAULT_DEPTH, DEFAULT_PAGE,
  type Book, type Fill, type MyFill, type NodeStatus, type Op, type Order, type OrderEvent, type Page,
  type RecentFills, type Side, type StreamDepth, type StreamName,
} from "./protocol.js";
import {
  parseBook, parseCancelled, parseCod, parseMyFill, parseOrder, parsePage, parseFill, parseRecentFills, parseStatus,
  type WireMap,
} from "./replies.js";
import {
  amendArgs, bookArgs, cancelAllArgs, codArgs, orderRef, pageArgs, placeArgs, subscribeArgs, traderName,
  type AmendChanges, type Args, type OrderRef, type PlaceOptions,
} from "./requests.js";
import { Subscription, type SubscriptionOptions } from "./subscription.js";

export interface ClientOptions {
  /** How long each call waits for its reply, in milliseconds (default 5000). */
  timeoutMs?: number;
  /** The trader every request acts for (see the class's comment). */
  trader?: string;
  /** A keyed node: the path of this trader's (or operator's) `NAME.key_secret`. */
  secret?: string;
  /** A keyed node: the path of the node's public `ID.key`. */
  server?: string;
}

/** A cursor and a page size for `openOrders`, `myFills` and `trades`. */
export interface PageOptions {
  /** 0 for the first page, else the previous page's `next`. */
  since?: number;
  /** 1..1000 items (default 100). */
  limit?: number;
}

export interface BookSubscriptionOptions extends SubscriptionOptions {
  /** Levels per side: 1, 5, 10 (the default), 25, 50 or 100. */
  depth?: StreamDepth;
}

export class Client {
  /** HOST:PORT of the node. */
  readonly address: string;
  private readonly settings: Settings;
  private readonly connection: Connection;

  constructor(node: string, options: ClientOptions = {}) {
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidRequest(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
    }
    if ((options.secret === undefined) !== (options.server === undefined)) {
      throw new InvalidRequest("a keyed connection needs both secret (your .key_secret) and server (the node's .key)");
    }
    const curve = options.secret !== undefined && options.server !== undefined
      ? loadCurveKeys(options.secret, options.server) : undefined;
    const address = nodeAddress(node);
    this.address = address;
    this.settings = {
      address, endpoint: `tcp://${address}`, timeoutMs, curve,
      trader: options.trader === undefined ? undefined : traderName(options.trader),
    };
    this.connection = new Connection(this.settings);
  }

  /** The trader every request names, if any. */
  get trader(): string | undefined {
    return this.settings.trader;
  }

  // --- the ops of the protocol ---------------------------------------------------------

  /**
   * Place an order; `price` null or left out: a market order. With `ack` "done" (the
   * default) it resolves once the order's matching is done, with every fill it got; with
   * "accepted", at once (the rest comes on an `orders` subscription). A `client_order_id`
   * this trader already used at this node gets that order as it stands, and places nothing.
   */
  async place(side: Side, qty: string, price?: string | null, options: PlaceOptions = {}): Promise<Order> {
    return parseOrder(await this.call("place", placeArgs(side, qty, price, options)));
  }

  /** Cancel an order this trader placed at this node; the order after (`pending`: still in flight to makers). */
  async cancel(ref: OrderRef): Promise<Order> {
    return parseOrder(await this.call("cancel", orderRef(ref)));
  }

  /**
   * Change an order's total quantity or price; the order after. A lower `qty` keeps the
   * order, its id and its place; a new price, or more, replaces it (a new order id, the
   * same client order id; the old one is cancelled with reason `amended`).
   */
  async amend(ref: OrderRef, changes: AmendChanges): Promise<Order> {
    return parseOrder(await this.call("amend", amendArgs(ref, changes)));
  }

  /** Cancel every open order of this trader at this node (of one side, if given); the ids cancelled, oldest first. */
  async cancelAll(side?: Side): Promise<string[]> {
    return parseCancelled(await this.call("cancel_all", cancelAllArgs(side)));
  }

  /** The order as this node's replica knows it; `mine`: this trader placed it here. */
  async order(ref: OrderRef): Promise<Order> {
    return parseOrder(await this.call("order", orderRef(ref)));
  }

  /** A page of this trader's open orders at this node, oldest first. */
  async openOrders(page: PageOptions = {}): Promise<Page<Order>> {
    return parsePage(await this.call("open_orders", paged(page)), "orders", parseOrder);
  }

  /** A page of the fills of this trader's orders at this node, in the order the node learned them. */
  async myFills(page: PageOptions = {}): Promise<Page<MyFill>> {
    return parsePage(await this.call("my_fills", paged(page)), "fills", parseMyFill);
  }

  /** A page of every fill this node knows, in the order it learned them. */
  async trades(page: PageOptions = {}): Promise<Page<Fill>> {
    return parsePage(await this.call("trades", paged(page)), "trades", parseFill);
  }

  /** The book, aggregated by level, best first: 1..1000 levels a side (default 10). */
  async book(depth: number = DEFAULT_DEPTH): Promise<Book> {
    return parseBook(await this.call("book", bookArgs(depth)));
  }

  /** The node's id, peers, vector clock, state hash and counts. */
  async status(): Promise<NodeStatus> {
    return parseStatus(await this.call("status"));
  }

  /** The most recent 1,000 fills this node knows at most; `trades` pages through all of them. */
  async fills(): Promise<RecentFills> {
    return parseRecentFills(await this.call("fills"));
  }

  /**
   * Have this trader's open orders at this node cancelled (reason `disconnect`) if this
   * client's connection is silent for `timeoutMs` (500..600000; 0: never). Any request
   * keeps it alive; `heartbeat` when there is nothing else to say. Resolves to the timeout set.
   */
  async cancelOnDisconnect(timeoutMs: number): Promise<number> {
    return parseCod(await this.call("cancel_on_disconnect", codArgs(timeoutMs)));
  }

  /** Tell the node this connection is alive; resolves to its cancel on disconnect timeout (0: none). */
  async heartbeat(): Promise<number> {
    return parseCod(await this.call("heartbeat"));
  }

  /** A stream on a connection of its own, subscribed when this resolves: see Subscription. */
  subscribe(stream: "trades", options?: SubscriptionOptions): Promise<Subscription<Fill>>;
  subscribe(stream: "orders", options?: SubscriptionOptions): Promise<Subscription<OrderEvent>>;
  subscribe(stream: "book", options?: BookSubscriptionOptions): Promise<Subscription<Book>>;
  async subscribe(stream: StreamName, options: BookSubscriptionOptions = {}): Promise<Subscription<unknown>> {
    const args = subscribeArgs(stream, options.depth);
    return Subscription.open(this.settings, stream, "subscribe", args, subscriptionOptions(options));
  }

  /** Every fill as it happens, by the op `watch`: deprecated, the same as `subscribe("trades")`. */
  async watch(options: SubscriptionOptions = {}): Promise<Subscription<Fill>> {
    return Subscription.open(this.settings, "trades", "watch", {}, subscriptionOptions(options));
  }

  /** Close the connection (idempotent); calls still waiting reject. Subscriptions are closed on their own. */
  close(): void {
    this.connection.close();
  }

  private async call(op: Op, args: Args = {}): Promise<WireMap> {
    return (await this.connection.call(op, args)).result;
  }
}

function paged(page: PageOptions): Args {
  return pageArgs(page.since ?? 0, page.limit ?? DEFAULT_PAGE);
}

function subscriptionOptions(options: SubscriptionOptions): SubscriptionOptions {
  const silenceMs = options.silenceMs;
  if (silenceMs !== undefined && !(Number.isFinite(silenceMs) && silenceMs > 0)) {
    throw new InvalidRequest(`silenceMs must be a positive number of milliseconds, got ${silenceMs}`);
  }
  return silenceMs === undefined ? {} : { silenceMs };
}

/** `"HOST:PORT"` or `"tcp://HOST:PORT"` (an IPv6 host in brackets) -> `"HOST:PORT"`. */
function nodeAddress(node: string): string {
  const address = typeof node === "string" ? node.replace(/^tcp:\/\//, "") : "";
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon);
  const port = address.slice(colon + 1);
  if (colon <= 0 || host.includes("/") || !/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new InvalidRequest(`node address ${JSON.stringify(node)} is not HOST:PORT`);
  }
  return address;
}
