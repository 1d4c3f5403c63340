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
 * - Liquidation plan (docs/liquidation.md): the same search, unit by unit in liquidation order, net of the
 *   liquidation fee, with the dust rule, small shortfalls closed in full, hedged pairs reduced together and
 *   Aave's close factor. The rules that shape it without revaluing are in liquidation-rules.ts.
 */
import { assert } from "./assert.ts";
import {
  closeFactorOf,
  type ExposureRef,
  findLine,
  type HedgedPair,
  hedgedNow,
  hedgedPartOf,
  type LineKey,
  type LiquidationPlan,
  type LiquidationStep,
  liquidationUnits,
  lotOfScale,
  type Reduction,
  refOf,
  stepOf,
  withDust,
} from "./liquidation-rules.ts";
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

export type {
  CloseFactorDecision,
  ExposureRef,
  LiquidationPlan,
  LiquidationStep,
} from "./liquidation-rules.ts";

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

/** A liquidation of `quantity` at the mark: reduceExposure, less the fee on its notional (q × P × feeRate). */
export function liquidateExposure(
  account: Account,
  line: ExposureLine,
  quantity: Dec,
  feeRate: Dec,
): Account {
  const reduced = reduceExposure(account, line, quantity);
  return { ...reduced, cash: reduced.cash.minus(quantity.times(line.price).times(feeRate)) };
}

/**
 * The smallest whole number of lots in [0, totalLots] for which `restores` holds, or null if it does not
 * hold at totalLots. Binary search: restoring is monotone in the quantity reduced (each lot lowers the
 * requirement and releases its haircut; with a fee, the margin left over the target is concave in the
 * quantity, so the restoring quantities are an interval ending at totalLots). At most ~64 evaluations.
 */
function smallestRestoringLots(totalLots: Dec, restores: (lots: Dec) => boolean): Dec | null {
  if (!restores(totalLots)) return null;
  let low = ZERO; // does not restore (or is zero)
  let high = totalLots; // restores
  if (restores(low)) return ZERO;
  for (let iteration = 0; iteration < 128 && high.minus(low).greaterThan(ONE); iteration++) {
    const middle = quantize(low.plus(high).dividedBy(2), 0, Rounding.DOWN);
    if (restores(middle)) high = middle;
    else low = middle;
  }
  return high;
}

