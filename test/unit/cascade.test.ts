/**
 * Cascade damping: the caps on notional in flight, the priority of waiting accounts, and the volatility
 * circuit breaker. Worked examples with their numbers derived here, then properties: caps are never
 * exceeded, a waiting account is never passed over on a cap it was short of, and no request goes out on an
 * asset whose breaker is tripped.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  admit,
  type BreakerState,
  breakerActive,
  type CascadeUsage,
  capsOf,
  cascadeSchema,
  circuitBreakerSchema,
  evaluateBreaker,
  type LiquidationCandidate,
  type PriceSample,
  pausedAssets,
  TOTAL_CAP,
  usageInWindow,
  windowMove,
} from "../../functions/domain/cascade.ts";
import { Dec, dec, ZERO } from "../../functions/domain/money.ts";
import { addSeconds } from "../../functions/domain/time.ts";

const T0 = "2026-11-25T12:00:00.000Z";
const at = (seconds: number) => addSeconds(T0, seconds);

function candidate(
  accountId: string,
  marginRatio: string,
  notional: Record<string, string>,
): LiquidationCandidate {
  return {
    accountId,
    marginRatio: dec(marginRatio),
    notionalByAsset: new Map(Object.entries(notional).map(([asset, value]) => [asset, dec(value)])),
  };
}

function usage(total: string, byAsset: Record<string, string>): CascadeUsage {
  return { total: dec(total), byAsset: new Map(Object.entries(byAsset).map(([a, v]) => [a, dec(v)])) };
}

describe("caps and priority, worked", () => {
  const policy = cascadeSchema.parse({
    totalNotionalCap: "100000",
    assetNotionalCaps: { BTC: "60000", ETH: "50000" },
  });

  it("admits in priority order, reserves a cap for the account that was short of it, and never exceeds one", () => {
    // Prepare: 30,000 in flight, 20,000 of it BTC. Priority: H (0.3), G (0.4), A, B, C (0.7, 40,000),
    // D (0.7, 25,000), E, F.
    const candidates = [
      candidate("A", "0.5", { BTC: "50000" }), // BTC 20,000 + 50,000 > 60,000: short of BTC, reserves it
      candidate("B", "0.6", { BTC: "30000" }), // would fit (50,000), but BTC is reserved for A
      candidate("C", "0.7", { ETH: "40000" }), // ETH 40,000 ≤ 50,000, total 70,000: goes
      candidate("D", "0.7", { ETH: "5000", SOL: "20000" }), // ETH 45,000, total 95,000: goes
      candidate("E", "0.8", { SOL: "10000" }), // total 105,000 > 100,000: short of TOTAL, reserves it
      candidate("F", "0.9", { SOL: "1000" }), // would fit (96,000), but TOTAL is reserved for E
      candidate("G", "0.4", { BTC: "70000" }), // more than the BTC cap itself: can never go whole
      candidate("H", "0.3", { LUNA: "100" }), // its asset's breaker is tripped
    ];

    // Act
    const decision = admit(candidates, policy, usage("30000", { BTC: "20000" }), new Set(["LUNA"]));

    // Assess
    expect(decision.admitted).toEqual([
      { accountId: "C", priority: 5 },
      { accountId: "D", priority: 6 },
    ]);
    expect(decision.waiting.map((w) => [w.accountId, w.reason, w.caps, w.behindOn, w.priority])).toEqual([
      ["H", "PAUSED", ["LUNA"], [], 1],
      ["G", "EXCEEDS_CAP", ["BTC"], [], 2],
      ["A", "CAP_FULL", ["BTC"], [], 3],
      ["B", "BEHIND_HIGHER_PRIORITY", [], ["BTC"], 4],
      ["E", "CAP_FULL", [TOTAL_CAP], [], 7],
      ["F", "BEHIND_HIGHER_PRIORITY", [], [TOTAL_CAP], 8],
    ]);
    expect(decision.usageAfter.total.toFixed()).toBe("95000");
    expect(Object.fromEntries([...decision.usageAfter.byAsset].map(([a, v]) => [a, v.toFixed()]))).toEqual({
      BTC: "20000",
      ETH: "45000",
      SOL: "20000",
    });
  });

  it("caps nothing when the section is omitted", () => {
    const decision = admit(
      [candidate("A", "0.5", { BTC: "1000000000" })],
      undefined,
      usage("0", {}),
      new Set(),
    );
    expect(decision.admitted.map((a) => a.accountId)).toEqual(["A"]);
    expect(capsOf(undefined).size).toBe(0);
  });

  it("counts a request from when it was sent until the later of its settlement and the end of its window, whatever the clocks", () => {
    const now = at(5000);
    const requests = [
      { requestedAt: at(1000), settledAt: at(1200), notionalByAsset: new Map([["BTC", dec("1")]]) }, // out
      { requestedAt: at(1000), settledAt: null, notionalByAsset: new Map([["BTC", dec("20")]]) }, // unsettled
      { requestedAt: at(4900), settledAt: at(4950), notionalByAsset: new Map([["ETH", dec("300")]]) }, // in window
      // Stamped on a clock a little ahead of this one: admitted, so it counts.
      { requestedAt: at(5001), settledAt: null, notionalByAsset: new Map([["ETH", dec("4000")]]) },
      { requestedAt: at(5002), settledAt: at(5003), notionalByAsset: new Map([["ETH", dec("5")]]) },
    ];
    const counted = usageInWindow(requests, now, 3600);
    expect(counted.total.toFixed()).toBe("4325");
    expect([counted.byAsset.get("BTC")?.toFixed(), counted.byAsset.get("ETH")?.toFixed()]).toEqual([
      "20",
      "4305",
    ]);
  });
});

describe("the circuit breaker, worked", () => {
  const policy = circuitBreakerSchema.parse({});
  const samples: PriceSample[] = [
    { at: at(0), price: dec("100000") },
    { at: at(600), price: dec("70000") }, // 30%: within 40%
    { at: at(1200), price: dec("59000") }, // 41%: beyond
    { at: at(1800), price: dec("62000") },
    { at: at(3000), price: dec("65000") },
  ];

  it("takes its defaults: 40% over an hour, 15 minutes of calm", () => {
    expect(policy).toEqual({ maxMove: "0.4", windowSeconds: 3600, coolDownSeconds: 900 });
  });

  it("trips beyond the limit, holds while the window still holds the move, releases after the cool-down", () => {
    const seen: Array<[number, string, string | null]> = [];
    let state: BreakerState = breakerActive("BTC");
    for (const seconds of [600, 1200, 1800, 3700, 4000, 4599, 4600]) {
      const upTo = samples.filter((s) => Date.parse(s.at) <= Date.parse(at(seconds)));
      const step = evaluateBreaker(state, upTo, at(seconds), policy);
      state = step.state;
      seen.push([seconds, state.status, step.decision?.kind ?? null]);
    }
    // At 1,200 s: (100,000 − 59,000) / 100,000 = 0.41 > 0.4. At 1,800 s the window still holds 100,000.
    // At 3,700 s the window starts at 100 s: high 70,000, low 59,000, move 0.157: calm since 3,700 s.
    // 3,700 + 900 = 4,600 s: released.
    expect(seen).toEqual([
      [600, "ACTIVE", null],
      [1200, "PAUSED", "PAUSE"],
      [1800, "PAUSED", null],
      [3700, "PAUSED", null],
      [4000, "PAUSED", null],
      [4599, "PAUSED", null],
      [4600, "ACTIVE", "RESUME"],
    ]);
    expect(windowMove(samples, at(1200), 3600, dec("0.4"))?.move.toFixed()).toBe("0.41");
    expect(windowMove(samples, at(3700), 3600, dec("0.4"))?.move.toFixed()).toBe("0.157143");
  });

  it("restarts the cool-down when the move goes beyond the limit again", () => {
    const paused: BreakerState = { asset: "BTC", status: "PAUSED", pausedAt: at(0), calmSince: at(100) };
    const again = evaluateBreaker(
      paused,
      [
        { at: at(200), price: dec("10") },
        { at: at(300), price: dec("5") },
      ],
      at(300),
      policy,
    );
    expect(again.state).toEqual({ ...paused, calmSince: null });
    expect(again.decision).toBeNull();
  });
});

const ASSETS = ["BTC", "ETH", "SOL"] as const;
const amount = fc.integer({ min: 0, max: 1000 }).map((n) => new Dec(String(n)));
const candidatesArbitrary = fc.uniqueArray(
  fc.record({
    id: fc.integer({ min: 0, max: 99 }),
    ratio: fc.integer({ min: 0, max: 20 }),
    notional: fc.record({ BTC: amount, ETH: amount, SOL: amount }),
  }),
  { selector: (c) => c.id, maxLength: 25 },
);

function toCandidates(drawn: ReadonlyArray<{ id: number; ratio: number; notional: Record<string, Dec> }>) {
  return drawn
    .map(({ id, ratio, notional }) => ({
      accountId: `A${String(id).padStart(2, "0")}`,
      marginRatio: new Dec(String(ratio)).dividedBy(10),
      notionalByAsset: new Map(Object.entries(notional).filter(([, value]) => value.greaterThan(ZERO))),
    }))
    .filter((c) => c.notionalByAsset.size > 0);
}

/** The caps a candidate takes room on: its capped assets with notional, and the total when capped. */
function touched(c: LiquidationCandidate, caps: ReadonlyMap<string, Dec>): string[] {
  const keys = [...c.notionalByAsset.keys()].filter((asset) => caps.has(asset));
  return caps.has(TOTAL_CAP) ? [...keys, TOTAL_CAP] : keys;
}

