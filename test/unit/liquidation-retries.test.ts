/**
 * Liquidation retries count from the dispatch of a request, not from the commit that created it: the relay
 * may put the request on the bus minutes later. One stock bought on margin (as in fair-calls.test.ts): 200
 * shares of XYZ, a $10,000 loan, 25% maintenance, restore and exit buffers of 5%, a one-hour cure period,
 * retrySeconds 300. The call is issued at $66.66 and liquidated at its deadline (t0): sell 10 shares.
 */
import { describe, expect, it } from "vitest";
import { assess } from "../../functions/domain/assess.ts";
import { decide } from "../../functions/domain/decide.ts";
import {
  type CallState,
  type Effect,
  type ExecutionFill,
  initialState,
  type LiquidationDispatch,
  nextDueAt,
  type Step,
  transition,
} from "../../functions/domain/machine.ts";
import { dec } from "../../functions/domain/money.ts";
import { evaluateSnapshot, plain } from "../../functions/domain/snapshot.ts";
import type { Account } from "../../functions/domain/valuation.ts";
import { flatTier, marks, NOW, policy, policyDocument } from "../support/domain-builders.ts";

const RETRY = 300;
const rules = policy({
  assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") } },
  call: {
    ...policyDocument().call,
    restoreBuffer: "0.05",
    exitBuffer: "0.05",
    curePeriodSeconds: 3_600,
    hardFloorRatio: "0.5",
  },
  liquidation: { limitPriceSlippage: "0.02", dustNotional: "0", retrySeconds: RETRY, maxAttempts: 3 },
});

type Request = Extract<Effect, { kind: "REQUEST_LIQUIDATION" }>;
const requests = (step: Step): Request[] =>
  step.effects.filter((effect): effect is Request => effect.kind === "REQUEST_LIQUIDATION");
const sellQuantity = (request: Request | undefined) => request?.plan.steps[0]?.quantity.toFixed();
const at = (seconds: number) => new Date(Date.parse(NOW) + seconds * 1000).toISOString();

/** One account on a clock (seconds after NOW), liquidated at its deadline; `t0` is the commit of attempt 1. */
class Liquidation {
  state: CallState = initialState("acct-1", NOW);
  clock = 0;
  cash = dec("-10000");
  shares = "200";
  /** When the relay put each request on the bus, by requestId: what the loader reads from the Outbox. */
  dispatched = new Map<string, string>();
  fills: ExecutionFill[] = [];
  readonly t0: number;
  private events = 0;

  constructor() {
    this.revalue(0);
    this.revalue(3_600);
    expect(this.state.status).toBe("LIQUIDATING");
    this.t0 = this.clock;
  }

  account(): Account {
    return {
      accountId: "acct-1",
      cash: this.cash,
      holdings: [{ asset: "XYZ", quantity: dec(this.shares) }],
      positions: [],
      pendingDeposits: [],
    };
  }

  /** The dispatch input of the current request, as the loader reads it; undefined outside LIQUIDATING. */
  dispatch(): LiquidationDispatch | undefined {
    const requestId = this.state.call?.liquidationRequestId;
    if (this.state.status !== "LIQUIDATING" || !requestId) return undefined;
    return { requestId, dispatchedAt: this.dispatched.get(requestId) ?? null };
  }

  /** The relay puts the current request on the bus at `atSeconds`. */
  relay(atSeconds: number): void {
    this.dispatched.set(this.state.call?.liquidationRequestId ?? "", at(atSeconds));
  }

  revalue(atSeconds: number, price = "66.66"): Step {
    return this.step(atSeconds, price, { type: "REVALUE", cause: "SWEEP", eventId: `e${++this.events}` });
  }