/** The smallest quantity (in lots of the exposure's scale) whose reduction restores the target, or null. */
function smallestRestoringQuantity(
  account: Account,
  line: ExposureLine,
  marks: Marks,
  policy: Policy,
): Dec | null {
  const lot = lotOfScale(quantityScaleOf(line, policy));
  const totalLots = quantize(line.quantity.abs().dividedBy(lot), 0, Rounding.DOWN);
  const lots = smallestRestoringLots(totalLots, (candidate) =>
    restoresTarget(valueAccount(reduceExposure(account, line, candidate.times(lot)), marks, policy), policy),
  );
  return lots === null ? null : lots.times(lot);
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

/** What the planner knows for the whole plan. */
interface Rules {
  readonly marks: Marks;
  readonly policy: Policy;
  readonly closeInFull: boolean;
  readonly maxNotional: Dec | null;
}

/** The plan so far: the account with its steps applied, its valuation, the notional closed. */
interface Working {
  account: Account;
  valuation: Valuation;
  notional: Dec;
  capped: boolean;
}

/**
 * The least quantity (whole lots, up to `most`) that, taken from every line of the unit, restores the target
 * net of the fee; all of `most` if none does. The policy keeps the fee at or below every line's first-tier
 * rate plus haircut, so no reduction moves the account away from its target and the search is exact.
 */
function restoringQuantity(
  lines: readonly ExposureLine[],
  lot: Dec,
  most: Dec,
  working: Working,
  rules: Rules,
): Dec {
  const { marks, policy } = rules;
  const restores = (quantity: Dec) => {
    const after = lines.reduce(
      (account, line) => liquidateExposure(account, line, quantity, policy.liquidationFeeRate),
      working.account,
    );
    return restoresTarget(valueAccount(after, marks, policy), policy);
  };
  const totalLots = quantize(most.dividedBy(lot), 0, Rounding.DOWN);
  const lots = smallestRestoringLots(totalLots, (candidate) => restores(candidate.times(lot)));
  return lots === null ? most : lots.times(lot);
}

/** The notional the close factor still allows this plan; null: no cap. */
function capLeft(working: Working, rules: Rules): Dec | null {
  return rules.maxNotional === null ? null : Dec.max(ZERO, rules.maxNotional.minus(working.notional));
}

/** The whole lots, each worth `notionalPerLot`, that fit in what the cap leaves. */
const lotsWithin = (left: Dec, notionalPerLot: Dec): Dec =>
  quantize(left.dividedBy(notionalPerLot), 0, Rounding.DOWN);

/** One exposure's unit: the least restoring quantity of what is not hedged, dust and close factor applied. */
function lineReductions(
  key: LineKey,
  pairs: readonly HedgedPair[],
  working: Working,
  rules: Rules,
): Reduction[] {
  const { policy } = rules;
  const line = findLine(working.valuation, key);
  if (!line) return [];
  const most = line.quantity.abs().minus(hedgedPartOf(key, pairs, working.valuation));
  if (!most.greaterThan(ZERO)) return [];
  const lot = lotOfScale(quantityScaleOf(line, policy));
  const found = rules.closeInFull ? most : restoringQuantity([line], lot, most, working, rules);
  let quantity = withDust(line, found, policy);
  const left = capLeft(working, rules);
  if (left !== null && quantity.times(line.price).greaterThan(left)) {
    quantity = lotsWithin(left, lot.times(line.price)).times(lot);
    working.capped = true;
  }
  return quantity.isZero() ? [] : [{ line, quantity }];
}

/** A hedged pair's unit: both legs by the same least restoring quantity (rule 2), dust and cap applied. */
function pairReductions(pair: HedgedPair, working: Working, rules: Rules): Reduction[] {
  const { policy } = rules;
  const position = findLine(working.valuation, pair.position);
  const holding = findLine(working.valuation, pair.holding);
  const hedged = hedgedNow(pair, working.valuation);
  if (!position || !holding || !hedged.greaterThan(ZERO)) return [];
  const legs = [position, holding];
  const lot = lotOfScale(Math.min(...legs.map((line) => quantityScaleOf(line, policy))));
  const found = rules.closeInFull ? hedged : restoringQuantity(legs, lot, hedged, working, rules);
  let reductions = legs.map((line) => ({ line, quantity: withDust(line, found, policy) }));
  const notional = reductions.reduce((total, step) => total.plus(step.quantity.times(step.line.price)), ZERO);
  const left = capLeft(working, rules);
  if (left !== null && notional.greaterThan(left)) {
    const quantity = Dec.min(
      found,
      lotsWithin(left, lot.times(position.price.plus(holding.price))).times(lot),
    );
    reductions = legs.map((line) => ({ line, quantity }));
    working.capped = true;
  }
  pair.left = Dec.max(ZERO, pair.left.minus(Dec.min(...reductions.map((step) => step.quantity))));
  return reductions.filter((step) => step.quantity.greaterThan(ZERO));
}

export interface PlanOptions {
  /** The instant the plan's auctions start (e = 0), when the caller knows it. */
  readonly startsAt?: string;
}

/** Works through the units in order until the target is restored; the steps and the account after them. */
function planSteps(account: Account, valuation: Valuation, rules: Rules, startsAt: string | undefined) {
  const { marks, policy } = rules;
  const { units, pairs } = liquidationUnits(valuation.lines, policy);
  const working: Working = { account, valuation, notional: ZERO, capped: false };
  const steps: LiquidationStep[] = [];
  for (const unit of units) {
    if (restoresTarget(working.valuation, policy)) break;
    const reductions =
      unit.kind === "LINE"
        ? lineReductions(unit.line, pairs, working, rules)
        : pairReductions(unit.pair, working, rules);
    for (const reduction of reductions) {
      const other = unit.kind === "PAIR" ? reductions.find((leg) => leg !== reduction)?.line : undefined;
      steps.push(stepOf(reduction, other, policy, startsAt));
      const { line, quantity } = reduction;
      working.account = liquidateExposure(working.account, line, quantity, policy.liquidationFeeRate);
      working.notional = working.notional.plus(quantity.times(line.price));
    }
    if (reductions.length) working.valuation = valueAccount(working.account, marks, policy);
  }
  return { steps, working };
}

/**
 * The least liquidation that restores the target (docs/liquidation.md): units in liquidation order, each
 * reduced by the least whole lots that restore the target net of the fee; a remainder below the dust
 * notional closed in full; a small shortfall closed in full; never more notional than the close factor
 * allows, unless it would allow not even one lot (then the plan is made without it). Limit prices at a
 * fixed slippage, or from the Dutch-auction schedule each step carries.
 */
export function planLiquidation(
  account: Account,
  valuation: Valuation,
  marks: Marks,
  policy: Policy,
  options: PlanOptions = {},
): LiquidationPlan {
  const shortfall = restoreTarget(valuation, policy).minus(valuation.adjustedEquity);
  const threshold = policy.closeAllBelowShortfall;
  const closeInFull = threshold !== null && shortfall.greaterThan(ZERO) && shortfall.lessThan(threshold);
  let closeFactor = closeFactorOf(valuation, policy, closeInFull);
  const rules = { marks, policy, closeInFull, maxNotional: closeFactor?.maxNotional ?? null };
  let { steps, working } = planSteps(account, valuation, rules, options.startsAt);
  if (steps.length === 0 && closeFactor && closeFactor.maxNotional !== null) {
    // The cap is below one lot of anything that needs selling: a close factor must slow a liquidation, not stop it.
    closeFactor = { ...closeFactor, factor: ONE, maxNotional: null };
    ({ steps, working } = planSteps(account, valuation, { ...rules, maxNotional: null }, options.startsAt));
  }
  const cap = closeFactor?.maxNotional ?? null;
  assert(
    steps.every((step) => step.quantity.greaterThan(ZERO)),
    "a plan step sells a positive quantity",
  );
  assert(cap === null || !working.notional.greaterThan(cap), "a plan never exceeds its close factor");
  const restores = restoresTarget(working.valuation, policy);
  return {
    steps,
    restoresTarget: restores,
    ...(policy.liquidationFeeRate.greaterThan(ZERO)
      ? { fee: steps.reduce((total, step) => total.plus(step.fee ?? ZERO), ZERO) }
      : {}),
    ...(closeFactor ? { closeFactor: { ...closeFactor, binding: working.capped && !restores } } : {}),
    ...(threshold !== null ? { closesInFull: closeInFull } : {}),
  };
}
