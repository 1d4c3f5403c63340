/**
 * The deployed pipeline, driven in-process for the handler tests: the tables of the template in DynamoDB
 * Local, the handler modules and environment of the template's functions, each stream event source
 * mapping with the template's settings (functions/local/stream-mapping.ts), and the AWS stub for SNS,
 * EventBridge and SQS. Time is a test clock, moved by the test.
 */
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { GetItemCommand, PutItemCommand, QueryCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamEvent } from "aws-lambda";
import { fromImage, toItem } from "../../functions/adapters/codec.ts";
import type { CallState } from "../../functions/domain/machine.ts";
import {
  resetRuntime,
  runtimeWithPolicies,
  setClientHook,
  setClock,
} from "../../functions/handlers/runtime.ts";
import { type AwsStub, startAwsStub } from "../../functions/local/aws-stub/index.ts";
import { LOCAL_ACCOUNT, type LocalDeployment, readDeployment } from "../../functions/local/deployment.ts";
import { guardStoppedInvocations, invoke } from "../../functions/local/invocation.ts";
import { configureQueues, QueueMapping } from "../../functions/local/queue-mapping.ts";
import { type StreamFailureRecord, StreamMapping } from "../../functions/local/stream-mapping.ts";
import { StreamReader, streamArnOf } from "../../functions/local/streams.ts";
import { type TestDatabase, testDatabase } from "./local-dynamodb.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export type MappingName = "AccountChanges" | "PriceTicks" | "OutboxRelay";
export type Item = Record<string, unknown>;

export interface Pipeline {
  readonly db: TestDatabase;
  readonly stub: AwsStub;
  readonly deployment: LocalDeployment;
  readonly mappings: Record<MappingName, StreamMapping>;
  /** The fan-out worker's SQS mapping. */
  readonly fanOut: QueueMapping;
  /** The notifier's SQS mapping, on the notice queue. */
  readonly notices: QueueMapping;
  /** Records each mapping gave up on, as its on-failure destination received them. */
  readonly discarded: Record<MappingName, StreamFailureRecord[]>;
  now(): string;
  setNow(iso: string): void;
  advance(seconds: number): void;
  put(table: string, item: Item): Promise<void>;
  /** Runs every mapping until none has anything left to deliver. */
  drain(maxRounds?: number): Promise<number>;
  /** A function's handler, invoked as the local runtime does; `timeoutMs` in place of the template's timeout. */
  handler<T = unknown>(
    functionPrefix: string,
    options?: { readonly timeoutMs?: number },
  ): Promise<(event: T) => Promise<unknown>>;
  callState(accountId: string): Promise<CallState | undefined>;
  scan(table: string): Promise<Item[]>;
  query(table: string, key: string, value: string): Promise<Item[]>;
  close(): Promise<void>;
}

function functionId(deployment: LocalDeployment, prefix: string): string {
  const ids = [...deployment.functions.keys()].filter((id) => id.startsWith(`${prefix}Function`));
  if (ids.length !== 1 || !ids[0])
    throw new Error(`expected one function ${prefix}, found ${ids.join(", ")}`);
  return ids[0];
}

async function untilIdle(mapping: { pollOnce(): Promise<number> }): Promise<number> {
  let total = 0;
  for (let polls = 0; polls < 10_000; polls += 1) {
    const invocations = await mapping.pollOnce();
    if (invocations === 0) return total;
    total += invocations;
  }
  throw new Error("a mapping did not go idle");
}

