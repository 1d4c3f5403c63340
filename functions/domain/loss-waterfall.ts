/**
 * The loss waterfall: who pays a bankrupt account's shortfall (its negative equity after liquidation), in
 * this order, each step taking only what the steps before it left:
 *
 *   1. the insurance fund covers min(balance, shortfall)                          (a BANKRUPTCY_COVER flow)
 *   2. the policy's choice past the fund (`lossWaterfall.afterFund`):
 *      ADL         the opposite side's positions, ranked by BitMEX's rule (adl.ts), are closed against the
 *                  bankrupt position at its bankruptcy price;
 *      SOCIALISED  the rest is charged to the accounts of the base, pro rata, exactly;
 *      NONE        nothing (the engine's behaviour before issue 13);
 *   3. bad debt: whatever remains, recorded on the account and in the audit log.
 *
 * Exactly: fund cover + (ADL cover or socialised charges) + bad debt = shortfall, every term at the currency
 * scale and none negative.
 *
 * ADL in currency. Closing q of the bankrupt position at its bankruptcy price Pb instead of the mark Pm costs
 * the counterparties q × |Pb − Pm|: that is what ADL covers. ADL closes the fewest whole lots that cover what
 * the fund left, ⌈R / |Pb − Pm|⌉ at the instrument's quantity scale, and never more than the bankrupt
 * position; the rest of the position is the fund's, closed at the mark. The ADL cover is q × |Pb − Pm| rounded
 * down to the currency scale, and at most R: the last lot is whole, so the counterparties may give up less
 * than one lot × |Pb − Pm| more than R, which stays with the bankrupt account (BitMEX also closes whole
 * contracts). When the opposite side holds less than needed, the rest is bad debt.
 *
 * Socialised loss. The base (`lossWaterfall.socialisedBase`) is POSITIVE_EQUITY (default): every other account
 * in the currency with equity above 0, weighted by its equity, which works for spot margin loans that have no
 * opposite side; or OPPOSITE_NOTIONAL: the accounts on the other side of the bankrupt position's instrument
 * with equity above 0, weighted by |size| × mark, who gained what the bankrupt account lost. At most the base's total is charged
 * (rounded down to the currency scale); the rest is bad debt. Charges are exact at the currency scale by the
 * largest-remainder method (`allocateProRata`).
 */
import { z } from "zod";
import {
  type AdlCandidate,
  type DeleveragingInstruction,
  deleverage,
  oppositeSide,
  type PositionSide,
  rankAdl,
} from "./adl.ts";
import { assert } from "./assert.ts";
import { type FundFlow, type FundHead, planFlow } from "./insurance-fund.ts";
import { Dec, min, quantize, Rounding, sum, ZERO } from "./money.ts";

export const LOSS_AFTER_FUND = ["ADL", "SOCIALISED", "NONE"] as const;
export type LossAfterFund = (typeof LOSS_AFTER_FUND)[number];
export const SOCIALISED_BASES = ["POSITIVE_EQUITY", "OPPOSITE_NOTIONAL"] as const;
export type SocialisedBase = (typeof SOCIALISED_BASES)[number];

/**
 * The policy section `lossWaterfall`. Optional as a whole (wire it with `.prefault({})`): omitted, every field
 * takes its default, and a loss past the fund is bad debt as before.
 */
export const lossWaterfallSchema = z.strictObject({
  /** Who pays what the insurance fund does not cover. Default NONE: it is bad debt at once. */
  afterFund: z.enum(LOSS_AFTER_FUND).default("NONE"),
  /** What a SOCIALISED loss is charged pro rata to. Default POSITIVE_EQUITY. */
  socialisedBase: z.enum(SOCIALISED_BASES).default("POSITIVE_EQUITY"),
});
export type LossWaterfallPolicy = z.output<typeof lossWaterfallSchema>;

/** What of the bankrupt account the market could not close: ADL closes it, OPPOSITE_NOTIONAL is its side. */
export interface BankruptPosition {
  readonly instrument: string;
  readonly side: PositionSide;
  /** Above 0, at the instrument's quantity scale. */
  readonly quantity: Dec;
  readonly quantityScale: number;
  readonly markPrice: Dec;
  /** Where closing the position leaves the account's equity at 0: above the mark for a long, below for a short. */
  readonly bankruptcyPrice: Dec;
}

