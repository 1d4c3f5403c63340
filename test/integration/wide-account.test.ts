/**
 * The audit snapshot is bounded (issue 12, part 1), reproduced on DynamoDB Local: an account with ten
 * thousand zero-quantity holdings made the first audit entry of its call exceed DynamoDB's 400 KB item
 * limit, so the commit failed on every retry and the account was never called. An account with two thousand
 * deposits in flight has a snapshot that is large for real: it is kept gzipped, and still replays.
 *
 * The items are written straight to the table and the sweep's pass revalues the book (the fan-out worker,
 * as deployed): ten thousand stream records of one account would only time the local stream.
 */
import { BatchWriteItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromImage, toItem } from "../../functions/adapters/codec.ts";
import { SNAPSHOT_TEXT_MAX, snapshotOfEntry } from "../../functions/adapters/step-items.ts";
import { evaluateSnapshot, type snapshotOf } from "../../functions/domain/snapshot.ts";
import { market } from "../support/market.ts";
import { type Item, type Pipeline, startPipeline } from "../support/pipeline.ts";
import { deposit, holding, perpetual, profile } from "../support/upstream.ts";

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline(import.meta.url, "2026-11-24T12:00:00.000Z");
});
afterAll(async () => {
  await p?.close();
});

async function writeAll(items: readonly Item[]): Promise<void> {
  for (let start = 0; start < items.length; start += 25) {
    await p.db.dynamodb.send(
      new BatchWriteItemCommand({
        RequestItems: {
          Accounts: items.slice(start, start + 25).map((item) => ({ PutRequest: { Item: toItem(item) } })),
        },
      }),
    );
  }
}

/** docs/snapshots/crypto-called.json's account (market.ts `leveredAccount`), as items. */
function levered(accountId: string): Item[] {
  return [
    profile(accountId),
    holding(accountId, "USD", "-58000.00"),
    holding(accountId, "BTC", "1.25000000"),
    holding(accountId, "ETH", "6.00000000"),
    perpetual(accountId, "BTC-PERP", "0.500", "64250.50"),
  ];
}

async function untilIdle(mapping: { pollOnce(): Promise<number> }): Promise<void> {
  while ((await mapping.pollOnce()) > 0) {}
}

const ZERO_HOLDINGS = 10_000;
const DEPOSITS_IN_FLIGHT = 2_000;

describe("accounts too wide for one audit item", () => {
  it("are called like any other, and their decisions replay from what the audit log kept", async () => {
    await market(p, "51800.00");
    await writeAll([
      ...levered("ACC-PLAIN"),
      ...levered("ACC-ZEROS"),
      // Ten thousand holdings of nothing, with long asset codes: about 600 KB in a snapshot.
      ...Array.from({ length: ZERO_HOLDINGS }, (_, index) =>
        holding("ACC-ZEROS", `Z${String(index).padStart(30, "0")}`, "0"),
      ),
      ...levered("ACC-PENDING"),
      ...Array.from({ length: DEPOSITS_IN_FLIGHT }, (_, index) =>
        deposit("ACC-PENDING", `WIRE-${String(index).padStart(40, "0")}`, "1.00", "PENDING", p.now()),
      ),
    ]);
    const sweep = await p.handler<Record<string, unknown>>("Sweep");
    await sweep({ time: p.now(), id: "wide" });
    await untilIdle(p.fanOut);

    const plain = await p.callState("ACC-PLAIN");
    expect(plain?.status).toBe("CALLED");
    for (const id of ["ACC-ZEROS", "ACC-PENDING"]) {
      const state = await p.callState(id);
      expect(state?.status, id).toBe("CALLED");
      expect(state?.call?.amountDue, id).toBe(plain?.call?.amountDue);
    }

    // The empty holdings are not in the decision: its snapshot is small text.
    const [zeros] = (await p.query("AuditLog", "accountId", "ACC-ZEROS")).filter(
      (entry) => entry.to === "CALLED",
    );
    expect(String(zeros?.snapshot).length).toBeLessThan(20_000);

    // The deposits in flight are: the snapshot is gzipped on the audit entry, and replays to the same step.
    const [pending] = (await p.query("AuditLog", "accountId", "ACC-PENDING")).filter(
      (entry) => entry.to === "CALLED",
    );
    if (!pending) throw new Error("no audit entry of the call");
    expect(pending.snapshot).toBeUndefined();
    expect(pending.snapshotGzip).toBeInstanceOf(Uint8Array);
    const readPart = async (seq: string) => {
      const result = await p.db.dynamodb.send(
        new GetItemCommand({ TableName: "AuditLog", Key: toItem({ accountId: "ACC-PENDING", seq }) }),
      );
      return result.Item ? (fromImage(result.Item).snapshotPart as Uint8Array) : undefined;
    };
    const snapshot = (await snapshotOfEntry(pending, readPart)) as ReturnType<typeof snapshotOf>;
    expect(JSON.stringify(snapshot).length).toBeGreaterThan(SNAPSHOT_TEXT_MAX);
    expect(snapshot.account.pendingDeposits).toHaveLength(DEPOSITS_IN_FLIGHT);
    const replay = evaluateSnapshot(snapshot);
    expect(replay.step.next.status).toBe("CALLED");
    expect(replay.step.next.version).toBe(pending.version);
    expect(Object.values(p.discarded).flat()).toEqual([]);
  }, 120_000);
});
