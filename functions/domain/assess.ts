/** Everything the state machine needs to know about one account at one moment, computed exactly. */
import { cureOptions, planLiquidation, sizeCall } from "./calls.ts";
import type { CapWait } from "./cascade-ledger.ts";
import type { Assessment } from "./machine.ts";
import { ONE, ZERO } from "./money.ts";
import type { Policy } from "./policy.ts";
import type { ResolvedMark } from "./prices.ts";
import { type Account, ratioBelow, valueAccount } from "./valuation.ts";

/**
 * `liquidationPauses`: the assets whose circuit breaker is tripped, with when each pause began, as the
 * engine read them (only when a step would request a liquidation); omitted or empty: none.
 */
export function assess(
  account: Account,
  marks: ReadonlyMap<string, ResolvedMark>,
  policy: Policy,
  liquidationPauses?: ReadonlyMap<string, string>,
  /** The cascade caps' verdict on a first request due now (cascade-ledger.ts); omitted: admitted or not read. */
  capWait?: CapWait,
): Assessment {
  const valuation = valueAccount(account, marks, policy);
  const used = [...new Set(valuation.lines.map((line) => line.asset))].flatMap((asset) => {
    const mark = marks.get(asset);
    return mark ? [mark] : [];
  });
  const unhealthy = used.filter((mark) => mark.status !== "OK").sort((a, b) => (a.asset < b.asset ? -1 : 1));
  const priceStatus = unhealthy.some((mark) => mark.status === "DIVERGING")
    ? "DIVERGING"
    : unhealthy.length
      ? "STALE"
      : "OK";
  const sizing = sizeCall(valuation, policy);
  const inWarningZone = ratioBelow(valuation, ONE.plus(policy.warningCushion));
  return {
    valuation,
    priceStatus,
    priceDetail:
      unhealthy.map((mark) => `${mark.asset}: ${mark.detail}`).join("; ") || "all marks fresh and agreeing",
    sizing,
    cureOptions: inWarningZone ? cureOptions(account, valuation, marks, policy) : [],
    // Below the restore target, not only in breach: a call still open at its deadline has a shortfall even
    // when the account is back above the breach line, and its liquidation sells only what remains.
    liquidationPlan: sizing.shortfall.greaterThan(ZERO)
      ? planLiquidation(account, valuation, marks, policy)
      : null,
    settledDeposits: account.settledDeposits ?? [],
    ...(liquidationPauses?.size ? { liquidationPauses } : {}),
    ...(capWait ? { capWait } : {}),
  };
}