export interface Bankruptcy {
  readonly accountId: string;
  /** Negative equity after liquidation, as a positive amount at the currency scale (rounded up, as LossRecorded). */
  readonly shortfall: Dec;
  /** Null when nothing is left open (a spot loan): ADL then has nothing to close. */
  readonly position: BankruptPosition | null;
}

/** Another account that may share the loss: its equity, and its position on the bankrupt's instrument. */
export interface Counterparty {
  readonly accountId: string;
  readonly equity: Dec;
  readonly position: { readonly instrument: string; readonly size: Dec; readonly entryPrice: Dec } | null;
}

export interface WaterfallInput {
  readonly bankruptcy: Bankruptcy;
  /** The fund of the account's currency, as read (its BALANCE item). */
  readonly fund: FundHead;
  readonly policy: LossWaterfallPolicy;
  readonly counterparties: readonly Counterparty[];
  /** The fund flow's id (deterministic: `<lossReference>:fund`), its source reference and time. */
  readonly flowId: string;
  readonly sourceReference: string;
  readonly recordedAt: string;
}

export interface AdlOutcome {
  readonly instrument: string;
  /** The bankrupt position's side: the counterparties are on the other. */
  readonly side: PositionSide;
  readonly bankruptcyPrice: Dec;
  /** The quantity ADL was asked to close, and what the opposite side could close of it. */
  readonly quantityNeeded: Dec;
  readonly quantityClosed: Dec;
  readonly instructions: readonly DeleveragingInstruction[];
  /** What the counterparties cover, at the currency scale. */
  readonly cover: Dec;
}

export interface SocialisedCharge {
  readonly accountId: string;
  readonly amount: Dec;
}

export interface SocialisedOutcome {
  readonly base: SocialisedBase;
  /** The base's total weight (equity or notional), exact. */
  readonly baseTotal: Dec;
  /** Every account of the base, with its charge (0 for some when the amount has fewer units than accounts). */
  readonly charges: readonly SocialisedCharge[];
  readonly cover: Dec;
}

export interface WaterfallResult {
  readonly accountId: string;
  readonly currency: string;
  readonly shortfall: Dec;
  /** The BANKRUPTCY_COVER flow to write (conditional on the fund's seq); amount 0 when the fund is empty. */
  readonly fundFlow: FundFlow;
  readonly fundCover: Dec;
  readonly afterFund: LossAfterFund;
  readonly adl: AdlOutcome | null;
  readonly socialised: SocialisedOutcome | null;
  readonly badDebt: Dec;
}

export class WaterfallError extends Error {
  override readonly name = "WaterfallError";
}

/** Runs the waterfall for one bankrupt account. Throws WaterfallError on inconsistent input. */
export function runWaterfall(input: WaterfallInput): WaterfallResult {
  const { bankruptcy, fund, policy } = input;
  checkInput(input);
  const fundFlow = planFlow(fund, {
    flowId: input.flowId,
    currency: fund.currency,
    cause: "BANKRUPTCY_COVER",
    amount: bankruptcy.shortfall,
    accountId: bankruptcy.accountId,
    sourceReference: input.sourceReference,
    recordedAt: input.recordedAt,
  });
  const fundCover = ZERO.minus(fundFlow.amount);
  const remaining = bankruptcy.shortfall.minus(fundCover);
  const others = input.counterparties.filter((c) => c.accountId !== bankruptcy.accountId);
  const adl =
    policy.afterFund === "ADL" && remaining.greaterThan(ZERO) && bankruptcy.position
      ? runAdl(bankruptcy.position, remaining, fund.scale, others)
      : null;
  const socialised =
    policy.afterFund === "SOCIALISED" && remaining.greaterThan(ZERO)
      ? socialise(remaining, policy.socialisedBase, bankruptcy.position, fund.scale, others)
      : null;
  const covered = adl?.cover ?? socialised?.cover ?? ZERO;
  const badDebt = remaining.minus(covered);
  const result: WaterfallResult = {
    accountId: bankruptcy.accountId,
    currency: fund.currency,
    shortfall: bankruptcy.shortfall,
    fundFlow,
    fundCover,
    afterFund: policy.afterFund,
    adl,
    socialised,
    badDebt,
  };
  assertWaterfall(result, fund.scale);
  return result;
}

