/**
 * The local runtime honours the template's trigger settings, with Lambda's failure semantics: partial
 * batch responses, bisection, bounded retries, maximum record age and the on-failure destination for
 * streams; visibility timeouts and the redrive policy for the SQS mapping.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { DynamoDBRecord, DynamoDBStreamEvent, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toItem } from "../../functions/adapters/codec.ts";
import { type AwsStub, startAwsStub } from "../../functions/local/aws-stub/index.ts";
import { LOCAL_ACCOUNT, type LocalMapping, readDeployment } from "../../functions/local/deployment.ts";
import { configureQueues, QueueMapping } from "../../functions/local/queue-mapping.ts";
import { type StreamFailureRecord, StreamMapping } from "../../functions/local/stream-mapping.ts";
import { StreamReader, streamArnOf } from "../../functions/local/streams.ts";
import { type TestDatabase, testDatabase } from "../support/local-dynamodb.ts";

let db: TestDatabase;
let stub: AwsStub;
let clock = Date.parse("2026-11-24T12:00:00.000Z");
const queueUrl = (logicalId: string) => `${stub.endpoint}/${LOCAL_ACCOUNT}/${logicalId}`;

beforeAll(async () => {
  db = await testDatabase(import.meta.url);
  stub = await startAwsStub({ now: () => clock });
});
afterAll(async () => {
  await stub?.stop();
  db?.destroy();
});

function mappingOf(prefix: string): LocalMapping {
  const deployment = readDeployment(db.template, { queueUrl });
  const fn = [...deployment.functions.keys()].find((id) => id.startsWith(`${prefix}Function`));
  const mapping = deployment.mappings.find((m) => m.functionLogicalId === fn);
  if (!mapping) throw new Error(`no mapping for ${prefix}`);
  return mapping;
}

const keyOf = (record: DynamoDBRecord) => record.dynamodb?.Keys?.sk?.S ?? "";

async function writeHoldings(accountId: string, assets: string[]): Promise<void> {
  for (const asset of assets) {
    await db.dynamodb.send(
      new PutItemCommand({
        TableName: "Accounts",
        Item: toItem({
          accountId,
          sk: `HOLDING#${asset}`,
          asset,
          quantity: "1",
          seq: 1,
          updatedAt: "2026-11-24T12:00:00Z",
        }),
      }),
    );
  }
}

async function streamMapping(
  handler: (
    event: DynamoDBStreamEvent,
  ) => Promise<{ batchItemFailures?: { itemIdentifier: string }[] } | undefined>,
  failures: StreamFailureRecord[],
  nowMs?: () => number,
): Promise<StreamMapping> {
  const mapping = mappingOf("AccountChanges");
  const reader = new StreamReader(db.streams, await streamArnOf(db.dynamodb, "Accounts"), "LATEST");
  await reader.fetch(); // position the reader after what earlier tests wrote
  reader.take();
  return new StreamMapping(mapping, reader, handler, async (record) => void failures.push(record), nowMs);
}

async function untilIdle(mapping: { pollOnce(): Promise<number> }): Promise<void> {
  for (let polls = 0; polls < 200; polls += 1) if ((await mapping.pollOnce()) === 0) return;
  throw new Error("not idle");
}

describe("a stream mapping with the template's settings", () => {
  it("takes every failure setting from the template", () => {
    expect(mappingOf("AccountChanges")).toMatchObject({
      batchSize: 100,
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 10,
      maximumRecordAgeSeconds: 3600,
      reportBatchItemFailures: true,
      startingPosition: "TRIM_HORIZON",
    });
    expect(mappingOf("AccountChanges").onFailureQueue).toMatch(/^AccountChangesStreamFailures/);
    expect(mappingOf("AccountChanges").filterPatterns).toHaveLength(2);
  });

  it("redelivers from the first record a handler reports failed, never the ones before it", async () => {
    const failures: StreamFailureRecord[] = [];
    const batches: string[][] = [];
    let failOnce = true;
    const mapping = await streamMapping(async (event) => {
      batches.push(event.Records.map(keyOf));
      const third = event.Records.find((record) => keyOf(record) === "HOLDING#C");
      if (failOnce && third) {
        failOnce = false;
        return { batchItemFailures: [{ itemIdentifier: third.dynamodb?.SequenceNumber ?? "" }] };
      }
      return { batchItemFailures: [] };
    }, failures);
    await writeHoldings("ACC-PARTIAL", ["A", "B", "C", "D", "E"]);
    await untilIdle(mapping);
    expect(batches).toEqual([
      ["HOLDING#A", "HOLDING#B", "HOLDING#C", "HOLDING#D", "HOLDING#E"],
      ["HOLDING#C", "HOLDING#D", "HOLDING#E"],
    ]);
    expect(failures).toEqual([]);
  });

  it("bisects on a function error, retries the poison record 10 times, then sends it to the on-failure destination", async () => {
    const failures: StreamFailureRecord[] = [];
    const batches: string[][] = [];
    const mapping = await streamMapping(async (event) => {
      batches.push(event.Records.map(keyOf));
      if (event.Records.some((record) => keyOf(record) === "HOLDING#POISON")) throw new Error("poison");
      return undefined;
    }, failures);
    await writeHoldings("ACC-POISON", ["A", "B", "POISON", "D", "E"]);
    await untilIdle(mapping);

    // Split in halves until the poison record is alone, then 1 + 10 attempts of it alone.
    const alone = batches.filter((batch) => batch.length === 1 && batch[0] === "HOLDING#POISON");
    expect(alone).toHaveLength(11);
    expect(batches[0]).toHaveLength(5);
    expect(batches.at(-1)).toEqual(["HOLDING#D", "HOLDING#E"]);
    // The whole batch, its first half (A, B, POISON), and that half's first half (A, B), which succeeds.
    expect(batches.slice(0, 3)).toEqual([
      ["HOLDING#A", "HOLDING#B", "HOLDING#POISON", "HOLDING#D", "HOLDING#E"],
      ["HOLDING#A", "HOLDING#B", "HOLDING#POISON"],
      ["HOLDING#A", "HOLDING#B"],
    ]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext).toMatchObject({
      condition: "RetryAttemptsExhausted",
      approximateInvokeCount: 11,
    });
    expect(failures[0]?.DDBStreamBatchInfo).toMatchObject({ batchSize: 1 });
    expect(failures[0]?.DDBStreamBatchInfo.startSequenceNumber).toBe(
      failures[0]?.DDBStreamBatchInfo.endSequenceNumber,
    );
  });

  it("sends records older than the maximum record age to the on-failure destination without invoking", async () => {
    const failures: StreamFailureRecord[] = [];
    let invocations = 0;
    const mapping = await streamMapping(
      async () => {
        invocations += 1;
        return undefined;
      },
      failures,
      () => Date.now() + 3601 * 1000,
    );
    await writeHoldings("ACC-OLD", ["A", "B"]);
    await untilIdle(mapping);
    expect(invocations).toBe(0);
    expect(failures.map((failure) => failure.requestContext.condition)).toEqual([
      "EventAgeExceeded",
      "EventAgeExceeded",
    ]);
  });
});

describe("the SQS mapping with the template's settings", () => {
  it("gets exactly the failed messages again after the visibility timeout, and redrives after maxReceiveCount", async () => {
    configureQueues(stub, db.template, queueUrl);
    const mapping = mappingOf("FanOutWorker");
    expect(mapping).toMatchObject({ batchSize: 1, reportBatchItemFailures: true });
    if (mapping.source.kind !== "sqs") throw new Error("not a queue mapping");
    const url = queueUrl(mapping.source.queue);
    // A batch of three, to see which messages come back.
    const wide = { ...mapping, batchSize: 3 };
    const seen: string[][] = [];
    const worker = new QueueMapping(wide, stub, url, async (event: SQSEvent) => {
      seen.push(event.Records.map((record) => `${record.body}#${record.attributes.ApproximateReceiveCount}`));
      const bad = event.Records.find((record) => record.body === "m2");
      return { batchItemFailures: bad ? [{ itemIdentifier: bad.messageId }] : [] };
    });
    for (const body of ["m1", "m2", "m3"]) stub.sendLocal(url, body);
    await worker.pollOnce();
    expect(await worker.pollOnce()).toBe(0); // m2 is invisible until its timeout passes
    clock += 30 * 60 * 1000 + 1;
    await worker.pollOnce();
    expect(seen).toEqual([["m1#1", "m2#1", "m3#1"], ["m2#2"]]);
    for (let receive = 3; receive <= 6; receive += 1) {
      clock += 30 * 60 * 1000 + 1;
      await worker.pollOnce();
    }
    expect(seen.at(-1)).toEqual(["m2#5"]);
    const deadLetter =
      Object.keys(db.template.Resources).find((id) => id.startsWith("FanOutDeadLetter")) ?? "";
    expect(stub.queue(queueUrl(deadLetter)).messages.map((message) => message.body)).toEqual(["m2"]);
    expect(stub.queue(url).depth).toBe(0);
  });
});
