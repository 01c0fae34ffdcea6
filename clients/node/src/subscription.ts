/**
 * One stream of a node (`trades`, `orders` or `book`), on a connection of its own.
 *
 * A connection of its own, as the Python client has it: a stream that fills the node's
 * queue for a connection ends every subscription of that connection (`slow_reader`), so
 * a stream never takes the request connection's replies down with it, nor they it.
 */

import { Connection, type Settings } from "./connection.js";
import { DecodeError, StreamEnded, type ZmqexError } from "./errors.js";
import { HEARTBEAT_MS, type Book, type StreamName } from "./protocol.js";
import { applyChanges, parseStream, parseSubscribed, parseUnsubscribed, type WireMap } from "./replies.js";
import type { Args } from "./requests.js";

/**
 * Messages held here, unread, before the connection stops reading: past this, libzmq's
 * queues fill, then the node's (256 a connection), and the node ends the stream with
 * `slow_reader` rather than this process holding ever more.
 */
const MAX_HELD = 256;

export interface SubscriptionOptions {
  /**
   * Milliseconds without any message, not even a heartbeat, after which the stream is
   * taken for dead (StreamEnded `silent`). The node sends a heartbeat after every second
   * without a message; the default is three of them.
   */
  silenceMs?: number;
}

/**
 * Updates of one stream, in order: an async iterator (`for await (const x of sub)`), or
 * `poll(timeoutMs)` for one update at a time with a deadline.
 *
 * `trades` yields fills (Fill); `orders` yields OrderEvents (what happened to one of the
 * trader's orders, and the order after it); `book` yields the whole book (Book) after its
 * snapshot and after each change, kept up to date here (`sub.book`). Heartbeats are
 * consumed here; `seq` is the last sequence number seen.
 *
 * Throws StreamEnded when the node ends the stream (`slow_reader`, `stopping`, `revoked`),
 * when a message is missing (`gap`: its seq jumped), or when nothing came for `silenceMs`
 * (`silent`): subscribe again, and catch up with a paged query (`myFills`, `openOrders`,
 * `trades`). `unsubscribe()` ends it on the node; `close()` (or leaving a `for await`
 * early) drops its connection.
 */
export class Subscription<T> implements AsyncIterable<T> {
  /** The last sequence number seen (0 before the first update). */
  seq = 0;
  /** A book stream's book, as of the last update; null before its snapshot, and for other streams. */
  book: Book | null = null;
  private subId = 0;
  private readonly connection: Connection;
  private readonly held: (WireMap | ZmqexError)[] = [];
  private heardAt = performance.now();
  private arrived: (() => void) | undefined;
  private room: (() => void) | undefined;
  private readonly silenceMs: number;
  private readonly address: string;

  private constructor(settings: Settings, readonly stream: StreamName, options: SubscriptionOptions) {
    this.silenceMs = options.silenceMs ?? 3 * HEARTBEAT_MS;
    this.address = settings.address;
    this.connection = new Connection(settings, (message) => this.hold(message));
  }

  /** Subscribe (with `op` `subscribe`, or the deprecated `watch`) on a new connection; resolves once subscribed. */
  static async open<T>(settings: Settings, stream: StreamName, op: "subscribe" | "watch", args: Args,
                       options: SubscriptionOptions = {}): Promise<Subscription<T>> {
    const subscription = new Subscription<T>(settings, stream, options);
    try {
      const { id, result } = await subscription.connection.call(op, args);
      parseSubscribed(result, stream);
      subscription.subId = id;
      subscription.heardAt = performance.now();
      return subscription;
    } catch (err) {
      subscription.close();
      throw err;
    }
  }

  /** The id of the `subscribe` request: its messages carry it, and `unsubscribe` names it. */
  get id(): number {
    return this.subId;
  }

  get isClosed(): boolean {
    return this.connection.isClosed;
  }

  /** The next update within `timeoutMs` (undefined: however long it takes); undefined if none came, or once closed. */
  async poll(timeoutMs?: number): Promise<T | undefined> {
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
    while (!this.connection.isClosed) {
      const message = this.held.shift();
      this.room?.();
      if (message === undefined) {
        const now = performance.now();
        const silentAt = this.heardAt + this.silenceMs;
        if (now >= silentAt) {
          throw this.ended(new StreamEnded("silent", `nothing from node ${this.address} on the ${this.stream} `
            + `stream for ${this.silenceMs} ms, not even a heartbeat`));
        }
        if (now >= deadline) {
          return undefined;
        }
        await this.arrival(Math.min(deadline, silentAt) - now);
        continue;
      }
      const update = this.read(message);
      if (update !== undefined) {
        return update;
      }
    }
    return undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: async (): Promise<IteratorResult<T>> => {
        const value = await this.poll();
        return value === undefined ? { done: true, value: undefined } : { done: false, value };
      },
      return: async (): Promise<IteratorResult<T>> => {
        this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /** End the subscription on the node (no message of it follows), then close its connection. */
  async unsubscribe(): Promise<void> {
    this.held.length = 0; // nothing more is read from it; and the reader must be free to read the reply
    this.room?.();
    try {
      const { result } = await this.connection.call("unsubscribe", { subscription: this.subId });
      parseUnsubscribed(result);
    } finally {
      this.close();
    }
  }

  /** Drop the connection (idempotent); the node ends the subscription when it finds the connection gone. */
  close(): void {
    this.connection.close();
    this.arrived?.();
    this.room?.();
  }

  /** One message taken off the queue: the update it makes, or undefined for one that makes none. */
  private read(message: WireMap | ZmqexError): T | undefined {
    if (message instanceof Error) {
      throw this.ended(message);
    }
    const item = parseStream(message, this.subId);
    if (item === null) {
      return undefined;
    }
    if (item.kind === "end") {
      throw this.ended(new StreamEnded(item.code, item.message));
    }
    const expected = item.kind === "heartbeat" ? this.seq : this.seq + 1; // a heartbeat carries the last seq
    if (item.seq !== expected) {
      throw this.ended(new StreamEnded("gap", `the ${this.stream} stream went from seq ${this.seq} to ${item.seq}: `
        + "a message is missing"));
    }
    this.seq = item.seq;
    switch (item.kind) {
      case "heartbeat":
        return undefined;
      case "snapshot":
        this.book = item.value;
        return this.book as T;
      case "changes":
        if (this.book === null) {
          throw this.ended(new DecodeError("book changes before the book's snapshot"));
        }
        this.book = applyChanges(this.book, item.value);
        return this.book as T;
      default:
        return item.value as T;
    }
  }

  /** Called by the connection's reader for each message; resolves once there is room for the next. */
  private async hold(message: WireMap | ZmqexError): Promise<void> {
    this.heardAt = performance.now();
    this.held.push(message);
    this.arrived?.();
    while (this.held.length >= MAX_HELD && !this.connection.isClosed) {
      await new Promise<void>((resolve) => {
        this.room = resolve;
      });
    }
  }

  /** Until a message arrives, the subscription closes, or `ms` pass. */
  private async arrival(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.arrived = resolve;
      timer = setTimeout(resolve, Math.max(0, Math.ceil(ms)));
    });
    clearTimeout(timer);
    this.arrived = undefined;
  }

  private ended(err: ZmqexError): ZmqexError {
    this.close();
    return err;
  }
}