export async function startPipeline(
  testFileUrl: string,
  start = "2026-11-24T12:00:00.000Z",
  /** With `simulatedQueueClock`, the SQS queues' visibility timeouts and delays follow the test's clock. */
  options: { readonly simulatedQueueClock?: boolean } = {},
): Promise<Pipeline> {
  const db = await testDatabase(testFileUrl);
  let clock = Date.parse(start);
  const stub = await startAwsStub(options.simulatedQueueClock ? { now: () => clock } : {});
  const queueUrl = (logicalId: string) => `${stub.endpoint}/${LOCAL_ACCOUNT}/${logicalId}`;
  const deployment = readDeployment(db.template, { queueUrl });
  configureQueues(stub, db.template, queueUrl);
  const environment: Record<string, string> = {};
  for (const fn of deployment.functions.values()) Object.assign(environment, fn.environment);
  Object.assign(process.env, environment, {
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: db.accessKeyId,
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
    AWS_ENDPOINT_URL_SNS: stub.endpoint,
    AWS_ENDPOINT_URL_EVENTBRIDGE: stub.endpoint,
    AWS_ENDPOINT_URL_SQS: stub.endpoint,
    POWERTOOLS_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "ERROR",
    AWS_LAMBDA_FUNCTION_NAME: "margin-call-test",
  });
  resetRuntime();
  setClientHook(guardStoppedInvocations);
  setClock(() => new Date(clock).toISOString());
  // The active policy set, read as a handler's first invocation would: tests that call the engine directly use it.
  await runtimeWithPolicies();

  const handlers = new Map<string, (event: unknown, timeoutMs?: number) => Promise<unknown>>();
  async function handler<T>(
    prefix: string,
    options: { readonly timeoutMs?: number } = {},
  ): Promise<(event: T) => Promise<unknown>> {
    const id = functionId(deployment, prefix);
    let loaded = handlers.get(id);
    if (!loaded) {
      const fn = deployment.functions.get(id);
      if (!fn) throw new Error(`no function ${id}`);
      const module = (await import(pathToFileURL(join(ROOT, fn.entry)).href)) as {
        handler: (event: unknown, context: unknown) => Promise<unknown>;
      };
      let invocation = 0;
      loaded = (event: unknown, timeoutMs?: number) => {
        invocation += 1;
        return invoke(fn, `${id}-${invocation}`, (context) => module.handler(event, context), timeoutMs);
      };
      handlers.set(id, loaded);
    }
    const call = loaded;
    return (event: T) => call(event, options.timeoutMs);
  }

  const names: MappingName[] = ["AccountChanges", "PriceTicks", "OutboxRelay"];
  const mappings = {} as Record<MappingName, StreamMapping>;
  const discarded = {} as Record<MappingName, StreamFailureRecord[]>;
  for (const name of names) {
    const fnId = functionId(deployment, name);
    const mapping = deployment.mappings.find(
      (m) => m.functionLogicalId === fnId && m.source.kind === "dynamodb",
    );
    if (mapping?.source.kind !== "dynamodb") throw new Error(`no stream mapping for ${name}`);
    const reader = new StreamReader(
      db.streams,
      await streamArnOf(db.dynamodb, mapping.source.table),
      mapping.startingPosition ?? "TRIM_HORIZON",
    );
    const invoke = await handler<DynamoDBStreamEvent>(name);
    discarded[name] = [];
    mappings[name] = new StreamMapping(
      mapping,
      reader,
      (event) => invoke(event) as Promise<{ batchItemFailures?: { itemIdentifier: string }[] }>,
      async (record) => {
        discarded[name].push(record);
      },
    );
  }

  async function queueMapping(prefix: string): Promise<QueueMapping> {
    const fnId = functionId(deployment, prefix);
    const mapping = deployment.mappings.find((m) => m.functionLogicalId === fnId);
    if (mapping?.source.kind !== "sqs") throw new Error(`no queue mapping for ${prefix}`);
    const invoke = await handler<unknown>(prefix);
    return new QueueMapping(
      mapping,
      stub,
      queueUrl(mapping.source.queue),
      (event) => invoke(event) as Promise<{ batchItemFailures?: { itemIdentifier: string }[] }>,
    );
  }
  const fanOut = await queueMapping("FanOutWorker");
  const notices = await queueMapping("Notifier");

  return {
    db,
    stub,
    deployment,
    mappings,
    fanOut,
    notices,
    discarded,
    now: () => new Date(clock).toISOString(),
    setNow: (iso) => {
      clock = Date.parse(iso);
    },
    advance: (seconds) => {
      clock += seconds * 1000;
    },
    put: async (table, item) => {
      await db.dynamodb.send(new PutItemCommand({ TableName: table, Item: toItem(item) }));
    },
    drain: async (maxRounds = 50) => {
      let total = 0;
      for (let round = 0; round < maxRounds; round += 1) {
        let invocations = 0;
        // Each mapping runs until it is idle before the next, in pipeline order (in AWS they run
        // concurrently; the order between a notice and its liquidation does not depend on it).
        for (const name of ["AccountChanges", "PriceTicks"] as const)
          invocations += await untilIdle(mappings[name]);
        invocations += await untilIdle(fanOut);
        invocations += await untilIdle(mappings.OutboxRelay);
        invocations += await untilIdle(notices);
        total += invocations;
        if (invocations === 0) return total;
      }
      throw new Error(`the pipeline did not settle in ${maxRounds} rounds`);
    },
    handler,
    callState: async (accountId) => {
      const result = await db.dynamodb.send(
        new GetItemCommand({
          TableName: "MarginCalls",
          Key: { accountId: { S: accountId } },
          ConsistentRead: true,
        }),
      );
      return result.Item ? (JSON.parse(String(fromImage(result.Item).state)) as CallState) : undefined;
    },
    scan: async (table) => {
      const items: Item[] = [];
      let start: Record<string, never> | undefined;
      do {
        const page = await db.dynamodb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
        items.push(...(page.Items ?? []).map(fromImage));
        start = page.LastEvaluatedKey as Record<string, never> | undefined;
      } while (start);
      return items;
    },
    query: async (table, key, value) => {
      const page = await db.dynamodb.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: "#k = :v",
          ExpressionAttributeNames: { "#k": key },
          ExpressionAttributeValues: { ":v": { S: value } },
          ConsistentRead: true,
        }),
      );
      return (page.Items ?? []).map(fromImage);
    },
    close: async () => {
      resetRuntime();
      await stub.stop();
      db.destroy();
    },
  };
}
