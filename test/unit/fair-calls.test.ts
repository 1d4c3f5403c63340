/**
 * Calls a borrower can trust: each reproduction of the issue, worked on one stock bought on margin.
 *
 * 200 shares, a $10,000 loan (cash −10,000), 25% maintenance, restore and exit buffers of 5%. At price P
 * with cash C: adjusted equity A = 200·P + C, requirement M = 50·P, restore target 52.5·P, cure line
 * M × 1.05 = 52.5·P as well. A call is 52.5·P − A, rounded up to the cent.
 */
import { describe, expect, it } from "vitest";
import { assess } from "../../functions/domain/assess.ts";
import {
  type CallState,
  type Effect,
  type EngineEvent,
  type ExecutionFill,
  initialState,
  type Step,
  transition,
} from "../../functions/domain/machine.ts";
import { dec } from "../../functions/domain/money.ts";
import type { PolicyDocument } from "../../functions/domain/policy.ts";
import { resolveMark, type SourceMark } from "../../functions/domain/prices.ts";
import { evaluateSnapshot, plain } from "../../functions/domain/snapshot.ts";
import type { Account, SettledDeposit } from "../../functions/domain/valuation.ts";
import { parseTick } from "../../functions/handlers/price-ticks.ts";
import { type NoticePayload, renderNotice } from "../../functions/notify/render.ts";
import { flatTier, marks, NOW, policy, policyDocument } from "../support/domain-builders.ts";

type CallSettings = Partial<NonNullable<PolicyDocument["call"]>>;

function stockPolicy(call: CallSettings = {}, deposits: Partial<PolicyDocument["deposits"]> = {}) {
  const base = policyDocument();
  return policy({
    assets: { XYZ: { quantityScale: 0, priceScale: 2, haircut: "0", longTiers: flatTier("0.25", "0.5") } },
    call: {
      ...base.call,
      restoreBuffer: "0.05",
      exitBuffer: "0.05",
      curePeriodSeconds: 3_600,
      hardFloorRatio: "0.5",
      ...call,
    },
    deposits: { minimumCureAmount: "0", maxPauseSeconds: 1_800, ...deposits },
    liquidation: { limitPriceSlippage: "0.02", dustNotional: "0", retrySeconds: 300, maxAttempts: 2 },
  });
}

/** One borrower on a clock: the cash ledger, settled deposits and deposits in flight, as upstream writes them. */
class Borrower {
  state: CallState = initialState("acct-1", NOW);
  clock = 0;
  cash = dec("-10000");
  shares = "200";
  settled: SettledDeposit[] = [];
  pending: string | null = null;
  private events = 0;

  constructor(readonly rules: ReturnType<typeof stockPolicy>) {}

  now(): string {
    return new Date(Date.parse(NOW) + this.clock * 1000).toISOString();
  }

  account(): Account {
    return {
      accountId: "acct-1",
      cash: this.cash,
      holdings: [{ asset: "XYZ", quantity: dec(this.shares) }],
      positions: [],
      pendingDeposits: this.pending ? [{ depositId: "wire-pending", amount: dec(this.pending) }] : [],
      settledDeposits: this.settled,
    };
  }

  /** A deposit settles: the cash holding and the SETTLED record, one upstream change. */
  pay(amount: string): void {
    this.cash = this.cash.plus(amount);
    this.settled.push({
      depositId: `wire-${this.settled.length + 1}`,
      amount: dec(amount),
      settledAt: this.now(),
    });
  }

  step(
    price: string,
    secondsLater: number,
    event?: Partial<Extract<EngineEvent, { type: "EXECUTION_REPORT" }>>,
  ): Step {
    this.clock += secondsLater;
    const now = this.now();
    const eventId = `e${++this.events}`;
    const engineEvent: EngineEvent = event
      ? { type: "EXECUTION_REPORT", eventId, requestId: "", final: true, ...event }
      : { type: "REVALUE", cause: "PRICE_TICK", eventId };
    const step = transition(
      this.state,
      assess(this.account(), marks({ XYZ: price }, now), this.rules),
      this.rules,
      engineEvent,
      now,
    );
    this.state = step.next;
    return step;
  }
}

