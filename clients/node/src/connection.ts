/**
 * One DEALER connected to one node's ROUTER: requests out, replies matched to them by id.
 *
 * Many requests may be in flight at once (the node may answer them in any order); each
 * waits at most the connection's timeout, then fails with Timeout, and a reply that
 * comes later is dropped as stale. Stream messages go to the connection's stream
 * listener (a Subscription), which may make the reader wait until it has room: reading
 * then stops, libzmq's queues fill, and the node, not this process, bounds what piles up.
 *
 * zeromq.js allows one pending send and one pending receive per socket: sends are chained
 * one after the other, and one loop receives.
 */

import { decode, encode } from "@msgpack/msgpack";
import { Dealer } from "zeromq";

import { DecodeError, InvalidRequest, Timeout, type ZmqexError } from "./errors.js";
import type { CurveKeys } from "./keys.js";
import { MAX_REPLY, MAX_REQUEST, type Op } from "./protocol.js";
import { decodeReply, isDropped, isMap, isStream, type WireMap } from "./replies.js";
import { request, type Args } from "./requests.js";

/** What every connection of one client shares. */
export interface Settings {
  /** HOST:PORT, for messages. */
  address: string;
  /** tcp://HOST:PORT */
  endpoint: string;
  timeoutMs: number;
  trader: string | undefined;
  curve: CurveKeys | undefined;
}

/** Receives the stream messages of a connection (or an Error for a frame it could not read). */
export type StreamListener = (message: WireMap | ZmqexError) => Promise<void> | void;

interface Pending {
  op: Op;
  sent: boolean;
  resolve: (result: WireMap) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class Connection {
  /** How many replies or stream messages the node said it dropped because this connection read too slowly. */
  dropped = 0;
  private readonly socket: Dealer;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private sending: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly settings: Settings, private readonly onStream?: StreamListener) {
    const curve = settings.curve;
    this.socket = new Dealer({
      linger: 0,
      immediate: true, // queue nothing for a node that is not connected: a send then times out, unsent
      ipv6: settings.endpoint.startsWith("tcp://["),
      maxMessageSize: MAX_REPLY,
      ...(curve === undefined ? {} : {
        curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey, curveServerKey: curve.serverKey,
      }),
    });
    try {
      this.socket.connect(settings.endpoint);
    } catch (err) {
      this.socket.close();
      throw new InvalidRequest(`cannot connect to node ${settings.address}: ${(err as Error).message}`);
    }
    void this.read();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Send one request; its id, and the result of its reply (or the error it names). */
  async call(op: Op, args: Args): Promise<{ id: number; result: WireMap }> {
    if (this.closed) {
      throw new InvalidRequest(`the connection to node ${this.settings.address} is closed`);
    }
    const id = this.nextId++;
    const frame = encode(request(id, op, args, this.settings.trader), { ignoreUndefined: true });
    if (frame.length > MAX_REQUEST) {
      throw new InvalidRequest(`a ${op} request of ${frame.length} bytes is over the node's ${MAX_REQUEST}`);
    }
    const deadline = performance.now() + this.settings.timeoutMs;
    const result = new Promise<WireMap>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(id, this.timeout(op, this.pending.get(id)?.sent ?? true)),
        this.settings.timeoutMs);
      this.pending.set(id, { op, sent: false, resolve, reject, timer });
    });
    void this.send(frame, deadline).then((sent) => {
      const waiting = this.pending.get(id);
      if (waiting !== undefined) {
        waiting.sent = sent;
        if (!sent) {
          this.settle(id, this.timeout(op, false));
        }
      }
    });
    return { id, result: await result };
  }

  /** Close the socket (idempotent); requests still waiting fail. */
  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.socket.close();
    for (const id of [...this.pending.keys()]) {
      this.settle(id, new InvalidRequest(`the connection to node ${this.settings.address} was closed`));
    }
  }

  /** Queue a frame behind the sends before it; false if it could not be handed to libzmq by the deadline. */
  private send(frame: Uint8Array, deadline: number): Promise<boolean> {
    const attempt = this.sending.then(async () => {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0 || this.closed) {
        return false;
      }
      this.socket.sendTimeout = left;
      try {
        await this.socket.send(frame);
        return true;
      } catch {
        return false; // EAGAIN: not connected by the deadline; or the socket was closed meanwhile
      }
    });
    this.sending = attempt;
    return attempt;
  }

  private async read(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        await this.dispatch(frames);
      }
    } catch {
      if (!this.closed) { // a socket that fails while open: nothing more will come on it
        this.close();
      }
    }
  }

  private async dispatch(frames: Buffer[]): Promise<void> {
    const message = frames.length === 1 ? unpack(frames[0]!) : undefined;
    if (message === undefined) {
      const err = new DecodeError(`node ${this.settings.address} sent something that is not one msgpack map`);
      for (const id of [...this.pending.keys()]) {
        this.settle(id, err);
      }
      await this.onStream?.(err);
      return;
    }
    if (isStream(message)) {
      await this.onStream?.(message);
      return;
    }
    if (isDropped(message)) {
      const count = isMap(message["error"]) ? message["error"]["count"] : undefined;
      this.dropped += typeof count === "number" ? count : 1;
      return;
    }
    const id = message["id"];
    if (id === null && message["ok"] === false && this.pending.size === 1) {
      // a null id answers a request the node could not read: the one in flight
      this.settle([...this.pending.keys()][0]!, message);
    } else if (typeof id === "number" && this.pending.has(id)) {
      this.settle(id, message);
    } // else: a stale reply, to a request that timed out
  }

  /** End the wait of request `id` with its reply, or with an error. */
  private settle(id: number, outcome: WireMap | Error): void {
    const waiting = this.pending.get(id);
    if (waiting === undefined) {
      return;
    }
    this.pending.delete(id);
    clearTimeout(waiting.timer);
    if (outcome instanceof Error) {
      waiting.reject(outcome);
      return;
    }
    try {
      waiting.resolve(decodeReply(outcome));
    } catch (err) {
      waiting.reject(err as Error);
    }
  }

  private timeout(op: Op, sent: boolean): Timeout {
    let text = `node ${this.settings.address} did not answer ${op} within ${this.settings.timeoutMs} ms`;
    if (!sent) {
      text += " (no connection: the request was not sent)";
    } else if (op === "place") {
      text += "; the order may still have been placed";
    }
    return new Timeout(text);
  }
}

function unpack(frame: Buffer): WireMap | undefined {
  try {
    const message = decode(frame);
    return isMap(message) ? message : undefined;
  } catch {
    return undefined;
  }
}
