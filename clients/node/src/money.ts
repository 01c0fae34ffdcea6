/**
 * Exact money: decimal strings <-> integer cents and satoshis, as BigInt.
 *
 * Amounts travel as decimal strings (docs/protocol.md, "Amounts") and stay strings in
 * this client; a JS number is a float, and a float near money is a bug, so a number is
 * refused wherever an amount is expected. A program that computes with amounts parses
 * them here to BigInt (cents for a price, satoshis for a quantity), computes exactly, and
 * formats the result back.
 */

import { InvalidAmount } from "./errors.js";

interface Unit {
  readonly what: string;
  readonly places: number;
  readonly scale: bigint;
  readonly max: bigint;
  readonly step: string;
}

/** A price: USD per BTC, tick 0.01 USD; at most 10,000,000.00. */
const PRICE: Unit = { what: "price", places: 2, scale: 100n, max: 10_000_000n * 100n, step: "cents (tick 0.01)" };
/** A quantity: BTC, lot 0.00000001 BTC (a satoshi); at most 21,000,000. */
const QTY: Unit = {
  what: "quantity", places: 8, scale: 100_000_000n, max: 21_000_000n * 100_000_000n, step: "satoshis (lot 0.00000001)",
};

/** Longer text cannot be a valid amount: refused before it is looked at. */
const MAX_TEXT = 40;
const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;

/** A quantity of nothing, as a node writes it (an order's `filled`, `open`, `pending`; a level gone). */
export const ZERO_QTY = "0.00000000";

/** A USD price per BTC (`"50000.5"`, `"50000.50"`) in integer cents; InvalidAmount if it is not exactly one. */
export function parsePrice(value: unknown): bigint {
  return parse(value, PRICE);
}

/** A BTC quantity (`"0.5"`, `"1.000"`) in integer satoshis; InvalidAmount if it is not exactly one. */
export function parseQty(value: unknown): bigint {
  return parse(value, QTY);
}

/** Integer cents as the node writes a price: `5000012n` -> `"50000.12"`. */
export function formatPrice(cents: bigint): string {
  return format(cents, PRICE);
}

/** Integer satoshis as the node writes a quantity: `50000000n` -> `"0.50000000"`. */
export function formatQty(sats: bigint): string {
  return format(sats, QTY);
}

/** A price argument as it goes on the wire: checked, in canonical form. */
export function priceArg(value: unknown): string {
  return formatPrice(parsePrice(value));
}

/** A quantity argument as it goes on the wire: checked, in canonical form. */
export function qtyArg(value: unknown): string {
  return formatQty(parseQty(value));
}

/** Whether `value` is a price exactly as a node writes one (positive, every decimal written). */
export function isCanonicalPrice(value: unknown): value is string {
  return isCanonical(value, PRICE);
}

/** Whether `value` is a positive quantity exactly as a node writes one. */
export function isCanonicalQty(value: unknown): value is string {
  return isCanonical(value, QTY);
}

function parse(value: unknown, unit: Unit): bigint {
  if (typeof value === "number") {
    throw new InvalidAmount(`${unit.what} must be a decimal string like "1.5", not the number ${value}: `
      + "a JS number is a float, and a float cannot hold money exactly");
  }
  if (typeof value !== "string") {
    throw new InvalidAmount(`${unit.what} must be a decimal string like "1.5", not ${describe(value)}`);
  }
  if (value.length > MAX_TEXT || !DECIMAL.test(value)) {
    throw new InvalidAmount(`${unit.what} ${JSON.stringify(value.slice(0, MAX_TEXT))} is not a plain decimal `
      + "like \"1.5\": digits, and at most one point with digits on both sides");
  }
  const [whole = "", fraction = ""] = value.split(".");
  if (/[^0]/.test(fraction.slice(unit.places))) {
    throw new InvalidAmount(`${unit.what} ${value} is not a whole number of ${unit.step}`);
  }
  const units = BigInt(whole) * unit.scale + BigInt(fraction.slice(0, unit.places).padEnd(unit.places, "0"));
  if (units <= 0n) {
    throw new InvalidAmount(`${unit.what} must be positive, got ${value}`);
  }
  if (units > unit.max) {
    throw new InvalidAmount(`${unit.what} ${value} is above the maximum ${format(unit.max, unit)}`);
  }
  return units;
}

function format(units: bigint, unit: Unit): string {
  const sign = units < 0n ? "-" : "";
  const magnitude = units < 0n ? -units : units;
  const fraction = (magnitude % unit.scale).toString().padStart(unit.places, "0");
  return `${sign}${magnitude / unit.scale}.${fraction}`;
}

function isCanonical(value: unknown, unit: Unit): value is string {
  if (typeof value !== "string") {
    return false;
  }
  try {
    return format(parse(value, unit), unit) === value;
  } catch (err) {
    if (err instanceof InvalidAmount) {
      return false;
    }
    throw err;
  }
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
}
