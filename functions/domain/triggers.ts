/**
 * Breach and warning prices: for each asset an account is exposed to, the prices of that asset, all else
 * held fixed, at which the margin ratio reaches 1 (breach) or 1 + cushion (warning).
 *
 * With everything else fixed, f(P) = adjusted equity(P) − k · maintenance(P) is piecewise linear in P; its
 * pieces change where a notional |q|·P crosses a tier floor. On each piece the tiers are fixed and the root
 * is −c0 / c1, Binance's liquidation-price formula generalised to many lines (and recomputed per tier, as
 * Binance prescribes when the price lands in another tier). Roots are quantized outward to the asset's
 * price scale: the down price is rounded down and the up price up, so at the reported price the ratio is
 * at or past the line, and one tick before it the ratio is not.
 */
import { type Dec, ONE, quantize, Rounding, ZERO } from "./money.ts";
import type { Policy, Tier } from "./policy.ts";
import {
  type Account,
  type ExposureLine,
  type Marks,
  scaleTiers,
  tierIndexFor,
  type Valuation,
  valueAccount,
} from "./valuation.ts";

export interface TriggerPrices {
  readonly asset: string;
  readonly markPrice: Dec;
  /** The highest price at or below the mark at which the ratio reaches 1; null if a fall never breaches. */
  readonly breachDown: Dec | null;
  /** The lowest price at or above the mark at which the ratio reaches 1; null if a rise never breaches. */
  readonly breachUp: Dec | null;
  /** The same for the warning line, ratio = 1 + cushion. */
  readonly warningDown: Dec | null;
  readonly warningUp: Dec | null;
  /** The same for each extra ratio asked for, in the order asked. */
  readonly levels: ReadonlyArray<{ readonly ratio: Dec; readonly down: Dec | null; readonly up: Dec | null }>;
}

interface DependentLine {
  /** Adjusted-equity slope in P and constant. */
  readonly adjustedSlope: Dec;
  readonly adjustedConstant: Dec;
  /** |quantity|: the notional is |quantity| · P. */
  readonly size: Dec;
  readonly tiers: readonly Tier[];
}

function dependentLine(line: ExposureLine, tiers: readonly Tier[]): DependentLine {
  const size = line.quantity.abs();
  if (line.kind === "POSITION") {
    // s · (P − entry): slope s, constant −s · entry = pnl − s · P at the current mark.
    return {
      adjustedSlope: line.quantity,
      adjustedConstant: line.adjustedContribution.minus(line.value),
      size,
      tiers,
    };
  }
  const keep = line.value.isNegative() ? ONE : ONE.minus(line.haircut);
  return { adjustedSlope: line.quantity.times(keep), adjustedConstant: ZERO, size, tiers };
}

/** The roots of f(P) = Σ adjusted − k · Σ maintenance + constant, over P > 0. */
function roots(lines: readonly DependentLine[], constant: Dec, k: Dec): Dec[] {
  const breakpoints: Dec[] = [];
  for (const line of lines) {
    if (line.size.isZero()) continue;
    for (const tier of line.tiers.slice(1)) breakpoints.push(tier.notionalFloor.dividedBy(line.size));
  }
  breakpoints.sort((a, b) => a.comparedTo(b));
  const edges = [ZERO, ...breakpoints];
  const found: Dec[] = [];
  for (let index = 0; index < edges.length; index++) {
    const low = edges[index] ?? ZERO;
    const high = edges[index + 1];
    const sample = high ? low.plus(high).dividedBy(2) : low.times(2).plus(ONE);
    let c0 = constant;
    let c1 = ZERO;
    for (const line of lines) {
      const tier = line.tiers[tierIndexFor(line.tiers, line.size.times(sample))];
      if (!tier) continue;
      c0 = c0.plus(line.adjustedConstant).plus(k.times(tier.maintenanceAmount));
      c1 = c1.plus(line.adjustedSlope).minus(k.times(line.size).times(tier.maintenanceRate));
    }
    if (c1.isZero()) continue;
    const root = c0.negated().dividedBy(c1);
    if (root.greaterThan(ZERO) && root.greaterThanOrEqualTo(low) && (!high || root.lessThanOrEqualTo(high))) {
      if (!found.some((existing) => existing.equals(root))) found.push(root);
    }
  }
  return found;
}

/**
 * Breach and warning prices of every non-cash asset the account is exposed to, and the prices at which
 * the ratio reaches each of `extraRatios` (the trigger index adds the hard floor and the cure line).
 */
export function triggerPrices(
  account: Account,
  marks: Marks,
  policy: Policy,
  extraRatios: readonly Dec[] = [],
): TriggerPrices[] {
  return triggerPricesOf(valueAccount(account, marks, policy), policy, extraRatios);
}

/** The tiers a line's requirement is read from, scaled by its volatility multiplier. */
function tiersOf(line: ExposureLine, policy: Policy): readonly Tier[] {
  if (line.kind === "POSITION") {
    return scaleTiers(policy.instruments.get(line.name)?.tiers ?? [], line.volatilityMultiplier);
  }
  const assetPolicy = policy.assets.get(line.name);
  const base = line.value.isNegative() ? assetPolicy?.shortTiers : assetPolicy?.longTiers;
  return scaleTiers(base ?? [], line.volatilityMultiplier);
}

/** The same, from a valuation already made: the step's one valuation serves the index too. */
export function triggerPricesOf(
  valuation: Valuation,
  policy: Policy,
  extraRatios: readonly Dec[] = [],
): TriggerPrices[] {
  const cash = valuation.cash;
  const lines = valuation.lines.map((line) => ({ line, tiers: tiersOf(line, policy) }));
  const assets = [...new Set(lines.map(({ line }) => line.asset))].filter(
    (asset) => asset !== policy.currency,
  );
  const warningK = ONE.plus(policy.warningCushion);

  return assets.map((asset) => {
    const dependent = lines.filter(({ line }) => line.asset === asset);
    const others = lines.filter(({ line }) => line.asset !== asset);
    const priceScale = policy.assets.get(asset)?.priceScale ?? 8;
    const markPrice = dependent[0]?.line.price ?? ZERO;
    const dependentLines = dependent.map(({ line, tiers }) => dependentLine(line, tiers));
    const prices = (k: Dec) => {
      let constant = cash;
      for (const { line } of others)
        constant = constant.plus(line.adjustedContribution).minus(k.times(line.maintenance));
      const found = roots(dependentLines, constant, k);
      const below = found.filter((root) => root.lessThanOrEqualTo(markPrice));
      const above = found.filter((root) => root.greaterThanOrEqualTo(markPrice));
      const down = below.length
        ? quantize(
            below.reduce((a, b) => (a.greaterThan(b) ? a : b)),
            priceScale,
            Rounding.FLOOR,
          )
        : null;
      const up = above.length
        ? quantize(
            above.reduce((a, b) => (a.lessThan(b) ? a : b)),
            priceScale,
            Rounding.CEIL,
          )
        : null;
      return { down: down?.greaterThan(ZERO) ? down : null, up };
    };
    const breach = prices(ONE);
    const warning = prices(warningK);
    return {
      asset,
      markPrice,
      breachDown: breach.down,
      breachUp: breach.up,
      warningDown: warning.down,
      warningUp: warning.up,
      levels: extraRatios.map((ratio) => ({ ratio, ...prices(ratio) })),
    };
  });
}
