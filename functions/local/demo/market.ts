/**
 * The demo's market: a 30–40% crash over a compressed hour, with a flash drop, partial recoveries and a
 * stale-feed episode. Prices are decimals from start to end: the path is piecewise linear between knots.
 */
import { type Dec, dec, ONE, quantize, Rounding } from "../../domain/money.ts";

export const SOURCES = ["index:coinbase", "index:kraken", "index:bitstamp"] as const;
export const OPENING: Readonly<Record<string, string>> = { BTC: "60000.00", ETH: "3000.00", SOL: "150.000" };
const PRICE_SCALE: Readonly<Record<string, number>> = { BTC: 2, ETH: 2, SOL: 3 };
/** How much more than the market each asset moves: ETH and SOL fall harder. */
const BETA: Readonly<Record<string, string>> = { BTC: "1", ETH: "1.15", SOL: "1.4" };

/** The market level (1 = opening) at each knot: minute → level. */
const KNOTS: ReadonlyArray<readonly [number, string]> = [
  [0, "1"],
  [5, "0.97"],
  [22, "0.80"],
  [23, "0.78"],
  [23.5, "0.70"], // the flash drop
  [30, "0.78"], // a partial recovery
  [42, "0.66"], // the low: -34% (BTC), -39% (ETH), -48% (SOL)
  [52, "0.76"], // a second recovery
  [60, "0.74"],
];

export interface Episode {
  readonly asset: string;
  readonly fromMinute: number;
  readonly toMinute: number;
  /** Only these sources keep publishing during the episode. */
  readonly live: readonly string[];
}

/** ETH's feeds go quiet but one: fewer than the policy's two fresh sources halts escalation on ETH. */
export const STALE_EPISODES: readonly Episode[] = [
  { asset: "ETH", fromMinute: 14, toMinute: 19, live: ["index:coinbase"] },
];

function level(minute: Dec): Dec {
  for (let index = 1; index < KNOTS.length; index += 1) {
    const [t1, l1] = KNOTS[index] ?? [60, "0.8"];
    const [t0, l0] = KNOTS[index - 1] ?? [0, "1"];
    if (minute.lessThanOrEqualTo(t1)) {
      const share = minute.minus(String(t0)).dividedBy(String(t1 - t0));
      return dec(l0).plus(dec(l1).minus(dec(l0)).times(share));
    }
  }
  return dec(KNOTS[KNOTS.length - 1]?.[1] ?? "0.8");
}

/** The price a source publishes at a simulated second: the path, plus a deterministic ±3 bp per source. */
export function priceAt(asset: string, source: string, second: number): string {
  const minute = dec(String(second)).dividedBy(60);
  const drop = ONE.minus(level(minute)).times(dec(BETA[asset] ?? "1"));
  const noiseBp = ((second * 7919 + source.length * 104_729 + asset.charCodeAt(0) * 31) % 7) - 3;
  const price = dec(OPENING[asset] ?? "1")
    .times(ONE.minus(drop))
    .times(ONE.plus(dec(String(noiseBp)).dividedBy(10_000)));
  return quantize(price, PRICE_SCALE[asset] ?? 2, Rounding.HALF_EVEN).toFixed(PRICE_SCALE[asset] ?? 2);
}

/** Realized volatility the first source reports: calm, then a crash regime that raises BTC's rates. */
export function volatilityAt(second: number): string {
  return second < 5 * 60 ? "0.45" : second < 45 * 60 ? "0.95" : "0.70";
}

export function publishes(asset: string, source: string, second: number): boolean {
  return !STALE_EPISODES.some(
    (episode) =>
      episode.asset === asset &&
      second >= episode.fromMinute * 60 &&
      second < episode.toMinute * 60 &&
      !episode.live.includes(source),
  );
}
