/**
 * The local runtime's emulation of a stream mapping's ParallelizationFactor, on real stream records of
 * DynamoDB Local: up to the factor's batches of a shard at once, never two holding records of the same
 * item (partition and sort key), and each item's records in stream order, retries included; at factor 1
 * (PriceTicks) one batch at a time, in stream order.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toItem } from "../../functions/adapters/codec.ts";
import { LOCAL_ACCOUNT, type LocalMapping, readDeployment } from "../../functions/local/deployment.ts";
import { itemKeyOf } from "../../functions/local/stream-lanes.ts";
import { type StreamFailureRecord, StreamMapping } from "../../functions/local/stream-mapping.ts";
import { StreamReader, streamArnOf } from "../../functions/local/streams.ts";
import { type TestDatabase, testDatabase } from "../support/local-dynamodb.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await testDatabase(import.meta.url);
});
afterAll(() => {
  db?.destroy();
});

function mappingOf(prefix: string): LocalMapping {
  const deployment = readDeployment(db.template, {
    queueUrl: (id) => `http://localhost/${LOCAL_ACCOUNT}/${id}`,
  });
  const fn = [...deployment.functions.keys()].find((id) => id.startsWith(`${prefix}Function`));
  const mapping = deployment.mappings.find((m) => m.functionLogicalId === fn);
  if (!mapping) throw new Error(`no mapping for ${prefix}`);
  return mapping;
}

/** A reader positioned after everything earlier tests wrote to the table's stream. */
async function readerAtEnd(table: string): Promise<StreamReader> {
  const reader = new StreamReader(db.streams, await streamArnOf(db.dynamodb, table), "LATEST");
  await reader.fetch();
  reader.take();
  return reader;
}

