/**
 * Reading what a node sends: replies and stream messages, checked field by field, as
 * zmqex/protocol.py's readers check them for the Python client. The input is untrusted:
 * anything off raises DecodeError; an error reply raises the error its code names.
 * Fields this version does not know are left out of the views.
 */

import { DecodeError, errorFor } from "./errors.js";
import { isCanonicalPrice, isCanonicalQty, parsePrice, ZERO_QTY } from "./money.js";
import {
  CLIENT_ORDER_ID, COD_MAX_MS, DROPPED, LIQUIDITY, NODE_ID, ORDER_EVENTS, ORDER_ID, REASONS, SIDES, STATUSES,
  STREAMS, TIFS, VERSION,
  type Book, type Fill, type Level, type Levels, type MyFill, type NodeStatus, type Order, type OrderEvent,
  type OrderUpdate, type Page, type RecentFills, type StreamName,
} from "./protocol.js";

export type WireMap = Record<string, unknown>;

/** The result map of an ok reply; for an error reply, throw the error its code names. */
export function decodeReply(reply: WireMap): WireMap {
  if (reply["v"] !== VERSION) {
    throw new DecodeError(`reply of protocol version ${brief(reply["v"])}; this client speaks ${VERSION}`);
  }
  if (reply["ok"] === true) {
    return map(reply["result"], "reply's result");
  }
  if (reply["ok"] !== false) {
    throw new DecodeError(`reply 'ok' must be true or false, got ${brief(reply["ok"])}`);
  }
  const error = map(reply["error"], "reply's error");
  const code = error["code"];
  const message = error["message"];
  if (typeof code !== "string" || typeof message !== "string") {
    throw new DecodeError("an error reply needs a string code and a string message");
  }
  throw errorFor(code, message);
}

/** Whether a message is a stream message (after a `subscribe`), not a reply. */
export function isStream(message: WireMap): boolean {
  return "stream" in message;
}

/** Whether a message tells that the node dropped replies a client did not read in time. */
export function isDropped(message: WireMap): boolean {
  const error = message["error"];
  return message["id"] === null && isMap(error) && error["code"] === DROPPED;
}

export function parseFill(value: unknown): Fill {
  const fill = map(value, "fill");
  const report = fill["maker"] === "" && fill["taker"] === "";
  return {
    id: ref(fill["id"], "fill id"),
    // A private trade's report is a fill without order ids: maker and taker both "".
    maker: report ? "" : ref(fill["maker"], "fill's maker"),
    taker: report ? "" : ref(fill["taker"], "fill's taker"),
    price: price(fill["price"], "fill's price"),
    qty: qty(fill["qty"], "fill's qty"),
    ts: int(fill["ts"], "fill's ts"),
    taker_side: oneOf(fill["taker_side"], SIDES, "fill's taker_side"),
  };
}

export function parseMyFill(value: unknown): MyFill {
  const fill = map(value, "fill");
  return {
    ...parseFill(fill),
    order_id: ref(fill["order_id"], "fill's order_id"),
    client_order_id: clientOrderId(fill["client_order_id"], "fill's client_order_id"),
    side: oneOf(fill["side"], SIDES, "fill's side"),
    liquidity: oneOf(fill["liquidity"], LIQUIDITY, "fill's liquidity"),
  };
}

export function parseOrderUpdate(value: unknown): OrderUpdate {
  const order = map(value, "order");
  for (const key of ["price", "reason", "expire_at"]) { // null has a meaning; missing is a malformed order
    if (!(key in order)) {
      throw new DecodeError(`order has no ${key}`);
    }
  }
  const { price: orderPrice, reason, expire_at: expireAt } = order;
  return {
    order_id: ref(order["order_id"], "order id"),
    owner: match(order["owner"], NODE_ID, "order's owner"),
    side: oneOf(order["side"], SIDES, "order's side"),
    price: orderPrice === null ? null : price(orderPrice, "order's price"),
    qty: qty(order["qty"], "order's qty"),
    tif: oneOf(order["tif"], TIFS, "order's tif"),
    status: oneOf(order["status"], STATUSES, "order's status"),
    filled: qty(order["filled"], "order's filled", true),
    open: qty(order["open"], "order's open", true),
    pending: qty(order["pending"], "order's pending", true),
    available: bool(order["available"], "order's available"),
    ts: int(order["ts"], "order's ts"),
    reason: reason === null ? null : oneOf(reason, REASONS, "order's reason"),
    expire_at: expireAt === null ? null : int(expireAt, "order's expire_at"),
    client_order_id: clientOrderId(order["client_order_id"], "order's client_order_id"),
  };
}