const notices = (step: Step) =>
  step.effects.filter((effect): effect is Extract<Effect, { kind: "NOTIFY" }> => effect.kind === "NOTIFY");
const requests = (step: Step) => step.effects.filter((effect) => effect.kind === "REQUEST_LIQUIDATION");
const closures = (step: Step) =>
  step.effects.flatMap((effect) => (effect.kind === "AUDIT" && effect.closure ? [effect.closure] : []));

describe("a borrower who paid the call", () => {
  // At $66.66: A = 13,332 − 10,000 = 3,332, M = 3,333 (in breach), target 3,499.65: a call of 167.65.
  // The borrower wires 1,000 (C = −9,000) while the price drifts to $60.40: A = 3,080, M = 3,020, ratio
  // 1.0198: out of breach, but below the cure line 3,171.
  it("is never liquidated on that call's deadline, even when calls are met by equity", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "EQUITY" }));
    const called = borrower.step("66.66", 0);
    expect(notices(called)[0]).toMatchObject({ notice: "CALL", amountDue: "167.65" });
    borrower.pay("1000");
    const drifted = borrower.step("60.40", 600);
    expect(drifted.next.status).toBe("CALLED");
    // Paid in full: nothing more is due, so no reminder asks for more.
    const atDeadline = borrower.step("60.40", 3_000);
    expect(requests(atDeadline)).toEqual([]);
    expect(atDeadline.next.status).toBe("CURED");
    expect(closures(atDeadline)).toEqual([
      expect.objectContaining({
        how: "DEPOSIT",
        amountCalled: "167.65",
        amountDue: "167.65",
        paid: "1000.00",
      }),
    ]);
    expect(notices(atDeadline)).toEqual([expect.objectContaining({ notice: "CURED", met: "DEPOSIT" })]);
  });

  it("is met at once by the payment when calls are met by payment or either", () => {
    for (const metBy of ["PAYMENT", "EITHER"] as const) {
      const borrower = new Borrower(stockPolicy({ metBy }));
      borrower.step("66.66", 0);
      borrower.pay("1000");
      const paid = borrower.step("60.40", 600);
      expect(paid.next.status, metBy).toBe("CURED");
      expect(closures(paid)[0]?.how, metBy).toBe("DEPOSIT");
    }
  });

  // Back in breach at $58 with C = −9,000: A = 2,600, M = 2,900, target 3,045: a new call of 445.00.
  it("gets a new call with its own deadline when it is in breach again, not the old deadline", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "EQUITY" }));
    const first = borrower.step("66.66", 0).next.call;
    borrower.pay("1000");
    borrower.step("60.40", 600);
    const met = borrower.step("58", 600);
    expect(closures(met)[0]?.how).toBe("DEPOSIT");
    expect(notices(met).map((notice) => notice.notice)).toEqual(["CURED"]);
    // The new call waits for a revaluation hardFloorConfirmSeconds (30 s) later that still finds the breach:
    // a deposit record written before its cash must not call the account again.
    expect(borrower.step("58", 29).effects).toEqual([]);
    const again = borrower.step("58", 1);
    expect(again.next.status).toBe("CALLED");
    expect(again.next.call?.callId).toBe("acct-1:call:2");
    expect(again.next.call?.amountDue).toBe("445.00");
    expect(again.next.call?.deadlineAt).toBe(
      new Date(Date.parse(NOW) + (1_230 + 3_600) * 1000).toISOString(),
    );
    expect(again.next.call?.deadlineAt).not.toBe(first?.deadlineAt);
    expect(notices(again).map((notice) => notice.notice)).toEqual(["CALL"]);
    // The first call's deadline passes: no liquidation for it.
    expect(requests(borrower.step("58", 2_370))).toEqual([]);
  });

  it("is not called again when the deposit record lands before its cash", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "PAYMENT" }));
    borrower.step("66.66", 0);
    // The SETTLED record alone: paid, but the equity does not show it yet.
    borrower.settled.push({ depositId: "wire-1", amount: dec("167.65"), settledAt: borrower.now() });
    const recorded = borrower.step("66.66", 60);
    expect(closures(recorded)[0]?.how).toBe("DEPOSIT");
    expect(recorded.next.status).toBe("CURED");
    // The cash a second later: the account is out of breach, and no second call ever goes out.
    borrower.cash = borrower.cash.plus("167.65");
    const steps = [borrower.step("66.66", 1), borrower.step("66.66", 30), borrower.step("66.66", 3_600)];
    expect(steps.flatMap(notices).map((notice) => notice.notice)).not.toContain("CALL");
    expect(steps.flatMap(requests)).toEqual([]);
  });

  it("counts a deposit for one call only, by what the engine had seen, not by its timestamp", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "PAYMENT", hardFloorConfirmSeconds: 0 }));
    borrower.step("66.66", 0);
    borrower.pay("500");
    expect(borrower.step("66.66", 60).next.status).toBe("CURED");
    // At $60: A = 12,000 − 9,500 = 2,500, M = 3,000, target 3,150: call 2 of 650.
    const second = borrower.step("60", 60);
    expect(second.next.call).toMatchObject({ callId: "acct-1:call:2", amountDue: "650.00" });
    // Upstream re-writes wire-1 with a new settledAt: no new money, so it does not pay call 2.
    const [wire] = borrower.settled;
    if (!wire) throw new Error("no deposit");
    borrower.settled[0] = { ...wire, settledAt: borrower.now() };
    const rewritten = borrower.step("60", 60);
    expect(rewritten.next.status).toBe("CALLED");
    expect(closures(rewritten)).toEqual([]);
    // A payment stamped before the call (a ledger clock behind the engine's) that the engine sees only
    // now does pay it.
    borrower.cash = borrower.cash.plus("650");
    borrower.settled.push({
      depositId: "wire-2",
      amount: dec("650"),
      settledAt: new Date(Date.parse(NOW) + 100_000).toISOString(),
    });
    const backdated = borrower.step("60", 60);
    expect(closures(backdated)).toEqual([
      expect.objectContaining({ callId: "acct-1:call:2", how: "DEPOSIT", paid: "650.00" }),
    ]);
  });
});

