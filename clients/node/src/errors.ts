/**
 * The errors of the client, one class per kind of failure, as zmqex/errors.py has them.
 *
 * Every error is a {@link ZmqexError} whose `code` is stable and machine-readable: for an
 * error reply it is the node's wire code (docs/protocol.md, "Replies"), so a program may
 * test `err instanceof NotOwner` or `err.code === "not_owner"`, whichever reads better.
 * The classes the node's codes map to are in {@link ERRORS}; a code without a class of its
 * own (`unknown_op`, `unsupported_version`, or one of a later version) is an
 * {@link ErrorReply} carrying that code.
 */

/** Base of every error this client raises on purpose. */
export class ZmqexError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A price or quantity that is not an exact, positive, in-range decimal string. */
export class InvalidAmount extends ZmqexError {
  constructor(message: string) {
    super("invalid_amount", message);
  }
}

/** A request that asks for something impossible (a bad field, a closed client, ...). */
export class InvalidRequest extends ZmqexError {
  constructor(message: string) {
    super("invalid_request", message);
  }
}

/** What the node sent is not a valid reply or stream message of this version (or it could not read ours). */
export class DecodeError extends ZmqexError {
  constructor(message: string) {
    super("malformed", message);
  }
}

/** No such order on the node's replica (or no order of this trader with that client order id). */
export class UnknownOrder extends ZmqexError {
  constructor(message: string) {
    super("unknown_order", message);
  }
}

/** The order belongs to another node or another trader; or the `trader` is not the key's. */
export class NotOwner extends ZmqexError {
  constructor(message: string) {
    super("not_owner", message);
  }
}

/** The order is already filled, cancelled or expired. */
export class OrderClosed extends ZmqexError {
  constructor(message: string) {
    super("order_closed", message);
  }
}

/** The order was refused as a whole (a post-only order that would cross, a market order with no other side). */
export class Rejected extends ZmqexError {
  constructor(message: string, code = "rejected") {
    super(code, message);
  }
}

/** The order (or amend, or withdrawal) would spend more than the funded trader has available. */
export class InsufficientBalance extends Rejected {
  constructor(message: string) {
    super(message, "insufficient_balance");
  }
}

/** Too many `place` requests in flight at the node (or it is not ready); try again. */
export class Busy extends ZmqexError {
  constructor(message: string) {
    super("busy", message);
  }
}

/** This trader sent more requests per second than the node allows; slow down. */
export class RateLimited extends ZmqexError {
  constructor(message: string) {
    super("rate_limited", message);
  }
}

/** This trader (or the node) holds as many open orders, subscriptions or cancel-on-disconnect connections as allowed. */
export class LimitReached extends ZmqexError {
  constructor(message: string) {
    super("limit", message);
  }
}

/**
 * The node cannot write its store now (a full disk, an I/O error): until it can it refuses
 * place, cancel, amend, cancel_all, cancel_on_disconnect and fund, and answers queries; try again later.
 */
export class StoreUnavailable extends ZmqexError {
  constructor(message: string) {
    super("store_unavailable", message);
  }
}

/** A market order found only makers of desks beyond the node's credit (docs/protocol.md, "Credit"). */
export class CreditRefused extends ZmqexError {
  constructor(message: string) {
    super("credit", message);
  }
}

/** An error reply whose code has no class of its own; `code` is the node's code as it sent it. */
export class ErrorReply extends ZmqexError {}

/** The node did not answer in time (a `place` that timed out after it was sent may still execute). */
export class Timeout extends ZmqexError {
  constructor(message: string) {
    super("timeout", message);
  }
}

/**
 * A subscription ended without the client asking: the node ended it (`slow_reader`,
 * `stopping`, `revoked`), or the client saw it break (`gap`: a message is missing;
 * `silent`: nothing, not even a heartbeat, for too long). Subscribe again to carry on.
 */
export class StreamEnded extends ZmqexError {}

/** A key file that cannot be read, or whose keys are malformed or do not belong together. */
export class KeyFileError extends ZmqexError {
  constructor(message: string) {
    super("keys", message);
  }
}

type ReplyErrorClass = new (message: string) => ZmqexError;

/** The error codes a node answers with that have a class of their own. */
export const ERRORS: Readonly<Record<string, ReplyErrorClass>> = Object.freeze({
  malformed: DecodeError,
  invalid_amount: InvalidAmount,
  invalid_request: InvalidRequest,
  unknown_order: UnknownOrder,
  not_owner: NotOwner,
  order_closed: OrderClosed,
  rejected: Rejected,
  busy: Busy,
  rate_limited: RateLimited,
  limit: LimitReached,
  insufficient_balance: InsufficientBalance,
  store_unavailable: StoreUnavailable,
  credit: CreditRefused,
});

/** The error an error reply with `code` stands for. */
export function errorFor(code: string, message: string): ZmqexError {
  const cls = Object.hasOwn(ERRORS, code) ? ERRORS[code] : undefined;
  return cls === undefined ? new ErrorReply(code, message) : new cls(message);
}
