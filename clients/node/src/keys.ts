/**
 * CURVE keys from the files `zmqex-keygen` writes (zmqex/keys.py): pyzmq's certificate
 * format, every key Z85 text.
 *
 * A party's CurveZMQ pair is derived from its Ed25519 key (libsodium's conversion), and
 * the files already hold it: `NAME.key_secret` has `public-key` and `secret-key` under
 * `curve`, and the Ed25519 `sign-seed` they come from; a node's `ID.key` has its CURVE
 * `public-key`. So the client reads the CURVE keys as they are, and checks that they belong
 * together, because a wrong key fails the CURVE handshake silently (no reply, a Timeout):
 * the public key must be the X25519 key of the secret one, and the secret one must be the
 * conversion of the signing seed (SHA-512 of the seed, its first half clamped).
 */

import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";

import { KeyFileError } from "./errors.js";

/** The keys of a CURVE client connection, Z85 text (40 characters each), as zeromq.js takes them. */
export interface CurveKeys {
  /** This party's public key. */
  publicKey: string;
  /** This party's secret key. */
  secretKey: string;
  /** The node's public key. */
  serverKey: string;
}

/** The keys to connect with: a trader's (or operator's) `NAME.key_secret`, and the node's public `ID.key`. */
export function loadCurveKeys(secretPath: string, serverPath: string): CurveKeys {
  const secretFile = fields(secretPath);
  const publicKey = key(secretFile, "public-key", secretPath);
  const secretKey = key(secretFile, "secret-key", secretPath);
  if (!bytesEqual(x25519Public(z85Decode(secretKey)), z85Decode(publicKey))) {
    throw new KeyFileError(`key file ${secretPath}: its public-key is not the public half of its secret-key`);
  }
  if (secretFile.has("sign-seed")) {
    const seed = z85Decode(key(secretFile, "sign-seed", secretPath));
    if (!bytesEqual(curveSecretOfSeed(seed), z85Decode(secretKey))) {
      throw new KeyFileError(`key file ${secretPath}: its CURVE secret does not come from its signing seed`);
    }
  }
  return { publicKey, secretKey, serverKey: key(fields(serverPath), "public-key", serverPath) };
}

/** libsodium's crypto_sign_ed25519_sk_to_curve25519: SHA-512 of the Ed25519 seed, the first half clamped. */
export function curveSecretOfSeed(seed: Uint8Array): Uint8Array {
  const secret = new Uint8Array(createHash("sha512").update(seed).digest().subarray(0, 32));
  secret[0]! &= 248;
  secret[31]! &= 127;
  secret[31]! |= 64;
  return secret;
}

/** The X25519 public key of a raw 32-byte secret (node's crypto, through a PKCS#8 wrapping of the key). */
export function x25519Public(secret: Uint8Array): Uint8Array {
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), secret]);
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }))
    .export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

const Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/** ZeroMQ's Z85 (RFC 32) text to bytes; KeyFileError if it is not Z85. */
export function z85Decode(text: string): Uint8Array {
  if (text.length % 5 !== 0) {
    throw new KeyFileError(`Z85 text must be a multiple of 5 characters long, got ${text.length}`);
  }
  const out = new Uint8Array((text.length / 5) * 4);
  for (let chunk = 0; chunk < text.length / 5; chunk += 1) {
    let value = 0;
    for (const char of text.slice(chunk * 5, chunk * 5 + 5)) {
      const digit = Z85.indexOf(char);
      if (digit < 0) {
        throw new KeyFileError(`${JSON.stringify(char)} is not a Z85 character`);
      }
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) {
      throw new KeyFileError("Z85 text encodes a value above 32 bits");
    }
    new DataView(out.buffer).setUint32(chunk * 4, value); // big-endian, as RFC 32 says
  }
  return out;
}

/** The `name = "value"` lines of a certificate file (sections and comments ignored, as pyzmq reads it). */
function fields(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new KeyFileError(`cannot read key file ${path}: ${(err as Error).message}`);
  }
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf("=");
    const name = line.slice(0, eq).trim();
    if (eq >= 0 && !name.startsWith("#")) {
      out.set(name, line.slice(eq + 1).trim().replace(/^["' \t]+|["' \t]+$/g, ""));
    }
  }
  return out;
}

/** A 32-byte key, as its Z85 text. */
function key(file: Map<string, string>, name: string, path: string): string {
  const text = file.get(name);
  if (text === undefined) {
    throw new KeyFileError(`key file ${path} has no ${name}`);
  }
  let size = -1;
  try {
    size = z85Decode(text).length;
  } catch {
    // reported below, with the file's name
  }
  if (size !== 32) {
    throw new KeyFileError(`key file ${path}: ${name} is not a 32-byte Z85 key`);
  }
  return text;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