describe("every notice quotes what is due now", () => {
  // At $66: A = 3,200, M = 3,300, target 3,465: restoring it takes 265.00. With an MTA of 100 that is not
  // more than the 167.65 called plus the MTA, so no update goes out. What meets the call is still 167.65.
  it("quotes what meets the call at the reminder after a further fall, and paying it protects the borrower", () => {
    const borrower = new Borrower(
      stockPolicy({ metBy: "EQUITY", minimumTransferAmount: "100", reminderOffsetsSeconds: [1_200] }),
    );
    borrower.step("66.66", 0);
    const reminder = borrower.step("66", 1_200);
    expect(notices(reminder)).toEqual([expect.objectContaining({ notice: "REMINDER", amountDue: "167.65" })]);
    // Its deposit option is that amount; selling restores the target.
    const [deposit] = notices(reminder)[0]?.cureOptions ?? [];
    expect(deposit?.kind === "DEPOSIT" ? deposit.amount.toFixed() : deposit).toBe("167.65");
    borrower.pay("167.65");
    // A = 3,367.65 ≥ M: out of breach, met at the deadline under EQUITY, whatever the market does in between.
    expect(borrower.step("66.10", 60).next.status).toBe("CALLED");
    const deadline = borrower.step("66.10", 2_340);
    expect(requests(deadline)).toEqual([]);
    expect(closures(deadline)).toEqual([
      expect.objectContaining({ how: "DEPOSIT", paymentToMeet: "167.65" }),
    ]);
  });

  // At $66.70 the market has recovered part of the way: A = 3,340, target 3,501.75: 161.75 restores it,
  // less than the 167.65 called. The reminder asks for the smaller amount, and paying it is paying the call.
  it("quotes the smaller deposit that cures after a partial recovery, and records it as paid", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "EITHER", reminderOffsetsSeconds: [1_200] }));
    borrower.step("66.66", 0);
    const reminder = borrower.step("66.70", 1_200);
    expect(notices(reminder)).toEqual([expect.objectContaining({ notice: "REMINDER", amountDue: "161.75" })]);
    expect(reminder.next.call?.paymentToMeet).toBe("161.75");
    borrower.pay("161.75");
    // Prices dip a little before the payment is seen: still out of breach, and the call is met by it.
    const met = borrower.step("66.68", 60);
    expect(closures(met)).toEqual([
      expect.objectContaining({ how: "DEPOSIT", paid: "161.75", paymentToMeet: "161.75" }),
    ]);
    expect(notices(met)[0]).toMatchObject({ notice: "CURED", met: "DEPOSIT" });
  });

  it("quotes the rest of what was asked under EITHER, and paying it meets the call", () => {
    const borrower = new Borrower(
      stockPolicy({ metBy: "EITHER", minimumTransferAmount: "100", reminderOffsetsSeconds: [1_200] }),
    );
    borrower.step("66.66", 0);
    borrower.pay("67.65");
    const reminder = borrower.step("66", 1_200);
    expect(notices(reminder)).toEqual([expect.objectContaining({ notice: "REMINDER", amountDue: "100.00" })]);
    borrower.pay("100.00");
    const met = borrower.step("66", 1);
    expect(closures(met)).toEqual([expect.objectContaining({ how: "DEPOSIT", paid: "167.65" })]);
  });

  // At $65: A = 3,000, M = 3,250, target 3,412.50: 412.50 restores it, more than 167.65 + the MTA of 100.
  it("tells the borrower when the deficit outgrows the call by more than the MTA; deadline and amount due stay", () => {
    const borrower = new Borrower(stockPolicy({ minimumTransferAmount: "100" }));
    const called = borrower.step("66.66", 0);
    const raised = borrower.step("65", 600);
    expect(notices(raised)).toEqual([
      expect.objectContaining({
        notice: "CALL_INCREASED",
        amountDue: "167.65",
        restoreAmount: "412.50",
        previousAmountDue: "167.65",
      }),
    ]);
    expect(raised.next.call?.amountDue).toBe("412.50");
    expect(raised.next.call?.amountCalled).toBe("167.65");
    expect(raised.next.call?.deadlineAt).toBe(called.next.call?.deadlineAt);
    const [notice] = notices(raised);
    if (!notice) throw new Error("no notice");
    const text = renderNotice(plain(notice) as NoticePayload, { timeZone: "UTC", currency: "USD" });
    expect(text.sms).toContain("restoring the account now takes 412.50 USD (was 167.65 USD)");
    expect(text.sms).toContain("167.65 USD by");
    // Paying what the call asked before the deadline meets it; still in breach at $65, a new call follows
    // 30 s later with a deadline of its own. Nothing is liquidated.
    borrower.pay("167.65");
    const deadline = borrower.step("65", 3_000);
    expect(requests(deadline)).toEqual([]);
    expect(closures(deadline)[0]).toMatchObject({
      how: "DEPOSIT",
      amountCalled: "167.65",
      amountDue: "412.50",
    });
    // A = 3,000 + 167.65 = 3,167.65; target 3,412.50: a new call of 244.85.
    expect(borrower.step("65", 30).next.call).toMatchObject({ callId: "acct-1:call:2", amountDue: "244.85" });
  });

  it("quotes the amount still due in the liquidation notice", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "PAYMENT" }));
    borrower.step("66.66", 0);
    borrower.pay("100.00");
    const liquidation = borrower.step("66.66", 3_600);
    expect(notices(liquidation)).toEqual([
      expect.objectContaining({ notice: "LIQUIDATION_NOTICE", amountDue: "67.65", reason: "DEADLINE" }),
    ]);
  });

  it("waives a remainder below the MTA at the deadline when the account is out of breach", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "PAYMENT", minimumTransferAmount: "100" }));
    borrower.step("66.66", 0);
    borrower.pay("100.00");
    const deadline = borrower.step("66.66", 3_600);
    expect(closures(deadline)).toEqual([expect.objectContaining({ how: "WAIVED", waived: "67.65" })]);
    expect(requests(deadline)).toEqual([]);
  });
});

