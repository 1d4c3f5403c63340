/**
 * Examples of the state machine's edge cases, each worked by hand on the Reg T account of worked-examples:
 * 200 shares bought at $100 with a $10,000 debit, 25% maintenance. At price P the account has
 * equity A = 200·P − 10,000 and requirement M = 50·P, so the ratio is 4 − 200/P (breach below $66.67).
 */
import { describe, expect, it } from "vitest";
import { assess } from "../../functions/domain/assess.ts";
import {
  assertStep,
  type CallState,
  type Effect,
  type EngineEvent,
  type ExecutionFill,
  initialState,
  liquidationFee,
  type Step,
  transition,
} from "../../functions/domain/machine.ts";
import type { PolicyDocument } from "../../functions/domain/policy.ts";
import type { ResolvedMark } from "../../functions/domain/prices.ts";
import { renderNotice } from "../../functions/notify/render.ts";
import { account, flatTier, marks, NOW, policy, policyDocument } from "../support/domain-builders.ts";

type Call = NonNullable<PolicyDocument["call"]>;

function regTPolicy(
  call: Partial<Call> = {},
  rest: { haltGraceSeconds?: number; maxAttempts?: number; feeRate?: string } = {},
) {
  const base = policyDocument();
  return policy({
    assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") } },
    call: {
      ...base.call,
      restoreBuffer: "0.05",
      exitBuffer: "0.05",
      curePeriodSeconds: 3_600,
      hardFloorRatio: "0.5",
      // These examples liquidate at the hard floor at once; the confirmation delay has its own tests.
      hardFloorConfirmSeconds: 0,
      ...call,
    },
    liquidation: {
      limitPriceSlippage: "0.02",
      dustNotional: "0",
      retrySeconds: 300,
      maxAttempts: rest.maxAttempts ?? 3,
      ...(rest.feeRate === undefined ? {} : { feeRate: rest.feeRate }),
    },
    prices: {
      maxAgeSeconds: 60,
      maxDivergence: "0.05",
      minimumSources: 1,
      haltGraceSeconds: rest.haltGraceSeconds ?? 0,
    },
  });
}

/** One account driven through assess + transition on a clock that starts at NOW. */
class Driver {
  state: CallState;
  clock = 0;
  private events = 0;
  cash = "-10000";

  constructor(readonly pol: ReturnType<typeof regTPolicy>) {
    this.state = initialState("acct-1", NOW);
  }

  now(): string {
    return new Date(Date.parse(NOW) + this.clock * 1000).toISOString();
  }

  step(
    price: string,
    secondsLater: number,
    options: { stale?: boolean; report?: string; pausedSince?: string; fills?: ExecutionFill[] } = {},
  ): Step {
    this.clock += secondsLater;
    const now = this.now();
    const resolved = new Map<string, ResolvedMark>(
      [...marks({ XYZ: price }, now)].map(([asset, mark]) => [
        asset,
        options.stale ? { ...mark, status: "STALE", detail: "feed silent" } : mark,
      ]),
    );
    const eventId = `e${++this.events}`;
    const event: EngineEvent =
      options.report === undefined
        ? { type: "REVALUE", cause: "SWEEP", eventId }
        : {
            type: "EXECUTION_REPORT",
            eventId,
            requestId: options.report,
            final: true,
            ...(options.fills ? { fills: options.fills } : {}),
          };
    const borrower = account({ cash: this.cash, holdings: { XYZ: "200" } });
    const pauses = options.pausedSince ? new Map([["XYZ", options.pausedSince]]) : undefined;
    const step = transition(this.state, assess(borrower, resolved, this.pol, pauses), this.pol, event, now);
    this.state = step.next;
    return step;
  }
}

const kinds = (step: Step): string[] =>
  step.effects.map((effect) =>
    effect.kind === "AUDIT"
      ? `AUDIT ${effect.from}->${effect.to}`
      : effect.kind === "NOTIFY"
        ? `NOTIFY ${effect.notice}`
        : effect.kind === "REQUEST_LIQUIDATION"
          ? `REQUEST_LIQUIDATION ${effect.reason} ${effect.attempt}`
          : effect.kind,
  );

const requests = (step: Step) =>
  step.effects.filter(
    (effect): effect is Extract<Effect, { kind: "REQUEST_LIQUIDATION" }> =>
      effect.kind === "REQUEST_LIQUIDATION",
  );