  /** The execution system reports a fill of `quantity` shares at `price`, with the holding and cash it moved. */
  fill(atSeconds: number, quantity: string, final: boolean, price = "66.66"): Step {
    const requestId = this.state.call?.liquidationRequestId ?? "";
    this.shares = dec(this.shares).minus(quantity).toFixed();
    this.cash = this.cash.plus(dec(quantity).times(price));
    this.fills.push({
      reportId: `fill-${this.fills.length + 1}`,
      requestId,
      target: { kind: "HOLDING", asset: "XYZ" },
      side: "SELL",
      filledQuantity: quantity,
      averagePrice: dec(quantity).isZero() ? null : price,
      fee: "0",
      final,
    });
    const eventId = `e${++this.events}`;
    return this.step(atSeconds, price, {
      type: "EXECUTION_REPORT",
      eventId,
      requestId,
      final,
      fills: [...this.fills],
    });
  }

  /** The decision the engine makes now, with its replay snapshot as the audit log stores it. */
  decision(atSeconds: number, dispatch: LiquidationDispatch | undefined) {
    const now = at(atSeconds);
    const decision = decide({
      state: this.state,
      account: this.account(),
      sources: new Map([["XYZ", [{ source: "test", price: dec("66.66"), asOf: now }]]]),
      marks: marks({ XYZ: "66.66" }, now),
      policy: rules,
      event: { type: "REVALUE", cause: "SWEEP", eventId: "replayed" },
      now,
      liquidationDispatch: dispatch,
    });
    return { step: decision.step, snapshot: JSON.parse(JSON.stringify(plain(decision.snapshot()))) };
  }

  private step(atSeconds: number, price: string, event: Parameters<typeof transition>[3]): Step {
    this.clock = atSeconds;
    const now = at(this.clock);
    const assessment = assess(this.account(), marks({ XYZ: price }, now), rules);
    const step = transition(this.state, assessment, rules, event, now, this.dispatch());
    this.state = step.next;
    return step;
  }
}

describe("liquidation retries count from the dispatch", () => {
  it("sends no attempt 2 while the relay stalls, and sends it retrySeconds after the dispatch", () => {
    const liquidation = new Liquidation();
    const { t0 } = liquidation;
    expect(liquidation.state.call?.liquidationRequestedAt).toBe(at(t0));
    // The relay stalls for 10 minutes: the commit is old, the request has not gone out.
    for (let seconds = t0 + RETRY; seconds < t0 + 600; seconds += 60) {
      const step = liquidation.revalue(seconds);
      expect(requests(step), `at t0+${seconds - t0} s`).toEqual([]);
      expect(step.effects).toEqual([]);
    }
    liquidation.relay(t0 + 600);
    expect(requests(liquidation.revalue(t0 + 600))).toEqual([]);
    expect(requests(liquidation.revalue(t0 + 600 + RETRY - 1))).toEqual([]);
    const retry = liquidation.revalue(t0 + 600 + RETRY);
    expect(requests(retry).map((request) => request.attempt)).toEqual([2]);
    expect(liquidation.state.call?.liquidationAttempts).toBe(2);
    // Attempt 2 waits for its own dispatch, not for attempt 1's.
    expect(requests(liquidation.revalue(t0 + 600 + 2 * RETRY))).toEqual([]);
  });

  it("puts the sweep on the retry retrySeconds after the dispatch when it is known", () => {
    const liquidation = new Liquidation();
    const { state, t0 } = liquidation;
    expect(nextDueAt(state, rules)).toBe(at(t0 + RETRY));
    const requestId = state.call?.liquidationRequestId ?? "";
    expect(nextDueAt(state, rules, { requestId, dispatchedAt: null })).toBe(at(t0 + RETRY));
    expect(nextDueAt(state, rules, { requestId, dispatchedAt: at(t0 + 600) })).toBe(at(t0 + 600 + RETRY));
    expect(nextDueAt(state, rules, { requestId: "other", dispatchedAt: at(t0 + 600) })).toBe(at(t0 + RETRY));
  });
});

