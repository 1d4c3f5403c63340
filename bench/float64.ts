/**
 * The same formulas as valuation.ts and calls.ts in plain float64, with no error bound and no recheck: the
 * speed-of-light bound the benchmark compares the screen against, and the book generator's aim for cash.
 * The layout and the line term q·(P − e)·keep are the screen's. Benchmark only: these numbers are not exact
 * and never become money.
 */
import { type CompiledBook, MarginState, type ScreenTables } from "../functions/domain/screen.ts";

/** What the float call sizing needs from the policy, as doubles. */
export interface FloatCallPolicy {
  /** 1 + restoreBuffer. */
  readonly restoreFactor: number;
  readonly threshold: number;
  readonly minimumTransfer: number;
  /** 10^currencyScale. */
  readonly unitsPerCurrency: number;
}

/** Adjusted equity and maintenance of every account, in floats. */
export function floatValues(
  book: CompiledBook,
  tables: ScreenTables,
  adjustedOut: Float64Array,
  maintenanceOut: Float64Array,
): void {
  const { lineStart, lineTarget, quantity, entryPrice, cash } = book;
  const { targetPrice, targetKeep, targetTable, tableStart, tableEnd, tierRate, tierAmount, tierFloor } =
    tables;
  let end = lineStart[0] as number;
  for (let account = 0; account < book.size; account++) {
    const start = end;
    end = lineStart[account + 1] as number;
    let adjusted = cash[account] as number;
    let maintenance = 0;
    for (let line = start; line < end; line++) {
      const target = lineTarget[line] as number;
      const q = quantity[line] as number;
      const price = targetPrice[target] as number;
      adjusted += q * (price - (entryPrice[line] as number)) * (targetKeep[target] as number);
      const notional = Math.abs(q) * price;
      const table = targetTable[target] as number;
      let tier = tableStart[table] as number;
      const last = tableEnd[table] as number;
      while (tier + 1 < last && notional >= (tierFloor[tier + 1] as number)) tier++;
      maintenance += notional * (tierRate[tier] as number) - (tierAmount[tier] as number);
    }
    adjustedOut[account] = adjusted;
    maintenanceOut[account] = maintenance;
  }
}

/**
 * The decisions in floats: breach when adjusted < maintenance, warning when below (1 + cushion) times it,
 * and a call of the shortfall rounded up to the currency unit (zero below the minimum transfer amount).
 * Returns the number of accounts in breach.
 */
export function floatDecisions(
  book: CompiledBook,
  tables: ScreenTables,
  call: FloatCallPolicy,
  stateOut: Uint8Array,
  amountOut: Float64Array,
): number {
  const { lineStart, lineTarget, quantity, entryPrice, cash } = book;
  const { targetPrice, targetKeep, targetTable, tableStart, tableEnd, tierRate, tierAmount, tierFloor } =
    tables;
  const { warningFactor } = tables;
  const { restoreFactor, threshold, minimumTransfer, unitsPerCurrency } = call;
  let breaches = 0;
  let end = lineStart[0] as number;
  for (let account = 0; account < book.size; account++) {
    const start = end;
    end = lineStart[account + 1] as number;
    let adjusted = cash[account] as number;
    let maintenance = 0;
    for (let line = start; line < end; line++) {
      const target = lineTarget[line] as number;
      const q = quantity[line] as number;
      const price = targetPrice[target] as number;
      adjusted += q * (price - (entryPrice[line] as number)) * (targetKeep[target] as number);
      const notional = Math.abs(q) * price;
      const table = targetTable[target] as number;
      let tier = tableStart[table] as number;
      const last = tableEnd[table] as number;
      while (tier + 1 < last && notional >= (tierFloor[tier + 1] as number)) tier++;
      maintenance += notional * (tierRate[tier] as number) - (tierAmount[tier] as number);
    }
    if (adjusted < maintenance) {
      breaches++;
      stateOut[account] = MarginState.BREACH;
      const shortfall = maintenance * restoreFactor - threshold - adjusted;
      const amount = Math.ceil(shortfall * unitsPerCurrency) / unitsPerCurrency;
      amountOut[account] = amount < minimumTransfer ? 0 : amount;
    } else {
      stateOut[account] = adjusted < warningFactor * maintenance ? MarginState.WARNING : MarginState.HEALTHY;
      amountOut[account] = 0;
    }
  }
  return breaches;
}
