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