/** The waterfall's invariants, checked where it is made (and by the tests from the outside). */
export function assertWaterfall(result: WaterfallResult, scale: number): void {
  const parts = [
    result.fundCover,
    result.adl?.cover ?? ZERO,
    result.socialised?.cover ?? ZERO,
    result.badDebt,
  ];
  for (const part of parts) {
    assert(!part.isNegative(), "no part of the waterfall is negative");
    assert(part.decimalPlaces() <= scale, "every part of the waterfall is at the currency scale");
  }
  assert(sum(parts).equals(result.shortfall), "fund + ADL or socialised + bad debt = the shortfall, exactly");
  assert(!(result.adl && result.socialised), "ADL or socialised loss, never both");
  if (result.socialised) {
    assert(
      sum(result.socialised.charges.map((c) => c.amount)).equals(result.socialised.cover),
      "charges add up",
    );
  }
}

function runAdl(
  position: BankruptPosition,
  remaining: Dec,
  currencyScale: number,
  others: readonly Counterparty[],
): AdlOutcome {
  const gap = position.bankruptcyPrice.minus(position.markPrice).abs();
  let needed = quantize(remaining.dividedBy(gap), position.quantityScale, Rounding.UP);
  if (needed.times(gap).lessThan(remaining))
    needed = needed.plus(new Dec(10).toPower(-position.quantityScale));
  needed = min(needed, position.quantity);
  const ranking = rankAdl(
    adlCandidates(others, position.instrument),
    position.instrument,
    oppositeSide(position.side),
    position.markPrice,
  );
  const { instructions, closed } = deleverage(ranking, needed, position.bankruptcyPrice);
  const cover = min(remaining, quantize(closed.times(gap), currencyScale, Rounding.DOWN));
  return {
    instrument: position.instrument,
    side: position.side,
    bankruptcyPrice: position.bankruptcyPrice,
    quantityNeeded: needed,
    quantityClosed: closed,
    instructions,
    cover,
  };
}

function socialise(
  remaining: Dec,
  base: SocialisedBase,
  position: BankruptPosition | null,
  scale: number,
  others: readonly Counterparty[],
): SocialisedOutcome {
  const weights = socialisedWeights(base, position, others);
  const baseTotal = sum(weights.map((w) => w.weight));
  const amount = min(remaining, quantize(baseTotal, scale, Rounding.DOWN));
  const charges = amount.greaterThan(ZERO)
    ? allocateProRata(amount, weights, scale).map(({ key, amount: charged }) => ({
        accountId: key,
        amount: charged,
      }))
    : [];
  return { base, baseTotal, charges, cover: amount };
}

function socialisedWeights(
  base: SocialisedBase,
  position: BankruptPosition | null,
  others: readonly Counterparty[],
): Array<{ key: string; weight: Dec }> {
  if (base === "POSITIVE_EQUITY") {
    return others
      .filter((c) => c.equity.greaterThan(ZERO))
      .map((c) => ({ key: c.accountId, weight: c.equity }));
  }
  if (!position) return [];
  const opposite = oppositeSide(position.side);
  return others.flatMap((c) => {
    const held = c.position;
    if (!held || held.instrument !== position.instrument) return [];
    const onOpposite = opposite === "LONG" ? held.size.greaterThan(ZERO) : held.size.lessThan(ZERO);
    // An account with equity at or below 0 cannot pay a charge: charging it would count as covered what is not.
    return onOpposite && c.equity.greaterThan(ZERO)
      ? [{ key: c.accountId, weight: held.size.abs().times(position.markPrice) }]
      : [];
  });
}

function adlCandidates(others: readonly Counterparty[], instrument: string): AdlCandidate[] {
  return others.flatMap(({ accountId, equity, position }) =>
    position?.instrument === instrument ? [{ ...position, accountId, equity }] : [],
  );
}

/**
 * Splits `amount` (at `scale`) over weights (each at or above 0, total above 0), pro rata and exactly, by the
 * largest-remainder method in integer arithmetic: each key first gets ⌊amount × weight / total⌋ in units of
 * the scale, and the units left (fewer than the keys) go one each to the largest remainders, ties to the
 * larger weight, then to the key, ascending. The shares add up to the amount, each within one unit of its
 * exact pro-rata share, in the order the weights were given.
 */
