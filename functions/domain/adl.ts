/**
 * Auto-deleveraging (ADL), BitMEX's rule: when the insurance fund cannot cover a bankrupt position, the
 * opposite side's most profitable, most leveraged positions are closed against it at the bankruptcy price.
 * Source: BitMEX, "Auto-Deleveraging" (bitmex.com/app/autoDeleveraging and .../autoDeleveragingExamples).
 *
 *   mark value          = size × mark           (signed: a short's is negative)
 *   entry value         = size × entry price
 *   PnL%                = (mark value − entry value) / |entry value|
 *   effective leverage  = |mark value| / equity
 *   score               = PnL% × effective leverage   when PnL% ≥ 0
 *                       = PnL% ÷ effective leverage   when PnL% < 0
 *
 * BitMEX writes the leverage as |mark value| / (mark value − bankrupt value): the denominator is the margin
 * between the position and its bankruptcy, which for our cross-margined accounts is the account's equity at
 * the mark. So a score needs only the account's own position, equity and the mark: each account's score,
 * and so its place, can be computed on its own (`adlScore`), for a "what is my ADL rank" query.
 *
 * Longs and shorts are ranked separately, highest score first; ties go to the account id, ascending. Scores
 * are compared exactly, as fractions (cross-multiplied), never through a rounded quotient. The indicator is
 * BitMEX's: the percentile is the share of the side's quantity ranked at or above the account, its quintile
 * is ⌈5 × percentile⌉ (1 = the top 20%), and the lights are 6 − quintile (5 lights: first in line).
 */
import { assert } from "./assert.ts";
import { type Dec, quantize, Rounding, ZERO } from "./money.ts";

export type PositionSide = "LONG" | "SHORT";

/** The number of decimal places of a reported score and percentile (display only: ranking is exact). */
export const ADL_DISPLAY_SCALE = 12;

export interface AdlCandidate {
  readonly accountId: string;
  readonly instrument: string;
  /** Positive long, negative short, at the instrument's quantity scale. */
  readonly size: Dec;
  readonly entryPrice: Dec;
  /** The account's equity at the mark (net liquidation value), in the currency. */
  readonly equity: Dec;
}

/** A score as an exact fraction: numerator / denominator, denominator above 0. */
export interface AdlScore {
  readonly numerator: Dec;
  readonly denominator: Dec;
}

export interface AdlStanding {
  readonly accountId: string;
  readonly instrument: string;
  readonly side: PositionSide;
  /** |size|: what ADL can take from this account. */
  readonly quantity: Dec;
  /** The score, rounded half-even to ADL_DISPLAY_SCALE places (the ranking used the exact fraction). */
  readonly score: Dec;
  /** 1 is deleveraged first. */
  readonly rank: number;
  /** Share of the side's quantity ranked at or above this account, in (0, 1], rounded up. */
  readonly percentile: Dec;
  /** ⌈5 × percentile⌉: 1 is the top 20%. */
  readonly quintile: 1 | 2 | 3 | 4 | 5;
  /** BitMEX's indicator: 6 − quintile; 5 lights is first in line. */
  readonly lights: 1 | 2 | 3 | 4 | 5;
}

/** One deleveraging: the counterparty closes `quantity` of its position at the bankruptcy price. */
export interface DeleveragingInstruction {
  readonly accountId: string;
  readonly instrument: string;
  /** The counterparty's trade: SELL reduces a long, BUY reduces a short. */
  readonly side: "BUY" | "SELL";
  readonly quantity: Dec;
  /** The bankruptcy price of the bankrupt position. */
  readonly price: Dec;
  /** The instruction closes the counterparty's whole position. */
  readonly closesAll: boolean;
  /** The counterparty's rank when the instruction was made. */
  readonly rank: number;
}

export function sideOf(size: Dec): PositionSide | null {
  if (size.greaterThan(ZERO)) return "LONG";
  if (size.lessThan(ZERO)) return "SHORT";
  return null;
}

export function oppositeSide(side: PositionSide): PositionSide {
  return side === "LONG" ? "SHORT" : "LONG";
}

/**
 * The exact score of one account's position at the mark, from its own data alone. Null when it cannot be
 * ranked: no position, an entry or mark value of 0, or equity at or below 0 (the account is bankrupt itself).
 */
export function adlScore(candidate: AdlCandidate, markPrice: Dec): AdlScore | null {
  const markValue = candidate.size.times(markPrice);
  const entryValue = candidate.size.times(candidate.entryPrice);
  if (markValue.isZero() || entryValue.isZero() || !candidate.equity.greaterThan(ZERO)) return null;
  const pnl = markValue.minus(entryValue);
  // PnL% × leverage = pnl/|entry| × |mark|/equity; PnL% ÷ leverage = pnl/|entry| × equity/|mark|.
  return pnl.isNegative()
    ? { numerator: pnl.times(candidate.equity), denominator: entryValue.abs().times(markValue.abs()) }
    : { numerator: pnl.times(markValue.abs()), denominator: entryValue.abs().times(candidate.equity) };
}