const notices = (step: Step) =>
  step.effects.filter((effect): effect is Extract<Effect, { kind: "NOTIFY" }> => effect.kind === "NOTIFY");

describe("a call not met in full by its deadline", () => {
  // Called at $60 (A 2,000, M 3,000). At $67.50: A = 3,500, M = 3,375, ratio 1.037: out of breach, but
  // below the cure line M × 1.05 = 3,543.75. The restore target is also 3,543.75, so the remaining deficit
  // is 43.75. Each share sold at $67.50 lowers M by 16.875 and the target by 17.71875: 43.75 / 17.71875 =
  // 2.47, so 3 shares.
  it("liquidates only the remaining deficit, instead of throwing", () => {
    const driver = new Driver(regTPolicy());
    expect(driver.step("60", 0).next.status).toBe("CALLED");
    expect(driver.step("67.50", 3_599).next.status).toBe("CALLED");
    const step = driver.step("67.50", 1);
    expect(step.next.status).toBe("LIQUIDATING");
    expect(kinds(step)).toEqual([
      "AUDIT CALLED->LIQUIDATING",
      "NOTIFY LIQUIDATION_NOTICE",
      "REQUEST_LIQUIDATION DEADLINE 1",
    ]);
    const [request] = requests(step);
    expect(request?.plan.restoresTarget).toBe(true);
    expect(request?.plan.steps).toHaveLength(1);
    expect(request?.plan.steps[0]).toMatchObject({ side: "SELL", closesAll: false });
    expect(request?.plan.steps[0]?.quantity.toFixed()).toBe("3");
  });

  it("is cured instead when the account is back at the cure line", () => {
    const driver = new Driver(regTPolicy());
    driver.step("60", 0);
    // $68.97: A = 3,794, M = 3,448.50, cure line 3,620.925.
    expect(driver.step("68.97", 3_600).next.status).toBe("CURED");
  });
});

describe("the cure line never sits below the call line", () => {
  // Threshold 100, exitBuffer 0.02, restoreBuffer 0.05, at $66.50: A = 3,300, M = 3,325, in breach.
  // Target = 3,325 × 1.05 − 100 = 3,391.25, so a call of 91.25. The bare cure line M × 1.02 − 100 =
  // 3,291.50 is below A: without the floor the account was cured and called again on every revaluation.
  it("keeps a called account CALLED inside the band, with one call notice", () => {
    const driver = new Driver(regTPolicy({ exitBuffer: "0.02", threshold: "100" }));
    const steps = [driver.step("66.50", 0), driver.step("66.50", 60), driver.step("66.50", 60)];
    expect(steps.map((step) => step.next.status)).toEqual(["CALLED", "CALLED", "CALLED"]);
    expect(steps.flatMap(notices).map((notice) => notice.notice)).toEqual(["CALL"]);
    expect(steps[0] && notices(steps[0])[0]?.amountDue).toBe("91.25");
  });

  it("cures a called account once the amount due is paid", () => {
    const driver = new Driver(regTPolicy({ exitBuffer: "0.02", threshold: "100" }));
    driver.step("66.50", 0);
    driver.cash = "-9908.75";
    expect(driver.step("66.50", 60).next.status).toBe("CURED");
    // Out of breach (ratio 1.0199) but inside the warning cushion: a warning, not a new call.
    expect(driver.step("66.50", 60).next.status).toBe("WARNING");
  });

  // Threshold 200 at $66: A = 3,200, M = 3,300, target 3,465 − 200 = 3,265 < M, a call of 65. Paying it
  // leaves A = 3,265, still under M: the cure line is the target here, so paying the call still cures it.
  it("cures on payment even when the threshold puts the target below the requirement", () => {
    const driver = new Driver(regTPolicy({ exitBuffer: "0.02", threshold: "200" }));
    const called = driver.step("66", 0);
    expect(called.next.status).toBe("CALLED");
    expect(notices(called)[0]?.amountDue).toBe("65.00");
    driver.cash = "-9935";
    expect(driver.step("66", 60).next.status).toBe("CURED");
    expect(driver.step("66", 60).next.status).not.toBe("CALLED");
  });
});