describe("a deposit in flight", () => {
  it("of the full amount due pauses the deadline even below minimumCureAmount", () => {
    const rules = stockPolicy({}, { minimumCureAmount: "500" });
    const paying = new Borrower(rules);
    paying.step("66.66", 0);
    paying.pending = "167.65";
    expect(paying.step("66.66", 3_600).next.status).toBe("CALLED");
    // For at most maxPauseSeconds.
    expect(paying.step("66.66", 1_800).next.status).toBe("LIQUIDATING");

    const short = new Borrower(rules);
    short.step("66.66", 0);
    short.pending = "100";
    expect(short.step("66.66", 3_600).next.status).toBe("LIQUIDATING");
  });
});

describe("execution reports count what filled", () => {
  const fill = (attempt: number, quantity: string, final: boolean, price = "49.50"): ExecutionFill => ({
    reportId: `r${attempt}-${quantity}`,
    requestId: `acct-1:call:1:liquidation:${attempt}`,
    target: { kind: "HOLDING", asset: "XYZ" },
    side: "SELL",
    filledQuantity: quantity,
    averagePrice: quantity === "0" ? null : price,
    fee: quantity === "0" ? "0" : "2.50",
    final,
  });

  it("does not complete on a final report with nothing filled: the next attempt goes out", () => {
    const borrower = new Borrower(stockPolicy({ hardFloorConfirmSeconds: 0 }));
    expect(borrower.step("50", 0).next.status).toBe("LIQUIDATING");
    const empty = borrower.step("50", 60, {
      requestId: "acct-1:call:1:liquidation:1",
      fills: [fill(1, "0", true)],
    });
    expect(empty.next.status).toBe("LIQUIDATING");
    expect(notices(empty)).toEqual([]);
    expect(requests(empty)).toEqual([expect.objectContaining({ attempt: 2, reason: "RETRY" })]);
    // The last attempt ends empty too: exhausted, for an operator, with an alarm; still not complete.
    const exhausted = borrower.step("50", 60, {
      requestId: "acct-1:call:1:liquidation:2",
      fills: [fill(1, "0", true), fill(2, "0", true)],
    });
    expect(exhausted.next.status).toBe("LIQUIDATING");
    expect(exhausted.next.call?.liquidationExhaustedAt).toBe(borrower.now());
    expect(exhausted.effects.flatMap((effect) => (effect.kind === "AUDIT" ? [effect.alarm] : []))).toEqual([
      "LIQUIDATION_EXHAUSTED",
    ]);
  });

  // At $50 the account is 10,000 − 10,000 = 0; selling 100 at $49.50 less 2.50 of fees leaves 100 shares
  // and C = −10,000 + 4,950 − 2.50 = −5,052.50; at $50, E = 5,000 − 5,052.50 = −52.50.
  it("settles by what filled, and the completion notice says what was sold at what price", () => {
    const borrower = new Borrower(stockPolicy({ hardFloorConfirmSeconds: 0 }));
    borrower.step("50", 0);
    borrower.shares = "100";
    borrower.cash = dec("-5052.50");
    const done = borrower.step("50", 60, {
      requestId: "acct-1:call:1:liquidation:1",
      fills: [fill(1, "60", false, "49.60"), fill(1, "40", true, "49.35")],
    });
    expect(done.next.status).toBe("BAD_DEBT");
    // (60 × 49.60 + 40 × 49.35) / 100 = 49.50.
    const sold = [
      {
        target: { kind: "HOLDING", asset: "XYZ" },
        side: "SELL",
        quantity: "100",
        averagePrice: "49.50",
        fee: "5",
      },
    ];
    expect(closures(done)).toEqual([expect.objectContaining({ how: "LIQUIDATION", sold, loss: "52.50" })]);
    const [complete] = notices(done);
    expect(complete).toMatchObject({ notice: "LIQUIDATION_COMPLETE", sold, loss: "52.50" });
    if (!complete) throw new Error("no notice");
    expect(
      renderNotice(plain(complete) as NoticePayload, { timeZone: "UTC", currency: "USD" }).emailText,
    ).toContain("Sold 100 XYZ at 49.50 USD on average (fees 5 USD)");
  });
});

