/**
 * Exact revaluation of one account. See docs/margin-model.md for the formulas and their sources.
 *
 *   equity            = cash + Σ q·P + Σ s·(P − entry)                       (net liquidation value)
 *   adjusted equity   = cash + Σ_long q·P·(1 − h) + Σ_short q·P + Σ s·(P − entry)
 *   maintenance       = Σ tiered(|q·P|) + Σ tiered(|s·P|),  tiered(N) = N·rate_n − amount_n (Binance)
 *   margin ratio      = adjusted equity / maintenance;  breach when ratio < 1
 *
 * Decisions compare products, never quotients: `ratio < k` is evaluated as `adjusted < k · maintenance`,
 * which is exact. The reported ratio is the only division, quantized with a named rounding mode.
 */
import { type Dec, dec, ONE, quantize, Rounding, ZERO } from "./money.ts";
import {
  type AssetPolicy,
  cumulativeMaintenanceAmounts,
  type Policy,
  type Tier,
  type Volatility,
} from "./policy.ts";

export interface Holding {
  readonly asset: string;
  /** Negative: borrowed (margin financing). */
  readonly quantity: Dec;
}

export interface Position {
  readonly instrument: string;
  /** Positive long, negative short. */
  readonly size: Dec;
  readonly entryPrice: Dec;
}

export interface PendingDeposit {
  readonly depositId: string;
  readonly amount: Dec;
}

/**
 * A deposit the cash ledger settled. Its money counts in equity through the cash holding, never from here;
 * this record is what meets a call by payment (`call.metBy`).
 */
export interface SettledDeposit {
  readonly depositId: string;
  readonly amount: Dec;
  /** ISO-8601 UTC. */
  readonly settledAt: string;
}

/** One account as the engine sees it: balances in the account currency, holdings, positions, deposits in flight. */
export interface Account {
  readonly accountId: string;
  /** Cash in the policy currency; negative is a cash loan. */
  readonly cash: Dec;
  readonly holdings: readonly Holding[];
  readonly positions: readonly Position[];
  readonly pendingDeposits: readonly PendingDeposit[];
  /** Settled deposits in the policy currency; omitted: none known. */
  readonly settledDeposits?: readonly SettledDeposit[] | undefined;
}

export interface Mark {
  readonly price: Dec;
  /** Annualised realised volatility, when the feed gives one; it raises rates per the policy. */
  readonly realizedVolatility?: Dec;
}

export type Marks = ReadonlyMap<string, Mark>;

export class ValuationError extends Error {
  override readonly name = "ValuationError";
}

/** A line of the valuation: one holding or one position. */
export interface ExposureLine {
  readonly kind: "HOLDING" | "POSITION";
  /** The asset of a holding, the instrument of a position. */
  readonly name: string;
  /** The asset whose mark prices it. */
  readonly asset: string;
  readonly quantity: Dec;
  readonly price: Dec;
  /** Signed q·P for a holding; signed s·P (notional) for a position. */
  readonly value: Dec;
  /** Contribution to equity: q·P, or the unrealised PnL s·(P − entry). */
  readonly equityContribution: Dec;
  /** Contribution to adjusted equity: after the haircut for an owned holding. */
  readonly adjustedContribution: Dec;
  readonly haircut: Dec;
  readonly tierIndex: number;
  readonly maintenanceRate: Dec;
  readonly maintenance: Dec;
  readonly initial: Dec;
  readonly volatilityMultiplier: Dec;
}

export interface Valuation {
  readonly accountId: string;
  /** Cash in the policy currency, the currency's holdings included. */
  readonly cash: Dec;
  readonly equity: Dec;
  readonly adjustedEquity: Dec;
  /** Σ owned values (positive cash included). */
  readonly collateralGross: Dec;
  /** The same after haircuts. */
  readonly collateralHaircut: Dec;
  readonly maintenance: Dec;
  readonly initial: Dec;
  /** Adjusted equity − maintenance: negative is the deficit. */
  readonly excess: Dec;
  /** Σ |holding values| + Σ |position notionals|, the gross exposure. */
  readonly grossExposure: Dec;
  readonly pendingDeposits: Dec;
  readonly lines: readonly ExposureLine[];
}

/** Exact: `adjusted equity < k · maintenance`. With no requirement, no ratio is ever below k. */
export function ratioBelow(valuation: Pick<Valuation, "adjustedEquity" | "maintenance">, k: Dec): boolean {
  if (valuation.maintenance.isZero()) return valuation.adjustedEquity.isNegative();
  return valuation.adjustedEquity.lessThan(valuation.maintenance.times(k));
}

/** The margin ratio for display, rounded down to 6 places; null when there is no requirement. */
export function marginRatio(valuation: Pick<Valuation, "adjustedEquity" | "maintenance">): Dec | null {
  if (valuation.maintenance.isZero()) return null;
  return quantize(valuation.adjustedEquity.dividedBy(valuation.maintenance), 6, Rounding.FLOOR);
}

