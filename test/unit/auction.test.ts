/**
 * Dutch-auction limit prices (Maker Liquidations 2.0: abaci.sol's curves, clip.sol's reset), and the
 * schedule a liquidation step carries. Expected prices are derived here from the formulas.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AuctionPolicy,
  type AuctionSchedule,
  auctionPrice,
  auctionSchedule,
  cuspLine,
} from "../../functions/domain/auction.ts";
import { planLiquidation } from "../../functions/domain/calls.ts";
import { Dec, dec, quantize, Rounding } from "../../functions/domain/money.ts";
import type { PolicyDocument } from "../../functions/domain/policy.ts";
import { valueAccount } from "../../functions/domain/valuation.ts";
import { account, flatTier, marks, NOW, policy, policyDocument } from "../support/domain-builders.ts";

const linear: AuctionPolicy = {
  kind: "LINEAR",
  buf: dec("1.2"),
  tauSeconds: 600,
  tailSeconds: 900,
  cusp: dec("0.6"),
};
const stepped: AuctionPolicy = {
  kind: "STEP",
  buf: dec("1.1"),
  stepSeconds: 60,
  cut: dec("0.9"),
  tailSeconds: 3_600,
  cusp: dec("0.5"),
};

const priceAt = (schedule: AuctionSchedule, seconds: number): Dec =>
  auctionPrice(schedule, seconds).limitPrice;

describe("a linear auction (abaci LinearDecrease)", () => {
  // top = 2,000 × 1.2 = 2,400; price(e) = 2,400 × (600 − e) / 600. The cusp line is 0.6 × 2,400 = 1,440,
  // reached at e = 600 × (1 − 0.6) = 240; the first second below it is 241, where the auction resets.
  const schedule = auctionSchedule(linear, "SELL", dec("2000"), 2, NOW);
  const top = dec("2000").times(linear.buf);
  const firstReset = Math.floor(600 * (1 - 0.6)) + 1;

  it("starts at mark × buf and falls linearly, rounded down to the price scale", () => {
    expect(schedule).toMatchObject({ startsAt: NOW, top, side: "SELL", priceScale: 2 });
    expect(priceAt(schedule, 0).equals(top)).toBe(true);
    for (const seconds of [1, 7, 100, 239, 240]) {
      const exact = top.times(600 - seconds).dividedBy(600);
      expect(priceAt(schedule, seconds).equals(quantize(exact, 2, Rounding.FLOOR))).toBe(true);
    }
    expect(priceAt(schedule, 240).equals(cuspLine(schedule))).toBe(true); // at the cusp, not below it
  });

  it("resets to the top at the first second past the cusp, and repeats", () => {
    expect(schedule.cycleSeconds).toBe(firstReset);
    expect(auctionPrice(schedule, firstReset)).toEqual({ limitPrice: top, cycle: 1, cycleElapsedSeconds: 0 });
    expect(priceAt(schedule, firstReset + 100).equals(priceAt(schedule, 100))).toBe(true);
    expect(auctionPrice(schedule, 3 * firstReset + 5).cycle).toBe(3);
  });

  it("resets after the tail when the cusp is further away", () => {
    const short = auctionSchedule({ ...linear, tailSeconds: 120 }, "SELL", dec("2000"), 2);
    expect(short.cycleSeconds).toBe(121); // e > tail
    expect(priceAt(short, 120).equals(top.times(480).dividedBy(600))).toBe(true);
    expect(priceAt(short, 121).equals(top)).toBe(true);
    expect(short).not.toHaveProperty("startsAt");
  });

  it("mirrors a buy-back: starts below the mark, rises, rounds up, resets past the mirrored cusp", () => {
    const buy = auctionSchedule(linear, "BUY", dec("2000"), 2);
    const mirror = (seconds: number) => dec("4000").minus(top.times(600 - seconds).dividedBy(600));
    expect(priceAt(buy, 0).equals(dec("1600"))).toBe(true); // 2,000 × (2 − 1.2)
    expect(priceAt(buy, 7).equals(quantize(mirror(7), 2, Rounding.CEIL))).toBe(true);
    expect(cuspLine(buy).equals(dec("4000").minus(dec("1440")))).toBe(true);
    expect(buy.cycleSeconds).toBe(firstReset);
    expect(priceAt(buy, firstReset).equals(dec("1600"))).toBe(true);
  });
});

describe("a stepped auction (abaci StairstepExponentialDecrease)", () => {
  // top = 1,000 × 1.1 = 1,100; price(e) = 1,100 × 0.9^⌊e / 60⌋. The cusp 0.5 is passed at the first k with
  // 0.9^k < 0.5, so the auction resets at e = 60·k.
  const schedule = auctionSchedule(stepped, "SELL", dec("1000"), 2);
  const top = dec("1100");
  let steps = 0;
  while (!stepped.cut.toPower(steps).lessThan(stepped.cusp)) steps++;

  it("holds each price for a step, then cuts it", () => {
    for (const seconds of [0, 59, 60, 119, 120, 300]) {
      const exact = top.times(stepped.cut.toPower(Math.floor(seconds / 60)));
      expect(priceAt(schedule, seconds).equals(quantize(exact, 2, Rounding.FLOOR))).toBe(true);
    }
    expect(priceAt(schedule, 59).equals(top)).toBe(true);
  });

  it("resets at the first step below the cusp", () => {
    expect(steps).toBe(7); // 0.9^6 = 0.531441, 0.9^7 = 0.4782969
    expect(schedule.cycleSeconds).toBe(60 * steps);
    const lastBefore = priceAt(schedule, 60 * steps - 1);
    expect(lastBefore.equals(quantize(top.times(stepped.cut.toPower(steps - 1)), 2, Rounding.FLOOR))).toBe(
      true,
    );
    expect(auctionPrice(schedule, 60 * steps)).toEqual({ limitPrice: top, cycle: 1, cycleElapsedSeconds: 0 });
  });
});

describe("a liquidation step carries its schedule", () => {
  const document = (auction?: PolicyDocument["liquidation"]["auction"]) =>
    policy({
      assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") } },
      liquidation: { ...policyDocument().liquidation, ...(auction ? { auction } : {}) },
    });
  const bought = account({ cash: "-10000", holdings: { XYZ: "200" } });
  const at60 = marks({ XYZ: "60" });

  it("keeps mark × (1 − slippage) without an auction", () => {
    const pol = document();
    const plan = planLiquidation(bought, valueAccount(bought, at60, pol), at60, pol);
    expect(plan.steps[0]?.limitPrice.equals(quantize(dec("60").times("0.98"), 2, Rounding.FLOOR))).toBe(true);
    expect(plan.steps[0]).not.toHaveProperty("auction");
  });

  it("takes its limit from the schedule's start, and the schedule from the policy", () => {
    const pol = document({ kind: "LINEAR", buf: "1.2", tauSeconds: 600, tailSeconds: 900, cusp: "0.6" });
    const plan = planLiquidation(bought, valueAccount(bought, at60, pol), at60, pol, { startsAt: NOW });
    const step = plan.steps[0];
    expect(step?.auction).toEqual(auctionSchedule(linear, "SELL", dec("60"), 2, NOW));
    expect(step?.limitPrice.equals(dec("72"))).toBe(true);
    expect(step?.quantity.toFixed()).toBe("67"); // the quantity does not depend on the price schedule
  });

  it("refuses a schedule that could sell at nothing or never reset", () => {
    const base = policyDocument().liquidation;
    const bad = (auction: Record<string, unknown>) => () =>
      policy({ liquidation: { ...base, auction } as PolicyDocument["liquidation"] });
    expect(bad({ kind: "LINEAR", buf: "1.2", tauSeconds: 600, tailSeconds: 900, cusp: "0" })).toThrow(
      /auction\.cusp: must be above 0 and below 1/,
    );
    expect(bad({ kind: "STEP", buf: "2", stepSeconds: 60, cut: "1", tailSeconds: 900, cusp: "0.5" })).toThrow(
      /auction\.buf: must be above 0 and below 2[\s\S]*auction\.cut: must be above 0 and below 1/,
    );
  });
});

describe("auction properties", () => {
  const scheduleArbitrary = fc
    .record({
      kind: fc.constantFrom("LINEAR", "STEP"),
      side: fc.constantFrom("SELL", "BUY"),
      buf: fc.integer({ min: 1, max: 19_999 }),
      tau: fc.integer({ min: 1, max: 20_000 }),
      step: fc.integer({ min: 1, max: 600 }),
      cut: fc.integer({ min: 1, max: 9_999 }),
      tail: fc.integer({ min: 1, max: 20_000 }),
      cusp: fc.integer({ min: 1, max: 9_999 }),
      mark: fc.integer({ min: 1, max: 10_000_000 }),
      priceScale: fc.integer({ min: 0, max: 6 }),
    })
    .map((drawn): AuctionSchedule => {
      const rate = (units: number) => new Dec(units).dividedBy(10_000);
      const common = { buf: rate(drawn.buf), tailSeconds: drawn.tail, cusp: rate(drawn.cusp) };
      const auctionPolicy: AuctionPolicy =
        drawn.kind === "LINEAR"
          ? { kind: "LINEAR", ...common, tauSeconds: drawn.tau }
          : { kind: "STEP", ...common, stepSeconds: drawn.step, cut: rate(drawn.cut) };
      const mark = new Dec(drawn.mark).dividedBy(100);
      return auctionSchedule(auctionPolicy, drawn.side as "SELL" | "BUY", mark, drawn.priceScale);
    });

  it("never rises (a sale) or falls (a buy) between resets, and never passes the cusp before one", () => {
    fc.assert(
      fc.property(
        scheduleArbitrary,
        fc.array(fc.nat({ max: 40_000 }), { minLength: 1, maxLength: 30 }),
        (schedule, times) => {
          const line = cuspLine(schedule);
          const start = priceAt(schedule, 0);
          const startPastCusp = schedule.side === "SELL" ? start.lessThan(line) : start.greaterThan(line);
          fc.pre(!startPastCusp); // a price scale too coarse for the mark: the cycle is 1 s at the start price
          const sorted = [...new Set(times)].sort((a, b) => a - b);
          let previous: { cycle: number; limitPrice: Dec } | null = null;
          for (const seconds of sorted) {
            const at = auctionPrice(schedule, seconds);
            expect(at.cycleElapsedSeconds).toBeLessThanOrEqual(schedule.tailSeconds);
            if (schedule.side === "SELL") expect(at.limitPrice.greaterThanOrEqualTo(line)).toBe(true);
            else expect(at.limitPrice.lessThanOrEqualTo(line)).toBe(true);
            if (previous && previous.cycle === at.cycle) {
              if (schedule.side === "SELL")
                expect(at.limitPrice.lessThanOrEqualTo(previous.limitPrice)).toBe(true);
              else expect(at.limitPrice.greaterThanOrEqualTo(previous.limitPrice)).toBe(true);
            }
            previous = at;
          }
          // The reset is the first second past the cusp or the tail: one second earlier is still inside.
          const end = schedule.cycleSeconds;
          const pastTail = end > schedule.tailSeconds;
          const raw = auctionPrice({ ...schedule, cycleSeconds: end + 1 }, end).limitPrice;
          const pastCusp = schedule.side === "SELL" ? raw.lessThan(line) : raw.greaterThan(line);
          expect(pastTail || pastCusp).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });
});
