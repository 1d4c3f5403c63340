import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assess } from "../../functions/domain/assess.ts";
import { cureOptions, reduceExposure, restoresTarget, sizeCall } from "../../functions/domain/calls.ts";
import {
  type CallState,
  type Effect,
  type EngineEvent,
  initialState,
  type OpenCall,
  planAssets,
  STATUSES,
  type Status,
  type Step,
  transition,
} from "../../functions/domain/machine.ts";
import { Dec, dec } from "../../functions/domain/money.ts";
import type { Policy, PolicyDocument } from "../../functions/domain/policy.ts";
import type { PriceStatus, ResolvedMark } from "../../functions/domain/prices.ts";
import { callStateSchema } from "../../functions/domain/snapshot.ts";
import { triggerPrices } from "../../functions/domain/triggers.ts";
import { type Account, ratioBelow, valueAccount } from "../../functions/domain/valuation.ts";
import { account, flatTier, marks, NOW, policy, policyDocument } from "../support/domain-builders.ts";

/** A decimal string from an integer count of units at a scale: 12345 at scale 2 is "123.45". */
const decimal = (units: bigint | number, scale: number): string => {
  const value = new Dec(units.toString()).dividedBy(new Dec(10).toPower(scale));
  return value.toFixed(scale).replace(/^-0(\.0+)?$/, "0");
};

const rate = (min: number, max: number) => fc.integer({ min, max }).map((bps) => decimal(bps, 4));

/** 1–4 tiers with rising floors and non-decreasing maintenance rates, as the policy requires. */
const tiers = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 2_000_000 }), fc.integer({ min: 0, max: 800 })), {
    minLength: 0,
    maxLength: 3,
  })
  .chain((steps) =>
    rate(40, 2_500).map((baseRate) => {
      let floor = 0;
      let maintenance = dec(baseRate);
      const table = [
        {
          notionalFloor: "0",
          maintenanceRate: baseRate,
          initialRate: dec(baseRate).times(2).clamp(0, 1).toFixed(),
        },
      ];
      for (const [floorStep, rateStep] of steps) {
        floor += floorStep;
        maintenance = Dec.min(1, maintenance.plus(dec(decimal(rateStep, 4))));
        table.push({
          notionalFloor: String(floor),
          maintenanceRate: maintenance.toFixed(),
          initialRate: Dec.min(1, maintenance.times(2)).toFixed(),
        });
      }
      return table;
    }),
  );

const ASSETS = ["AAA", "BBB", "CCC"] as const;

const policyDocumentArbitrary: fc.Arbitrary<PolicyDocument> = fc
  .record({
    aaa: tiers,
    bbb: tiers,
    ccc: tiers,
    perp: tiers,
    haircuts: fc.tuple(rate(0, 3_000), rate(0, 3_000), rate(0, 3_000)),
    restoreBuffer: rate(0, 2_000),
    volatile: fc.boolean(),
  })
  .map(({ aaa, bbb, ccc, perp, haircuts, restoreBuffer, volatile }) => {
    const asset = (longTiers: typeof aaa, haircut: string) => ({
      quantityScale: 4,
      priceScale: 2,
      haircut,
      longTiers,
      shortTiers: longTiers,
      ...(volatile ? { volatility: { referenceVolatility: "0.5", slope: "1", maxMultiplier: "2" } } : {}),
    });
    const document: PolicyDocument = policyDocument({
      assets: { AAA: asset(aaa, haircuts[0]), BBB: asset(bbb, haircuts[1]), CCC: asset(ccc, haircuts[2]) },
      instruments: { "AAA-PERP": { underlying: "AAA", quantityScale: 3, tiers: perp } },
    });
    return { ...document, call: { ...document.call, restoreBuffer } };
  });

const policyArbitrary: fc.Arbitrary<Policy> = policyDocumentArbitrary.map((document) => policy(document));

const accountArbitrary: fc.Arbitrary<Account> = fc
  .record({
    cash: fc.bigInt({ min: -50_000_000n, max: 50_000_000n }),
    holdings: fc.array(
      fc.tuple(fc.constantFrom(...ASSETS), fc.bigInt({ min: -2_000_000n, max: 5_000_000n })),
      {
        maxLength: 3,
      },
    ),
    perp: fc.option(
      fc.tuple(fc.bigInt({ min: -50_000n, max: 50_000n }), fc.integer({ min: 1_000, max: 50_000 })),
    ),
  })
  .map(({ cash, holdings, perp }) =>
    account({
      cash: decimal(cash, 2),
      holdings: Object.fromEntries(holdings.map(([asset, units]) => [asset, decimal(units, 4)])),
      positions: perp
        ? [{ instrument: "AAA-PERP", size: decimal(perp[0], 3), entryPrice: decimal(perp[1], 0) }]
        : [],
    }),
  );

