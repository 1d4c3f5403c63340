/**
 * Exact decimal arithmetic for money, quantities, prices and ratios.
 *
 * - `Dec` is a decimal.js clone of its own: 60 significant digits and ROUND_HALF_EVEN, never the library's
 *   global defaults (20 digits, which silently rounds products of two 20-digit amounts).
 * - decimal.js's isPositive() is true for zero: compare with greaterThan(ZERO) to mean "above zero".
 * - Values are created from canonical decimal strings only: money never passes through a JS number.
 * - Multiplication, addition and subtraction of inputs within 28 significant digits each are exact at
 *   this precision. Division (ratios, breach prices) is the only inexact step, and every division result
 *   is quantized with a rounding mode named at the call site.
 */
import { Decimal } from "decimal.js";

export const SIGNIFICANT_DIGITS = 60;

export const Dec = Decimal.clone({
  precision: SIGNIFICANT_DIGITS,
  rounding: Decimal.ROUND_HALF_EVEN,
  toExpNeg: -100,
  toExpPos: 100,
  minE: -9e15,
  maxE: 9e15,
  modulo: Decimal.ROUND_FLOOR,
  crypto: false,
});
export type Dec = Decimal;

/** Rounding modes by name: every quantization says which one it uses. */
export const Rounding = {
  /** Away from zero: amounts the borrower owes, quantities the borrower must sell. */
  UP: Decimal.ROUND_UP,
  /** Towards zero. */
  DOWN: Decimal.ROUND_DOWN,
  /** Towards +infinity. */
  CEIL: Decimal.ROUND_CEIL,
  /** Towards -infinity. */
  FLOOR: Decimal.ROUND_FLOOR,
  /** Banker's rounding: display of neutral values. */
  HALF_EVEN: Decimal.ROUND_HALF_EVEN,
} as const;
export type RoundingMode = (typeof Rounding)[keyof typeof Rounding];

const CANONICAL_DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;
export const MAX_DECIMAL_STRING_LENGTH = 40;

export class DecimalInputError extends Error {
  override readonly name = "DecimalInputError";
}

/** True when `text` is a canonical decimal string: no exponent, no plus sign, no leading zeros, not "-0". */
export function isCanonicalDecimal(text: string): boolean {
  return (
    text.length <= MAX_DECIMAL_STRING_LENGTH && CANONICAL_DECIMAL.test(text) && !/^-0(\.0+)?$/.test(text)
  );
}

/** Creates a decimal from a canonical decimal string. Anything else (a number, "1e3", "+1") is refused. */
export function dec(text: string): Dec {
  if (typeof text !== "string" || !isCanonicalDecimal(text)) {
    throw new DecimalInputError(`not a canonical decimal string: ${JSON.stringify(text)}`);
  }
  return new Dec(text);
}

export const ZERO: Dec = new Dec("0");
export const ONE: Dec = new Dec("1");

/** Rounds to `scale` decimal places with the given rounding mode. */
export function quantize(value: Dec, scale: number, rounding: RoundingMode): Dec {
  return value.toDecimalPlaces(scale, rounding);
}

/** The canonical string of a value already at its scale: fixed notation, exactly `scale` places, never "-0". */
export function toFixedString(value: Dec, scale: number, rounding: RoundingMode): string {
  const text = value.toFixed(scale, rounding);
  return /^-0(\.0+)?$/.test(text) ? text.slice(1) : text;
}

/** The shortest canonical string of a value (for ratios and values with no natural scale). */
export function toPlainString(value: Dec): string {
  const text = value.toFixed();
  return text === "-0" ? "0" : text;
}

/** An exact amount with at least `scale` places, and all of its own when it has more: never rounded. */
export function toExactString(value: Dec, scale: number): string {
  return value.decimalPlaces() <= scale
    ? toFixedString(value, scale, Rounding.HALF_EVEN)
    : toPlainString(value);
}

export function sum(values: Iterable<Dec>): Dec {
  let total = ZERO;
  for (const value of values) total = total.plus(value);
  return total;
}

export function max(a: Dec, b: Dec): Dec {
  return a.greaterThanOrEqualTo(b) ? a : b;
}

export function min(a: Dec, b: Dec): Dec {
  return a.lessThanOrEqualTo(b) ? a : b;
}
