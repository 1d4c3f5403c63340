/** Upstream items as the data contract has them (docs/data-contract.md), for the pipeline tests. */
import type { Item } from "./pipeline.ts";

export const POLICY_ID = "crypto-lending";

export function profile(accountId: string, contact: { phoneE164?: string; email?: string } = {}): Item {
  return {
    accountId,
    sk: "PROFILE",
    updatedAt: "2026-11-24T09:00:00Z",
    seq: 1,
    currency: "USD",
    policyId: POLICY_ID,
    timeZone: "America/New_York",
    contact: { phoneE164: "+12125550142", email: "borrower@example.com", ...contact },
    borrowerName: "Jordan Rivera",
  };
}

export function holding(accountId: string, asset: string, quantity: string, seq = 1): Item {
  return { accountId, sk: `HOLDING#${asset}`, updatedAt: "2026-11-24T09:00:00Z", seq, asset, quantity };
}

export function perpetual(accountId: string, instrument: string, size: string, entryPrice: string): Item {
  return {
    accountId,
    sk: `POSITION#${instrument}`,
    updatedAt: "2026-11-24T09:00:00Z",
    seq: 1,
    instrument,
    underlying: instrument.split("-")[0],
    instrumentType: "PERPETUAL",
    size,
    entryPrice,
  };
}

export function deposit(
  accountId: string,
  depositId: string,
  amount: string,
  status: "PENDING" | "SETTLED" | "FAILED",
  at: string,
  seq = 1,
): Item {
  return {
    accountId,
    sk: `DEPOSIT#${depositId}`,
    updatedAt: at,
    seq,
    depositId,
    amount,
    currency: "USD",
    status,
    initiatedAt: at,
    ...(status === "SETTLED" ? { settledAt: at } : {}),
  };
}

export function executionReport(
  accountId: string,
  reportId: string,
  requestId: string,
  target: { kind: "HOLDING"; asset: string } | { kind: "POSITION"; instrument: string },
  filledQuantity: string,
  averagePrice: string,
  at: string,
): Item {
  return {
    accountId,
    sk: `EXEC#${reportId}`,
    updatedAt: at,
    seq: 1,
    reportId,
    requestId,
    target,
    side: "SELL",
    filledQuantity,
    averagePrice,
    fee: "0",
    final: true,
    executedAt: at,
  };
}

let priceSeq = 0;
export function price(asset: string, source: string, value: string, asOf: string, volatility?: string): Item {
  priceSeq += 1;
  return {
    asset,
    source,
    price: value,
    asOf,
    seq: priceSeq,
    ...(volatility ? { realizedVolatility: volatility } : {}),
  };
}
