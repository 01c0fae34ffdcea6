/**
 * The client protocol of docs/protocol.md (version 1): its constants and the shapes of
 * what a node sends. zmqex/protocol.py is the one source of the protocol; this is its
 * table, written again for JS. test/protocol.test.ts holds the two together: it asks the
 * Python module for every constant here and compares.
 *
 * Views keep the wire's field names (`order_id`, `client_order_id`, ...), so what
 * docs/protocol.md says of a field holds here word for word. Amounts are decimal strings.
 */

export const VERSION = 1;

/** Each op and the arguments it takes, besides the fields of every request (`v`, `id`, `op`, `trader`). */
export const ARGUMENTS = {
  place: ["side", "qty", "price", "tif", "expire_at", "client_order_id", "ack", "stp", "protection_bps", "only"],
  cancel: ["order_id", "client_order_id"],
  amend: ["order_id", "client_order_id", "qty", "price"],
  cancel_all: ["side"],
  order: ["order_id", "client_order_id"],
  open_orders: ["since", "limit"],
  my_fills: ["since", "limit"],
  trades: ["since", "limit"],
  book: ["depth"],
  status: [],
  fills: [],
  subscribe: ["stream", "depth"],
  unsubscribe: ["subscription"],
  watch: [],
  cancel_on_disconnect: ["timeout_ms"],
  heartbeat: [],
  rfq: ["side", "qty", "desks", "answer_ms"],
  quote: ["rfq_id", "price", "qty", "valid_ms"],
  accept: ["offer_id", "qty", "disclose"],
  withdraw: ["item_id"],
  otc: [],
  fund: ["account", "usd", "btc"],
  balance: ["account"],
  set_credit: ["desk", "limit", "daily"],
  settle: ["desk", "usd"],
  credit: [],
} as const satisfies Record<string, readonly string[]>;
export type Op = keyof typeof ARGUMENTS;
export const OPS = Object.keys(ARGUMENTS) as Op[];
export const COMMON = ["v", "id", "op", "trader"] as const;

export const SIDES = ["buy", "sell"] as const;
export type Side = (typeof SIDES)[number];
export const TIFS = ["gtc", "ioc", "post_only", "gtd", "fok"] as const;
export type Tif = (typeof TIFS)[number];
export const DEFAULT_TIF: Tif = "gtc";
/** The one TIF that needs `expire_at`, and takes it. */
export const TIF_EXPIRES: Tif = "gtd";
/** TIFs of orders that rest in the book (an order without a price never does). */
export const RESTING_TIFS: readonly Tif[] = ["gtc", "post_only", "gtd"];
/** TIFs that need a price (the others make a market order of an order without one). */
export const PRICED_TIFS: readonly Tif[] = ["post_only", "gtd"];
/** Self-trade prevention: what happens when an order meets a resting one of its own trader. */
export const STPS = ["cancel_newest", "cancel_oldest", "cancel_both"] as const;
export type Stp = (typeof STPS)[number];
export const DEFAULT_STP: Stp = "cancel_newest";
export const DEFAULT_PROTECTION_BPS = 500;
export const MAX_PROTECTION_BPS = 10_000;
export const STATUSES = ["open", "partial", "filled", "cancelled", "expired"] as const;
export type OrderStatus = (typeof STATUSES)[number];
export const REASONS = [
  "user", "expired", "would_cross", "self_trade", "disconnect", "price_protection", "amended", "killed", "credit",
] as const;
export type Reason = (typeof REASONS)[number];
/** When a `place` is answered: once its matching is done (the default), or at once. */
export const ACKS = ["done", "accepted"] as const;
export type Ack = (typeof ACKS)[number];
export const DEFAULT_ACK: Ack = "done";

export const DEFAULT_DEPTH = 10;
export const MAX_DEPTH = 1000;
export const STREAM_DEPTHS = [1, 5, 10, 25, 50, 100] as const;
export type StreamDepth = (typeof STREAM_DEPTHS)[number];
export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;
/** A subscription that sent nothing for this long gets a heartbeat. */
export const HEARTBEAT_MS = 1000;
export const COD_MIN_MS = 500;
export const COD_MAX_MS = 600_000;
/** Largest request frame a node accepts (libzmq drops the connection past it). */
export const MAX_REQUEST = 4 * 1024 * 1024;
/** Largest reply this client reads. */
export const MAX_REPLY = 2 ** 30;
/** A request id is an integer of magnitude below 2**63, or a string of at most this many characters. */
export const MAX_ID_TEXT = 64;
export const MAX_ORDER_ID = 64;
export const TRADER_RULE = "1-32 characters of A-Z a-z 0-9 _ . -";
export const TRADER_NAME = /^[A-Za-z0-9_.-]{1,32}$/;
export const CLIENT_ORDER_ID_RULE = "1-36 characters of A-Z a-z 0-9 _ . -";
export const CLIENT_ORDER_ID = /^[A-Za-z0-9_.-]{1,36}$/;
/** An order or fill id: `NODE:SEQ`, like `"a:17"`. */
export const ORDER_ID = /^[A-Za-z0-9_.-]{1,32}:[1-9][0-9]{0,17}$/;
export const NODE_ID = /^[A-Za-z0-9_.-]{1,32}$/;