describe("liquidation after a price halt", () => {
  it("sends no retry within haltGraceSeconds of the recovery", () => {
    const driver = new Driver(regTPolicy({}, { haltGraceSeconds: 600 }));
    expect(driver.step("50", 0).next.status).toBe("LIQUIDATING");
    expect(driver.step("50", 60, { stale: true }).next.halt).not.toBeNull();
    const recovery = driver.step("50", 340); // 400 s after the request: a retry is due, but in grace
    expect(recovery.next.resumedAt).toBe(driver.now());
    expect(requests(recovery)).toEqual([]);
    expect(requests(driver.step("50", 599))).toEqual([]);
    const retry = driver.step("50", 1);
    expect(kinds(retry)).toEqual(["AUDIT LIQUIDATING->LIQUIDATING", "REQUEST_LIQUIDATION RETRY 2"]);
  });
});

describe("the circuit breaker (invariant 10)", () => {
  const audits = (step: Step) =>
    step.effects.flatMap((effect) =>
      effect.kind === "AUDIT" ? [`${effect.from}->${effect.to}: ${effect.reason}`] : [],
    );

  it("holds a hard-floor liquidation while XYZ's breaker is tripped, records the hold once, and sends it after", () => {
    const driver = new Driver(regTPolicy());
    const pausedSince = driver.now();
    // At $50 the ratio is 4 − 200/50 = 0, below the hard floor of 0.5: called and due for liquidation at once.
    const first = driver.step("50", 0, { pausedSince });
    expect(first.next.status).toBe("CALLED");
    expect(notices(first).map((notice) => notice.notice)).toEqual(["CALL"]);
    expect(requests(first)).toEqual([]);
    expect(audits(first).at(-1)).toBe(
      `CALLED->CALLED: liquidation paused by the circuit breaker: XYZ since ${pausedSince}`,
    );
    expect(first.next.call?.liquidationPausedAt).toBe(driver.now());

    expect(driver.step("50", 60, { pausedSince }).effects).toEqual([]); // still held: nothing new to record

    const released = driver.step("50", 60);
    expect(kinds(released)).toEqual([
      "AUDIT CALLED->LIQUIDATING",
      "NOTIFY LIQUIDATION_NOTICE",
      "REQUEST_LIQUIDATION HARD_FLOOR 1",
    ]);
    expect(released.next.call?.liquidationPausedAt).toBeNull();
  });

  it("holds a retry the same way, and ignores a pause on an asset the plan does not touch", () => {
    const driver = new Driver(regTPolicy());
    expect(requests(driver.step("50", 0))).toHaveLength(1);
    const held = driver.step("50", 300, { pausedSince: driver.now() });
    expect(requests(held)).toEqual([]);
    expect(held.next.status).toBe("LIQUIDATING");
    expect(held.next.call?.liquidationAttempts).toBe(1);
    const borrower = account({ cash: driver.cash, holdings: { XYZ: "200" } });
    const otherAsset = transition(
      driver.state,
      assess(borrower, marks({ XYZ: "50" }, driver.now()), driver.pol, new Map([["BTC", driver.now()]])),
      driver.pol,
      { type: "REVALUE", cause: "SWEEP", eventId: "other" },
      driver.now(),
    );
    expect(kinds(otherAsset)).toEqual(["AUDIT LIQUIDATING->LIQUIDATING", "REQUEST_LIQUIDATION RETRY 2"]);
  });
});

