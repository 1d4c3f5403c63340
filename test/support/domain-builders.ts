/** Builders for domain tests: a policy document with overrides, accounts and marks from strings. */
import { dec } from "../../functions/domain/money.ts";
import { type Policy, type PolicyDocument, parsePolicy } from "../../functions/domain/policy.ts";
import type { ResolvedMark } from "../../functions/domain/prices.ts";
import type { Account } from "../../functions/domain/valuation.ts";

type Tier = { notionalFloor: string; maintenanceRate: string; initialRate: string };
export const flatTier = (maintenanceRate: string, initialRate = maintenanceRate): Tier[] => [
  { notionalFloor: "0", maintenanceRate, initialRate },
];

/** A neutral policy: no buffers, no minimum transfer, a day to cure. Tests override what they exercise. */
export function policyDocument(overrides: Partial<PolicyDocument> = {}): PolicyDocument {
  return {
    policyId: "test",
    version: 1,
    currency: "USD",
    currencyScale: 2,
    assets: {},
    instruments: {},
    warning: { cushion: "0.10" },
    call: {
      restoreBuffer: "0",
      exitBuffer: "0",
      minimumTransferAmount: "0",
      threshold: "0",
      curePeriodSeconds: 86_400,
      reminderOffsetsSeconds: [],
      hardFloorRatio: "0.5",
    },
    deposits: { minimumCureAmount: "0", maxPauseSeconds: 3_600 },
    liquidation: { limitPriceSlippage: "0.02", dustNotional: "0", retrySeconds: 300, maxAttempts: 3 },
    prices: { maxAgeSeconds: 60, maxDivergence: "0.05", minimumSources: 1, haltGraceSeconds: 0 },
    ...overrides,
  };
}

export function policy(overrides: Partial<PolicyDocument> = {}): Policy {
  return parsePolicy(policyDocument(overrides));
}

export interface AccountSpec {
  cash?: string;
  holdings?: Record<string, string>;
  positions?: Array<{ instrument: string; size: string; entryPrice: string }>;
  pending?: string[];
}

export function account(spec: AccountSpec, accountId = "acct-1"): Account {
  return {
    accountId,
    cash: dec(spec.cash ?? "0"),
    holdings: Object.entries(spec.holdings ?? {}).map(([asset, quantity]) => ({
      asset,
      quantity: dec(quantity),
    })),
    positions: (spec.positions ?? []).map((position) => ({
      instrument: position.instrument,
      size: dec(position.size),
      entryPrice: dec(position.entryPrice),
    })),
    pendingDeposits: (spec.pending ?? []).map((amount, index) => ({
      depositId: `d${index}`,
      amount: dec(amount),
    })),
  };
}

export const NOW = "2026-11-24T12:00:00.000Z";

export function marks(prices: Record<string, string>, asOf = NOW): Map<string, ResolvedMark> {
  return new Map(
    Object.entries(prices).map(([asset, price]) => [
      asset,
      { asset, price: dec(price), asOf, status: "OK", sourcesUsed: ["test"], detail: "test mark" },
    ]),
  );
}