describe("properties", () => {
  it("never exceeds a cap, never passes a waiting account over on a cap it was short of, never admits a paused asset", () => {
    fc.assert(
      fc.property(
        candidatesArbitrary,
        fc.record({
          total: fc.option(fc.integer({ min: 1, max: 4000 })),
          BTC: fc.option(fc.integer({ min: 1, max: 2000 })),
          ETH: fc.option(fc.integer({ min: 1, max: 2000 })),
        }),
        fc.record({ BTC: amount, ETH: amount, SOL: amount }),
        fc.subarray([...ASSETS]),
        (drawn, capDraw, inFlightDraw, paused) => {
          const candidates = toCandidates(drawn);
          const policy = cascadeSchema.parse({
            ...(capDraw.total === null ? {} : { totalNotionalCap: String(capDraw.total) }),
            assetNotionalCaps: Object.fromEntries(
              (["BTC", "ETH"] as const).flatMap((a) =>
                capDraw[a] === null ? [] : [[a, String(capDraw[a])]],
              ),
            ),
          });
          const caps = capsOf(policy);
          const inFlight: CascadeUsage = {
            total: Object.values(inFlightDraw).reduce((s, v) => s.plus(v), ZERO),
            byAsset: new Map(Object.entries(inFlightDraw)),
          };
          const decision = admit(candidates, policy, inFlight, new Set(paused));
          const byId = new Map(candidates.map((c) => [c.accountId, c]));
          const admitted = decision.admitted.map((a) => ({
            ...a,
            candidate: byId.get(a.accountId) as LiquidationCandidate,
          }));
          expect(decision.admitted.length + decision.waiting.length).toBe(candidates.length);

          // Caps: in flight + admitted ≤ cap, unless nothing admitted touches the cap.
          for (const [cap, limit] of caps) {
            const using = admitted.filter((a) => touched(a.candidate, caps).includes(cap));
            const before = cap === TOTAL_CAP ? inFlight.total : (inFlight.byAsset.get(cap) ?? ZERO);
            const added = using.reduce(
              (s, a) =>
                s.plus(
                  cap === TOTAL_CAP
                    ? [...a.candidate.notionalByAsset.values()].reduce((x, y) => x.plus(y), ZERO)
                    : (a.candidate.notionalByAsset.get(cap) ?? ZERO),
                ),
              ZERO,
            );
            if (using.length > 0) expect(before.plus(added).lessThanOrEqualTo(limit)).toBe(true);
          }
          // No admitted request touches a paused asset.
          for (const a of admitted)
            expect(
              [...a.candidate.notionalByAsset.keys()].some((asset) => paused.includes(asset as never)),
            ).toBe(false);
          // The rule: an admitted account after a waiting one takes no room on a cap the waiting one was short of.
          for (const waiting of decision.waiting.filter(
            (w) => w.reason === "CAP_FULL" || w.reason === "BEHIND_HIGHER_PRIORITY",
          )) {
            for (const a of admitted.filter((x) => x.priority > waiting.priority)) {
              expect(
                touched(a.candidate, caps).some(
                  (cap) => waiting.caps.includes(cap) || waiting.behindOn.includes(cap),
                ),
              ).toBe(false);
            }
          }
        },
      ),
    );
  });

  it("no request goes out on an asset while its breaker is tripped, and it resumes only after the cool-down", () => {
    const policy = circuitBreakerSchema.parse({ maxMove: "0.2", windowSeconds: 600, coolDownSeconds: 300 });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ gap: fc.integer({ min: 1, max: 240 }), price: fc.integer({ min: 50, max: 150 }) }),
          { minLength: 1, maxLength: 60 },
        ),
        (path) => {
          let seconds = 0;
          const samples: PriceSample[] = [];
          let state = breakerActive("BTC");
          let lastBeyondAt: number | null = null;
          for (const step of path) {
            seconds += step.gap;
            samples.push({ at: at(seconds), price: new Dec(String(step.price)) });
            const outcome = evaluateBreaker(state, samples, at(seconds), policy);
            if (outcome.move?.beyondLimit) lastBeyondAt = seconds;
            if (outcome.decision?.kind === "PAUSE") expect(outcome.move?.beyondLimit).toBe(true);
            if (outcome.decision?.kind === "RESUME") {
              expect(outcome.move?.beyondLimit ?? false).toBe(false);
              expect(lastBeyondAt === null || seconds - lastBeyondAt >= policy.coolDownSeconds).toBe(true);
            }
            state = outcome.state;
            const decision = admit(
              [candidate("X", "0.1", { BTC: "10" })],
              undefined,
              usage("0", {}),
              pausedAssets([state]),
            );
            expect(decision.admitted.length).toBe(state.status === "PAUSED" ? 0 : 1);
          }
        },
      ),
    );
  });
});