describe("execution reports", () => {
  it("settles a liquidation on a final report during a price halt", () => {
    const driver = new Driver(regTPolicy());
    driver.step("50", 0);
    const step = driver.step("68", 60, { stale: true, report: "acct-1:call:1:liquidation:1" });
    expect(step.next.status).toBe("LIQUIDATED");
    expect(step.next.halt).not.toBeNull();
    expect(kinds(step)).toEqual([
      "AUDIT LIQUIDATING->LIQUIDATING",
      "AUDIT LIQUIDATING->LIQUIDATED",
      "NOTIFY LIQUIDATION_COMPLETE",
    ]);
    // Still halted: nothing else happens until prices recover.
    expect(driver.step("60", 60, { stale: true }).effects).toEqual([]);
  });

  it("settles on a final report for an earlier attempt's request", () => {
    const driver = new Driver(regTPolicy());
    driver.step("50", 0);
    expect(driver.step("50", 300).next.call?.liquidationAttempts).toBe(2);
    expect(driver.step("68", 60, { report: "acct-1:call:1:liquidation:1" }).next.status).toBe("LIQUIDATED");
  });

  it("ignores a report for a request this call never made", () => {
    const driver = new Driver(regTPolicy());
    driver.step("50", 0);
    expect(driver.step("68", 60, { report: "acct-1:call:1:liquidation:2" }).effects).toEqual([]);
    expect(driver.step("68", 60, { report: "acct-1:call:2:liquidation:1" }).effects).toEqual([]);
    expect(driver.state.status).toBe("LIQUIDATING");
  });

  it("flags the liquidation as exhausted, once, after maxAttempts without a final fill", () => {
    const driver = new Driver(regTPolicy({}, { maxAttempts: 2 }));
    driver.step("50", 0);
    expect(kinds(driver.step("50", 300))).toEqual([
      "AUDIT LIQUIDATING->LIQUIDATING",
      "REQUEST_LIQUIDATION RETRY 2",
    ]);
    expect(kinds(driver.step("50", 299))).toEqual([]);
    const exhausted = driver.step("50", 1);
    expect(kinds(exhausted)).toEqual(["AUDIT LIQUIDATING->LIQUIDATING"]);
    const [audit] = exhausted.effects;
    expect(audit?.kind === "AUDIT" && audit.reason).toMatch(/^liquidation exhausted/);
    expect(exhausted.next.call?.liquidationExhaustedAt).toBe(driver.now());
    expect(driver.step("50", 3_600).effects).toEqual([]);
    const settled = driver.step("40", 60, { report: "acct-1:call:1:liquidation:2" });
    expect(settled.next.status).toBe("BAD_DEBT");
  });
});

describe("notices and liquidation requests", () => {
  it("tells the borrower when the liquidation completes, with the loss on bad debt", () => {
    const clean = new Driver(regTPolicy());
    clean.step("50", 0);
    const done = clean.step("68", 60, { report: "acct-1:call:1:liquidation:1" });
    expect(kinds(done)).toEqual(["AUDIT LIQUIDATING->LIQUIDATED", "NOTIFY LIQUIDATION_COMPLETE"]);
    expect(notices(done)[0]).toMatchObject({ callId: "acct-1:call:1", loss: null, cureOptions: [] });

    const short = new Driver(regTPolicy());
    short.step("50", 0);
    // At $40: equity 8,000 − 10,000 = −2,000.
    const bad = short.step("40", 60, { report: "acct-1:call:1:liquidation:1" });
    expect(kinds(bad)).toEqual(["AUDIT LIQUIDATING->BAD_DEBT", "RECORD_LOSS", "NOTIFY LIQUIDATION_COMPLETE"]);
    const [notice] = notices(bad);
    expect(notice).toMatchObject({ loss: "2000.00", callId: "acct-1:call:1" });
    if (!notice) throw new Error("no notice");
    const rendered = renderNotice(
      { ...notice, cureOptions: [] },
      { timeZone: "America/New_York", currency: "USD" },
    );
    expect(rendered.sms).toContain("2,000.00 USD");
  });

  it("names the call notice in every liquidation request, and the amount due in the liquidation notice", () => {
    const driver = new Driver(regTPolicy());
    const first = driver.step("50", 0);
    const call = notices(first).find((notice) => notice.notice === "CALL");
    const warning = notices(first).find((notice) => notice.notice === "LIQUIDATION_NOTICE");
    expect(call?.notificationId).toBe("acct-1:v1:1:call");
    expect(first.next.call?.callNotificationId).toBe("acct-1:v1:1:call");
    expect(warning?.amountDue).toBe(first.next.call?.amountDue);
    expect(warning?.amountDue).toBe("2625.00");
    expect(requests(first)[0]?.callNotificationId).toBe("acct-1:v1:1:call");
    expect(requests(driver.step("50", 300))[0]?.callNotificationId).toBe("acct-1:v1:1:call");

    const later = new Driver(regTPolicy());
    expect(later.step("68", 0).next.status).toBe("WARNING");
    const called = later.step("60", 60);
    expect(notices(called)[0]?.notificationId).toBe("acct-1:v2:1:call");
    expect(requests(later.step("60", 3_600))[0]?.callNotificationId).toBe("acct-1:v2:1:call");
  });
});