describe("a liquidation with nothing outstanding", () => {
  it("closes the call when the last attempt filled nothing and the account is back at its target", () => {
    const borrower = new Borrower(stockPolicy({ hardFloorConfirmSeconds: 0 }));
    expect(borrower.step("50", 0).next.status).toBe("LIQUIDATING");
    // Prices recover to $80 (ratio 1.5) and the execution system reports it sold nothing.
    const step = borrower.step("80", 60, {
      requestId: "acct-1:call:1:liquidation:1",
      fills: [
        {
          reportId: "r1",
          requestId: "acct-1:call:1:liquidation:1",
          target: { kind: "HOLDING", asset: "XYZ" },
          side: "SELL",
          filledQuantity: "0",
          averagePrice: null,
          fee: "0",
          final: true,
        },
      ],
    });
    expect(step.next.status).toBe("CURED");
    expect(closures(step)).toEqual([expect.objectContaining({ how: "MARKET" })]);
    expect(requests(step)).toEqual([]);
  });
});

describe("the hard floor", () => {
  it("liquidates only when a revaluation hardFloorConfirmSeconds later confirms it, and says why", () => {
    const borrower = new Borrower(stockPolicy({ hardFloorConfirmSeconds: 30 }));
    const first = borrower.step("50", 0);
    expect(notices(first).map((notice) => notice.notice)).toEqual(["CALL"]);
    expect(requests(first)).toEqual([]);
    expect(borrower.step("50", 29).effects).toEqual([]);
    const confirmed = borrower.step("50", 1);
    expect(requests(confirmed)).toEqual([expect.objectContaining({ reason: "HARD_FLOOR" })]);
    const [notice] = notices(confirmed);
    expect(notice).toMatchObject({ notice: "LIQUIDATION_NOTICE", reason: "HARD_FLOOR" });
    if (!notice) throw new Error("no notice");
    const text = renderNotice(plain(notice) as NoticePayload, { timeZone: "UTC", currency: "USD" });
    expect(text.sms).toContain("below the hard floor");
    expect(text.sms).not.toContain("has not been met");
  });

  it("forgets a breach of the floor that a later revaluation does not confirm", () => {
    const borrower = new Borrower(stockPolicy({ hardFloorConfirmSeconds: 30 }));
    borrower.step("50", 0);
    expect(borrower.step("60", 10).next.call?.hardFloorSince).toBeNull();
    expect(requests(borrower.step("50", 30))).toEqual([]);
  });

  it("is a bad-debt case for the operator, not a request with an empty plan, when there is nothing to sell", () => {
    const borrower = new Borrower(stockPolicy({ hardFloorConfirmSeconds: 0 }));
    borrower.shares = "0";
    const step = borrower.step("50", 0);
    expect(requests(step)).toEqual([]);
    expect(step.next.status).toBe("BAD_DEBT");
    expect(step.effects).toContainEqual(expect.objectContaining({ kind: "AUDIT", alarm: "NOTHING_TO_SELL" }));
    expect(step.effects).toContainEqual({
      kind: "RECORD_LOSS",
      accountId: "acct-1",
      callId: "acct-1:call:1",
      amount: "10000.00",
    });
  });

  // The README's engine-only example written item by item, the loan first: for a moment the account is a
  // loan with nothing against it (equity −55,600, below the floor). The call goes out; the BTC lands a
  // second later and nothing is liquidated.
  it("does not liquidate a torn write: the loan before the collateral", () => {
    const rules = policy({
      assets: {
        BTC: { quantityScale: 8, priceScale: 2, haircut: "0.10", longTiers: flatTier("0.05", "0.10") },
      },
      call: { ...policyDocument().call, hardFloorRatio: "0.80", restoreBuffer: "0.05", exitBuffer: "0.02" },
      prices: { maxAgeSeconds: 60, maxDivergence: "0.05", minimumSources: 1, haltGraceSeconds: 0 },
    });
    const loanOnly: Account = {
      accountId: "ACC-1",
      cash: dec("-55600.00"),
      holdings: [],
      positions: [],
      pendingDeposits: [],
    };
    const btc = marks({ BTC: "52005.00" });
    const torn = transition(
      initialState("ACC-1", NOW),
      assess(loanOnly, btc, rules),
      rules,
      { type: "REVALUE", cause: "ACCOUNT_CHANGE", eventId: "usd" },
      NOW,
    );
    expect(torn.next.status).toBe("CALLED");
    expect(torn.effects.some((effect) => effect.kind === "REQUEST_LIQUIDATION")).toBe(false);
    const later = new Date(Date.parse(NOW) + 1_000).toISOString();
    const whole: Account = { ...loanOnly, holdings: [{ asset: "BTC", quantity: dec("1.25") }] };
    const healed = transition(
      torn.next,
      assess(whole, marks({ BTC: "52005.00" }, later), rules),
      rules,
      { type: "REVALUE", cause: "ACCOUNT_CHANGE", eventId: "btc" },
      later,
    );
    expect(healed.effects.some((effect) => effect.kind === "REQUEST_LIQUIDATION")).toBe(false);
    expect(healed.next.status).toBe("CALLED");
    expect(healed.next.call?.hardFloorSince).toBeNull();
  });
});

