/**
 * The volatility circuit breaker end to end on DynamoDB Local (issue 13): a crash tick trips BTC's breaker,
 * the account it puts below the hard floor is called but its liquidation waits, the pause is an audit
 * entry and a LiquidationPaused event; once BTC has been calm for the cool-down the breaker releases
 * (LiquidationResumed) and the next sweep sends the liquidation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventSchema, liquidationRequestedSchema } from "../../functions/domain/liquidation-events.ts";
import { busDetails, busEnvelope } from "../support/bus.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { activatePolicies, stackPolicy } from "../support/policies.ts";

let p: Pipeline;
const T0 = "2026-11-24T12:00:00.000Z";
const author = { at: T0, by: "test" };

beforeAll(async () => {
  p = await startPipeline(import.meta.url, T0);
  // The stack's policy, version 4 with a breaker: a move of more than 10% within 10 minutes pauses new
  // liquidations until the move has stayed within it for 5 minutes.
  const document = {
    ...stackPolicy(),
    version: 4,
    circuitBreaker: { maxMove: "0.1", windowSeconds: 600, coolDownSeconds: 300 },
  };
  // A second policy with a breaker on the same asset: each policy's breaker trips and releases on its own,
  // with its own event and audit entry.
  const other = { ...document, policyId: "crypto-other", version: 1 };
  const runtime = await activatePolicies(p, [document, other], author);
  expect(runtime.policies.get("crypto-lending")?.policy.circuitBreaker).not.toBeNull();
});
afterAll(async () => {
  await p?.close();
});

const events = (detailType: string) => busDetails(p, detailType);

describe("a crash that trips the breaker", () => {
  it("holds the liquidation while BTC is paused, records and announces the pause and the release, then liquidates", async () => {
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    await market(p, "56000.00");
    await leveredAccount(p, "ACC-BREAKER");
    await p.drain();

    // −12.5% in one tick: beyond 10%. The same tick calls the account below its hard floor.
    p.advance(10);
    await market(p, "49000.00");
    await p.drain();
    expect(
      events("LiquidationPaused")
        .map((pause) => pause.policyId)
        .sort(),
    ).toEqual(["crypto-lending", "crypto-other"]);
    const paused = events("LiquidationPaused").find((pause) => pause.policyId === "crypto-lending");
    expect(paused).toMatchObject({ asset: "BTC", reason: "VOLATILITY", move: "0.125", maxMove: "0.1" });
    expect(
      (await p.query("AuditLog", "accountId", "BREAKER#BTC#crypto-other")).map((entry) => entry.to),
    ).toEqual(["PAUSED"]);
    expect(
      eventSchema("LiquidationPaused").safeParse(busEnvelope(p, "LiquidationPaused", paused ?? {})).success,
    ).toBe(true);
    const breakerAudit = await p.query("AuditLog", "accountId", "BREAKER#BTC#crypto-lending");
    expect(breakerAudit.map((entry) => [entry.from, entry.to, entry.alarm])).toEqual([
      ["ACTIVE", "PAUSED", "LIQUIDATIONS_PAUSED"],
    ]);
    expect((await p.callState("ACC-BREAKER"))?.status).toBe("CALLED");

    // 30 s later the sweep confirms the hard floor: the liquidation is due, and waits for the breaker.
    p.advance(30);
    await sweep({ id: "sweep-paused", time: p.now() });
    await p.drain();
    const held = await p.callState("ACC-BREAKER");
    expect(held?.status).toBe("CALLED");
    expect(held?.call?.liquidationPausedAt).toBe(p.now());
    expect(events("LiquidationRequested")).toEqual([]);
    const notices = p.stub.published.map((message) => message.messageAttributes.notice?.stringValue);
    expect(notices).toContain("CALL"); // calls and notices go on while liquidations wait

    // Calm: the crash tick leaves the 10-minute window, then 5 minutes within the limit release BTC.
    p.advance(600);
    await market(p, "49050.00");
    await p.drain();
    expect(events("LiquidationResumed")).toEqual([]);
    p.advance(300);
    await market(p, "49000.00");
    await p.drain();
    expect(events("LiquidationResumed")).toHaveLength(2);
    const resumed = events("LiquidationResumed").find((release) => release.policyId === "crypto-lending");
    expect(resumed).toMatchObject({ asset: "BTC", pauseReference: paused?.reference, coolDownSeconds: 300 });
    expect(
      eventSchema("LiquidationResumed").safeParse(busEnvelope(p, "LiquidationResumed", resumed ?? {}))
        .success,
    ).toBe(true);
    expect(
      (await p.query("AuditLog", "accountId", "BREAKER#BTC#crypto-lending")).map((entry) => entry.to),
    ).toEqual(["PAUSED", "ACTIVE"]);

    // The next sweep sends the liquidation that waited.
    p.advance(5);
    await sweep({ id: "sweep-resumed", time: p.now() });
    await p.drain();
    expect((await p.callState("ACC-BREAKER"))?.status).toBe("LIQUIDATING");
    const [request] = events("LiquidationRequested");
    expect(liquidationRequestedSchema.parse(request)).toMatchObject({
      accountId: "ACC-BREAKER",
      reason: "HARD_FLOOR",
    });
    expect(Date.parse(String(request?.recordedAt))).toBeGreaterThan(
      Date.parse(String(resumed?.resumedAt)) - 1,
    );
    expect(p.discarded.OutboxRelay).toEqual([]);
    expect(p.discarded.PriceTicks).toEqual([]);
  });
});
