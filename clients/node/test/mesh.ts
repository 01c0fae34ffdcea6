/**
 * Real `zmqex-node` processes on loopback, for the tests: started with port 0 (each picks
 * a free port and announces it in its log), waited for by polling with a deadline, and
 * always stopped (SIGTERM, then SIGKILL), by `stop()` in an after hook and, should the
 * test process die first, by an exit hook.
 *
 * The nodes run the repository's own code: `bin/zmqex-node` puts the repository first on
 * Python's path. The Python is $ZMQEX_PYTHON, else the repository's `.venv` (as CI and
 * the README's quick start create it).
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import type { TestContext } from "node:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, type ClientOptions } from "../src/index.js";

/** The repository's root: this file runs from clients/node/dist/test/. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

/** The operator key a keyed mesh's harness connects with (status polls). */
const HARNESS = "harness";
const READY = /node (\S+) ready: clients and peers at (tcp:\/\/\S+),/;

export function python(): string {
  const path = process.env["ZMQEX_PYTHON"] ?? join(REPO, ".venv", "bin", "python");
  if (!existsSync(path)) {
    throw new Error(`no Python at ${path}: create the repository's venv (python3 -m venv .venv && `
      + ".venv/bin/pip install -e '.[test]'), or set ZMQEX_PYTHON to a Python that has zmqex's dependencies");
  }
  return path;
}

/** Run a Python command of the repository (keygen, a protocol dump) to its end; its stdout. */
export function runPython(args: string[]): string {
  const done = spawnSync(python(), args, { cwd: REPO, encoding: "utf8", timeout: 60_000 });
  if (done.status !== 0) {
    throw new Error(`${args.join(" ")} failed (${done.status ?? done.signal}): ${done.stderr}`);
  }
  return done.stdout;
}

/** Poll `condition` until it holds; fail naming `what` after `timeoutMs`. */
export async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string,
                              intervalMs = 50): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await condition()) {
      return;
    }
    if (performance.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((wake) => setTimeout(wake, intervalMs));
  }
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) {
    child.kill("SIGKILL");
  }
});

export class NodeProcess {
  /** HOST:PORT, once ready. */
  address = "";
  private output = "";
  private readonly child: ChildProcess;

  constructor(readonly id: string, args: string[]) {
    this.child = spawn(python(), [join(REPO, "bin", "zmqex-node"), "--id", id, "--port", "0", ...args], {
      cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    running.add(this.child);
    this.child.on("exit", () => running.delete(this.child));
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-100_000);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
  }

  get log(): string {
    return this.output;
  }

  /** ID@HOST:PORT, what another node passes to --join. */
  get joinAddress(): string {
    return `${this.id}@${this.address}`;
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    await waitFor(() => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`node ${this.id} exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.log}`);
      }
      const ready = READY.exec(this.output);
      this.address = ready?.[2]?.replace("tcp://", "") ?? "";
      return this.address !== "";
    }, timeoutMs, `node ${this.id} to be ready; its log:\n${this.log}`);
  }

  async stop(timeoutMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      return;
    }
    const exited = new Promise((done) => this.child.once("exit", done));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

export interface MeshOptions {
  /** Run every node with keys: the traders to make keys for (the harness gets an operator key too). */
  traders?: string[];
}

/** Nodes on 127.0.0.1 joined into one mesh; with `traders`, a keyed one. */
export class Mesh {
  readonly nodes = new Map<string, NodeProcess>();
  readonly workdir = mkdtempSync(join(tmpdir(), "zmqex-node-client-"));
  readonly keysDir: string | undefined;

  private constructor(options: MeshOptions, ids: string[]) {
    if (options.traders !== undefined) {
      this.keysDir = join(this.workdir, "keys");
      runPython([join(REPO, "bin", "zmqex-keygen"), this.keysDir, "--nodes", ...ids,
        "--traders", ...options.traders, "--operators", HARNESS]);
    }
  }

  /** Start nodes `ids`, each joining the first, and wait until all see each other, ready. */
  static async start(ids: string[], options: MeshOptions = {}): Promise<Mesh> {
    const mesh = new Mesh(options, ids);
    try {
      for (const id of ids) {
        const first = mesh.nodes.values().next().value;
        const args = ["--ephemeral", ...(first === undefined ? [] : ["--join", first.joinAddress])];
        if (mesh.keysDir !== undefined) {
          args.push("--keys", join(mesh.keysDir, id));
        }
        const node = new NodeProcess(id, args);
        mesh.nodes.set(id, node);
        await node.waitReady();
      }
      await mesh.waitMeshed();
      return mesh;
    } catch (err) {
      await mesh.stop();
      throw err;
    }
  }

  node(id: string): NodeProcess {
    const node = this.nodes.get(id);
    if (node === undefined) {
      throw new Error(`no node ${id} in this mesh`);
    }
    return node;
  }

  /** A client of node `id`; on a keyed mesh it connects with the key of `as` (the harness's operator key by default). */
  client(id: string, options: ClientOptions & { as?: string } = {}): Client {
    const { as = HARNESS, ...rest } = options;
    const keyed = this.keysDir === undefined ? {} : this.keysOf(as, id);
    return new Client(this.node(id).address, { timeoutMs: 10_000, ...keyed, ...rest });
  }

  /**
   * A client of node `id` acting for trader `name`, for test `t`. After the test its orders
   * there are cancelled, it is closed, and the replicas have converged: the next test starts
   * from one settled book.
   */
  trader(t: TestContext, id: string, name: string): Client {
    const client = this.client(id, { trader: name });
    t.after(async () => {
      try {
        await client.cancelAll();
      } finally {
        client.close();
      }
      await this.waitConverged();
    });
    return client;
  }

  /** The key files `party` connects to node `id` with: its secret, and the node's public key. */
  keysOf(party: string, id: string): { secret: string; server: string } {
    if (this.keysDir === undefined) {
      throw new Error("this mesh has no keys");
    }
    return {
      secret: join(this.keysDir, party, `${party}.key_secret`),
      server: join(this.keysDir, party, "members", `${id}.key`),
    };
  }

  /** Until every node is ready and sees every other as up. */
  async waitMeshed(timeoutMs = 30_000): Promise<void> {
    const ids = [...this.nodes.keys()];
    await waitFor(async () => {
      for (const id of ids) {
        const status = await this.status(id);
        const up = Object.entries(status?.peers ?? {}).filter(([, peer]) => peer.up).map(([peer]) => peer);
        if (status === undefined || !status.ready || !ids.every((other) => other === id || up.includes(other))) {
          return false;
        }
      }
      return true;
    }, timeoutMs, "the mesh to form");
  }

  /** Until every node holds the same state (same hash), with nothing in flight. */
  async waitConverged(timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => {
      const hashes = new Set<string>();
      for (const id of this.nodes.keys()) {
        const status = await this.status(id);
        if (status === undefined || status.in_flight !== 0 || status.crossed) {
          return false;
        }
        hashes.add(status.hash);
      }
      return hashes.size === 1;
    }, timeoutMs, "the replicas to converge");
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => node.stop()));
    rmSync(this.workdir, { recursive: true, force: true });
  }

  private async status(id: string): Promise<Awaited<ReturnType<Client["status"]>> | undefined> {
    const client = this.client(id, { timeoutMs: 2000 });
    try {
      return await client.status();
    } catch {
      return undefined; // not answering yet
    } finally {
      client.close();
    }
  }
}
