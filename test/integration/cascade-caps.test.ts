/**
 * The cascade caps end to end on DynamoDB Local (issue 13; docs/liquidation.md, section 10), under the
 * stack's policy with a total cap of 60,000.00 USD in flight within 600 s. The levered account of the pipeline
 * tests, liquidated at BTC 49,000, sends a plan of about 45,000 (0.5 BTC-PERP and 6 ETH at the marks): one
 * fits the cap, two do not.
 *
 *   1. ACC-FIRST is liquidated alone: its request is admitted and counted in flight.
 *   2. ACC-A, ACC-B (the same book) and ACC-C (a loan 1,000 larger: the deepest deficit, a plan of about 50,700) fall below the hard
 *      floor while it is in flight: all three wait, each with its audit entry, none with a request, and the
 *      ledger lists them by priority, C first.
 *   3. ACC-FIRST settles; its request still counts for the rest of its window. Once the window has passed,
 *      the next sweep takes the three again: only C goes (the deepest first, whoever asks first), and A and
 *      B wait on.
 * At every point the notional in flight is within the cap.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readLedger } from "../../functions/adapters/cascade-ledger-store.ts";
import { live } from "../../functions/domain/cascade-ledger.ts";
import { dec, sum } from "../../functions/domain/money.ts";
import { leveredAccount, market } from "../support/market.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { activatePolicies, stackPolicy } from "../support/policies.ts";
import { executionReport, holding, perpetual } from "../support/upstream.ts";

let p: Pipeline;
const T0 = "2026-11-24T12:00:00.000Z";
const author = { at: T0, by: "test" };
const CAP = dec("60000");
const cascade = { windowSeconds: 600, totalNotionalCap: "60000" };

beforeAll(async () => {
  p = await startPipeline(import.meta.url, T0);
  const runtime = await activatePolicies(p, [{ ...stackPolicy(), version: 4, cascade }], author);
  expect(runtime.policies.get("crypto-lending")?.policy.cascade).toMatchObject(cascade);
});
afterAll(async () => {
  await p?.close();
});

const requested = () =>
  p.stub.events
    .filter((event) => event.detailType === "LiquidationRequested")
    .map((event) => JSON.parse(event.detail) as { accountId: string; requestId: string; plan: unknown });

const ledger = () =>
  readLedger({ dynamo: p.db.dynamodb, tables: { triggerIndex: "TriggerIndex" } }, "crypto-lending");

/** In flight now, by the ledger: never above the cap. */
async function inFlight() {
  const read = await ledger();
  const counted = live(read, { ...cascade, assetNotionalCaps: {} }, p.now()).inFlight;
  const total = sum(counted.flatMap((r) => [...r.notionalByAsset.values()]));
  expect(total.lessThanOrEqualTo(CAP), `in flight ${total.toFixed()}`).toBe(true);
  return { read, counted, total };
}

async function sweepNow(id: string) {
  const sweep = await p.handler<Record<string, unknown>>("Sweep");
  await sweep({ id, time: p.now() });
  await p.drain();
}

const waits = async (accountId: string) =>
  (await p.query("AuditLog", "accountId", accountId)).filter((entry) =>
    String(entry.reason).startsWith("liquidation waits for the cascade caps"),
  );

describe("the cascade caps", () => {
  it("admits the first liquidation of a crash and counts it in flight", async () => {
    await market(p, "56000.00");
    await leveredAccount(p, "ACC-FIRST");
    await p.drain();
    p.advance(10);
    await market(p, "49000.00");
    await p.drain();
    p.advance(30);
    await sweepNow("sweep-1");
    expect(requested().map((r) => r.accountId)).toEqual(["ACC-FIRST"]);
    expect((await p.callState("ACC-FIRST"))?.status).toBe("LIQUIDATING");
    const { counted, total } = await inFlight();
    expect(counted.map((r) => r.accountId)).toEqual(["ACC-FIRST"]);
    expect(total.greaterThan(dec("25000")) && total.lessThan(CAP)).toBe(true);
  });

  it("holds three more that do not fit, each recorded once, listed by priority: the deepest deficit first", async () => {
    for (const accountId of ["ACC-A", "ACC-B", "ACC-C"]) await leveredAccount(p, accountId);
    await p.put("Accounts", holding("ACC-C", "USD", "-59000.00", 2));
    await p.drain();
    p.advance(30);
    await market(p, "49000.00");
    await sweepNow("sweep-2");
    p.advance(60);
    await market(p, "49000.00");
    await sweepNow("sweep-3");
    expect(requested().map((r) => r.accountId)).toEqual(["ACC-FIRST"]);
    for (const accountId of ["ACC-A", "ACC-B", "ACC-C"]) {
      const state = await p.callState(accountId);
      expect(state?.status, accountId).toBe("CALLED");
      expect(state?.call?.liquidationWaitingAt, accountId).not.toBeNull();
      expect(await waits(accountId), accountId).toHaveLength(1);
    }
    const { read } = await inFlight();
    expect(read.waiting.map((w) => w.accountId)).toEqual(["ACC-C", "ACC-A", "ACC-B"]);
    expect(read.waiting[0]?.marginRatio.lessThan(read.waiting[1]?.marginRatio ?? 0)).toBe(true);
  });

  it("sends the deepest once the first request's window has passed, and keeps the others waiting", async () => {
    const first = requested()[0];
    p.advance(5);
    await market(p, "49000.00");
    await p.put("Accounts", holding("ACC-FIRST", "BTC", "0", 2));
    await p.put("Accounts", holding("ACC-FIRST", "ETH", "0", 2));
    await p.put("Accounts", { ...perpetual("ACC-FIRST", "BTC-PERP", "0", "64250.50"), seq: 2 });
    await p.put("Accounts", holding("ACC-FIRST", "USD", "2000.00", 2));
    await p.put(
      "Accounts",
      executionReport(
        "ACC-FIRST",
        "FILL-FIRST",
        first?.requestId ?? "",
        { kind: "POSITION", instrument: "BTC-PERP" },
        "0.5",
        "49000",
        p.now(),
      ),
    );
    await p.drain();
    expect((await p.callState("ACC-FIRST"))?.status).toBe("LIQUIDATED");
    // Settled, it still counts until 600 s after it was sent.
    const settled = await inFlight();
    expect(settled.counted.map((r) => [r.accountId, r.settledAt !== null])).toEqual([["ACC-FIRST", true]]);
    await sweepNow("sweep-4");
    expect(requested().map((r) => r.accountId)).toEqual(["ACC-FIRST"]);

    p.advance(600);
    await market(p, "49000.00");
    await sweepNow("sweep-5");
    expect(requested().map((r) => r.accountId)).toEqual(["ACC-FIRST", "ACC-C"]);
    expect((await p.callState("ACC-C"))?.status).toBe("LIQUIDATING");
    for (const accountId of ["ACC-A", "ACC-B"]) {
      expect((await p.callState(accountId))?.status, accountId).toBe("CALLED");
      expect(await waits(accountId), accountId).toHaveLength(1);
    }
    const after = await inFlight();
    expect(after.counted.map((r) => r.accountId)).toEqual(["ACC-C"]);
    expect(after.read.waiting.map((w) => w.accountId)).toEqual(["ACC-A", "ACC-B"]);
    expect(p.discarded).toEqual({ AccountChanges: [], PriceTicks: [], OutboxRelay: [] });
  });
});