/** −1, 0 or 1 as a is below, equal to or above b: exact, by cross-multiplication (denominators above 0). */
export function compareScores(a: AdlScore, b: AdlScore): -1 | 0 | 1 {
  const left = a.numerator.times(b.denominator);
  const right = b.numerator.times(a.denominator);
  return left.lessThan(right) ? -1 : left.greaterThan(right) ? 1 : 0;
}

export function scoreValue(score: AdlScore): Dec {
  return quantize(score.numerator.dividedBy(score.denominator), ADL_DISPLAY_SCALE, Rounding.HALF_EVEN);
}

/**
 * One side's ranking on one instrument, first in line first. Candidates on another instrument, on the
 * other side, or not rankable are left out. Throws InvariantError if an account appears twice.
 */
export function rankAdl(
  candidates: readonly AdlCandidate[],
  instrument: string,
  side: PositionSide,
  markPrice: Dec,
): AdlStanding[] {
  assert(markPrice.greaterThan(ZERO), "the mark price is above 0");
  const seen = new Set<string>();
  const scored: Array<{ candidate: AdlCandidate; score: AdlScore }> = [];
  for (const candidate of candidates) {
    if (candidate.instrument !== instrument || sideOf(candidate.size) !== side) continue;
    assert(!seen.has(candidate.accountId), `account ${candidate.accountId} has one ${instrument} position`);
    seen.add(candidate.accountId);
    const score = adlScore(candidate, markPrice);
    if (score) scored.push({ candidate, score });
  }
  scored.sort(
    (a, b) => compareScores(b.score, a.score) || compareIds(a.candidate.accountId, b.candidate.accountId),
  );
  const total = scored.reduce((sum, entry) => sum.plus(entry.candidate.size.abs()), ZERO);
  let cumulative = ZERO;
  return scored.map(({ candidate, score }, index) => {
    cumulative = cumulative.plus(candidate.size.abs());
    const quintile = quintileOf(cumulative, total);
    return {
      accountId: candidate.accountId,
      instrument,
      side,
      quantity: candidate.size.abs(),
      score: scoreValue(score),
      rank: index + 1,
      percentile: quantize(cumulative.dividedBy(total), ADL_DISPLAY_SCALE, Rounding.UP),
      quintile,
      lights: (6 - quintile) as AdlStanding["lights"],
    };
  });
}

/** One account's standing on its side of an instrument ("what is my ADL rank"), or null if it has none. */
export function adlStanding(
  accountId: string,
  candidates: readonly AdlCandidate[],
  instrument: string,
  markPrice: Dec,
): AdlStanding | null {
  const own = candidates.find((c) => c.accountId === accountId && c.instrument === instrument);
  const side = own ? sideOf(own.size) : null;
  if (!side) return null;
  return rankAdl(candidates, instrument, side, markPrice).find((s) => s.accountId === accountId) ?? null;
}

/**
 * Deleveraging instructions that close `quantity` against a ranking, from the top: each account gives what
 * it holds until the quantity is met. Returns the instructions and the quantity they close (less than asked
 * only when the side holds less).
 */
export function deleverage(
  ranking: readonly AdlStanding[],
  quantity: Dec,
  bankruptcyPrice: Dec,
): { readonly instructions: DeleveragingInstruction[]; readonly closed: Dec } {
  assert(!quantity.isNegative(), "the quantity to deleverage is not negative");
  assert(bankruptcyPrice.greaterThan(ZERO), "the bankruptcy price is above 0");
  const instructions: DeleveragingInstruction[] = [];
  let remaining = quantity;
  for (const standing of ranking) {
    if (!remaining.greaterThan(ZERO)) break;
    const taken = standing.quantity.lessThan(remaining) ? standing.quantity : remaining;
    instructions.push({
      accountId: standing.accountId,
      instrument: standing.instrument,
      side: standing.side === "LONG" ? "SELL" : "BUY",
      quantity: taken,
      price: bankruptcyPrice,
      closesAll: taken.equals(standing.quantity),
      rank: standing.rank,
    });
    remaining = remaining.minus(taken);
  }
  const closed = quantity.minus(remaining);
  assert(closed.lessThanOrEqualTo(quantity), "deleveraging never closes more than asked");
  return { instructions, closed };
}

/** The smallest k in 1..5 with cumulative/total ≤ k/5: exact, by products. */
function quintileOf(cumulative: Dec, total: Dec): AdlStanding["quintile"] {
  for (const k of [1, 2, 3, 4] as const) {
    if (cumulative.times(5).lessThanOrEqualTo(total.times(k))) return k;
  }
  return 5;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