export function allocateProRata(
  amount: Dec,
  weights: ReadonlyArray<{ readonly key: string; readonly weight: Dec }>,
  scale: number,
): Array<{ key: string; amount: Dec }> {
  assert(
    !amount.isNegative() && amount.decimalPlaces() <= scale,
    "the amount is at or above 0, at the scale",
  );
  assert(new Set(weights.map((w) => w.key)).size === weights.length, "each key is weighted once");
  assert(!weights.some((w) => w.weight.isNegative()), "no weight is negative");
  const weightPlaces = Math.max(0, ...weights.map((w) => w.weight.decimalPlaces()));
  const units = toInteger(amount, scale);
  const integerWeights = weights.map((w) => toInteger(w.weight, weightPlaces));
  const total = integerWeights.reduce((a, b) => a + b, 0n);
  assert(total > 0n || units === 0n, "a positive amount needs a positive total weight");
  if (total === 0n) return weights.map((w) => ({ key: w.key, amount: ZERO }));
  const shares = integerWeights.map((w) => (units * w) / total);
  const remainders = integerWeights.map((w) => (units * w) % total);
  let left = units - shares.reduce((a, b) => a + b, 0n);
  assert(left >= 0n && left < BigInt(weights.length), "fewer units are left than keys");
  const order = weights.map((_, index) => index);
  // Largest remainder first, then the larger weight, then the key, ascending.
  order.sort(
    (a, b) =>
      compareBig(remainders[b] ?? 0n, remainders[a] ?? 0n) ||
      compareBig(integerWeights[b] ?? 0n, integerWeights[a] ?? 0n) ||
      ((weights[a]?.key ?? "") < (weights[b]?.key ?? "") ? -1 : 1),
  );
  for (const index of order) {
    if (left === 0n) break;
    shares[index] = (shares[index] ?? 0n) + 1n;
    left -= 1n;
  }
  const allocated = weights.map((w, index) => ({
    key: w.key,
    amount: fromInteger(shares[index] ?? 0n, scale),
  }));
  assert(sum(allocated.map((a) => a.amount)).equals(amount), "the shares add up to the amount");
  return allocated;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toInteger(value: Dec, places: number): bigint {
  const scaled = value.times(new Dec(10).toPower(places));
  assert(scaled.isInteger(), `${value.toFixed()} has at most ${places} decimal places`);
  return BigInt(scaled.toFixed(0));
}

function fromInteger(units: bigint, scale: number): Dec {
  return new Dec(units.toString()).dividedBy(new Dec(10).toPower(scale));
}

function checkInput(input: WaterfallInput): void {
  const { bankruptcy, fund } = input;
  const problems: string[] = [];
  if (!bankruptcy.shortfall.greaterThan(ZERO)) problems.push("the shortfall must be above 0");
  if (bankruptcy.shortfall.decimalPlaces() > fund.scale)
    problems.push("the shortfall must be at the currency scale");
  const position = bankruptcy.position;
  if (position) {
    if (!position.quantity.greaterThan(ZERO))
      problems.push("the bankrupt position's quantity must be above 0");
    if (position.quantity.decimalPlaces() > position.quantityScale) {
      problems.push("the bankrupt position's quantity must be at its quantity scale");
    }
    if (!position.markPrice.greaterThan(ZERO)) problems.push("the mark price must be above 0");
    const beyond =
      position.side === "LONG"
        ? position.bankruptcyPrice.greaterThan(position.markPrice)
        : position.bankruptcyPrice.lessThan(position.markPrice) && position.bankruptcyPrice.greaterThan(ZERO);
    if (!beyond)
      problems.push("a bankrupt long's bankruptcy price is above the mark, a short's below it (and above 0)");
  }
  if (new Set(input.counterparties.map((c) => c.accountId)).size !== input.counterparties.length) {
    problems.push("each counterparty appears once");
  }
  if (problems.length > 0)
    throw new WaterfallError(`waterfall for ${bankruptcy.accountId}: ${problems.join("; ")}`);
}
