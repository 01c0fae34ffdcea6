/**
 * Requests: a program's arguments checked as the node would check them, and built into
 * the map that goes on the wire. A bad request is refused here (InvalidRequest,
 * InvalidAmount) before it is sent, the same way zmqex/protocol.py's `place_args` and
 * field readers refuse it for the Python client.
 */

import { InvalidRequest } from "./errors.js";
import { priceArg, qtyArg } from "./money.js";
import {
  ACKS, ARGUMENTS, CLIENT_ORDER_ID, CLIENT_ORDER_ID_RULE, COD_MAX_MS, COD_MIN_MS, DEFAULT_ACK, DEFAULT_STP,
  DEFAULT_TIF, MAX_DEPTH, MAX_ORDER_ID, MAX_PAGE, MAX_PROTECTION_BPS, ORDER_ID, PRICED_TIFS, RESTING_TIFS, SIDES,
  STPS, STREAM_DEPTHS, STREAMS, TIF_EXPIRES, TIFS, TRADER_NAME, TRADER_RULE, VERSION,
  type Ack, type Op, type Side, type Stp, type StreamName, type Tif,
} from "./protocol.js";

export type Args = Record<string, unknown>;

/** The optional arguments of a `place`, by their names on the wire. */
export interface PlaceOptions {
  /** "gtc" (the default), "ioc", "post_only", "gtd" or "fok" (fill or kill: all at once or nothing). */
  tif?: Tif;
  /** The trader's own id for the order: a retry with it places nothing new. */
  client_order_id?: string;
  /** Epoch milliseconds: a gtd order's expiry (required by it, refused for any other). */
  expire_at?: number;
  /** "done" (the default): answered once matching is done; "accepted": at once. */
  ack?: Ack;
  /** What happens if the order meets a resting order of the same trader. */
  stp?: Stp;
  /** 0..10000 basis points of the best opposite price: the band an order that does not rest trades in. */
  protection_bps?: number;
}

/** An order named by its id (`"a:17"`, or `{ order_id }`) or by this trader's client order id. */
export type OrderRef = string | { order_id: string } | { client_order_id: string };

/** The new total quantity, the new price, or both, of an `amend`. */
export interface AmendChanges {
  qty?: string;
  price?: string;
}

/** A request map; `args` must be arguments of `op`. */
export function request(id: number, op: Op, args: Args, trader: string | undefined): Args {
  const allowed: readonly string[] = ARGUMENTS[op];
  const stray = Object.keys(args).filter((key) => !allowed.includes(key));
  if (stray.length > 0) {
    throw new InvalidRequest(`${op} takes ${allowed.join(", ") || "no arguments"}, not ${stray.join(", ")}`);
  }
  return { v: VERSION, id, op, ...args, ...(trader === undefined ? {} : { trader }) };
}

/** The arguments of a `place`; `price` null or undefined: a market order. */
export function placeArgs(side: Side, qty: string, price: string | null | undefined, options: PlaceOptions = {}): Args {
  const tif = oneOf(options.tif ?? DEFAULT_TIF, TIFS, "tif");
  const args: Args = { side: oneOf(side, SIDES, "side"), qty: qtyArg(qty), tif };
  const market = price === null || price === undefined;
  if (!market) {
    args["price"] = priceArg(price);
  } else if (PRICED_TIFS.includes(tif)) {
    throw new InvalidRequest(`a ${tif} order needs a price`);
  }
  if (options.client_order_id !== undefined) {
    args["client_order_id"] = clientOrderId(options.client_order_id);
  }
  if (tif === TIF_EXPIRES) {
    if (!Number.isSafeInteger(options.expire_at) || (options.expire_at ?? 0) <= 0) {
      throw new InvalidRequest(`a ${TIF_EXPIRES} order needs expire_at, an integer of epoch milliseconds`);
    }
    args["expire_at"] = options.expire_at;
  } else if (options.expire_at !== undefined) {
    throw new InvalidRequest(`only a ${TIF_EXPIRES} order takes expire_at`);
  }
  if (options.ack !== undefined && options.ack !== DEFAULT_ACK) {
    args["ack"] = oneOf(options.ack, ACKS, "ack");
  }
  if (options.stp !== undefined && options.stp !== DEFAULT_STP) {
    args["stp"] = oneOf(options.stp, STPS, "stp");
  }
  if (options.protection_bps !== undefined) {
    args["protection_bps"] = integer(options.protection_bps, 0, MAX_PROTECTION_BPS, "protection_bps");
    if (RESTING_TIFS.includes(tif) && !market) {
      throw new InvalidRequest("only an order that does not rest (ioc, or market) takes protection_bps");
    }
  }
  return args;
}