describe("a request the relay never dispatched", () => {
  it("is never retried by timeout, and never flagged exhausted, however old its commit", () => {
    const liquidation = new Liquidation();
    const { t0 } = liquidation;
    for (const seconds of [RETRY, 2 * RETRY, 3 * RETRY, 3_600, 86_400]) {
      const step = liquidation.revalue(t0 + seconds);
      expect(step.effects, `at t0+${seconds} s`).toEqual([]);
    }
    expect(liquidation.state.call).toMatchObject({ liquidationAttempts: 1, liquidationExhaustedAt: null });
  });

  it("still ends its attempt at once on a final report that filled nothing", () => {
    for (const relayed of [true, false]) {
      const liquidation = new Liquidation();
      const { t0 } = liquidation;
      if (relayed) liquidation.relay(t0 + 10);
      const ended = liquidation.fill(t0 + 60, "0", true);
      expect(
        requests(ended).map((request) => [request.attempt, request.reason, sellQuantity(request)]),
        relayed ? "dispatched" : "dispatch not recorded",
      ).toEqual([[2, "RETRY", "10"]]);
      expect(liquidation.state.status).toBe("LIQUIDATING");
    }
  });
});

describe("retries take partial fills into account", () => {
  it("asks only for what is still to be sold, and supersedes a partly filled attempt once", () => {
    const liquidation = new Liquidation();
    const { t0 } = liquidation;
    liquidation.relay(t0 + 10);
    // Attempt 1 sells 10; 4 fill (holding and cash written with the report, as the data contract says).
    const partial = liquidation.fill(t0 + 100, "4", false);
    expect(partial.effects).toEqual([]);
    expect(requests(liquidation.revalue(t0 + 10 + RETRY - 1))).toEqual([]);
    const retry = liquidation.revalue(t0 + 10 + RETRY);
    expect(requests(retry).map((request) => [request.attempt, sellQuantity(request)])).toEqual([[2, "6"]]);
    liquidation.relay(t0 + 320);
    // A late fill of the superseded attempt neither settles nor re-plans: attempt 2 waits its own period.
    const late = liquidation.fill(t0 + 500, "1", false);
    expect(late.effects).toEqual([]);
    const again = liquidation.revalue(t0 + 320 + RETRY);
    expect(requests(again).map((request) => [request.attempt, sellQuantity(request)])).toEqual([[3, "5"]]);
    liquidation.relay(t0 + 630);
    const done = liquidation.fill(t0 + 700, "5", true);
    expect(liquidation.state.status).toBe("LIQUIDATED");
    const closure = done.effects.find((effect) => effect.kind === "AUDIT" && effect.closure);
    expect(closure?.kind === "AUDIT" && closure.closure?.sold.map((line) => line.quantity)).toEqual(["10"]);
  });
});

describe("the replay snapshot", () => {
  it("keeps the dispatch, so margin-call evaluate reproduces the decision", () => {
    const liquidation = new Liquidation();
    const { t0 } = liquidation;
    liquidation.relay(t0 + 600);
    for (const seconds of [RETRY, 600 + RETRY]) {
      const { step, snapshot } = liquidation.decision(t0 + seconds, liquidation.dispatch());
      expect(snapshot.liquidationDispatch).toEqual(liquidation.dispatch());
      const replay = evaluateSnapshot(snapshot);
      expect(replay.step).toEqual(step);
      expect(requests(replay.step).length, `at t0+${seconds} s`).toBe(seconds === RETRY ? 0 : 1);
    }
  });

  it("replays an older snapshot without it by the old rule: retrySeconds after the commit", () => {
    const liquidation = new Liquidation();
    const { t0 } = liquidation;
    const { step, snapshot } = liquidation.decision(t0 + RETRY, undefined);
    expect(snapshot).not.toHaveProperty("liquidationDispatch");
    const replay = evaluateSnapshot(snapshot);
    expect(replay.step).toEqual(step);
    expect(requests(replay.step).map((request) => request.attempt)).toEqual([2]);
  });
});
