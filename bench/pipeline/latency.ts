/**
 * P3: a single-account tick → call, through the deployed handlers, against its floor in the same run.
 *
 * Repetition i has an account of its own on the asset LAT (policy.ts): 100 units against the loan that puts
 * its breach line at B_i = 500 · 1.012^i. LAT stands at 1,100. Before each repetition, untimed, its
 * account is written and indexed (AccountChanges); tick i writes T_i = 0.995 · B_i (margin ratio 0.915,
 * above the hard floor), so its range [T_i, 1,100] holds account i's warning and breach lines and no line
 * of an earlier account (all below 0.994 · B_i): account i must become CALLED, and only it is revalued.
 * After it, untimed, LAT goes back to 1,100 (the account is cured on its cure line). Timed: the price
 * PutItem, then rounds of the
 * PriceTicks stream mapping (functions/local/stream-mapping.ts `pollOnce`, as the local runtime's poller
 * does) each followed by a consistent read of the account's MarginCalls state, until it reads CALLED.
 *
 * The floor is what cannot be avoided, in a database of its own on the same DynamoDB Local and through the
 * same proxy: the price PutItem, GetRecords on the Prices stream until the record is there, one
 * consistent GetItem of a state, and the TransactWriteItems the handler committed for this repetition
 * (captured at the proxy, the account renamed to one of the same length). The two alternate, repetition
 * by repetition, so that both see the same load on the machine.
 */
import { GetItemCommand, TransactWriteItemsCommand } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  type DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import type { LocalClients } from "../../functions/local/aws-clients.ts";
import { writeAccounts } from "../../functions/local/demo/book.ts";
import { streamArnOf } from "../../functions/local/streams.ts";
import { type Figure, ratioGoal, reported } from "../figures.ts";
import { asFirstStep } from "./first-step.ts";
import { callStatus, drive, type Pipeline, putPrice } from "./harness.ts";
import { LATENCY_ASSET, loanAccount } from "./policy.ts";
import type { Captured } from "./proxy.ts";
import { elapsedMs, percentile } from "./stats.ts";

const accountOf = (index: number) => `LAT-${String(index).padStart(4, "0")}`;
const breachOf = (index: number) => 500 * 1.012 ** index;
const HIGH = "1100.00";
const tickOf = (index: number) => (0.995 * breachOf(index)).toFixed(2);
const floorAccountOf = (index: number) => `FLR-${String(index).padStart(4, "0")}`;

/**
 * A minimal reader of the Prices stream: one iterator on its open shard, then GetRecords until a record.
 * DynamoDB Local refuses an iterator taken on an empty shard once records arrive, so a first record is
 * written and read before any timing.
 */
async function streamReader(clients: LocalClients, table: string): Promise<{ next(): Promise<number> }> {
  await putPrice(clients.dynamodb, LATENCY_ASSET, "1100.00");
  const streamArn = await streamArnOf(clients.dynamodb, table);
  const streams: DynamoDBStreamsClient = clients.streams;
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
  const shard = (StreamDescription?.Shards ?? []).find((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
  if (!shard?.ShardId) throw new Error(`no open shard on the ${table} stream`);
  const { ShardIterator } = await streams.send(
    new GetShardIteratorCommand({
      StreamArn: streamArn,
      ShardId: shard.ShardId,
      ShardIteratorType: "TRIM_HORIZON",
    }),
  );
  let iterator = ShardIterator;
  const reader = {
    next: async () => {
      for (let attempt = 0; attempt < 10_000 && iterator; attempt += 1) {
        const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
        iterator = page.NextShardIterator;
        if (page.Records?.length) return page.Records.length;
      }
      throw new Error("the floor's stream record never came");
    },
  };
  await reader.next();
  return reader;
}

/** Account i written and indexed at the high price, before its repetition. */
async function prepare(pipeline: Pipeline, index: number): Promise<void> {
  const account = loanAccount(accountOf(index), LATENCY_ASSET, breachOf(index));
  await writeAccounts(pipeline.bench, "Accounts", [account]);
  await drive(pipeline.stream("AccountChanges"));
}

async function measured(pipeline: Pipeline, index: number, captured: string[]): Promise<number> {
  const ticks = pipeline.stream("PriceTicks");
  const start = process.hrtime.bigint();
  await putPrice(pipeline.bench, LATENCY_ASSET, tickOf(index));
  for (let round = 0; round < 1000; round += 1) {
    await ticks.pollOnce();
    if ((await callStatus(pipeline.bench, accountOf(index))) === "CALLED") {
      const ms = elapsedMs(start);
      if (captured.length !== 1)
        throw new Error(`repetition ${index}: ${captured.map((t) => t.slice(0, 600)).join("\n\n")}`);
      return ms;
    }
  }
  throw new Error(`${accountOf(index)} was never CALLED`);
}

async function floor(floorDb: LocalClients, reader: { next(): Promise<number> }, index: number, tx: string) {
  const transaction = asFirstStep(tx.replaceAll(accountOf(index), floorAccountOf(index)));
  const start = process.hrtime.bigint();
  await putPrice(floorDb.dynamodb, LATENCY_ASSET, tickOf(index));
  await reader.next();
  await floorDb.dynamodb.send(
    new GetItemCommand({
      TableName: "MarginCalls",
      Key: { accountId: { S: floorAccountOf(index) } },
      ConsistentRead: true,
    }),
  );
  await floorDb.dynamodb.send(new TransactWriteItemsCommand(transaction));
  return elapsedMs(start);
}

export async function tickToCall(
  pipeline: Pipeline,
  repetitions: number,
  warmups: number,
): Promise<Figure[]> {
  const count = repetitions + warmups;
  await putPrice(pipeline.bench, LATENCY_ASSET, HIGH);
  await drive(pipeline.stream("PriceTicks"));
  const floorDb = await pipeline.scratch("floor");
  const reader = await streamReader(floorDb, "Prices");
  const latencies: number[] = [];
  const floors: number[] = [];
  const captured: string[] = [];
  const capture = (request: Captured) => {
    if (request.source === "engine" && request.operation === "TransactWriteItems")
      captured.push(request.body);
  };
  for (let index = 0; index < count; index += 1) {
    await prepare(pipeline, index);
    captured.length = 0;
    pipeline.proxy.capture = capture;
    const latency = await measured(pipeline, index, captured).finally(() => {
      pipeline.proxy.capture = undefined;
    });
    const floorMs = await floor(floorDb, reader, index, captured[0] ?? "");
    await putPrice(pipeline.bench, LATENCY_ASSET, HIGH);
    await drive(pipeline.stream("PriceTicks"));
    if (index < warmups) continue;
    latencies.push(latency);
    floors.push(floorMs);
  }
  // The floor is one number, the median of its repetitions; its p99 on a shared machine is noise.
  const floor50 = percentile(floors, 50);
  const base = {
    benchmark: "tick → CALLED, one account",
    unit: "ms",
    reference: floor50,
    referenceLabel:
      "floor (median): price PutItem + GetRecords + state GetItem + the same TransactWriteItems",
    notes:
      `${repetitions} repetitions after ${warmups} warm-up, one TransactWriteItems each; ` +
      `floor p50 ${floor50.toFixed(1)} ms, p99 ${percentile(floors, 99).toFixed(1)} ms`,
  };
  return [
    reported({ ...base, id: "P3 p50", measured: percentile(latencies, 50) }),
    ratioGoal({ ...base, id: "P3 p99", measured: percentile(latencies, 99) }, 2),
  ];
}
