/**
 * The market and the levered account the pipeline tests share: docs/snapshots/crypto-called.json's book,
 * written through a pipeline's tables at its clock.
 */
import type { Pipeline } from "./pipeline.ts";
import { holding, perpetual, price, profile } from "./upstream.ts";

/**
 * Three BTC sources and two ETH sources, all fresh at the pipeline's clock; BTC's realized volatility of
 * 72% raises its rates by 1.2×, as in docs/snapshots/crypto-called.json.
 */
export async function market(p: Pipeline, btc: string, eth = "2405.00"): Promise<void> {
  const asOf = p.now();
  for (const source of ["index:coinbase", "index:kraken", "index:bitstamp"]) {
    await p.put("Prices", price("BTC", source, btc, asOf, source === "index:coinbase" ? "0.72" : undefined));
  }
  for (const source of ["index:coinbase", "index:kraken"])
    await p.put("Prices", price("ETH", source, eth, asOf));
}

/**
 * The account of docs/snapshots/crypto-called.json: breach at BTC 51,880.59, warning below 52,220.41. With
 * `eth` given, that ETH holding replaces its 6 ETH, and its loan is smaller by what they lent (6 × 2,405
 * less the 15% haircut and the 8% maintenance rate: about 11,100 USD), so its BTC breach line stays near
 * 51,880.
 */
export async function leveredAccount(p: Pipeline, accountId: string, eth?: string): Promise<void> {
  await p.put("Accounts", profile(accountId));
  await p.put("Accounts", holding(accountId, "USD", eth ? "-46900.00" : "-58000.00"));
  await p.put("Accounts", holding(accountId, "BTC", "1.25000000"));
  await p.put("Accounts", holding(accountId, "ETH", eth ?? "6.00000000"));
  await p.put("Accounts", perpetual(accountId, "BTC-PERP", "0.500", "64250.50"));
}