const pricesArbitrary = fc
  .tuple(
    fc.integer({ min: 100, max: 5_000_000 }),
    fc.integer({ min: 100, max: 5_000_000 }),
    fc.integer({ min: 100, max: 5_000_000 }),
  )
  .map(([a, b, c]) => ({ AAA: decimal(a, 2), BBB: decimal(b, 2), CCC: decimal(c, 2) }));

const withVolatility = (prices: Record<string, string>, sigma: string | null) => {
  const built = marks(prices);
  if (!sigma) return built;
  return new Map([...built].map(([asset, mark]) => [asset, { ...mark, realizedVolatility: dec(sigma) }]));
};

describe("valuation properties", () => {
  it("moves equity with a price exactly by the net exposure to it, in its sign", () => {
    fc.assert(
      fc.property(
        accountArbitrary,
        policyArbitrary,
        pricesArbitrary,
        fc.integer({ min: 1, max: 1_000_000 }),
        (acct, pol, prices, up) => {
          const higher = {
            ...prices,
            AAA: dec(prices.AAA)
              .plus(dec(decimal(up, 2)))
              .toFixed(),
          };
          const before = valueAccount(acct, marks(prices), pol).equity;
          const after = valueAccount(acct, marks(higher), pol).equity;
          const exposure = acct.holdings
            .filter((holding) => holding.asset === "AAA")
            .reduce((total, holding) => total.plus(holding.quantity), new Dec(0))
            .plus(acct.positions.reduce((total, position) => total.plus(position.size), new Dec(0)));
          expect(after.minus(before).equals(exposure.times(dec(decimal(up, 2))))).toBe(true);
          expect(after.minus(before).comparedTo(0)).toBe(exposure.comparedTo(0));
        },
      ),
    );
  });

  it("puts the ratio at 1 at each breach price, to the asset's tick", () => {
    const tick = dec("0.01");
    fc.assert(
      fc.property(
        accountArbitrary,
        policyArbitrary,
        pricesArbitrary,
        fc.option(fc.constantFrom("0.3", "0.8", "1.7")),
        (acct, pol, prices, sigma) => {
          const at = (asset: string, price: Dec) =>
            valueAccount(acct, withVolatility({ ...prices, [asset]: price.toFixed() }, sigma), pol);
          const now = valueAccount(acct, withVolatility(prices, sigma), pol);
          fc.pre(
            !ratioBelow(now, dec("1")) &&
              !now.maintenance.isZero() &&
              now.adjustedEquity.greaterThan(now.maintenance),
          );
          for (const trigger of triggerPrices(acct, withVolatility(prices, sigma), pol)) {
            if (trigger.breachDown) {
              const onLine = at(trigger.asset, trigger.breachDown);
              expect(
                onLine.adjustedEquity.lessThanOrEqualTo(onLine.maintenance),
                `${trigger.asset} down`,
              ).toBe(true);
              const above = trigger.breachDown.plus(tick);
              if (above.lessThanOrEqualTo(trigger.markPrice)) {
                const justAbove = at(trigger.asset, above);
                expect(
                  justAbove.adjustedEquity.greaterThan(justAbove.maintenance),
                  `${trigger.asset} down+tick`,
                ).toBe(true);
              }
            }
            if (trigger.breachUp) {
              const onLine = at(trigger.asset, trigger.breachUp);
              expect(onLine.adjustedEquity.lessThanOrEqualTo(onLine.maintenance), `${trigger.asset} up`).toBe(
                true,
              );
              const below = trigger.breachUp.minus(tick);
              if (below.greaterThanOrEqualTo(trigger.markPrice)) {
                const justBelow = at(trigger.asset, below);
                expect(
                  justBelow.adjustedEquity.greaterThan(justBelow.maintenance),
                  `${trigger.asset} up-tick`,
                ).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("restores the target exactly by depositing the call amount, or by reducing the stated quantity", () => {
    const cent = dec("0.01");
    fc.assert(
      fc.property(accountArbitrary, policyArbitrary, pricesArbitrary, (acct, pol, prices) => {
        const currentMarks = marks(prices);
        const valuation = valueAccount(acct, currentMarks, pol);
        const sizing = sizeCall(valuation, pol);
        fc.pre(sizing.amount.greaterThan(0));
        const afterDeposit = valueAccount(
          { ...acct, cash: acct.cash.plus(sizing.amount) },
          currentMarks,
          pol,
        );
        const oneCentShort = valueAccount(
          { ...acct, cash: acct.cash.plus(sizing.amount).minus(cent) },
          currentMarks,
          pol,
        );
        expect(restoresTarget(afterDeposit, pol)).toBe(true);
        expect(restoresTarget(oneCentShort, pol)).toBe(false);
        for (const option of cureOptions(acct, valuation, currentMarks, pol)) {
          if (option.kind !== "REDUCE") continue;
          const name = option.target.kind === "HOLDING" ? option.target.asset : option.target.instrument;
          const line = valuation.lines.find((candidate) => candidate.name === name);
          if (!line) throw new Error(`no line for ${name}`);
          const lot = option.target.kind === "HOLDING" ? dec("0.0001") : dec("0.001");
          expect(
            restoresTarget(valueAccount(reduceExposure(acct, line, option.quantity), currentMarks, pol), pol),
          ).toBe(true);
          expect(
            restoresTarget(
              valueAccount(reduceExposure(acct, line, option.quantity.minus(lot)), currentMarks, pol),
              pol,
            ),
          ).toBe(false);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("state machine properties", () => {
  // One stock bought on margin: the ratio (200·P − 10,000) / (0.25 · 200·P) falls with the price.
  const stockPolicy = (hardFloorRatio: string) =>
    policy({
      assets: {
        XYZ: {
          quantityScale: 0,
          priceScale: 2,
          haircut: "0",
          longTiers: [{ notionalFloor: "0", maintenanceRate: "0.25", initialRate: "0.5" }],
        },
      },
      warning: { cushion: "0.10" },
      call: {
        restoreBuffer: "0.05",
        exitBuffer: "0.05",
        minimumTransferAmount: "0",
        threshold: "0",
        curePeriodSeconds: 3_600,
        reminderOffsetsSeconds: [1_200, 2_400],
        hardFloorRatio,
      },
      deposits: { minimumCureAmount: "500", maxPauseSeconds: 1_800 },
    });
  const borrower = account({ cash: "-10000", holdings: { XYZ: "200" } });
  const at = (seconds: number) => new Date(Date.parse(NOW) + seconds * 1000).toISOString();

  /** Runs a path of (price, seconds later, pending deposit) through the machine; returns every step. */
  function run(pol: Policy, path: ReadonlyArray<readonly [number, number, number]>) {
    let state: CallState = initialState(borrower.accountId, NOW);
    let clock = 0;
    const effects: Effect[] = [];
    const states: CallState[] = [state];
    path.forEach(([cents, secondsLater, pending], index) => {
      clock += secondsLater;
      const acct = {
        ...borrower,
        pendingDeposits: pending ? [{ depositId: "d", amount: dec(String(pending)) }] : [],
      };
      const assessment = assess(acct, marks({ XYZ: decimal(cents, 2) }, at(clock)), pol);
      const step = transition(
        state,
        assessment,
        pol,
        { type: "REVALUE", cause: "PRICE_TICK", eventId: `e${index}` },
        at(clock),
      );
      effects.push(...step.effects);
      state = step.next;
      states.push(state);
    });
    return { effects, states };
  }

  const pathArbitrary = fc.array(
    fc.tuple(
      fc.integer({ min: 3_000, max: 12_000 }),
      fc.integer({ min: 0, max: 1_500 }),
      fc.constantFrom(0, 100, 500, 5_000),
    ),
    { minLength: 1, maxLength: 40 },
  );
  const floorArbitrary = fc.constantFrom("0", "0.5", "0.8");

  it("never requests a liquidation without a call notice issued before it, and names that notice", () => {
    fc.assert(
      fc.property(pathArbitrary, floorArbitrary, (path, floor) => {
        const { effects } = run(stockPolicy(floor), path);
        effects.forEach((effect, index) => {
          if (effect.kind !== "REQUEST_LIQUIDATION") return;
          const before = effects.slice(0, index);
          const callNotice = before.find(
            (e) => e.kind === "NOTIFY" && e.notice === "CALL" && e.callId === effect.callId,
          );
          expect(callNotice?.kind === "NOTIFY" && callNotice.notificationId).toBe(effect.callNotificationId);
          expect(
            before.some(
              (e) => e.kind === "NOTIFY" && e.notice === "LIQUIDATION_NOTICE" && e.callId === effect.callId,
            ),
          ).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it("records every change of status as an unbroken chain of audit entries", () => {
    fc.assert(
      fc.property(pathArbitrary, floorArbitrary, (path, floor) => {
        const { effects, states } = run(stockPolicy(floor), path);
        const changes = effects.filter(
          (e): e is Extract<Effect, { kind: "AUDIT" }> => e.kind === "AUDIT" && e.from !== e.to,
        );
        let status = states[0]?.status;
        for (const change of changes) {
          expect(change.from).toBe(status);
          status = change.to;
        }
        expect(status).toBe(states.at(-1)?.status);
      }),
      { numRuns: 300 },
    );
  });

  it("gives the same step for the same inputs", () => {
    fc.assert(
      fc.property(pathArbitrary, floorArbitrary, (path, floor) => {
        expect(run(stockPolicy(floor), path)).toEqual(run(stockPolicy(floor), path));
      }),
    );
  });

  it("never flaps: a ratio that stays inside the exit buffer above the warning line changes nothing", () => {
    // Ratio r(P) = (200P − 10,000) / 50P = 4 − 200/P; the band [1.10, 1.15) is P in [68.97, 70.18).
    const pol = stockPolicy("0.5");
    const warned = run(pol, [[6_800, 0, 0]]);
    expect(warned.states.at(-1)?.status).toBe("WARNING");
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 6_897, max: 7_017 }), { minLength: 1, maxLength: 30 }),
        (prices) => {
          const { effects, states } = run(pol, [
            [6_800, 0, 0],
            ...prices.map((cents) => [cents, 60, 0] as const),
          ]);
          expect(states.slice(1).every((state) => state.status === "WARNING")).toBe(true);
          expect(effects.filter((effect) => effect.kind === "NOTIFY")).toHaveLength(1);
        },
      ),
    );
  });

  it("lets a deposit in flight pause the deadline only when it is at least the minimum cure amount", () => {
    const pol = stockPolicy("0");
    fc.assert(
      fc.property(
        fc.constantFrom(0, 100, 499, 500, 5_000),
        fc.integer({ min: 0, max: 1_799 }),
        (pending, lateBy) => {
          // Called at $60, still $60 at the deadline plus lateBy seconds, with `pending` in flight.
          const { states } = run(pol, [
            [6_000, 0, 0],
            [6_000, 3_600 + lateBy, pending],
          ]);
          expect(states[1]?.status).toBe("CALLED");
          expect(states[2]?.status).toBe(pending >= 500 ? "CALLED" : "LIQUIDATING");
        },
      ),
    );
  });
});

describe("state machine properties over any valid state", () => {
  const at = (seconds: number) => new Date(Date.parse(NOW) + seconds * 1000).toISOString();
  const ACCOUNT_ID = "acct-1";

  /** The call, halt, liquidation and price settings the machine reads, on top of a valuation policy. */
  const machineSettings = fc.record({
    buffers: fc.tuple(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 2_000 })),
    threshold: fc.constantFrom("0", "0", "50", "100", "200", "500", "5000"),
    minimumTransferAmount: fc.constantFrom("0", "0", "100"),
    hardFloorRatio: fc.constantFrom("0", "0.5", "0.8"),
    curePeriodSeconds: fc.constantFrom(600, 3_600),
    minimumCureAmount: fc.constantFrom("0", "500"),
    maxPauseSeconds: fc.constantFrom(0, 1_800),
    retrySeconds: fc.constantFrom(60, 300),
    maxAttempts: fc.integer({ min: 1, max: 3 }),
    haltGraceSeconds: fc.constantFrom(0, 600),
  });

  const withSettings = (document: PolicyDocument) =>
    machineSettings.map((m) => {
      const [low, high] = [Math.min(...m.buffers), Math.max(...m.buffers)];
      return policy({
        ...document,
        call: {
          ...document.call,
          restoreBuffer: decimal(high, 4),
          exitBuffer: decimal(low, 4),
          minimumTransferAmount: m.minimumTransferAmount,
          threshold: m.threshold,
          curePeriodSeconds: m.curePeriodSeconds,
          reminderOffsetsSeconds: [m.curePeriodSeconds / 2],
          hardFloorRatio: m.hardFloorRatio,
        },
        deposits: { minimumCureAmount: m.minimumCureAmount, maxPauseSeconds: m.maxPauseSeconds },
        liquidation: {
          limitPriceSlippage: "0.02",
          dustNotional: "0",
          retrySeconds: m.retrySeconds,
          maxAttempts: m.maxAttempts,
        },
        prices: {
          maxAgeSeconds: 60,
          maxDivergence: "0.05",
          minimumSources: 1,
          haltGraceSeconds: m.haltGraceSeconds,
        },
      });
    });

  const markStatus = fc.constantFrom<PriceStatus>("OK", "OK", "OK", "STALE", "DIVERGING");
  const resolve = (prices: Record<string, string>, statuses: readonly PriceStatus[]) =>
    new Map<string, ResolvedMark>(
      [...marks(prices)].map(([asset, mark], index) => [
        asset,
        { ...mark, status: statuses[index] ?? "OK", detail: statuses[index] === "OK" ? "fresh" : "bad feed" },
      ]),
    );

  // The Reg T stock account around its breach and cure lines: $60 to $75 (ratio 0.67 to 1.33).
  const stockDocument = policyDocument({
    assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") } },
  });
  const stockCase = fc
    .record({
      pol: withSettings(stockDocument),
      cents: fc.integer({ min: 6_000, max: 7_500 }),
      pending: fc.constantFrom(0, 100, 500),
      status: markStatus,
    })
    .map(({ pol, cents, pending, status }) => ({
      pol,
      acct: account({
        cash: "-10000",
        holdings: { XYZ: "200" },
        pending: pending ? [String(pending)] : [],
      }),
      resolved: resolve({ XYZ: decimal(cents, 2) }, [status]),
    }));
  const bookCase = fc
    .record({
      pol: policyDocumentArbitrary.chain(withSettings),
      acct: accountArbitrary,
      prices: pricesArbitrary,
      statuses: fc.tuple(markStatus, markStatus, markStatus),
    })
    .map(({ pol, acct, prices, statuses }) => ({ pol, acct, resolved: resolve(prices, statuses) }));

  const seconds = fc.integer({ min: -20_000, max: 2_000 });
  const callArbitrary: fc.Arbitrary<OpenCall> = fc
    .record({
      number: fc.integer({ min: 1, max: 3 }),
      issued: fc.integer({ min: -20_000, max: 0 }),
      period: fc.integer({ min: 1, max: 20_000 }),
      amountDue: fc.integer({ min: 0, max: 1_000_000 }),
      remindersSent: fc.integer({ min: 0, max: 2 }),
      attempts: fc.integer({ min: 0, max: 4 }),
      requested: seconds,
      exhausted: fc.option(seconds),
      notifiedAt: fc.integer({ min: 1, max: 40 }),
    })
    .map((c) => {
      const callId = `${ACCOUNT_ID}:call:${c.number}`;
      return {
        callId,
        callNotificationId: `${ACCOUNT_ID}:v${c.notifiedAt}:1:call`,
        issuedAt: at(c.issued),
        deadlineAt: at(c.issued + c.period),
        amountDue: decimal(c.amountDue, 2),
        remindersSent: c.remindersSent,
        liquidationAttempts: c.attempts,
        liquidationRequestId: c.attempts ? `${callId}:liquidation:${c.attempts}` : null,
        liquidationRequestedAt: c.attempts ? at(c.requested) : null,
        liquidationExhaustedAt: c.attempts && c.exhausted !== null ? at(c.exhausted) : null,
      };
    });

  const stateArbitrary = (statuses: readonly Status[]): fc.Arbitrary<CallState> =>
    fc
      .record({
        status: fc.constantFrom(...statuses),
        call: fc.option(callArbitrary, { freq: 3 }),
        forcedCall: callArbitrary,
        version: fc.integer({ min: 1, max: 50 }),
        since: seconds,
        halt: fc.option(seconds),
        resumed: fc.option(seconds),
        loss: fc.option(fc.integer({ min: 1, max: 1_000_000 })),
      })
      .map((s) => {
        const call = s.status === "CALLED" || s.status === "LIQUIDATING" ? s.forcedCall : s.call;
        return {
          accountId: ACCOUNT_ID,
          status: s.status,
          version: s.version,
          since: at(s.since),
          call,
          callsIssued: call ? Number(call.callId.split(":").at(-1)) : 0,
          halt: s.halt === null ? null : { since: at(s.halt), reason: "STALE: test" },
          resumedAt: s.resumed === null ? null : at(s.resumed),
          loss: s.loss === null ? null : decimal(s.loss, 2),
        };
      });

  const eventArbitrary = fc.record({
    report: fc.boolean(),
    attempt: fc.integer({ min: 0, max: 5 }),
    foreign: fc.boolean(),
    final: fc.boolean(),
  });
  /** A sweep, or a report on one of this call's request ids (attempt 0 to 5, some never made) or another's. */
  const eventFor = (
    state: CallState,
    e: { report: boolean; attempt: number; foreign: boolean; final: boolean },
  ): EngineEvent =>
    e.report
      ? {
          type: "EXECUTION_REPORT",
          eventId: "report",
          requestId: `${e.foreign ? `${ACCOUNT_ID}:call:99` : (state.call?.callId ?? "none")}:liquidation:${e.attempt}`,
          final: e.final,
        }
      : { type: "REVALUE", cause: "SWEEP", eventId: "sweep" };

  // CALLED and LIQUIDATING twice as often: they hold the paths that can go wrong.
  const biased: readonly Status[] = [...STATUSES, "CALLED", "LIQUIDATING"];
  const inputs = fc.record({
    case: fc.oneof(stockCase, bookCase),
    state: stateArbitrary(biased),
    event: eventArbitrary,
    now: fc.integer({ min: 0, max: 4_000 }),
  });

  it("never throws, and takes any valid state to a valid state", () => {
    fc.assert(
      fc.property(inputs, ({ case: { pol, acct, resolved }, state, event, now }) => {
        expect(callStateSchema.safeParse(state).success).toBe(true);
        const step = transition(state, assess(acct, resolved, pol), pol, eventFor(state, event), at(now));
        expect(callStateSchema.safeParse(JSON.parse(JSON.stringify(step.next))).error).toBeUndefined();
        if (step.effects.length === 0) expect(step.next).toBe(state);
        else expect(step.next.version).toBe(state.version + 1);
        for (const effect of step.effects) {
          if (effect.kind !== "REQUEST_LIQUIDATION") continue;
          expect(effect.callId).toBe(step.next.call?.callId);
          expect(effect.callNotificationId).toBe(step.next.call?.callNotificationId);
          expect(effect.requestId).toBe(`${effect.callId}:liquidation:${effect.attempt}`);
          expect(effect.attempt).toBeLessThanOrEqual(pol.liquidationMaxAttempts);
        }
      }),
      { numRuns: 1_500 },
    );
  });

  it("never requests a liquidation within haltGraceSeconds after prices recover", () => {
    fc.assert(
      fc.property(inputs, ({ case: { pol, acct, resolved }, state, event, now }) => {
        const step = transition(state, assess(acct, resolved, pol), pol, eventFor(state, event), at(now));
        const resumedAt = step.next.resumedAt;
        const inGrace =
          resumedAt !== null && Date.parse(at(now)) < Date.parse(resumedAt) + pol.haltGraceSeconds * 1000;
        if (inGrace) expect(step.effects.filter((e) => e.kind === "REQUEST_LIQUIDATION")).toEqual([]);
      }),
      { numRuns: 1_500 },
    );
  });

  it("never requests a liquidation touching an asset whose circuit breaker is tripped (invariant 10)", () => {
    const pausedSets = fc.subarray(["XYZ", "BTC", "ETH", "SOL", "AAA", "BBB"], { minLength: 1 });
    let held = 0;
    fc.assert(
      fc.property(inputs, pausedSets, ({ case: { pol, acct, resolved }, state, event, now }, assets) => {
        const pauses = new Map(assets.map((asset) => [asset, at(-60)]));
        const step = transition(
          state,
          assess(acct, resolved, pol, pauses),
          pol,
          eventFor(state, event),
          at(now),
        );
        for (const effect of step.effects) {
          if (effect.kind !== "REQUEST_LIQUIDATION") continue;
          expect(planAssets(effect.plan, pol).filter((asset) => pauses.has(asset))).toEqual([]);
        }
        // Without the pauses, the same inputs would have requested one on a paused asset: it was held.
        const free = transition(state, assess(acct, resolved, pol), pol, eventFor(state, event), at(now));
        const blocked = free.effects.some(
          (effect) =>
            effect.kind === "REQUEST_LIQUIDATION" &&
            planAssets(effect.plan, pol).some((asset) => pauses.has(asset)),
        );
        if (blocked) {
          held += 1;
          expect(step.next.status).toBe(state.status);
          expect(step.next.call?.liquidationAttempts).toBe(state.call?.liquidationAttempts);
        }
      }),
      { numRuns: 1_500 },
    );
    expect(held).toBeGreaterThan(0); // the property was exercised, not vacuous
  });

  it("never goes CALLED → CURED → CALLED at one valuation", () => {
    fc.assert(
      fc.property(
        fc.oneof(stockCase, bookCase),
        stateArbitrary(["CALLED"]),
        fc.integer({ min: 0, max: 4_000 }),
        ({ pol, acct, resolved }, state, now) => {
          const ok = new Map(
            [...resolved].map(([asset, mark]) => [asset, { ...mark, status: "OK" as const }]),
          );
          const assessment = assess(acct, ok, pol);
          const statuses: Status[] = [];
          let current = state;
          for (let index = 0; index < 3; index++) {
            current = transition(
              current,
              assessment,
              pol,
              { type: "REVALUE", cause: "SWEEP", eventId: `e${index}` },
              at(now),
            ).next;
            statuses.push(current.status);
          }
          const cured = statuses.indexOf("CURED");
          expect(cured === -1 ? [] : statuses.slice(cured)).not.toContain("CALLED");
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe("fair calls: properties over price paths, deposits and execution reports", () => {
  // The stock on margin again: A = 200·P + C, M = 50·P; the hard floor at ratio 0.5 is confirmed after 60 s.
  const rules = (metBy: "PAYMENT" | "EQUITY" | "EITHER", minimumTransferAmount: string) =>
    policy({
      assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") } },
      warning: { cushion: "0.10" },
      call: {
        restoreBuffer: "0.05",
        exitBuffer: "0.02",
        minimumTransferAmount,
        threshold: "0",
        curePeriodSeconds: 3_600,
        reminderOffsetsSeconds: [900, 1_800, 2_700],
        hardFloorRatio: "0.5",
        metBy,
        hardFloorConfirmSeconds: 60,
      },
      deposits: { minimumCureAmount: "500", maxPauseSeconds: 900 },
      liquidation: { limitPriceSlippage: "0.02", dustNotional: "0", retrySeconds: 300, maxAttempts: 3 },
    });
  const at = (seconds: number) => new Date(Date.parse(NOW) + seconds * 1000).toISOString();

  /** What happens between two revaluations: nothing, a payment (a share of what the last notice asked), or a report. */
  type Action =
    | { kind: "NONE" }
    | { kind: "PAY"; percentOfDue: number }
    | { kind: "PENDING"; percentOfDue: number }
    | { kind: "REPORT"; filled: boolean };
  const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
    fc.constant({ kind: "NONE" } as const),
    fc.constantFrom(50, 100, 150).map((percentOfDue) => ({ kind: "PAY", percentOfDue }) as const),
    fc.constantFrom(100).map((percentOfDue) => ({ kind: "PENDING", percentOfDue }) as const),
    fc.boolean().map((filled) => ({ kind: "REPORT", filled }) as const),
  );
  const pathArbitrary = fc.array(
    fc.tuple(fc.integer({ min: 4_000, max: 9_000 }), fc.integer({ min: 1, max: 1_500 }), actionArbitrary),
    { minLength: 1, maxLength: 30 },
  );
  const modeArbitrary = fc.constantFrom("PAYMENT", "EQUITY", "EITHER" as const);
  const mtaArbitrary = fc.constantFrom("0", "50");

  interface Recorded {
    readonly at: string;
    readonly before: CallState;
    readonly after: CallState;
    readonly acct: Account;
    readonly price: string;
    readonly effects: readonly Effect[];
  }

  /**
   * The borrower's own ledger, kept from what the notices said and what was paid, never from the engine's
   * state: per call, what was paid after its call notice arrived (before its deadline) and the lowest
   * total any of its notices asked for (what was paid when the notice came, plus the amount it quoted).
   */
  interface Ledger {
    readonly deadlineAt: string;
    paid: Dec;
    asked: Dec;
  }

  /** Drives the path; a payment settles into cash and is recorded as a settled deposit at that moment. */
  function drive(pol: Policy, path: ReadonlyArray<readonly [number, number, Action]>) {
    let state: CallState = initialState("acct-1", NOW);
    let cash = dec("-10000");
    let shares = dec("200");
    const settled: Array<{ depositId: string; amount: Dec; settledAt: string }> = [];
    let pending: Dec | null = null;
    let lastDue = dec("0");
    let clock = 0;
    const recorded: Recorded[] = [];
    const ledgers = new Map<string, Ledger>();
    path.forEach(([cents, secondsLater, action], index) => {
      clock += secondsLater;
      const now = at(clock);
      const price = decimal(cents, 2);
      let event: EngineEvent = { type: "REVALUE", cause: "PRICE_TICK", eventId: `e${index}` };
      if (action.kind === "PAY" && lastDue.greaterThan(0)) {
        const amount = lastDue.times(action.percentOfDue).dividedBy(100).toDecimalPlaces(2);
        cash = cash.plus(amount);
        settled.push({ depositId: `w${index}`, amount, settledAt: now });
        for (const ledger of ledgers.values())
          if (now <= ledger.deadlineAt) ledger.paid = ledger.paid.plus(amount);
        pending = null;
      }
      if (action.kind === "PENDING" && lastDue.greaterThan(0)) pending = lastDue;
      const request = state.call?.liquidationRequestId;
      if (action.kind === "REPORT" && request && state.status === "LIQUIDATING") {
        const sold = action.filled ? Dec.min(shares, dec("50")) : dec("0");
        shares = shares.minus(sold);
        cash = cash.plus(sold.times(price));
        event = {
          type: "EXECUTION_REPORT",
          eventId: `e${index}`,
          requestId: request,
          final: true,
          fills: [
            {
              reportId: `r${index}`,
              requestId: request,
              target: { kind: "HOLDING", asset: "XYZ" },
              side: "SELL",
              filledQuantity: sold.toFixed(),
              averagePrice: sold.isZero() ? null : price,
              fee: "0",
              final: true,
            },
          ],
        };
      }
      const acct: Account = {
        accountId: "acct-1",
        cash,
        holdings: [{ asset: "XYZ", quantity: shares }],
        positions: [],
        pendingDeposits: pending ? [{ depositId: "p", amount: pending }] : [],
        settledDeposits: [...settled],
      };
      const step = transition(state, assess(acct, marks({ XYZ: price }, now), pol), pol, event, now);
      for (const effect of step.effects) {
        if (effect.kind !== "NOTIFY" || effect.amountDue === null || !effect.callId) continue;
        if (effect.notice === "LIQUIDATION_NOTICE") continue;
        lastDue = dec(effect.amountDue);
        if (effect.notice === "CALL") {
          const deadlineAt = step.next.call?.deadlineAt ?? now;
          ledgers.set(effect.callId, { deadlineAt, paid: dec("0"), asked: lastDue });
        } else {
          const ledger = ledgers.get(effect.callId);
          if (ledger) ledger.asked = Dec.min(ledger.asked, ledger.paid.plus(lastDue));
        }
      }
      recorded.push({ at: now, before: state, after: step.next, acct, price, effects: step.effects });
      state = step.next;
    });
    return { recorded, ledgers };
  }

  it("(a) never requests a liquidation for a call whose borrower paid what a notice of it asked, before its deadline", () => {
    fc.assert(
      fc.property(modeArbitrary, mtaArbitrary, pathArbitrary, (mode, mta, path) => {
        const pol = rules(mode, mta);
        // Replays the path and checks, at each first request, the borrower's ledger as it stood then.
        for (let length = 1; length <= path.length; length += 1) {
          const { recorded, ledgers } = drive(pol, path.slice(0, length));
          const last = recorded.at(-1);
          for (const effect of last?.effects ?? []) {
            if (effect.kind !== "REQUEST_LIQUIDATION" || effect.attempt !== 1) continue;
            const ledger = ledgers.get(effect.callId);
            if (!ledger) throw new Error(`a request for ${effect.callId}, which no call notice announced`);
            expect(ledger.paid.lessThan(ledger.asked), `${mode} ${effect.callId}`).toBe(true);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("(b) every CALL, CALL_INCREASED and REMINDER amount, deposited at unchanged prices, meets the call", () => {
    fc.assert(
      fc.property(modeArbitrary, mtaArbitrary, pathArbitrary, (mode, mta, path) => {
        const pol = rules(mode, mta);
        for (const step of drive(pol, path).recorded) {
          for (const effect of step.effects) {
            if (effect.kind !== "NOTIFY" || !["CALL", "CALL_INCREASED", "REMINDER"].includes(effect.notice))
              continue;
            const amount = dec(effect.amountDue ?? "NaN");
            const paidAccount: Account = {
              ...step.acct,
              cash: step.acct.cash.plus(amount),
              settledDeposits: [
                ...(step.acct.settledDeposits ?? []),
                { depositId: "cure", amount, settledAt: step.at },
              ],
            };
            const at = (when: string) => assess(paidAccount, marks({ XYZ: step.price }, when), pol);
            const event = { type: "REVALUE", cause: "ACCOUNT_CHANGE", eventId: "cure" } as const;
            const closes = (next: Step) =>
              next.effects.some((other) => other.kind === "AUDIT" && other.closure?.callId === effect.callId);
            const now = transition(step.after, at(step.at), pol, event, step.at);
            if (closes(now)) continue;
            // Under EQUITY an account out of breach that paid waits for the deadline: met there, never
            // liquidated, at the same prices.
            const deadlineAt = step.after.call?.deadlineAt ?? step.at;
            const later = transition(
              now.next,
              at(deadlineAt),
              pol,
              { ...event, eventId: "deadline" },
              deadlineAt,
            );
            expect(closes(later), `${mode} ${effect.notice} ${effect.amountDue}`).toBe(true);
            expect(later.effects.some((other) => other.kind === "REQUEST_LIQUIDATION")).toBe(false);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it("(c) records exactly one way each closed call was met, and none for a call still open", () => {
    fc.assert(
      fc.property(modeArbitrary, mtaArbitrary, pathArbitrary, (mode, mta, path) => {
        const { recorded } = drive(rules(mode, mta), path);
        const ways = new Map<string, string[]>();
        const issued = new Set<string>();
        for (const step of recorded) {
          for (const effect of step.effects) {
            if (effect.kind === "NOTIFY" && effect.notice === "CALL" && effect.callId)
              issued.add(effect.callId);
            if (effect.kind === "AUDIT" && effect.closure) {
              ways.set(effect.closure.callId, [
                ...(ways.get(effect.closure.callId) ?? []),
                effect.closure.how,
              ]);
            }
          }
        }
        const last = recorded.at(-1)?.after;
        const open =
          last && (last.status === "CALLED" || last.status === "LIQUIDATING") ? last.call?.callId : undefined;
        for (const callId of issued) {
          expect(ways.get(callId)?.length ?? 0, `${mode} ${callId}`).toBe(callId === open ? 0 : 1);
        }
      }),
      { numRuns: 400 },
    );
  });
});
