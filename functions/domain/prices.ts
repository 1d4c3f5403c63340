/**
 * From the marks each source published to one mark per asset, and a verdict on whether it can be trusted.
 *
 * - Only the sources the asset's policy accepts count (`assets.X.sources`; all when omitted).
 * - A mark stamped more than `prices.maxFutureSkewSeconds` ahead of the clock is refused: it is never
 *   fresh and never the newest, whatever its time (a feed with a wrong clock must not pin a price forever).
 * - A source older than `prices.maxAgeSeconds` is stale and is not used (Drift: ~60 s).
 * - The mark is the median of the fresh sources; sources further than `prices.maxDivergence` from that
 *   median are dropped and the median is taken again (Binance drops index sources more than 5% away).
 * - Fewer than `prices.minimumSources` usable sources: the asset is STALE (not enough fresh ones) or
 *   DIVERGING (enough fresh ones, but they disagree). Escalation halts on either (Aave's sentinel).
 */
import { type Dec, quantize, Rounding } from "./money.ts";
import type { Policy } from "./policy.ts";
import type { Mark } from "./valuation.ts";

export interface SourceMark {
  readonly source: string;
  readonly price: Dec;
  /** ISO-8601 UTC. */
  readonly asOf: string;
  readonly realizedVolatility?: Dec;
}

export type PriceStatus = "OK" | "STALE" | "DIVERGING";

export interface ResolvedMark extends Mark {
  readonly asset: string;
  readonly status: PriceStatus;
  /** The newest `asOf` among the sources used. */
  readonly asOf: string;
  readonly sourcesUsed: readonly string[];
  readonly detail: string;
}

function median(values: readonly Dec[]): Dec {
  const sorted = [...values].sort((a, b) => a.comparedTo(b));
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle];
  if (!upper) throw new Error("median of nothing");
  const lower = sorted[middle - 1];
  // Halving a finite decimal is exact.
  return sorted.length % 2 === 1 || !lower ? upper : lower.plus(upper).dividedBy(2);
}

/** Why a source's mark is not used at `nowMs`, or null when it may be. */
export function refusedSource(
  asset: string,
  source: Pick<SourceMark, "source" | "asOf">,
  policy: Policy,
  nowMs: number,
): string | null {
  const accepted = policy.assets.get(asset)?.sources;
  if (accepted && !accepted.has(source.source)) return `source ${source.source} is not accepted for ${asset}`;
  const aheadMs = Date.parse(source.asOf) - nowMs;
  if (aheadMs > policy.priceMaxFutureSkewSeconds * 1000) {
    return `stamped ${Math.ceil(aheadMs / 1000)} s in the future (tolerance ${policy.priceMaxFutureSkewSeconds} s)`;
  }
  return null;
}

export function resolveMark(
  asset: string,
  allSources: readonly SourceMark[],
  policy: Policy,
  nowMs: number,
): ResolvedMark | null {
  const accepted = policy.assets.get(asset)?.sources;
  const known = accepted ? allSources.filter((source) => accepted.has(source.source)) : allSources;
  const sources = known.filter((source) => refusedSource(asset, source, policy, nowMs) === null);
  const firstKnown = known[0];
  if (!firstKnown) return null;
  if (sources.length === 0) {
    // Every accepted source is stamped in the future: its price values the account, but never as fresh.
    return {
      asset,
      price: firstKnown.price,
      asOf: firstKnown.asOf,
      status: "STALE",
      sourcesUsed: [],
      detail: `all ${known.length} sources stamped more than ${policy.priceMaxFutureSkewSeconds} s in the future`,
    };
  }
  const priceScale = policy.assets.get(asset)?.priceScale ?? 8;
  const fresh = sources.filter(
    (source) => nowMs - Date.parse(source.asOf) <= policy.priceMaxAgeSeconds * 1000,
  );
  const newest = [...sources].sort((a, b) => Date.parse(b.asOf) - Date.parse(a.asOf))[0] ?? sources[0];
  if (!newest) return null;
  if (fresh.length < policy.priceMinimumSources) {
    return {
      asset,
      price: newest.price,
      asOf: newest.asOf,
      status: "STALE",
      sourcesUsed: [],
      detail: `${fresh.length} of ${sources.length} sources fresher than ${policy.priceMaxAgeSeconds} s; ${policy.priceMinimumSources} needed`,
    };
  }
  const firstMedian = median(fresh.map((source) => source.price));
  const agreeing = fresh.filter((source) =>
    source.price.minus(firstMedian).abs().lessThanOrEqualTo(firstMedian.times(policy.priceMaxDivergence)),
  );
  const usable = agreeing.length >= policy.priceMinimumSources ? agreeing : [];
  const price = quantize(
    median((usable.length ? usable : fresh).map((source) => source.price)),
    priceScale,
    Rounding.HALF_EVEN,
  );
  const volatilities = (usable.length ? usable : fresh).flatMap((source) =>
    source.realizedVolatility ? [source.realizedVolatility] : [],
  );
  // The highest realised volatility any usable source reports: rates only ever err upwards.
  const realizedVolatility = volatilities.sort((a, b) => b.comparedTo(a))[0];
  const asOf =
    [...(usable.length ? usable : fresh)].sort((a, b) => Date.parse(b.asOf) - Date.parse(a.asOf))[0]?.asOf ??
    newest.asOf;
  return {
    asset,
    price,
    asOf,
    status: usable.length ? "OK" : "DIVERGING",
    sourcesUsed: usable.map((source) => source.source).sort(),
    detail: usable.length
      ? `median of ${usable.length} sources`
      : `only ${agreeing.length} of ${fresh.length} fresh sources within ${policy.priceMaxDivergence.toFixed()} of their median`,
    ...(realizedVolatility ? { realizedVolatility } : {}),
  };
}

/** The worst status over the marks an account uses: one stale or diverging asset halts the account. */
export function worstStatus(marks: Iterable<Pick<ResolvedMark, "status">>): PriceStatus {
  let worst: PriceStatus = "OK";
  for (const mark of marks) {
    if (mark.status === "DIVERGING") return "DIVERGING";
    if (mark.status === "STALE") worst = "STALE";
  }
  return worst;
}
