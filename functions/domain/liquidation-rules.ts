/**
 * The rules that shape a liquidation plan without revaluing the account (docs/liquidation.md): the order
 * of the exposures and the hedged pairs (section 3), Aave v3.3's close factor (section 2), the dust rule,
 * the limit price, fixed or from a Dutch auction (section 4), and the plan's types, which calls.ts
 * re-exports. The planner itself, which revalues, is `planLiquidation` in calls.ts.
 */
import { type AuctionSchedule, auctionPrice, auctionSchedule } from "./auction.ts";
import { Dec, ONE, quantize, Rounding, ZERO } from "./money.ts";
import type { Policy } from "./policy.ts";
import type { ExposureLine, Valuation } from "./valuation.ts";

/** What to reduce: a holding (sell if owned, buy back if borrowed) or a position (close towards zero). */
export type ExposureRef =
  | { readonly kind: "HOLDING"; readonly asset: string }
  | { readonly kind: "POSITION"; readonly instrument: string };

export interface LiquidationStep {
  readonly target: ExposureRef;
  readonly side: "SELL" | "BUY";
  readonly quantity: Dec;
  readonly markPrice: Dec;
  /**
   * The worst price the execution system may accept, at the asset's price scale: mark × (1 ∓ slippage), or,
   * with an auction, the schedule's price at its start.
   */
  readonly limitPrice: Dec;
  /** The whole holding or position is closed. */
  readonly closesAll: boolean;
  /** quantity × markPrice × liquidation.feeRate, exact: present when the fee rate is above 0. */
  readonly fee?: Dec;
  /** The other leg of the hedged pair this step is reduced together with (liquidation.hedgedPairs). */
  readonly hedgedWith?: ExposureRef;
  /** The Dutch-auction schedule the limit price follows (liquidation.auction). */
  readonly auction?: AuctionSchedule;
}

/** Aave v3.3's close factor as decided for one plan (docs/liquidation.md, section 2). */
export interface CloseFactorDecision {
  /** (A − M + D) / D, FLOOR at 6 places; null without debt. Aave's health factor under its mapping. */
  readonly healthFactor: Dec | null;
  /** D: cash loan + borrowed holdings + position notionals, at the marks. */
  readonly debt: Dec;
  /** Positive cash + owned holdings + position notionals, at the marks. */
  readonly collateral: Dec;
  /** The share of the debt one request may close: the policy's factor, or 1 (no cap). */
  readonly factor: Dec;
  /** factor × D, the most notional the plan's steps may add up to; null: no cap. */
  readonly maxNotional: Dec | null;
  /** The cap held the plan back from the target. */
  readonly binding: boolean;
}

export interface LiquidationPlan {
  readonly steps: readonly LiquidationStep[];
  /** The plan restores the target at the marks; false when closing everything does not (expect a loss). */
  readonly restoresTarget: boolean;
  /** Σ step fees: present when the fee rate is above 0. */
  readonly fee?: Dec;
  /** Present when the policy sets liquidation.closeFactor. */
  readonly closeFactor?: CloseFactorDecision;
  /** The shortfall was below liquidation.closeAllBelowShortfall; present when the policy sets it. */
  readonly closesInFull?: boolean;
}

/** One lot at a quantity scale: 10^−scale. */
export const lotOfScale = (scale: number): Dec => ONE.dividedBy(new Dec(10).toPower(scale));

/**
 * Rules 1, 3, 4 and 5: derivatives first (Deribit), then borrowed holdings, then owned collateral, riskiest
 * haircut first; "liquidate last" assets last. Within a rank: higher haircut, larger |value|, then name.
 */