/** An order with its fills; `mine` kept when there (the reply to `order`). */
export function parseOrder(value: unknown): Order {
  const order = map(value, "order");
  const view: Order = { ...parseOrderUpdate(order), fills: list(order["fills"], "order's fills").map(parseFill) };
  if ("mine" in order) {
    view.mine = bool(order["mine"], "order's mine");
  }
  return view;
}

/** The result of `book`, or a book stream's snapshot; `changes`: a stream's changes (count 0: the level is gone). */
export function parseBook(value: unknown, changes = false): Book {
  const book = map(value, "book");
  const unavailable = map(book["unavailable"], "book's unavailable");
  return {
    bids: levels(book["bids"], "bids", changes),
    asks: levels(book["asks"], "asks", changes),
    unavailable: {
      bids: levels(unavailable["bids"], "unavailable bids", changes),
      asks: levels(unavailable["asks"], "unavailable asks", changes),
    },
  };
}

/** A book stream's changes applied to the book its snapshot began: a new book, levels best first. */
export function applyChanges(book: Book, changes: Book): Book {
  return {
    ...applied(book, changes),
    unavailable: applied(book.unavailable, changes.unavailable),
  };
}

export function parseRecentFills(value: unknown): RecentFills {
  const result = map(value, "fills result");
  return {
    fills: list(result["fills"], "fills").map(parseFill),
    truncated: "truncated" in result ? bool(result["truncated"], "truncated") : false,
  };
}

/** The result of a paged query, every item checked with `item`. */
export function parsePage<T>(value: unknown, key: string, item: (value: unknown) => T): Page<T> {
  const result = map(value, "page");
  return {
    items: list(result[key], `page's ${key}`).map(item),
    next: int(result["next"], "page's next cursor"),
    more: bool(result["more"], "page's more"),
  };
}

/** The order ids in the result of `cancel_all`. */
export function parseCancelled(value: unknown): string[] {
  return list(map(value, "cancel_all result")["cancelled"], "cancelled").map((id) => ref(id, "cancelled order"));
}

/** The timeout in the result of `cancel_on_disconnect` or `heartbeat`. */
export function parseCod(value: unknown): number {
  const timeout = int(map(value, "cancel on disconnect result")["timeout_ms"], "timeout_ms");
  if (timeout < 0 || timeout > COD_MAX_MS) {
    throw new DecodeError(`timeout_ms ${timeout} is out of range`);
  }
  return timeout;
}

/** The result of `status`: a map, not checked further (a node may add to it). */
export function parseStatus(value: unknown): NodeStatus {
  return map(value, "status") as NodeStatus;
}

/** The result of `subscribe` (or of `watch`, for trades) must confirm the stream. */
export function parseSubscribed(value: unknown, stream: StreamName): void {
  const result = map(value, "subscribe result");
  if (result["subscribed"] !== stream && !(stream === "trades" && result["watching"] === true)) {
    throw new DecodeError(`the node did not confirm a ${stream} subscription`);
  }
}

export function parseUnsubscribed(value: unknown): void {
  map(value, "unsubscribe result");
}

/** One stream message, checked. */
export type StreamItem =
  | { kind: "trade"; seq: number; value: Fill }
  | { kind: "order"; seq: number; value: OrderEvent }
  | { kind: "snapshot"; seq: number; value: Book }
  | { kind: "changes"; seq: number; value: Book }
  | { kind: "heartbeat"; seq: number }
  | { kind: "end"; seq: number; code: string; message: string };

/** The stream message of subscription `subId`, checked; null for any other message. */
export function parseStream(message: WireMap, subId: number): StreamItem | null {
  if (!("stream" in message) || message["id"] !== subId) {
    return null;
  }
  const stream = oneOf(message["stream"], STREAMS, "stream");
  const seq = int(message["seq"], "stream seq");
  if (message["heartbeat"] === true) {
    return { kind: "heartbeat", seq };
  }
  if ("end" in message) {
    const end = map(message["end"], "stream end");
    if (typeof end["code"] !== "string" || typeof end["message"] !== "string") {
      throw new DecodeError("a stream end needs a string code and a string message");
    }
    return { kind: "end", seq, code: end["code"], message: end["message"] };
  }
  if (stream === "trades" && "trade" in message) {
    return { kind: "trade", seq, value: parseFill(message["trade"]) };
  }
  if (stream === "orders" && "order" in message) {
    const event: OrderEvent = {
      event: oneOf(message["event"], ORDER_EVENTS, "order event"),
      order: parseOrderUpdate(message["order"]),
    };
    if (event.event === "fill") {
      event.fill = parseMyFill(message["fill"]);
    }
    return { kind: "order", seq, value: event };
  }
  if (stream === "book" && "snapshot" in message) {
    return { kind: "snapshot", seq, value: parseBook(message["snapshot"]) };
  }
  if (stream === "book" && "changes" in message) {
    return { kind: "changes", seq, value: parseBook(message["changes"], true) };
  }
  throw new DecodeError(`a ${stream} stream message without anything this client knows`);
}