async function untilIdle(mapping: StreamMapping): Promise<void> {
  for (let polls = 0; polls < 500; polls += 1) if ((await mapping.pollOnce()) === 0) return;
  throw new Error("not idle");
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seqOf = (record: DynamoDBRecord) => Number(record.dynamodb?.NewImage?.seq?.N ?? 0);

type Handler = (
  event: DynamoDBStreamEvent,
) => Promise<{ batchItemFailures: { itemIdentifier: string }[] } | undefined>;

/**
 * A handler that watches what the mapping does: batches running at once, an item in two batches at once,
 * and the order in which each item's records were handled. It handles a batch's records in order and stops
 * at the first one `fails` picks, reporting it (and so the records after it) failed.
 */
function watchingHandler(fails: (record: DynamoDBRecord) => boolean) {
  const active = new Set<string>();
  const watch = { running: 0, peak: 0, overlaps: 0, batches: 0, handled: new Map<string, number[]>() };
  const handler: Handler = async (event) => {
    watch.batches += 1;
    watch.running += 1;
    watch.peak = Math.max(watch.peak, watch.running);
    const keys = [...new Set(event.Records.map(itemKeyOf))];
    for (const key of keys) if (active.has(key)) watch.overlaps += 1;
    for (const key of keys) active.add(key);
    try {
      for (const record of event.Records) {
        await pause(1 + Math.floor(Math.random() * 4));
        if (fails(record))
          return { batchItemFailures: [{ itemIdentifier: record.dynamodb?.SequenceNumber ?? "" }] };
        const key = itemKeyOf(record);
        watch.handled.set(key, [...(watch.handled.get(key) ?? []), seqOf(record)]);
      }
      return { batchItemFailures: [] };
    } finally {
      for (const key of keys) active.delete(key);
      watch.running -= 1;
    }
  };
  return { watch, handler };
}

const UPDATED = ["HOLDING#A", "HOLDING#B", "HOLDING#C", "HOLDING#D"];

/** 40 items written once, then 4 items of ACC-SEQ-2 updated 6 times each, interleaved: 64 records. */
async function writeAccountItems(): Promise<void> {
  const writes: Array<{ accountId: string; sk: string; seq: number }> = [];
  for (let i = 0; i < 40; i += 1) writes.push({ accountId: `ACC-PAR-${i % 8}`, sk: `HOLDING#X${i}`, seq: 1 });
  for (let seq = 1; seq <= 6; seq += 1) {
    for (const sk of UPDATED) writes.push({ accountId: "ACC-SEQ-2", sk, seq });
  }
  for (const write of writes) {
    await db.dynamodb.send(
      new PutItemCommand({
        TableName: "Accounts",
        Item: toItem({ ...write, asset: "BTC", quantity: "1", updatedAt: "2026-11-24T12:00:00Z" }),
      }),
    );
  }
}

/** 8 ticks of 3 prices (3 items), round robin: 24 records. Returns each record's item and seq, in order. */
async function writePrices(): Promise<string[]> {
  const written: string[] = [];
  const items = [
    ["BTC", "a"],
    ["ETH", "a"],
    ["SOL", "b"],
  ] as const;
  for (let seq = 1; seq <= 8; seq += 1) {
    for (const [asset, source] of items) {
      await db.dynamodb.send(
        new PutItemCommand({
          TableName: "Prices",
          Item: toItem({ asset, source, seq, price: `${100 + seq}` }),
        }),
      );
      written.push(`${itemKeyOf(recordOf(asset, source, "asset", "source"))}@${seq}`);
    }
  }
  return written;
}

describe("a stream mapping's parallelization factor above 1 (AccountChanges: 4)", () => {
  it("runs up to 4 batches of a shard at once, each item's records never concurrently and in order", async () => {
    const template = mappingOf("AccountChanges");
    expect(template.parallelizationFactor).toBe(4);
    const reader = await readerAtEnd("Accounts");
    // One record of ACC-SEQ-2's HOLDING#B fails its first delivery: its lane retries while the others go on.
    let failedOnce = false;
    const { watch, handler } = watchingHandler((record) => {
      const hit = !failedOnce && itemKeyOf(record).includes("HOLDING#B") && seqOf(record) === 2;
      if (hit) failedOnce = true;
      return hit;
    });
    const failures: StreamFailureRecord[] = [];
    const mapping = new StreamMapping({ ...template, batchSize: 5 }, reader, handler, async (record) => {
      failures.push(record);
    });
    await writeAccountItems();
    await untilIdle(mapping);

    expect(watch.overlaps).toBe(0);
    expect(watch.peak).toBeGreaterThan(1);
    expect(watch.peak).toBeLessThanOrEqual(4);
    expect(mapping.stats.peakConcurrency).toBe(watch.peak);
    expect(failedOnce).toBe(true);
    expect(failures).toEqual([]);
    // Every record handled once, and each item's records in the order they were written.
    expect(watch.handled.size).toBe(44);
    for (const sk of UPDATED) {
      expect(watch.handled.get(itemKeyOf(recordOf("ACC-SEQ-2", sk)))).toEqual([1, 2, 3, 4, 5, 6]);
    }
    expect(mapping.backlog()).toBe(0);
  });
});

describe("a stream mapping's parallelization factor of 1 (PriceTicks)", () => {
  it("delivers one batch at a time, in stream order", async () => {
    const template = mappingOf("PriceTicks");
    expect(template.parallelizationFactor).toBe(1);
    const reader = await readerAtEnd("Prices");
    const { watch, handler } = watchingHandler(() => false);
    const order: string[] = [];
    const mapping = new StreamMapping(
      { ...template, batchSize: 4 },
      reader,
      async (event) => {
        for (const record of event.Records) order.push(`${itemKeyOf(record)}@${seqOf(record)}`);
        return handler(event);
      },
      async () => undefined,
    );
    const written = await writePrices();
    await untilIdle(mapping);

    expect(watch.peak).toBe(1);
    expect(watch.batches).toBe(6);
    expect(order).toEqual(written);
  });
});

/** A record that only has the keys of an item, for its item key. */
function recordOf(
  partition: string,
  sort: string,
  partitionName = "accountId",
  sortName = "sk",
): DynamoDBRecord {
  return { dynamodb: { Keys: { [partitionName]: { S: partition }, [sortName]: { S: sort } } } };
}
