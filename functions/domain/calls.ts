/**
 * Call sizing, cure options and the liquidation plan.
 *
 * - Restore target (ISDA CSA Credit Support Amount, Blend's post-liquidation health):
 *     target = maintenance × (1 + restoreBuffer) − threshold
 * - Call amount = target − adjusted equity, rounded up to the currency scale; zero when the account is not
 *   in breach or when it is below the Minimum Transfer Amount.
 * - Cure options: deposit X, or sell (reduce) Y of one named holding or position. Y is the smallest number
 *   of lots that restores the target, found by binary search over the exact revaluation, so it is exact
 *   through tier changes and volatility multipliers.
 */
import { Dec, ONE, quantize, Rounding, ZERO } from "./money.ts";
import type { Policy } from "./policy.ts";
import {
  type Account,
  type ExposureLine,
  type Marks,
  ratioBelow,
  type Valuation,
  valueAccount,
} from "./valuation.ts";

export interface CallSizing {
  /** Requirement × (1 + restoreBuffer) − threshold. */
  readonly target: Dec;
  /** target − adjusted equity, exact (negative when above target). */
  readonly shortfall: Dec;
  /** What is called: the shortfall rounded up to the currency scale, or zero. */
  readonly amount: Dec;
  readonly inBreach: boolean;
  /** In breach, but the amount is below the Minimum Transfer Amount, so no call is made. */
  readonly belowMinimumTransfer: boolean;
}

export function restoreTarget(valuation: Valuation, policy: Policy): Dec {
  return valuation.maintenance.times(ONE.plus(policy.restoreBuffer)).minus(policy.threshold);
}

export function restoresTarget(valuation: Valuation, policy: Policy): boolean {
  return valuation.adjustedEquity.greaterThanOrEqualTo(restoreTarget(valuation, policy));
}

/**
 * The adjusted equity at which an open call is cured:
 *
 *   cure line = max(M × (1 + exitBuffer) − threshold, min(M, target))
 *
 * min(M, target) is the call line: a call is made only in breach (A < M) and with a shortfall (A < target).
 * The floor keeps the cure line from sitting below it when threshold > M × exitBuffer, so a cured account is
 * never called again at the same valuation. It never exceeds the target (exitBuffer ≤ restoreBuffer), so
 * paying the amount due at unchanged prices always cures the call, and an uncured call has a shortfall.
 */
export function cureLine(valuation: Valuation, policy: Policy): Dec {
  const target = restoreTarget(valuation, policy);
  const callLine = Dec.min(valuation.maintenance, target);
  const buffered = valuation.maintenance.times(ONE.plus(policy.exitBuffer)).minus(policy.threshold);
  return Dec.max(buffered, callLine);
}

export function sizeCall(valuation: Valuation, policy: Policy): CallSizing {
  const target = restoreTarget(valuation, policy);
  const shortfall = target.minus(valuation.adjustedEquity);
  const inBreach = ratioBelow(valuation, ONE);
  const rounded = shortfall.greaterThan(ZERO) ? quantize(shortfall, policy.currencyScale, Rounding.UP) : ZERO;
  const belowMinimumTransfer = inBreach && rounded.lessThan(policy.minimumTransferAmount);
  return {
    target,
    shortfall,
    amount: inBreach && !belowMinimumTransfer ? rounded : ZERO,
    inBreach,
    belowMinimumTransfer,
  };
}

/** What to reduce: a holding (sell if owned, buy back if borrowed) or a position (close towards zero). */
export type ExposureRef =
  | { readonly kind: "HOLDING"; readonly asset: string }
  | { readonly kind: "POSITION"; readonly instrument: string };

export type CureOption =
  | { readonly kind: "DEPOSIT"; readonly amount: Dec; readonly currency: string }
  | {
      readonly kind: "REDUCE";
      readonly target: ExposureRef;
      readonly side: "SELL" | "BUY";
      readonly quantity: Dec;
      /** Value of that quantity at the mark. */
      readonly notional: Dec;
    };

export interface LiquidationStep {
  readonly target: ExposureRef;
  readonly side: "SELL" | "BUY";
  readonly quantity: Dec;
  readonly markPrice: Dec;
  /** The worst price the execution system may accept: mark × (1 ∓ slippage), at the asset's price scale. */
  readonly limitPrice: Dec;
  /** The whole holding or position is closed. */
  readonly closesAll: boolean;
}

export interface LiquidationPlan {
  readonly steps: readonly LiquidationStep[];
  /** The plan restores the target at the marks; false when closing everything does not (expect a loss). */
  readonly restoresTarget: boolean;
}

function refOf(line: ExposureLine): ExposureRef {
  return line.kind === "HOLDING"
    ? { kind: "HOLDING", asset: line.name }
    : { kind: "POSITION", instrument: line.name };
}

function quantityScaleOf(line: ExposureLine, policy: Policy): number {
  return line.kind === "HOLDING"
    ? (policy.assets.get(line.name)?.quantityScale ?? 0)
    : (policy.instruments.get(line.name)?.quantityScale ?? 0);
}