describe("the price guard", () => {
  const guarded = (prices: Partial<PolicyDocument["prices"]> = {}, sources?: string[]) =>
    policy({
      assets: {
        BTC: {
          quantityScale: 8,
          priceScale: 2,
          haircut: "0.10",
          longTiers: flatTier("0.05", "0.10"),
          ...(sources ? { sources } : {}),
        },
      },
      prices: { maxAgeSeconds: 60, maxDivergence: "0.05", minimumSources: 2, haltGraceSeconds: 0, ...prices },
    });
  const nowMs = Date.parse(NOW);
  const at = (secondsFromNow: number) => new Date(nowMs + secondsFromNow * 1000).toISOString();
  const source = (name: string, price: string, asOf: string): SourceMark => ({
    source: name,
    price: dec(price),
    asOf,
  });

  it("never counts a mark stamped in the future as fresh, nor as the newest, however long it waits", () => {
    const yearAhead = at(365 * 86_400);
    const sources = [source("a", "90000", yearAhead), source("b", "90010", yearAhead)];
    expect(resolveMark("BTC", sources, guarded(), nowMs)?.status).toBe("STALE");
    expect(resolveMark("BTC", sources, guarded(), nowMs + 200 * 86_400_000)?.status).toBe("STALE");
    // Beside two honest sources it is ignored: the mark is theirs.
    const mixed = [...sources.slice(0, 1), source("c", "52000", at(-1)), source("d", "52010", at(-2))];
    expect(resolveMark("BTC", mixed, guarded(), nowMs)).toMatchObject({
      status: "OK",
      sourcesUsed: ["c", "d"],
    });
    // Within the clock-skew tolerance (5 s by default) a mark is taken as it is.
    const skewed = [source("a", "52000", at(4)), source("b", "52010", at(0))];
    expect(resolveMark("BTC", skewed, guarded(), nowMs)?.status).toBe("OK");
  });

  it("refuses a future-stamped tick with its reason, for the quarantine", () => {
    const rules = guarded();
    const runtime = {
      policies: new Map([["p", { policy: rules, document: rules.document }]]),
      now: () => NOW,
    } as unknown as Parameters<typeof parseTick>[1];
    const tick = { asset: "BTC", source: "a", price: "52000", asOf: at(60), seq: 1 };
    const refused = parseTick(tick, runtime);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.issues[0]?.path).toBe("$.asOf");
    expect(parseTick({ ...tick, asOf: at(3) }, runtime).ok).toBe(true);
  });

  it("uses only the sources the policy accepts for the asset", () => {
    const sources = [source("a", "52000", NOW), source("b", "52010", NOW), source("rogue", "10", NOW)];
    const mark = resolveMark("BTC", sources, guarded({}, ["a", "b"]), nowMs);
    expect(mark).toMatchObject({ status: "OK", sourcesUsed: ["a", "b"] });
    expect(mark?.price.toFixed()).toBe("52005");
  });

  // Median of 100, 101, 200 is 101; 200 is more than 5% away and is dropped: the median of 100 and 101.
  it("drops a diverging source and takes the median of the rest", () => {
    const sources = [source("a", "100", NOW), source("b", "101", NOW), source("c", "200", NOW)];
    const mark = resolveMark("BTC", sources, guarded(), nowMs);
    expect(mark?.price.toFixed()).toBe("100.5");
    expect(mark?.sourcesUsed).toEqual(["a", "b"]);
  });

  it("raises an alarm, once, when a halt lasts longer than haltAlarmSeconds; escalation stays halted", () => {
    const rules = stockPolicy();
    const borrower = new Borrower(
      policy({ ...rules.document, prices: { ...rules.document.prices, haltAlarmSeconds: 600 } }),
    );
    let state = borrower.state;
    const stale = (seconds: number) => {
      const now = new Date(nowMs + seconds * 1000).toISOString();
      const resolved = new Map(
        [...marks({ XYZ: "50" }, now)].map(([asset, mark]) => [asset, { ...mark, status: "STALE" as const }]),
      );
      const step = transition(
        state,
        assess(borrower.account(), resolved, borrower.rules),
        borrower.rules,
        { type: "REVALUE", cause: "SWEEP", eventId: `s${seconds}` },
        now,
      );
      state = step.next;
      return step.effects.flatMap((effect) =>
        effect.kind === "AUDIT" && effect.alarm ? [effect.alarm] : [],
      );
    };
    expect(stale(0)).toEqual([]);
    expect(stale(599)).toEqual([]);
    expect(stale(600)).toEqual(["PRICE_HALT_TOO_LONG"]);
    expect(stale(1_200)).toEqual([]);
    expect(state.status).toBe("HEALTHY");
  });
});

describe("margin-call evaluate", () => {
  it("shows how calls are met, where an open call stands, and how a closed call was met", () => {
    const borrower = new Borrower(stockPolicy({ metBy: "EQUITY" }));
    borrower.step("66.66", 0);
    const state = borrower.state;
    const snapshot = {
      now: new Date(Date.parse(NOW) + 3_600_000).toISOString(),
      policy: borrower.rules.document,
      account: {
        accountId: "acct-1",
        cash: "-9000",
        holdings: [{ asset: "XYZ", quantity: "200" }],
        settledDeposits: [
          { depositId: "w", amount: "1000", settledAt: new Date(Date.parse(NOW) + 600_000).toISOString() },
        ],
      },
      prices: [{ asset: "XYZ", price: "60.40", asOf: new Date(Date.parse(NOW) + 3_600_000).toISOString() }],
      state,
    };
    const evaluation = evaluateSnapshot(snapshot);
    expect(evaluation.standing?.paid.toFixed()).toBe("1000");
    expect(evaluation.step.next.status).toBe("CURED");
    expect(evaluation.step.next.call?.closure?.how).toBe("DEPOSIT");
  });
});