describe("the postconditions transition() asserts", () => {
  const driver = () => new Driver(regTPolicy());
  it("refuse a step whose version does not rise by exactly one, or whose audits do not chain", () => {
    const healthy = driver().state;
    const called = new Driver(regTPolicy());
    const step = called.step("60", 0);
    expect(() => assertStep(healthy, step)).not.toThrow();
    expect(() => assertStep(healthy, { ...step, next: { ...step.next, version: 2 } })).toThrow(
      /version 0 → 2/,
    );
    const [, ...withoutAudit] = step.effects;
    expect(() => assertStep(healthy, { ...step, effects: withoutAudit })).toThrow(/audits end at HEALTHY/);
    expect(() => assertStep(healthy, { next: healthy, effects: step.effects })).toThrow(/left the state/);
  });

  it("refuse a liquidation request without a call, or naming a notice that was never issued", () => {
    const floor = driver().step("50", 0);
    const request = floor.effects.find((effect) => effect.kind === "REQUEST_LIQUIDATION");
    if (!request) throw new Error("no request");
    const healthy = driver().state;
    const withoutCall = floor.effects.filter(
      (effect) => !(effect.kind === "AUDIT" && effect.to === "CALLED"),
    );
    expect(() => assertStep(healthy, { ...floor, effects: withoutCall })).toThrow();
    const unnamed = floor.effects.map((effect) =>
      effect.kind === "REQUEST_LIQUIDATION" ? { ...effect, callNotificationId: "nobody" } : effect,
    );
    expect(() => assertStep(healthy, { ...floor, effects: unnamed })).toThrow(/never issued/);
  });
});

describe("the liquidation fee, for the insurance fund", () => {
  const fill = (requestId: string, quantity: string, price: string): ExecutionFill => ({
    reportId: `r-${requestId}-${quantity}`,
    requestId,
    target: { kind: "HOLDING", asset: "XYZ" },
    side: "SELL",
    filledQuantity: quantity,
    averagePrice: price,
    fee: "0",
    final: true,
  });
  const feeOf = (step: Step) =>
    step.effects.filter(
      (effect): effect is Extract<Effect, { kind: "FUND_FEE" }> => effect.kind === "FUND_FEE",
    );

  it("credits Σ quantity × average price × feeRate over the call's fills, DOWN at the cent, after the notice", () => {
    const driver = new Driver(regTPolicy({}, { feeRate: "0.01" }));
    driver.step("50", 0);
    const requestId = "acct-1:call:1:liquidation:1";
    // 37 × 68.13 + 3 × 68.01 = 2,520.81 + 204.03 = 2,724.84; × 0.01 = 27.2484: 27.24 (DOWN). A fill of
    // another call's request counts for nothing.
    const fills = [
      fill(requestId, "37", "68.13"),
      fill(requestId, "3", "68.01"),
      fill("acct-1:call:9:liquidation:1", "5", "70"),
    ];
    const done = driver.step("68", 60, { report: requestId, fills });
    expect(kinds(done)).toEqual(["AUDIT LIQUIDATING->LIQUIDATED", "NOTIFY LIQUIDATION_COMPLETE", "FUND_FEE"]);
    expect(feeOf(done)).toEqual([
      {
        kind: "FUND_FEE",
        flowId: `${requestId}:fee`,
        accountId: "acct-1",
        callId: "acct-1:call:1",
        requestId,
        currency: driver.pol.currency,
        amount: "27.24",
      },
    ]);
  });

  it("credits the fee of a liquidation that ends in bad debt too, and none under a fee rate of 0 or below a cent", () => {
    const short = new Driver(regTPolicy({}, { feeRate: "0.01" }));
    short.step("50", 0);
    const requestId = "acct-1:call:1:liquidation:1";
    const bad = short.step("40", 60, { report: requestId, fills: [fill(requestId, "200", "40")] });
    expect(kinds(bad)).toEqual([
      "AUDIT LIQUIDATING->BAD_DEBT",
      "RECORD_LOSS",
      "NOTIFY LIQUIDATION_COMPLETE",
      "FUND_FEE",
    ]);
    expect(feeOf(bad)[0]?.amount).toBe("80.00");

    const free = new Driver(regTPolicy());
    free.step("50", 0);
    expect(feeOf(free.step("68", 60, { report: requestId, fills: [fill(requestId, "40", "68")] }))).toEqual(
      [],
    );
    const call = short.state.call;
    if (!call) throw new Error("no call");
    expect(liquidationFee([fill(requestId, "1", "0.99")], call, short.pol).toFixed()).toBe("0");
  });
});
