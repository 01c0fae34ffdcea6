/**
 * zmqex-client: a Node.js client for a zmqex node (docs/protocol.md).
 *
 * `Client` has every op as an async method; `Subscription` is a stream as an async
 * iterator; the errors carry the node's error code; `money` turns amounts (decimal
 * strings) into exact BigInt cents and satoshis and back.
 */

export { Client, type BookSubscriptionOptions, type ClientOptions, type PageOptions } from "./client.js";
export { Subscription, type SubscriptionOptions } from "./subscription.js";
export type { AmendChanges, OrderRef, PlaceOptions } from "./requests.js";
export * from "./errors.js";
export * from "./protocol.js";
export { formatPrice, formatQty, parsePrice, parseQty, ZERO_QTY } from "./money.js";
export { loadCurveKeys, type CurveKeys } from "./keys.js";
