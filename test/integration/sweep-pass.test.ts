/**
 * One sweep pass at a time (adapters/sweep-pass.ts): a sweep that fires while the last pass's segments are
 * still being paged starts nothing; the pass ends when its last segment does; a pass that runs too long is
 * superseded, and its remaining pages stop.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromImage } from "../../functions/adapters/codec.ts";
import { SWEEP_PASS_STALE_SECONDS } from "../../functions/handlers/sweep.ts";
import { type Pipeline, startPipeline } from "../support/pipeline.ts";
import { holding, price, profile } from "../support/upstream.ts";

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url);
  for (const source of ["a", "b", "c"]) await p.put("Prices", price("BTC", source, "50000.00", p.now()));
  for (let index = 0; index < 20; index += 1) {
    const accountId = `ACC-PASS-${String(index).padStart(2, "0")}`;
    await p.put("Accounts", profile(accountId));
    await p.put("Accounts", holding(accountId, "USD", "-10000.00"));
    await p.put("Accounts", holding(accountId, "BTC", "1"));
  }
  await p.drain();
}, 120_000);

afterAll(async () => {
  await p?.close();
});

type SweepResult = { segmentsQueued: number };

async function sweep(id: string): Promise<SweepResult> {
  const handler = await p.handler<Record<string, unknown>>("Sweep");
  return (await handler({ id, time: p.now(), "detail-type": "Scheduled Event" })) as SweepResult;
}

async function passRecord(): Promise<Record<string, unknown>> {
  const result = await p.db.dynamodb.send(
    new GetItemCommand({
      TableName: "TriggerIndex",
      Key: { line: { S: "SWEEP#PASS" }, triggerKey: { S: "CURRENT" } },
      ConsistentRead: true,
    }),
  );
  return result.Item ? fromImage(result.Item) : {};
}

describe("the sweep's passes", () => {
  it("starts no second pass while the first one's segments are still queued, and one once they finished", async () => {
    const first = await sweep("pass-1");
    expect(first.segmentsQueued).toBeGreaterThan(0);
    expect(p.fanOut.depth()).toBe(first.segmentsQueued);
    p.advance(60);
    expect((await sweep("pass-2")).segmentsQueued).toBe(0);
    expect(p.fanOut.depth()).toBe(first.segmentsQueued);
    while ((await p.fanOut.pollOnce()) > 0);
    const record = await passRecord();
    expect(record.passId).toMatch(/pass-1/);
    expect((record.finished as Set<number>).size).toBe(first.segmentsQueued);
    p.advance(60);
    expect((await sweep("pass-3")).segmentsQueued).toBe(first.segmentsQueued);
    while ((await p.fanOut.pollOnce()) > 0);
  });

  it("queues its own pass again when the sweep is retried with the same event", async () => {
    p.advance(60);
    const first = await sweep("pass-retried");
    expect(first.segmentsQueued).toBeGreaterThan(0);
    // The invocation failed after starting the pass; EventBridge delivers the same event again.
    expect((await sweep("pass-retried")).segmentsQueued).toBe(first.segmentsQueued);
    while ((await p.fanOut.pollOnce()) > 0);
    expect(((await passRecord()).finished as Set<number>).size).toBe(first.segmentsQueued);
  });

  it("finishes its segment when one account cannot be revalued, and revalues the others", async () => {
    // A price line the trigger index cannot encode: 100 trillion USD against a dust short of ETH.
    p.advance(60);
    for (const source of ["a", "b", "c"]) {
      await p.put("Prices", price("ETH", source, "3000.00", p.now()));
      await p.put("Prices", price("BTC", source, "50000.00", p.now()));
    }
    await p.put("Accounts", profile("ACC-HOSTILE"));
    await p.put("Accounts", holding("ACC-HOSTILE", "USD", "100000000000000"));
    await p.put("Accounts", holding("ACC-HOSTILE", "ETH", "-0.00000001"));
    // A neighbour that needs the exact path: a loan that the sweep finds in breach.
    await p.put("Accounts", holding("ACC-PASS-00", "USD", "-49000.00", 2));
    const { segmentsQueued } = await sweep("pass-hostile");
    while ((await p.fanOut.pollOnce()) > 0);
    expect(((await passRecord()).finished as Set<number>).size).toBe(segmentsQueued);
    expect((await p.callState("ACC-PASS-00"))?.status).toBe("CALLED");
  });

  it("supersedes a pass that ran too long, and the old pass's pages stop", async () => {
    const first = await sweep("pass-4");
    expect(first.segmentsQueued).toBeGreaterThan(0);
    p.advance(SWEEP_PASS_STALE_SECONDS + 1);
    const second = await sweep("pass-5");
    expect(second.segmentsQueued).toBe(first.segmentsQueued);
    while ((await p.fanOut.pollOnce()) > 0);
    const record = await passRecord();
    expect(record.passId).toMatch(/pass-5/);
    // Only the new pass's segments were counted: the old ones were dropped when their page came up.
    expect((record.finished as Set<number>).size).toBe(second.segmentsQueued);
  });
});
