/**
 * The circuit breaker's window as the engine stores it (adapters/breakers.ts): the high and low of each of
 * at most 60 buckets. What docs/liquidation.md section 8 claims of it: the stored window never misses a
 * move inside the true window, sees at most one bucket further back, and stays bounded.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BUCKETS,
  breakerSample,
  samplesOf,
  sourcesAlongBatch,
  withSample,
} from "../../functions/adapters/breakers.ts";
import { type PriceSample, windowMove } from "../../functions/domain/cascade.ts";
import { dec } from "../../functions/domain/money.ts";
import { flatTier, policy } from "../support/domain-builders.ts";

const T0 = Date.parse("2026-11-25T12:00:00.000Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const LIMIT = dec("0.1");

describe("the breaker's buckets", () => {
  it("keep each bucket's high and low, and drop a bucket once its latest sample leaves the window", () => {
    // A 600 s window: buckets of 10 s.
    let buckets = withSample([], { at: at(0), price: dec("100") }, 600);
    buckets = withSample(buckets, { at: at(4), price: dec("90") }, 600);
    buckets = withSample(buckets, { at: at(7), price: dec("95") }, 600);
    expect(buckets).toEqual([{ start: T0, at: at(7), high: "100", low: "90" }]);
    buckets = withSample(buckets, { at: at(15), price: dec("80") }, 600);
    expect(buckets.map((bucket) => bucket.at)).toEqual([at(7), at(15)]);
    buckets = withSample(buckets, { at: at(608), price: dec("81") }, 600);
    expect(buckets.map((bucket) => bucket.at)).toEqual([at(15), at(608)]); // at(7) is 601 s old
    expect(samplesOf(buckets).map((sample) => sample.price.toFixed())).toEqual(["80", "80", "81", "81"]);
  });

  it("never miss a move inside the window, see at most one bucket further back, and stay bounded", () => {
    const sequence = fc
      .record({
        windowSeconds: fc.integer({ min: 1, max: 3_600 }),
        steps: fc.array(
          fc.record({ gap: fc.integer({ min: 0, max: 120 }), cents: fc.integer({ min: 1, max: 1_000_000 }) }),
          { minLength: 1, maxLength: 200 },
        ),
      })
      .map(({ windowSeconds, steps }) => {
        let seconds = 0;
        const samples: PriceSample[] = steps.map((step) => {
          seconds += step.gap;
          return { at: at(seconds), price: dec(String(step.cents)).dividedBy(100) };
        });
        return { windowSeconds, samples };
      });
    fc.assert(
      fc.property(sequence, ({ windowSeconds, samples }) => {
        let buckets: ReturnType<typeof withSample> = [];
        const width = Math.max(1, Math.ceil(windowSeconds / BUCKETS));
        for (const [index, sample] of samples.entries()) {
          const seen = samples.slice(0, index + 1);
          buckets = withSample(buckets, sample, windowSeconds);
          expect(buckets.length).toBeLessThanOrEqual(BUCKETS + 2);
          const now = sample.at;
          const stored = windowMove(samplesOf(buckets), now, windowSeconds, LIMIT);
          const exact = windowMove(seen, now, windowSeconds, LIMIT);
          const wider = windowMove(seen, now, windowSeconds + width, LIMIT);
          if (!stored || !exact || !wider) throw new Error("every window holds the sample just taken");
          expect(stored.move.greaterThanOrEqualTo(exact.move)).toBe(true);
          expect(stored.move.lessThanOrEqualTo(wider.move)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("the sources along a batch", () => {
  const mark = (source: string, price: string, seconds: number) => ({
    source,
    price: dec(price),
    asOf: at(seconds),
  });

  it("rebuilds every source as it stood after each tick, from the old images, so every tick is a sample", () => {
    // The table now holds the batch's last values: a at 90 s, b at 60 s; c had no tick in the batch.
    const current = [mark("a", "90", 90), mark("b", "80", 60), mark("c", "100", 0)];
    const records = [
      { newImage: mark("a", "95", 30), oldImage: mark("a", "100", 0) },
      { newImage: mark("b", "80", 60), oldImage: undefined }, // a new source
      { newImage: mark("a", "90", 90), oldImage: mark("a", "95", 30) },
    ];
    const prices = (index: number) =>
      Object.fromEntries(
        (sourcesAlongBatch(current, records)[index]?.sources ?? []).map((s) => [s.source, s.price.toFixed()]),
      );
    expect(sourcesAlongBatch(current, records).map((tick) => tick.at)).toEqual([at(30), at(60), at(90)]);
    expect(prices(0)).toEqual({ a: "95", c: "100" });
    expect(prices(1)).toEqual({ a: "95", b: "80", c: "100" });
    expect(prices(2)).toEqual({ a: "90", b: "80", c: "100" });
  });
});

describe("the price a breaker samples", () => {
  const pol = policy({
    assets: { BTC: { quantityScale: 8, priceScale: 2, haircut: "0.1", longTiers: flatTier("0.05", "0.1") } },
    prices: { maxAgeSeconds: 60, maxDivergence: "0.05", minimumSources: 2, haltGraceSeconds: 0 },
  });
  const source = (name: string, price: string, seconds: number) => ({
    source: name,
    price: dec(price),
    asOf: at(seconds),
  });

  it("is the mark when the mark is OK, else the median of the fresh sources there are, never a future one", () => {
    expect(breakerSample("BTC", [source("a", "100", 0), source("b", "102", 0)], pol, at(10))?.toFixed()).toBe(
      "101",
    );
    // One fresh source of the two needed: its price (the other is stale, a third not yet known at 10 s).
    const thin = [source("a", "90", 10), source("b", "102", -120), source("c", "50", 40)];
    expect(breakerSample("BTC", thin, pol, at(10))?.toFixed()).toBe("90");
    expect(breakerSample("BTC", [source("b", "102", -120)], pol, at(10))).toBeUndefined();
  });

  it("is nothing when the sources disagree: one bad print cannot pause liquidations", () => {
    const split = [source("a", "100", 0), source("b", "60", 0)];
    expect(breakerSample("BTC", split, pol, at(10))).toBeUndefined();
  });
});