/** The arguments naming an order: its id or this trader's client order id. */
export function orderRef(ref: OrderRef): Args {
  if (typeof ref === "string") {
    return { order_id: orderId(ref) };
  }
  const named = ref as Partial<Record<"order_id" | "client_order_id", unknown>> | null;
  const byId = named?.order_id !== undefined;
  if (named === null || typeof named !== "object" || byId === (named.client_order_id !== undefined)) {
    throw new InvalidRequest("name an order by order_id or by client_order_id, one of them");
  }
  return byId ? { order_id: orderId(named.order_id) } : { client_order_id: clientOrderId(named.client_order_id) };
}

/** The arguments of an `amend`. */
export function amendArgs(ref: OrderRef, changes: AmendChanges): Args {
  if (changes.qty === undefined && changes.price === undefined) {
    throw new InvalidRequest("an amend needs qty, price or both");
  }
  return {
    ...orderRef(ref),
    ...(changes.qty === undefined ? {} : { qty: qtyArg(changes.qty) }),
    ...(changes.price === undefined ? {} : { price: priceArg(changes.price) }),
  };
}

export function cancelAllArgs(side: Side | undefined): Args {
  return side === undefined ? {} : { side: oneOf(side, SIDES, "side") };
}

export function bookArgs(depth: number): Args {
  return { depth: integer(depth, 1, MAX_DEPTH, "depth") };
}

/** The arguments of a paged query: a cursor (0, or a page's `next`) and 1..1000 items. */
export function pageArgs(since: number, limit: number): Args {
  return { since: integer(since, 0, Number.MAX_SAFE_INTEGER, "since"), limit: integer(limit, 1, MAX_PAGE, "limit") };
}

/** The arguments of a `subscribe`: a depth only for `book`, one of STREAM_DEPTHS. */
export function subscribeArgs(stream: StreamName, depth: number | undefined): Args {
  oneOf(stream, STREAMS, "stream");
  if (depth === undefined) {
    return { stream };
  }
  if (stream !== "book") {
    throw new InvalidRequest("only a book subscription takes depth");
  }
  if (!(STREAM_DEPTHS as readonly number[]).includes(depth)) {
    throw new InvalidRequest(`a book subscription's depth must be one of ${STREAM_DEPTHS.join(", ")}`);
  }
  return { stream, depth };
}

/** A cancel on disconnect timeout: 0 (off), or 500..600000 ms. */
export function codArgs(timeoutMs: number): Args {
  if (timeoutMs !== 0) {
    integer(timeoutMs, COD_MIN_MS, COD_MAX_MS, "timeout_ms (or 0, off)");
  }
  return { timeout_ms: timeoutMs };
}

export function traderName(value: unknown): string {
  if (typeof value !== "string" || !TRADER_NAME.test(value)) {
    throw new InvalidRequest(`trader must be ${TRADER_RULE}`);
  }
  return value;
}

function orderId(value: unknown): string {
  if (typeof value !== "string" || value.length > MAX_ORDER_ID || !ORDER_ID.test(value)) {
    throw new InvalidRequest(`order_id must be NODE:SEQ, like "a:17", got ${JSON.stringify(value)}`);
  }
  return value;
}

function clientOrderId(value: unknown): string {
  if (typeof value !== "string" || !CLIENT_ORDER_ID.test(value)) {
    throw new InvalidRequest(`client_order_id must be ${CLIENT_ORDER_ID_RULE}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, choices: readonly T[], what: string): T {
  if (typeof value !== "string" || !(choices as readonly string[]).includes(value)) {
    throw new InvalidRequest(`${what} ${JSON.stringify(value)} is not one of ${choices.join(", ")}`);
  }
  return value as T;
}

function integer(value: unknown, least: number, most: number, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < least || value > most) {
    throw new InvalidRequest(`${what} must be an integer ${least}..${most}, got ${JSON.stringify(value)}`);
  }
  return value;
}
