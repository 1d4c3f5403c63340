/**
 * The position a loss record hands to the loss waterfall's ADL (machine.ts `LossPosition`): the largest open
 * position, with the price at which closing it all leaves the account's equity at 0, rounded away from the
 * mark. Each account below holds only USD and one perpetual XYZ-PERP (quantity scale 2, XYZ at price scale 2,
 * maintenance 10%, hard floor 0.5, confirmed at once), and is driven to a final execution report.
 */
import { describe, expect, it } from "vitest";
import { assess } from "../../functions/domain/assess.ts";
import { type Effect, type EngineEvent, initialState, transition } from "../../functions/domain/machine.ts";
import { account, flatTier, marks, NOW, policy, policyDocument } from "../support/domain-builders.ts";

const rules = policy({
  assets: { XYZ: { quantityScale: 2, priceScale: 2, haircut: "0", longTiers: flatTier("0.1") } },
  instruments: { "XYZ-PERP": { underlying: "XYZ", quantityScale: 2, tiers: flatTier("0.1") } },
  call: { ...policyDocument().call, hardFloorConfirmSeconds: 0 },
});

/** Liquidated at `first`, then settled at `last` by a final report that filled nothing of the position. */
function lossAt(cash: string, size: string, entryPrice: string, first: string, last: string) {
  const book = account({ cash, positions: [{ instrument: "XYZ-PERP", size, entryPrice }] });
  const at = (price: string) => assess(book, marks({ XYZ: price }), rules);
  const event: EngineEvent = { type: "REVALUE", cause: "SWEEP", eventId: "e1" };
  const liquidating = transition(initialState("acct-1", NOW), at(first), rules, event, NOW);
  expect(liquidating.next.status).toBe("LIQUIDATING");
  const requestId = liquidating.next.call?.liquidationRequestId ?? "";
  const report: EngineEvent = { type: "EXECUTION_REPORT", eventId: "e2", requestId, final: true };
  const settled = transition(liquidating.next, at(last), rules, report, NOW);
  expect(settled.next.status).toBe("BAD_DEBT");
  return settled.effects.find((e): e is Extract<Effect, { kind: "RECORD_LOSS" }> => e.kind === "RECORD_LOSS");
}

describe("the bankrupt position of a loss", () => {
  it("of a long is above the mark: mark + loss / size, rounded up", () => {
    // Long 10 from 100 with 300 USD of loan: equity 10P − 1,300, maintenance P. At 131 the ratio is
    // 10 / 131 < 0.5: liquidated. At 120: equity −100, so 120 + 100 / 10 = 130.
    expect(lossAt("-300", "10", "100", "131", "120")).toMatchObject({
      amount: "100.00",
      position: {
        instrument: "XYZ-PERP",
        side: "LONG",
        quantity: "10",
        quantityScale: 2,
        markPrice: "120",
        bankruptcyPrice: "130",
      },
    });
    // Long 3 from 100 with a loan of 200: at 170 equity 10 (ratio 0.2); at 160 equity −20, and
    // 160 + 20 / 3 = 166.666… → 166.67 (up: closing it all there covers the loss).
    expect(lossAt("-200", "3", "100", "170", "160")?.position?.bankruptcyPrice).toBe("166.67");
  });

  it("of a short is below the mark: mark − loss / |size|, rounded down", () => {
    // Short 10 from 100 with 300 USD: equity 1,300 − 10P. At 130 equity 0: liquidated. At 140 equity −100,
    // so 140 − 100 / 10 = 130.
    expect(lossAt("300", "-10", "100", "130", "140")).toMatchObject({
      amount: "100.00",
      position: { side: "SHORT", quantity: "10", markPrice: "140", bankruptcyPrice: "130" },
    });
    // Short 3 from 100 with 450.01: at 245 equity 15.01; at 260 equity −29.99, and
    // 260 − 29.99 / 3 = 250.00333… → 250.00 (down).
    expect(lossAt("450.01", "-3", "100", "245", "260")?.position?.bankruptcyPrice).toBe("250");
  });

  it("is absent when no price above 0 covers the loss of a short", () => {
    // Short 1 from 10 with −200 USD (a loan): at 20, equity −200 − 10 = −210; 20 − 210 / 1 < 0.
    const loss = lossAt("-200", "-1", "10", "15", "20");
    expect(loss?.amount).toBe("210.00");
    expect(loss).not.toHaveProperty("position");
  });
});
