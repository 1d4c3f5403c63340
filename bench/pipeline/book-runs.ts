/**
 * P6 and P2 on the demo's generated book (functions/local/demo/book.ts: one to three of BTC, ETH, SOL, a
 * quarter with a perpetual, loans of 15–85% of what the collateral lends), written as upstream writes it
 * and indexed by the AccountChanges handler at BTC 60,000, ETH 3,000, SOL 150.
 *
 * P6, the sweep: the Sweep handler, then the FanOutWorker queue mapping drained by one poller per sweep
 * segment (as Lambda runs the segments at once), until the queue is empty; against a raw parallel Scan of
 * the same table with as many segments, through the same proxy.
 *
 * P2, a tick's fan-out: BTC drops 30%, crossing many lines; the PriceTicks stream mapping, then the FanOutWorker mapping, until
 * both are idle. Counted at the proxy: the items the handlers read and wrote, per account whose state
 * changed (one TransactWriteItems each). The naive peer reads every holder of BTC: all of its items (found
 * by a parallel Scan, as there is no index by asset) and its state (BatchGetItem), and writes what the
 * handlers' transactions wrote; run in the same pipeline, counted the same way.
 */
import { BatchGetItemCommand, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { parsePolicy } from "../../functions/domain/policy.ts";
import { generateBook, writeAccounts } from "../../functions/local/demo/book.ts";
import { recordUsage } from "../cost.ts";
import { type Figure, limitGoal, ratioGoal } from "../figures.ts";
import { drive, type Pipeline, putPrice } from "./harness.ts";
import { benchPolicy, PIPELINE_POLICY } from "./policy.ts";
import type { Captured } from "./proxy.ts";
import { elapsedMs, HeapTracker, log, peakHeap, timed } from "./stats.ts";

const OPENING = { BTC: "60000.00", ETH: "3000.00", SOL: "150.000" };
const DROPPED_BTC = "42000.00";

export async function seedBook(pipeline: Pipeline, size: number): Promise<{ ms: number; heap: HeapTracker }> {
  for (const [asset, price] of Object.entries(OPENING)) await putPrice(pipeline.bench, asset, price);
  await drive(pipeline.stream("PriceTicks"));
  const policy = parsePolicy(benchPolicy());
  const book = generateBook(size, 7, policy, OPENING, PIPELINE_POLICY, "2026-11-24T09:00:00Z");
  for (let first = 0; first < book.length; first += 10_000) {
    await writeAccounts(pipeline.bench, "Accounts", book.slice(first, first + 10_000));
  }
  const heap = new HeapTracker(() => pipeline.proxy.accountReads);
  const { ms } = await timed(async () => {
    const changes = pipeline.stream("AccountChanges");
    let logged = 0;
    while ((await heap.poll(changes)) > 0) {
      if (heap.accounts - logged < 5_000) continue;
      logged = heap.accounts;
      log(`  indexed: ${heap.accounts} accounts revalued by AccountChanges, ${heap.invocations} batches`);
    }
  });
  return { ms, heap };
}

/** Scans a table in `segments` parallel segments; returns the items of each account, by account. */
async function parallelScan(client: DynamoDBClient, segments: number, keep: boolean) {
  const accounts = new Map<string, string[]>();
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let start: Record<string, never> | undefined;
      do {
        const page = await client.send(
          new ScanCommand({
            TableName: "Accounts",
            Segment: segment,
            TotalSegments: segments,
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        );
        if (keep) {
          for (const item of page.Items ?? []) {
            const id = item.accountId?.S ?? "";
            accounts.set(id, [...(accounts.get(id) ?? []), item.sk?.S ?? ""]);
          }
        }
        start = page.LastEvaluatedKey as Record<string, never> | undefined;
      } while (start);
    }),
  );
  return accounts;
}