// --- field checks --------------------------------------------------------------------------

export function isMap(value: unknown): value is WireMap {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function map(value: unknown, what: string): WireMap {
  if (!isMap(value)) {
    throw new DecodeError(`${what} must be a map, got ${brief(value)}`);
  }
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new DecodeError(`${what} must be a list, got ${brief(value)}`);
  }
  return value;
}

/** An integer; msgpack integers beyond 2**53 cannot be held exactly by a JS number, and are refused. */
function int(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new DecodeError(`${what} must be an integer, got ${brief(value)}`);
  }
  return value;
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") {
    throw new DecodeError(`${what} must be true or false, got ${brief(value)}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, choices: readonly T[], what: string): T {
  if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
    throw new DecodeError(`${what} must be one of ${choices.join(", ")}, got ${brief(value)}`);
  }
  return value as T;
}

function match(value: unknown, pattern: RegExp, what: string): string {
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new DecodeError(`${what} is malformed: ${brief(value)}`);
  }
  return value;
}

/** An order or fill id: `NODE:SEQ`. */
function ref(value: unknown, what: string): string {
  return match(value, ORDER_ID, what);
}

/** A client order id, or "" (none, or not the asker's to see). */
function clientOrderId(value: unknown, what: string): string {
  return value === "" ? "" : match(value, CLIENT_ORDER_ID, what);
}

/** A positive price exactly as a node writes it. */
function price(value: unknown, what: string): string {
  if (!isCanonicalPrice(value)) {
    throw new DecodeError(`${what} must be a decimal string like "0.01", got ${brief(value)}`);
  }
  return value;
}

/** A positive quantity exactly as a node writes it (`zero`: or "0.00000000"). */
function qty(value: unknown, what: string, zero = false): string {
  if (!(zero && value === ZERO_QTY) && !isCanonicalQty(value)) {
    throw new DecodeError(`${what} must be a decimal string like "0.00000001", got ${brief(value)}`);
  }
  return value as string;
}

function levels(value: unknown, what: string, changes: boolean): Level[] {
  return list(value, what).map((item): Level => {
    if (!Array.isArray(item) || (item.length !== 3 && item.length !== 4)) {
      throw new DecodeError(`a level of ${what} must be [price, qty, number of orders] or [..., tradeable]`);
    }
    const count = int(item[2], `number of orders in ${what}`);
    if (count < (changes ? 0 : 1)) {
      throw new DecodeError(`a level of ${what} has ${count} orders`);
    }
    if ((count === 0) !== (item[1] === ZERO_QTY) || (count === 0 && item.length === 4)) {
      throw new DecodeError(`a level of ${what} has a count of 0 exactly when its qty is 0, and then no tradeable`);
    }
    const level: Level = [price(item[0], `price in ${what}`), qty(item[1], `qty in ${what}`, true), count];
    if (item.length === 4) {
      level.push(qty(item[3], `tradeable in ${what}`, true));
    }
    return level;
  });
}

function applied(book: Levels, changes: Levels): Levels {
  return { bids: merged(book.bids, changes.bids, true), asks: merged(book.asks, changes.asks, false) };
}

/** Each changed level as it now is, one with count 0 gone; best first (bids high to low, asks low to high). */
function merged(levels: Level[], changes: Level[], bids: boolean): Level[] {
  const byPrice = new Map(levels.map((level) => [level[0], level]));
  for (const change of changes) {
    if (change[2] === 0) {
      byPrice.delete(change[0]);
    } else {
      byPrice.set(change[0], change);
    }
  }
  const cents = (level: Level): bigint => parsePrice(level[0]);
  return [...byPrice.values()].sort((x, y) => {
    const order = cents(x) < cents(y) ? -1 : cents(x) > cents(y) ? 1 : 0;
    return bids ? -order : order;
  });
}

function brief(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
