/**
 * The deployed pipeline for the benchmarks: one DynamoDB Local, the counting proxy in front of it, and the
 * local runtime (functions/local/runtime.ts) wired to the proxy, with the template's handlers and mappings,
 * on a frozen clock (prices never go stale while a benchmark runs). The benchmark drives the mappings
 * itself, as the local runtime's pollers do: `drive` polls a stream or queue mapping until it is idle.
 * Every JVM started here is stopped when `withPipeline` returns or throws.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { type LocalClients, localClients } from "../../functions/local/aws-clients.ts";
import { startDynamoDbLocal } from "../../functions/local/dynamodb-local.ts";
import { createLocalTables } from "../../functions/local/local-tables.ts";
import type { QueueMapping } from "../../functions/local/queue-mapping.ts";
import { LocalRuntime } from "../../functions/local/runtime.ts";
import type { StreamMapping } from "../../functions/local/stream-mapping.ts";
import { benchPolicy } from "./policy.ts";
import { CountingProxy, tagSource } from "./proxy.ts";

export const CLOCK_START = "2026-11-24T12:00:00.000Z";

export interface Pipeline {
  readonly runtime: LocalRuntime;
  readonly proxy: CountingProxy;
  /** The benchmark's own client of the pipeline's database: counted as source "bench". */
  readonly bench: DynamoDBClient;
  readonly accessKeyId: string;
  stream(functionPrefix: string): StreamMapping;
  queue(functionPrefix: string): QueueMapping;
  /** A database of its own on the same DynamoDB Local, with the template's tables (for references). */
  scratch(name: string): Promise<LocalClients>;
  log(line: string): void;
}

let priceSeq = 0;
let pipelines = 0;

export async function putPrice(
  client: DynamoDBClient,
  asset: string,
  price: string,
  source = "bench",
): Promise<void> {
  priceSeq += 1;
  const item = { asset, source, price, asOf: CLOCK_START, seq: priceSeq };
  await client.send(new PutItemCommand({ TableName: "Prices", Item: marshall(item) }));
}

export async function callStatus(client: DynamoDBClient, accountId: string): Promise<string | undefined> {
  const result = await client.send(
    new GetItemCommand({
      TableName: "MarginCalls",
      Key: { accountId: { S: accountId } },
      ConsistentRead: true,
    }),
  );
  if (!result.Item) return undefined;
  return (JSON.parse(String(unmarshall(result.Item).state)) as { status: string }).status;
}

/** Polls a mapping until a poll delivers nothing; returns the invocations. */
export async function drive(mapping: { pollOnce(): Promise<number> }, maxPolls = 1_000_000): Promise<number> {
  let total = 0;
  for (let polls = 0; polls < maxPolls; polls += 1) {
    const invocations = await mapping.pollOnce();
    if (invocations === 0) return total;
    total += invocations;
  }
  throw new Error("a mapping did not go idle");
}

/** Polls the stream mappings and the fan-out queue, in pipeline order, until none has anything to deliver. */
export async function settle(pipeline: Pipeline, names: readonly string[]): Promise<number> {
  let total = 0;
  for (;;) {
    let round = 0;
    for (const name of names) {
      round += await drive(name === "FanOutWorker" ? pipeline.queue(name) : pipeline.stream(name));
    }
    total += round;
    if (round === 0) return total;
  }
}

function find<T extends { mapping: { functionLogicalId: string } }>(
  mappings: Iterable<T>,
  prefix: string,
): T {
  const found = [...mappings].filter((entry) =>
    entry.mapping.functionLogicalId.startsWith(`${prefix}Function`),
  );
  if (found.length !== 1 || !found[0])
    throw new Error(`expected one mapping of ${prefix}, found ${found.length}`);
  return found[0];
}

/** Starts DynamoDB Local, the proxy and the local runtime; runs `body`; stops all of them, whatever happens. */
export async function withPipeline<T>(
  log: (line: string) => void,
  body: (pipeline: Pipeline) => Promise<T>,
): Promise<T> {
  const directory = mkdtempSync(join(tmpdir(), "margin-call-bench-"));
  const dynamodbLocal = await startDynamoDbLocal({ log });
  const cleanups: Array<() => Promise<void> | void> = [
    () => dynamodbLocal.stop(),
    () => rmSync(directory, { recursive: true, force: true }),
  ];
  const previousEndpoint = process.env.DYNAMODB_ENDPOINT;
  try {
    const proxy = await CountingProxy.start(dynamodbLocal.endpoint);
    cleanups.unshift(() => proxy.stop());
    const policiesFile = join(directory, "policies.json");
    writeFileSync(policiesFile, JSON.stringify([benchPolicy()]));
    process.env.DYNAMODB_ENDPOINT = proxy.endpoint;
    // A database of its own for each pipeline, also on a DynamoDB Local shared through DYNAMODB_ENDPOINT.
    pipelines += 1;
    const accessKeyId = `bench${process.pid}n${pipelines}`;
    const runtime = await LocalRuntime.start({
      outputDir: join(directory, "out"),
      speed: 0,
      start: CLOCK_START,
      context: { policiesFile },
      accessKeyId,
      log,
    });
    cleanups.unshift(() => runtime.stop());
    const own = localClients(proxy.endpoint, accessKeyId);
    cleanups.unshift(() => own.destroy());
    const pipeline: Pipeline = {
      runtime,
      proxy,
      bench: tagSource(own.dynamodb, "bench"),
      accessKeyId,
      stream: (prefix) => find(runtime.streamMappings.values(), prefix),
      queue: (prefix) => find(runtime.queueMappings.values(), prefix),
      scratch: async (name) => {
        const clients = localClients(proxy.endpoint, `${accessKeyId}${name}`);
        cleanups.unshift(() => clients.destroy());
        tagSource(clients.dynamodb, "reference");
        tagSource(clients.streams, "reference");
        await createLocalTables(clients.dynamodb, runtime.template);
        return clients;
      },
      log,
    };
    return await body(pipeline);
  } finally {
    if (previousEndpoint === undefined) delete process.env.DYNAMODB_ENDPOINT;
    else process.env.DYNAMODB_ENDPOINT = previousEndpoint;
    for (const cleanup of cleanups) {
      try {
        await cleanup();
      } catch (error) {
        log(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}