export async function sweepVsScan(pipeline: Pipeline, size: number) {
  const fanOut = pipeline.queue("FanOutWorker");
  pipeline.proxy.reset();
  const { ms: sweepMs, value: heap } = await timed(async () => {
    await pipeline.runtime.fireSchedule("Sweep");
    const segments = Math.max(1, fanOut.depth());
    const tracker = new HeapTracker();
    const { bytes } = await peakHeap(async () => {
      while (fanOut.depth() > 0) {
        const counts = await Promise.all(Array.from({ length: segments }, () => drive(fanOut)));
        tracker.invocations += counts.reduce((sum, count) => sum + count, 0);
      }
    });
    tracker.peakBytes = bytes / segments;
    tracker.accounts = size;
    return { tracker, segments };
  });
  recordUsage("sweptAccount", pipeline.proxy.totals("engine"), size, sweepMs);
  const scan = await timed(() => parallelScan(pipeline.bench, heap.segments, false));
  const figure = ratioGoal(
    {
      id: "P6 sweep",
      benchmark: `sweep of ${size.toLocaleString("en-US")} accounts`,
      unit: "ms",
      measured: sweepMs,
      reference: scan.ms,
      referenceLabel: `raw ${heap.segments}-segment parallel Scan of the same table`,
      notes: `${Math.round((size / sweepMs) * 1000).toLocaleString("en-US")} accounts/s; ${heap.tracker.invocations} fan-out pages, ${heap.segments} pollers`,
    },
    1.2,
  );
  return { figure, heap: heap.tracker };
}

/** Items a naive peer reads for the move: every item and the state of every holder of BTC. */
async function naiveReads(pipeline: Pipeline): Promise<{ items: number; holders: number; ms: number }> {
  const start = process.hrtime.bigint();
  const accounts = await parallelScan(pipeline.bench, 4, true);
  const holders = [...accounts].filter(([, keys]) =>
    keys.some((sk) => sk === "HOLDING#BTC" || sk === "POSITION#BTC-PERP"),
  );
  for (let first = 0; first < holders.length; first += 100) {
    const keys = holders.slice(first, first + 100).map(([accountId]) => ({ accountId: { S: accountId } }));
    await pipeline.bench.send(new BatchGetItemCommand({ RequestItems: { MarginCalls: { Keys: keys } } }));
  }
  const items = holders.reduce((sum, [, keys]) => sum + keys.length, 0) + holders.length;
  return { items, holders: holders.length, ms: elapsedMs(start) };
}

export async function fanOut(pipeline: Pipeline, size: number): Promise<Figure> {
  const transactions: string[] = [];
  pipeline.proxy.capture = (request: Captured) => {
    if (request.source === "engine" && request.operation === "TransactWriteItems")
      transactions.push(request.body);
  };
  pipeline.proxy.reset();
  const tick = await timed(async () => {
    await putPrice(pipeline.bench, "BTC", DROPPED_BTC);
    while ((await drive(pipeline.stream("PriceTicks"))) + (await drive(pipeline.queue("FanOutWorker"))) > 0);
  }).finally(() => {
    pipeline.proxy.capture = undefined;
  });
  const engine = pipeline.proxy.totals("engine");
  const changed = transactions.length;
  const txWritten = transactions.reduce(
    (sum, body) =>
      sum +
      (JSON.parse(body) as { TransactItems: object[] }).TransactItems.filter(
        (item) => !("ConditionCheck" in item),
      ).length,
    0,
  );
  recordUsage("fanOutPerChange", engine, Math.max(1, changed), tick.ms);
  const naive = await naiveReads(pipeline);
  return limitGoal(
    {
      id: "P2 fan-out",
      benchmark: `tick fan-out, BTC −30% on ${size.toLocaleString("en-US")} accounts`,
      unit: "items/changed account",
      measured: (engine.read + engine.written) / Math.max(1, changed),
      reference: (naive.items + txWritten) / Math.max(1, changed),
      referenceLabel: `naive peer: every item and state of the ${naive.holders.toLocaleString("en-US")} BTC holders, + the same writes`,
      notes: `${changed} accounts changed state; handlers read ${engine.read} and wrote ${engine.written} items in ${Math.round(tick.ms)} ms; the naive reads took ${Math.round(naive.ms)} ms`,
    },
    2,
  );
}