/**
 * The account after reducing one exposure by `quantity` (towards zero) at the mark: a holding's proceeds
 * (or cost) move to cash; a position's realised PnL moves to cash. Equity is unchanged at the mark.
 */
export function reduceExposure(account: Account, line: ExposureLine, quantity: Dec): Account {
  const sign = line.quantity.isNegative() ? -1 : 1;
  const signed = sign < 0 ? quantity.negated() : quantity;
  if (line.kind === "HOLDING") {
    return {
      ...account,
      cash: account.cash.plus(signed.times(line.price)),
      holdings: account.holdings.map((holding) =>
        holding.asset === line.name ? { ...holding, quantity: holding.quantity.minus(signed) } : holding,
      ),
    };
  }
  const entryPrice =
    account.positions.find((position) => position.instrument === line.name)?.entryPrice ?? line.price;
  return {
    ...account,
    cash: account.cash.plus(signed.times(line.price.minus(entryPrice))),
    positions: account.positions.map((position) =>
      position.instrument === line.name ? { ...position, size: position.size.minus(signed) } : position,
    ),
  };
}

/**
 * The smallest quantity (in lots of the exposure's scale) whose reduction restores the target, or null if
 * reducing all of it does not. Binary search: restoring is monotone in the quantity reduced (each lot
 * lowers the requirement and releases its haircut). At most ~64 exact revaluations.
 */
function smallestRestoringQuantity(
  account: Account,
  line: ExposureLine,
  marks: Marks,
  policy: Policy,
): Dec | null {
  const scale = quantityScaleOf(line, policy);
  const lot = new Dec(1).dividedBy(new Dec(10).toPower(scale));
  const totalLots = quantize(line.quantity.abs().dividedBy(lot), 0, Rounding.DOWN);
  const restores = (lots: Dec): boolean =>
    restoresTarget(valueAccount(reduceExposure(account, line, lots.times(lot)), marks, policy), policy);
  if (!restores(totalLots)) return null;
  let low = ZERO; // does not restore (or is zero)
  let high = totalLots; // restores
  if (restores(low)) return ZERO;
  for (let iteration = 0; iteration < 128 && high.minus(low).greaterThan(ONE); iteration++) {
    const middle = quantize(low.plus(high).dividedBy(2), 0, Rounding.DOWN);
    if (restores(middle)) high = middle;
    else low = middle;
  }
  return high.times(lot);
}

export function cureOptions(
  account: Account,
  valuation: Valuation,
  marks: Marks,
  policy: Policy,
): CureOption[] {
  const sizing = sizeCall(valuation, policy);
  const deposit = sizing.shortfall.greaterThan(ZERO)
    ? quantize(sizing.shortfall, policy.currencyScale, Rounding.UP)
    : ZERO;
  const options: CureOption[] = [{ kind: "DEPOSIT", amount: deposit, currency: policy.currency }];
  if (!deposit.greaterThan(ZERO)) return options;
  for (const line of valuation.lines) {
    const quantity = smallestRestoringQuantity(account, line, marks, policy);
    if (quantity === null) continue;
    options.push({
      kind: "REDUCE",
      target: refOf(line),
      side: line.quantity.isNegative() ? "BUY" : "SELL",
      quantity,
      notional: quantity.times(line.price),
    });
  }
  return options;
}

/** Derivatives first (Deribit), then owned collateral by haircut, riskiest first; "liquidate last" assets last. */
function liquidationOrder(lines: readonly ExposureLine[], policy: Policy): ExposureLine[] {
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

/**
 * A partial liquidation that restores the target: reduce exposures in liquidation order, each by the least
 * that restores, closing a remainder below the dust notional in full (Aave, Drift: no dust).
 */
export function planLiquidation(
  account: Account,
  valuation: Valuation,
  marks: Marks,
  policy: Policy,
): LiquidationPlan {
  const steps: LiquidationStep[] = [];
  let working = account;
  let current = valuation;
  for (const original of liquidationOrder(valuation.lines, policy)) {
    if (restoresTarget(current, policy)) break;
    const line = current.lines.find(
      (candidate) => candidate.kind === original.kind && candidate.name === original.name,
    );
    if (!line) continue;
    const all = line.quantity.abs();
    let quantity = smallestRestoringQuantity(working, line, marks, policy) ?? all;
    const remainder = all.minus(quantity).times(line.price);
    if (remainder.lessThan(policy.dustNotional)) quantity = all;
    if (quantity.isZero()) continue;
    const side = line.quantity.isNegative() ? "BUY" : "SELL";
    const priceScale = policy.assets.get(line.asset)?.priceScale ?? 8;
    const limitPrice =
      side === "SELL"
        ? quantize(line.price.times(ONE.minus(policy.limitPriceSlippage)), priceScale, Rounding.FLOOR)
        : quantize(line.price.times(ONE.plus(policy.limitPriceSlippage)), priceScale, Rounding.CEIL);
    steps.push({
      target: refOf(line),
      side,
      quantity,
      markPrice: line.price,
      limitPrice,
      closesAll: quantity.equals(all),
    });
    working = reduceExposure(working, line, quantity);
    current = valueAccount(working, marks, policy);
  }
  return { steps, restoresTarget: restoresTarget(current, policy) };
}
