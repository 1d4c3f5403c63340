/**
 * The machine's hold for the cascade caps (machine.ts `holdForCap`, state-machine.md invariant 10): a call's
 * first request that the caps hold back is not made, the call stays CALLED, the wait is recorded once per
 * reason, and a wait no release of room can end raises LIQUIDATION_WAITS_ON_CAP. Each account holds only USD
 * and one perpetual (the bankrupt-position tests' book), below its hard floor, confirmed at once.
 */
import { describe, expect, it } from "vitest";
import { assess } from "../../functions/domain/assess.ts";
import type { CapWait } from "../../functions/domain/cascade-ledger.ts";
import {
  type CallState,
  type EngineEvent,
  initialState,
  transition,
} from "../../functions/domain/machine.ts";
import { account, flatTier, marks, NOW, policy, policyDocument } from "../support/domain-builders.ts";

const rules = policy({
  assets: { XYZ: { quantityScale: 2, priceScale: 2, haircut: "0", longTiers: flatTier("0.1") } },
  instruments: { "XYZ-PERP": { underlying: "XYZ", quantityScale: 2, tiers: flatTier("0.1") } },
  call: { ...policyDocument().call, hardFloorConfirmSeconds: 0 },
});
const book = account({
  cash: "-300",
  positions: [{ instrument: "XYZ-PERP", size: "10", entryPrice: "100" }],
});
const sweep = (n: number): EngineEvent => ({ type: "REVALUE", cause: "SWEEP", eventId: `e${n}` });
const full: CapWait = { reason: "CAP_FULL", caps: ["TOTAL"], behindOn: [], priority: 2, of: 3 };
const tooBig: CapWait = { reason: "EXCEEDS_CAP", caps: ["XYZ"], behindOn: [], priority: 1, of: 3 };

function step(state: CallState, n: number, wait?: CapWait) {
  return transition(state, assess(book, marks({ XYZ: "131" }), rules, undefined, wait), rules, sweep(n), NOW);
}

describe("the hold for the cascade caps", () => {
  it("keeps the call CALLED with no request, records the wait once per reason, and alarms on one no room can end", () => {
    const held = step(initialState("acct-1", NOW), 1, full);
    expect(held.next.status).toBe("CALLED");
    expect(held.effects.some((e) => e.kind === "REQUEST_LIQUIDATION")).toBe(false);
    expect(held.next.call).toMatchObject({ liquidationWaitingAt: NOW, liquidationWaitingReason: "CAP_FULL" });
    const waits = (s: typeof held) =>
      s.effects.filter((e) => e.kind === "AUDIT" && e.from === "CALLED" && e.to === "CALLED");
    expect(waits(held)).toHaveLength(1);
    expect(waits(held)[0]).not.toHaveProperty("alarm");

    const same = step(held.next, 2, full);
    expect(same.effects).toEqual([]);

    const stuck = step(held.next, 3, tooBig);
    expect(waits(stuck)).toEqual([expect.objectContaining({ alarm: "LIQUIDATION_WAITS_ON_CAP" })]);
    expect(stuck.next.call?.liquidationWaitingAt).toBe(NOW);

    const admitted = step(stuck.next, 4);
    expect(admitted.next.status).toBe("LIQUIDATING");
    expect(admitted.effects.filter((e) => e.kind === "REQUEST_LIQUIDATION")).toHaveLength(1);
    expect(admitted.next.call).toMatchObject({ liquidationWaitingAt: null, liquidationWaitingReason: null });
  });
});