/** Gross exposure ÷ equity, rounded up to 4 places; null when equity is not positive. */
export function notionalLeverage(valuation: Pick<Valuation, "grossExposure" | "equity">): Dec | null {
  if (!valuation.equity.greaterThan(ZERO)) return null;
  return quantize(valuation.grossExposure.dividedBy(valuation.equity), 4, Rounding.UP);
}

/**
 * Volatility adjustment: multiplier m = clamp(1 + slope · (σ − σ_ref) / σ_ref, 1, maxMultiplier).
 * Every tier's rate becomes min(1, m · rate) and the maintenance amounts are re-derived from the new rates
 * with Binance's rule, so the requirement stays continuous in notional.
 */
export function volatilityMultiplier(volatility: Volatility | undefined, sigma: Dec | undefined): Dec {
  if (!volatility || !sigma || sigma.lessThanOrEqualTo(volatility.referenceVolatility)) return ONE;
  const raw = ONE.plus(
    volatility.slope
      .times(sigma.minus(volatility.referenceVolatility))
      .dividedBy(volatility.referenceVolatility),
  );
  // Rounded up to 6 places: the multiplier only ever errs towards a larger requirement.
  const multiplier = quantize(raw, 6, Rounding.CEIL);
  return multiplier.greaterThan(volatility.maxMultiplier) ? volatility.maxMultiplier : multiplier;
}

const scaledTierCache = new WeakMap<readonly Tier[], Map<string, readonly Tier[]>>();

export function scaleTiers(tiers: readonly Tier[], multiplier: Dec): readonly Tier[] {
  if (multiplier.equals(ONE)) return tiers;
  let byMultiplier = scaledTierCache.get(tiers);
  if (!byMultiplier) {
    byMultiplier = new Map();
    scaledTierCache.set(tiers, byMultiplier);
  }
  const key = multiplier.toFixed();
  const cached = byMultiplier.get(key);
  if (cached) return cached;
  const capped = (rate: Dec): Dec => {
    const scaled = rate.times(multiplier);
    return scaled.greaterThan(ONE) ? ONE : scaled;
  };
  const maintenanceRates = tiers.map((tier) => capped(tier.maintenanceRate));
  const initialRates = tiers.map((tier) => capped(tier.initialRate));
  const asText = (rates: Dec[]) =>
    tiers.map((tier, index) => ({
      notionalFloor: tier.notionalFloor.toFixed(),
      maintenanceRate: (rates[index] ?? ONE).toFixed(),
    }));
  const maintenanceAmounts = cumulativeMaintenanceAmounts(asText(maintenanceRates));
  const initialAmounts = cumulativeMaintenanceAmounts(asText(initialRates));
  const scaled = tiers.map((tier, index) => ({
    notionalFloor: tier.notionalFloor,
    maintenanceRate: maintenanceRates[index] ?? ONE,
    initialRate: initialRates[index] ?? ONE,
    maintenanceAmount: maintenanceAmounts[index] ?? ZERO,
    initialAmount: initialAmounts[index] ?? ZERO,
  }));
  byMultiplier.set(key, scaled);
  return scaled;
}

/** The index of the tier a notional falls in: the last whose floor is at or below it. */
export function tierIndexFor(tiers: readonly Tier[], notional: Dec): number {
  let index = 0;
  for (let candidate = 1; candidate < tiers.length; candidate++) {
    const tier = tiers[candidate];
    if (tier && notional.greaterThanOrEqualTo(tier.notionalFloor)) index = candidate;
    else break;
  }
  return index;
}

/** Binance's tiered requirement: N · rate_n − amount_n, exact. */
export function tieredRequirement(
  tiers: readonly Tier[],
  notional: Dec,
): { maintenance: Dec; initial: Dec; tierIndex: number } {
  const tierIndex = tierIndexFor(tiers, notional);
  const tier = tiers[tierIndex];
  if (!tier) throw new ValuationError("a tier table is empty");
  return {
    maintenance: notional.times(tier.maintenanceRate).minus(tier.maintenanceAmount),
    initial: notional.times(tier.initialRate).minus(tier.initialAmount),
    tierIndex,
  };
}

function markOf(marks: Marks, asset: string, what: string): Mark {
  const mark = marks.get(asset);
  if (!mark) throw new ValuationError(`no mark price for ${asset} (needed by ${what})`);
  if (!mark.price.greaterThan(ZERO)) {
    throw new ValuationError(`the mark price of ${asset} must be positive`);
  }
  return mark;
}

function assetPolicyOf(policy: Policy, asset: string): AssetPolicy {
  const assetPolicy = policy.assets.get(asset);
  if (!assetPolicy)
    throw new ValuationError(`asset ${asset} is not in policy ${policy.policyId} v${policy.version}`);
  return assetPolicy;
}

