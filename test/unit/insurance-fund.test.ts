/**
 * The insurance fund ledger: worked flows with their balances derived here, idempotency on the flow id, and
 * properties over random sequences of requests (conservation, never negative, a flow applied twice changes
 * nothing, a replay of the stored flows rebuilds the same head).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  applyFlow,
  emptyFund,
  FUND_FLOW_CAUSES,
  type FundFlowCause,
  FundFlowConflictError,
  FundFlowError,
  type FundFlowRequest,
  type FundLedger,
  fundItemKeys,
  planFlow,
  replayFund,
} from "../../functions/domain/insurance-fund.ts";
import { Dec, dec, ZERO } from "../../functions/domain/money.ts";

const AT = "2026-11-25T12:00:00.000Z";

function request(flowId: string, cause: FundFlowCause, amount: string, accountId: string | null = "ACC-1") {
  return {
    flowId,
    currency: "USD",
    cause,
    amount: dec(amount),
    accountId,
    sourceReference: `${flowId}:source`,
    recordedAt: AT,
  } satisfies FundFlowRequest;
}

function applyAll(ledger: FundLedger, requests: readonly FundFlowRequest[]): FundLedger {
  return requests.reduce((current, next) => applyFlow(current, next).ledger, ledger);
}

describe("worked flows", () => {
  it("credits fees and top-ups, and covers a bankruptcy with min(balance, shortfall)", () => {
    // Prepare: 1,000.00 topped up, a 12.50 fee, then a 300.00 shortfall and a 2,000.00 one.
    const fund = emptyFund("USD", 2);

    // Act
    const ledger = applyAll(fund, [
      request("topup-1", "MANUAL_TOPUP", "1000.00", null),
      request("ACC-1:call:1:liquidation:1:fee", "LIQUIDATION_FEE", "12.50"),
      request("ACC-2:v4:loss:fund", "BANKRUPTCY_COVER", "300.00", "ACC-2"),
      request("ACC-3:v7:loss:fund", "BANKRUPTCY_COVER", "2000.00", "ACC-3"),
    ]);

    // Assess: 1,000 + 12.50 = 1,012.50; − 300 = 712.50; the 2,000 shortfall takes the 712.50 left.
    expect(ledger.flows.map((f) => [f.seq, f.amount.toFixed(2), f.balanceAfter.toFixed(2)])).toEqual([
      [1, "1000.00", "1000.00"],
      [2, "12.50", "1012.50"],
      [3, "-300.00", "712.50"],
      [4, "-712.50", "0.00"],
    ]);
    expect(ledger.head).toMatchObject({ seq: 4, currency: "USD" });
    expect(ledger.head.balance.isZero()).toBe(true);
    expect(ledger.flows[3]?.requested.toFixed(2)).toBe("2000.00");
  });

  it("records a cover of an empty fund as a flow of 0, so a redelivery cannot take a later credit", () => {
    // Prepare
    const cover = request("ACC-9:v2:loss:fund", "BANKRUPTCY_COVER", "50.00", "ACC-9");
    const first = applyFlow(emptyFund("USD", 2), cover);

    // Act: a fee arrives, then the same cover is delivered again.
    const credited = applyFlow(first.ledger, request("fee-1", "LIQUIDATION_FEE", "80.00")).ledger;
    const again = applyFlow(credited, cover);

    // Assess
    expect(first.flow.amount.isZero()).toBe(true);
    expect(again.applied).toBe(false);
    expect(again.ledger).toBe(credited);
    expect(again.ledger.head.balance.toFixed(2)).toBe("80.00");
  });

  it("applies a flow id once, and refuses the same id with another request", () => {
    // Prepare
    const fee = request("fee-1", "LIQUIDATION_FEE", "10.00");
    const once = applyFlow(emptyFund("USD", 2), fee);

    // Act
    const twice = applyFlow(once.ledger, fee);

    // Assess
    expect(twice).toEqual({ ledger: once.ledger, flow: once.flow, applied: false });
    expect(() => applyFlow(once.ledger, { ...fee, amount: dec("11.00") })).toThrow(FundFlowConflictError);
  });

  it.each([
    ["an amount beyond the currency scale", request("f", "LIQUIDATION_FEE", "0.005"), "decimal places"],
    ["a zero amount", request("f", "MANUAL_TOPUP", "0", null), "above 0"],
    ["another currency", { ...request("f", "LIQUIDATION_FEE", "1.00"), currency: "EUR" }, "in EUR"],
    ["an empty flow id", request("", "LIQUIDATION_FEE", "1.00"), "flow id"],
  ])("refuses %s", (_name, bad, message) => {
    expect(() => planFlow(emptyFund("USD", 2).head, bad)).toThrow(FundFlowError);
    expect(() => planFlow(emptyFund("USD", 2).head, bad)).toThrow(message);
  });

  it("keys each flow in its currency's partition, ordered by a zero-padded sequence", () => {
    expect(fundItemKeys("USD", 42, "ACC-2:v4:loss:fund")).toEqual({
      pk: "FUND#USD",
      balanceSk: "BALANCE",
      flowSk: "FLOW#000000000042",
      flowIdSk: "FLOWID#ACC-2:v4:loss:fund",
    });
  });

  it("replays stored flows to the same head, and refuses a ledger with a gap or a wrong balance", () => {
    // Prepare
    const ledger = applyAll(emptyFund("USD", 2), [
      request("a", "MANUAL_TOPUP", "100.00", null),
      request("b", "BANKRUPTCY_COVER", "30.00"),
    ]);
    const [first, second] = ledger.flows;
    if (!first || !second) throw new Error("two flows expected");

    // Act / Assess
    expect(replayFund("USD", 2, ledger.flows).head).toEqual(ledger.head);
    expect(() => replayFund("USD", 2, [second])).toThrow(/seq 2, expected 1/);
    expect(() => replayFund("USD", 2, [first, { ...second, balanceAfter: dec("71.00") }])).toThrow(/adds up/);
  });
});

const AMOUNT_UNITS = fc.integer({ min: 1, max: 500_000 });
const requestArbitrary = fc.record({
  id: fc.integer({ min: 0, max: 40 }),
  cause: fc.constantFrom(...FUND_FLOW_CAUSES),
  units: AMOUNT_UNITS,
});

/** Requests with ids drawn from a small pool: a repeated id repeats the first request with that id. */
const requestsArbitrary = fc.array(requestArbitrary, { maxLength: 60 }).map((drawn) => {
  const firstById = new Map<number, FundFlowRequest>();
  return drawn.map(({ id, cause, units }) => {
    const existing = firstById.get(id);
    if (existing) return existing;
    const made = request(`flow-${id}`, cause, new Dec(String(units)).dividedBy(100).toFixed(2));
    firstById.set(id, made);
    return made;
  });
});