export function liquidationOrder(lines: readonly ExposureLine[], policy: Policy): ExposureLine[] {
  const rank = (line: ExposureLine): number => {
    if (line.kind === "POSITION") return 0;
    if (policy.assets.get(line.name)?.liquidateLast) return 3;
    return line.value.isNegative() ? 1 : 2;
  };
  return [...lines].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      b.haircut.comparedTo(a.haircut) ||
      b.value.abs().comparedTo(a.value.abs()) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/** An exposure by kind and name, looked up in the valuation as it stands at each unit. */
export interface LineKey {
  readonly kind: "HOLDING" | "POSITION";
  readonly name: string;
}

/** A position and a holding of its underlying with opposite signs; `left` is the part still hedged. */
export interface HedgedPair {
  readonly position: LineKey;
  readonly holding: LineKey;
  left: Dec;
}

export type Unit =
  | { readonly kind: "LINE"; readonly line: LineKey }
  | { readonly kind: "PAIR"; readonly pair: HedgedPair };

const keyOf = (line: ExposureLine): LineKey => ({ kind: line.kind, name: line.name });
const sameKey = (a: LineKey, b: LineKey): boolean => a.kind === b.kind && a.name === b.name;

export const findLine = (valuation: Valuation, key: LineKey): ExposureLine | undefined =>
  valuation.lines.find((line) => sameKey(line, key));

/**
 * The units the planner works through, in order. With liquidation.hedgedPairs (rule 2), each position with
 * a holding of its underlying of the opposite sign is followed by the pair: the position's own unit first
 * reduces only its unhedged excess, and a hedged part is only ever reduced together with its other leg. A
 * holding hedges positions in their order until it is used up.
 */
export function liquidationUnits(
  lines: readonly ExposureLine[],
  policy: Policy,
): { units: Unit[]; pairs: HedgedPair[] } {
  const units: Unit[] = [];
  const pairs: HedgedPair[] = [];
  const unpaired = new Map(
    lines.filter((line) => line.kind === "HOLDING").map((line) => [line.name, line.quantity.abs()]),
  );
  for (const line of liquidationOrder(lines, policy)) {
    units.push({ kind: "LINE", line: keyOf(line) });
    if (!policy.hedgedPairs || line.kind !== "POSITION") continue;
    const holding = lines.find(
      (other) =>
        other.kind === "HOLDING" &&
        other.name === line.asset &&
        other.quantity.isNegative() !== line.quantity.isNegative(),
    );
    const free = holding ? (unpaired.get(holding.name) ?? ZERO) : ZERO;
    if (!holding || free.isZero()) continue;
    const left = Dec.min(line.quantity.abs(), free);
    unpaired.set(holding.name, free.minus(left));
    const pair = { position: keyOf(line), holding: keyOf(holding), left };
    pairs.push(pair);
    units.push({ kind: "PAIR", pair });
  }
  return { units, pairs };
}

/** The part of a pair still hedged in the account as it stands. */
export function hedgedNow(pair: HedgedPair, valuation: Valuation): Dec {
  const position = findLine(valuation, pair.position);
  const holding = findLine(valuation, pair.holding);
  return position && holding ? Dec.min(pair.left, position.quantity.abs(), holding.quantity.abs()) : ZERO;
}

/** How much of an exposure is still hedged by its pairs: its own unit must leave that much. */
export function hedgedPartOf(key: LineKey, pairs: readonly HedgedPair[], valuation: Valuation): Dec {
  return pairs
    .filter((pair) => sameKey(pair.position, key) || sameKey(pair.holding, key))
    .reduce((total, pair) => total.plus(hedgedNow(pair, valuation)), ZERO);
}

/** Dust rule: a remainder worth less than liquidation.dustNotional is closed in full. */
export function withDust(line: ExposureLine, quantity: Dec, policy: Policy): Dec {
  const whole = line.quantity.abs();
  return whole.minus(quantity).times(line.price).lessThan(policy.dustNotional) ? whole : quantity;
}

/**
 * The close factor before planning (`binding` is the planner's). HF = (A − M + D) / D, compared as the
 * product A − M + D > healthFactorAbove × D. It applies when HF is above the threshold and both legs reach
 * minimumLegValue, and never to a shortfall closed in full. Null when the policy sets no close factor.
 */
export function closeFactorOf(
  valuation: Valuation,
  policy: Policy,
  closeInFull: boolean,
): Omit<CloseFactorDecision, "binding"> | null {
  const rule = policy.closeFactor;
  if (!rule) return null;
  let debt = Dec.max(ZERO, valuation.cash.negated());
  let collateral = Dec.max(ZERO, valuation.cash);
  for (const line of valuation.lines) {
    if (line.kind === "POSITION" || line.value.isNegative()) debt = debt.plus(line.value.abs());
    if (line.kind === "POSITION" || !line.value.isNegative()) collateral = collateral.plus(line.value.abs());
  }
  const surplus = valuation.adjustedEquity.minus(valuation.maintenance).plus(debt);
  const applies =
    !closeInFull &&
    debt.greaterThan(ZERO) &&
    surplus.greaterThan(rule.healthFactorAbove.times(debt)) &&
    debt.greaterThanOrEqualTo(rule.minimumLegValue) &&
    collateral.greaterThanOrEqualTo(rule.minimumLegValue);
  return {
    healthFactor: debt.greaterThan(ZERO) ? quantize(surplus.dividedBy(debt), 6, Rounding.FLOOR) : null,
    debt,
    collateral,
    factor: applies ? rule.factor : ONE,
    maxNotional: applies ? rule.factor.times(debt) : null,
  };
}

/**
 * A step's limit price at the asset's price scale (8 places if unknown): mark × (1 ∓ limitPriceSlippage),
 * FLOOR for a sale and CEIL for a buy; or, with liquidation.auction, the schedule's price at its start.
 */
export function limitPriceOf(
  line: ExposureLine,
  side: "SELL" | "BUY",
  policy: Policy,
  startsAt: string | undefined,
): { readonly limitPrice: Dec; readonly schedule: AuctionSchedule | null } {
  const priceScale = policy.assets.get(line.asset)?.priceScale ?? 8;
  if (policy.auction) {
    const schedule = auctionSchedule(policy.auction, side, line.price, priceScale, startsAt);
    return { limitPrice: auctionPrice(schedule, 0).limitPrice, schedule };
  }
  const limitPrice =
    side === "SELL"
      ? quantize(line.price.times(ONE.minus(policy.limitPriceSlippage)), priceScale, Rounding.FLOOR)
      : quantize(line.price.times(ONE.plus(policy.limitPriceSlippage)), priceScale, Rounding.CEIL);
  return { limitPrice, schedule: null };
}

export function refOf(line: ExposureLine): ExposureRef {
  return line.kind === "HOLDING"
    ? { kind: "HOLDING", asset: line.name }
    : { kind: "POSITION", instrument: line.name };
}

export interface Reduction {
  readonly line: ExposureLine;
  readonly quantity: Dec;
}

/** One step: side, limit price (fixed slippage, or the auction's start) and, when set, fee and pair. */
export function stepOf(
  reduction: Reduction,
  pairedWith: ExposureLine | undefined,
  policy: Policy,
  startsAt: string | undefined,
): LiquidationStep {
  const { line, quantity } = reduction;
  const side = line.quantity.isNegative() ? "BUY" : "SELL";
  const { limitPrice, schedule } = limitPriceOf(line, side, policy, startsAt);
  const fee = quantity.times(line.price).times(policy.liquidationFeeRate);
  return {
    target: refOf(line),
    side,
    quantity,
    markPrice: line.price,
    limitPrice,
    closesAll: quantity.equals(line.quantity.abs()),
    ...(fee.greaterThan(ZERO) ? { fee } : {}),
    ...(pairedWith ? { hedgedWith: refOf(pairedWith) } : {}),
    ...(schedule ? { auction: schedule } : {}),
  };
}
