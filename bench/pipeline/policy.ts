/**
 * The policy the pipeline benchmarks deploy (as the CDK context `policiesFile`): the demo's policy
 * (lib/config/demo-policies.json: BTC, ETH, SOL, BTC-PERP, ETH-PERP, under which the demo book is drawn)
 * with one price source per asset and two plain assets (5% maintenance, 10% haircut): LAT for the
 * single-account latency runs and BURST for the burst, and without the demo's circuit breaker: P3 compares
 * a tick's call with the floor of its one transaction, and a breaker adds a transaction of its own per
 * asset and batch on the tick path (docs/liquidation.md, section 8), which the latency tick (a 55% fall)
 * would also trip.
 *
 * An account of `units` units of a plain asset and a loan of 0.85 × units × B has margin ratio 1 at price B
 * (equity units·P·0.9 − loan over maintenance units·P·0.05): in breach below B, in the warning zone below
 * 0.85·B/0.845 ≈ 1.0059·B (cushion 0.10), at the hard floor (0.25) below 0.85·B/0.8875 ≈ 0.9577·B.
 */
import { readFileSync } from "node:fs";
import type { PolicyDocument } from "../../functions/domain/policy.ts";

export const PIPELINE_POLICY = "bench-pipeline";
export const LATENCY_ASSET = "LAT";
export const BURST_ASSET = "BURST";

const plainAsset = {
  quantityScale: 4,
  priceScale: 2,
  haircut: "0.10",
  longTiers: [{ notionalFloor: "0", maintenanceRate: "0.05", initialRate: "0.10" }],
};

export function benchPolicy(): PolicyDocument {
  const file = new URL("../../lib/config/demo-policies.json", import.meta.url);
  const [withBreaker] = JSON.parse(readFileSync(file, "utf8")) as PolicyDocument[];
  if (!withBreaker) throw new Error("no policy in lib/config/demo-policies.json");
  const { circuitBreaker: _breaker, ...demo } = withBreaker;
  return {
    ...demo,
    policyId: PIPELINE_POLICY,
    assets: { ...demo.assets, [LATENCY_ASSET]: plainAsset, [BURST_ASSET]: plainAsset },
    prices: { ...demo.prices, minimumSources: 1 },
  };
}

/** The items of an account holding `units` of one asset against the loan that puts its breach line at `breach`. */
export function loanAccount(accountId: string, asset: string, breach: number, units = 100) {
  const common = { accountId, updatedAt: "2026-11-24T09:00:00Z", seq: 1 };
  const loanCents = Math.round(0.85 * units * breach * 100);
  return {
    accountId,
    items: [
      {
        ...common,
        sk: "PROFILE",
        currency: "USD",
        policyId: PIPELINE_POLICY,
        timeZone: "America/New_York",
        contact: { phoneE164: "+12125550142", email: "borrower@example.com" },
        borrowerName: "Bench Borrower",
      },
      { ...common, sk: "HOLDING#USD", asset: "USD", quantity: (-loanCents / 100).toFixed(2) },
      { ...common, sk: `HOLDING#${asset}`, asset, quantity: String(units) },
    ],
  };
}