/** Values one holding. Holdings of the policy currency are cash and are folded into `cash` by the caller. */
export function holdingLine(holding: Holding, marks: Marks, policy: Policy): ExposureLine {
  const assetPolicy = assetPolicyOf(policy, holding.asset);
  const mark = markOf(marks, holding.asset, `holding ${holding.asset}`);
  const isLong = !holding.quantity.isNegative();
  const baseTiers = isLong ? assetPolicy.longTiers : assetPolicy.shortTiers;
  if (!baseTiers) {
    throw new ValuationError(`asset ${holding.asset} may not be borrowed under policy ${policy.policyId}`);
  }
  const multiplier = volatilityMultiplier(assetPolicy.volatility, mark.realizedVolatility);
  const tiers = scaleTiers(baseTiers, multiplier);
  const haircut = isLong ? capAtOne(assetPolicy.haircut.times(multiplier)) : ZERO;
  const value = holding.quantity.times(mark.price);
  const requirement = tieredRequirement(tiers, value.abs());
  return {
    kind: "HOLDING",
    name: holding.asset,
    asset: holding.asset,
    quantity: holding.quantity,
    price: mark.price,
    value,
    equityContribution: value,
    adjustedContribution: isLong ? value.times(ONE.minus(haircut)) : value,
    haircut,
    tierIndex: requirement.tierIndex,
    maintenanceRate: tiers[requirement.tierIndex]?.maintenanceRate ?? ZERO,
    maintenance: requirement.maintenance,
    initial: requirement.initial,
    volatilityMultiplier: multiplier,
  };
}

/** Values one perpetual or futures position: unrealised PnL s·(P − entry), requirement on |s·P|. */
export function positionLine(position: Position, marks: Marks, policy: Policy): ExposureLine {
  const instrument = policy.instruments.get(position.instrument);
  if (!instrument) {
    throw new ValuationError(
      `instrument ${position.instrument} is not in policy ${policy.policyId} v${policy.version}`,
    );
  }
  const mark = markOf(marks, instrument.underlying, `position ${position.instrument}`);
  const multiplier = volatilityMultiplier(instrument.volatility, mark.realizedVolatility);
  const tiers = scaleTiers(instrument.tiers, multiplier);
  const notional = position.size.times(mark.price);
  const pnl = position.size.times(mark.price.minus(position.entryPrice));
  const requirement = tieredRequirement(tiers, notional.abs());
  return {
    kind: "POSITION",
    name: position.instrument,
    asset: instrument.underlying,
    quantity: position.size,
    price: mark.price,
    value: notional,
    equityContribution: pnl,
    adjustedContribution: pnl,
    haircut: ZERO,
    tierIndex: requirement.tierIndex,
    maintenanceRate: tiers[requirement.tierIndex]?.maintenanceRate ?? ZERO,
    maintenance: requirement.maintenance,
    initial: requirement.initial,
    volatilityMultiplier: multiplier,
  };
}

function capAtOne(value: Dec): Dec {
  return value.greaterThan(ONE) ? ONE : value;
}

/** Splits holdings of the policy currency out as cash. */
export function cashOf(account: Account, policy: Policy): { cash: Dec; holdings: Holding[] } {
  let cash = account.cash;
  const holdings: Holding[] = [];
  for (const holding of account.holdings) {
    if (holding.asset === policy.currency) cash = cash.plus(holding.quantity);
    else if (!holding.quantity.isZero()) holdings.push(holding);
  }
  return { cash, holdings };
}

/** Revalues one account exactly. Throws ValuationError when a mark or a policy entry is missing. */
export function valueAccount(account: Account, marks: Marks, policy: Policy): Valuation {
  const { cash, holdings } = cashOf(account, policy);
  const lines: ExposureLine[] = [];
  for (const holding of holdings) lines.push(holdingLine(holding, marks, policy));
  for (const position of account.positions) {
    if (!position.size.isZero()) lines.push(positionLine(position, marks, policy));
  }
  let equity = cash;
  let adjustedEquity = cash;
  let collateralGross = cash.greaterThan(ZERO) ? cash : ZERO;
  let collateralHaircut = collateralGross;
  let maintenance = ZERO;
  let initial = ZERO;
  let grossExposure = ZERO;
  for (const line of lines) {
    equity = equity.plus(line.equityContribution);
    adjustedEquity = adjustedEquity.plus(line.adjustedContribution);
    maintenance = maintenance.plus(line.maintenance);
    initial = initial.plus(line.initial);
    grossExposure = grossExposure.plus(line.value.abs());
    if (line.kind === "HOLDING" && line.value.greaterThan(ZERO)) {
      collateralGross = collateralGross.plus(line.value);
      collateralHaircut = collateralHaircut.plus(line.adjustedContribution);
    }
  }
  let pendingDeposits = ZERO;
  for (const deposit of account.pendingDeposits) pendingDeposits = pendingDeposits.plus(deposit.amount);
  return {
    accountId: account.accountId,
    cash,
    equity,
    adjustedEquity,
    collateralGross,
    collateralHaircut,
    maintenance,
    initial,
    excess: adjustedEquity.minus(maintenance),
    grossExposure,
    pendingDeposits,
    lines,
  };
}

/** Convenience for tests and the CLI: a decimal or undefined from an optional string. */
export function optionalDec(text: string | undefined): Dec | undefined {
  return text === undefined ? undefined : dec(text);
}