export const STREAMS = ["trades", "orders", "book", "rfqs"] as const;
export type StreamName = (typeof STREAMS)[number];
export const ORDER_EVENTS = ["placed", "fill", "cancel"] as const;
export type OrderEventName = (typeof ORDER_EVENTS)[number];
export const LIQUIDITY = ["maker", "taker"] as const;
export type Liquidity = (typeof LIQUIDITY)[number];
/** Why a node ends a subscription the client did not unsubscribe. */
export const ENDS = ["slow_reader", "stopping", "revoked"] as const;
/** The error code of the notice that replies were dropped for a client that did not read them. */
export const DROPPED = "dropped";
/** Every code of an error reply to a request. */
export const ERROR_CODES = [
  "malformed", "invalid_amount", "invalid_request", "unknown_order", "not_owner", "order_closed", "rejected",
  "busy", "rate_limited", "limit", "store_unavailable", "insufficient_balance", "credit", "unsupported_version",
  "unknown_op",
] as const;

/** A fill: `maker` is the resting order, whose owner granted it at the maker's price. */
export interface Fill {
  id: string;
  maker: string;
  taker: string;
  price: string;
  qty: string;
  /** The maker owner's wall clock when it granted the fill, epoch ms (display only). */
  ts: number;
  /** The side of the taker order: `buy` is a trade at the ask. */
  taker_side: Side;
}

/** A fill as the trader of one of its orders sees it (`my_fills`, the `orders` stream). */
export interface MyFill extends Fill {
  order_id: string;
  /** "" if the order has none. */
  client_order_id: string;
  side: Side;
  liquidity: Liquidity;
}

/** An order without its fills: what an `orders` stream message carries. */
export interface OrderUpdate {
  order_id: string;
  /** The node that placed it. */
  owner: string;
  side: Side;
  /** null: a market order. */
  price: string | null;
  qty: string;
  tif: Tif;
  status: OrderStatus;
  filled: string;
  /** What still rests in the book. */
  open: string;
  /** Asked of makers by the owner's taker side, not yet settled. */
  pending: string;
  /** False while the owner is down. */
  available: boolean;
  /** The owner's wall clock when it placed the order, epoch ms (display only). */
  ts: number;
  /** Why it was closed before it filled; null while it is not cancelled. */
  reason: Reason | null;
  /** A gtd order's expiry, epoch ms. */
  expire_at: number | null;
  /** The placing trader's own id for it; "" if none, or not the asker's to see. */
  client_order_id: string;
}

export interface Order extends OrderUpdate {
  fills: Fill[];
  /** Only in the reply to `order`: the asking trader placed it at this node (an operator: any order of it). */
  mine?: boolean;
}

/** One book level: price, total quantity, number of orders (0 in a book stream's changes: the level is gone). */
/**
 * While the node has credit limits set, a level of `bids` or `asks` has a fourth element: what of it
 * the node's traders can trade against (docs/protocol.md, "Credit").
 */
export type Level = [price: string, qty: string, orders: number, tradeable?: string];

export interface Levels {
  bids: Level[];
  asks: Level[];
}

/** Levels best first; orders whose owner is down are under `unavailable`, not in `bids`/`asks`. */
export interface Book extends Levels {
  unavailable: Levels;
}

/** A page of a paged query: pass `next` as `since` for the following one; `more`: the node holds more. */
export interface Page<T> {
  items: T[];
  next: number;
  more: boolean;
}

/** What happened to one of the trader's orders, and the order after it. */
export interface OrderEvent {
  event: OrderEventName;
  order: OrderUpdate;
  /** With event `fill`: the fill, as the trader sees it. */
  fill?: MyFill;
}

/** The result of `fills`: the most recent fills the node knows; `truncated`: it knows more (page with `trades`). */
export interface RecentFills {
  fills: Fill[];
  truncated: boolean;
}

/** One currency of a balance (`fund`, `balance`): `available` is `total` less what open orders `reserved`. */
export interface Holding {
  total: string;
  reserved: string;
  available: string;
}

/** A funded trader's balance at its node (docs/protocol.md, "Balances"): USD with 2 decimals, BTC with 8. */
export interface Balance {
  trader: string;
  usd: Holding;
  btc: Holding;
}

/** The result of `status`, as the node sends it (not checked: a node may add fields). */
export interface NodeStatus {
  node: string;
  ready: boolean;
  peers: Record<string, { up: boolean; endpoint: string }>;
  vc: Record<string, number>;
  hash: string;
  open_orders: number;
  orders: number;
  /** The position of the last fill this node knows: the newest `trades` cursor. */
  fills: number;
  repaired: number;
  in_flight: number;
  crossed: boolean;
  compacted: number;
  counters: Record<string, number>;
  [field: string]: unknown;
}