describe("properties", () => {
  it("conserves the fund: the balance is the sum of the flows, never negative, each cover min(balance, asked)", () => {
    fc.assert(
      fc.property(requestsArbitrary, (requests) => {
        let ledger = emptyFund("USD", 2);
        for (const next of requests) {
          const before = ledger.head.balance;
          const outcome = applyFlow(ledger, next);
          const change = outcome.ledger.head.balance.minus(before);
          expect(change.equals(outcome.applied ? outcome.flow.amount : ZERO)).toBe(true);
          if (outcome.applied && next.cause === "BANKRUPTCY_COVER") {
            expect(outcome.flow.amount.negated().equals(Dec.min(before, next.amount))).toBe(true);
          }
          expect(outcome.ledger.head.balance.isNegative()).toBe(false);
          ledger = outcome.ledger;
        }
        const total = ledger.flows.reduce((sum, flow) => sum.plus(flow.amount), ZERO);
        expect(total.equals(ledger.head.balance)).toBe(true);
        expect(ledger.flows.map((f) => f.seq)).toEqual(ledger.flows.map((_, index) => index + 1));
        expect(new Set(ledger.flows.map((f) => f.flowId)).size).toBe(ledger.flows.length);
        expect(replayFund("USD", 2, ledger.flows).head).toEqual(ledger.head);
      }),
    );
  });

  it("applying every flow a second time changes nothing", () => {
    fc.assert(
      fc.property(requestsArbitrary, (requests) => {
        const ledger = applyAll(emptyFund("USD", 2), requests);
        const replayed = applyAll(ledger, requests);
        expect(replayed).toBe(ledger);
      }),
    );
  });
});
