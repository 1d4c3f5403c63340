/**
 * The local runtime: the deployed handler modules, driven on this machine by DynamoDB Local's streams,
 * local queues and timers, with every trigger setting read from the synthesized template
 * (functions/local/deployment.ts). SNS and EventBridge are the local AWS stub: each SMS and email is
 * rendered to `.local/outbox/`, each event appended to `.local/events.jsonl`. The handlers' AWS adapters
 * are the same code as in Lambda; only the endpoints differ.
 *
 * Stream mappings deliver a batch to every shard with records, up to ParallelizationFactor batches per
 * shard with Lambda's per-item order (stream-lanes.ts); queue mappings up to ScalingConfig.MaximumConcurrency
 * batches at once (five, Lambda's start, without one). Polls back off from 2 ms up to `idlePollMs` while
 * they find nothing; a stream is polled again when a batch ends. Each invocation ends at its function's
 * timeout from the template, as in Lambda (invocation.ts: it fails, and its later AWS calls are refused).
 * Not emulated: Lambda's scaling past that: one process and one DynamoDB Local do the work of many
 * functions, so latencies include their backlog.
 */
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamEvent, ScheduledEvent, SQSEvent } from "aws-lambda";
import { resetRuntime, setClientHook, setClock } from "../handlers/runtime.ts";
import { localClients } from "./aws-clients.ts";
import { type AwsStub, type PutEventsEntry, type SnsPublish, startAwsStub } from "./aws-stub/index.ts";
import { LOCAL_ACCOUNT, type LocalDeployment, type LocalSchedule, readDeployment } from "./deployment.ts";
import { type DynamoDbLocal, startDynamoDbLocal } from "./dynamodb-local.ts";
import { guardStoppedInvocations, invoke } from "./invocation.ts";
import { createLocalTables } from "./local-tables.ts";
import { bootstrapLocalPolicies } from "./policy-bootstrap.ts";
import { IDLE_POLL_MAX_MS, type Poller, pollQueue, pollStream, sleep } from "./pollers.ts";
import { configureQueues, QueueMapping } from "./queue-mapping.ts";
import { renderedNotice } from "./rendered-notice.ts";
import { StreamMapping } from "./stream-mapping.ts";
import { StreamReader, streamArnOf } from "./streams.ts";
import { type CfnTemplate, synthesizeTemplate } from "./template.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** How often `settle` looks at the backlogs. */
const SETTLE_ROUND_MS = 200;

export interface LocalRuntimeOptions {
  /** Where rendered notices and events go. @default `.local` in the repository */
  readonly outputDir?: string;
  /** Keep DynamoDB Local's data here across runs. @default in memory */
  readonly dataDir?: string;
  /** Simulated seconds per real second. @default 1 */
  readonly speed?: number;
  /** The simulated time at start. @default now */
  readonly start?: string;
  /** CDK context for the synthesized template (e.g. a policies file for a demo). */
  readonly context?: Record<string, unknown>;
  readonly accessKeyId?: string;
  readonly log?: (line: string) => void;
  /** Called for each event put on the bus, after it is written to events.jsonl. */
  readonly onEvent?: (entry: PutEventsEntry) => void | Promise<void>;
  readonly onNotice?: (message: SnsPublish) => void;
  /** The longest wait between polls of an idle source (2 ms after work, doubled per empty poll). @default 100 */
  readonly idlePollMs?: number;
  /**
   * Writes what is in the tables before the engine is deployed (a book already there), before their
   * streams are enabled: it reaches the engine through the sweep's first pass, not the streams
   * (local-tables.ts). Given the synthesized template, e.g. for its policies.
   */
  readonly preload?: (dynamo: DynamoDBClient, template: CfnTemplate) => Promise<void>;
}

export interface ScheduleStats {
  invocations: number;
  skipped: number;
  failures: number;
}

type Handler = (event: unknown) => Promise<unknown>;

export class LocalRuntime {
  readonly streamMappings = new Map<string, StreamMapping>();
  readonly queueMappings = new Map<string, QueueMapping>();
  readonly scheduleStats = new Map<string, ScheduleStats>();
  readonly failures: Array<{ queue: string; body: string }> = [];
  private readonly loops: Promise<void>[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private running = false;
  private realStart = Date.now();
  private simulatedStart: number;
  speed: number;

  private constructor(
    readonly options: LocalRuntimeOptions,
    readonly dynamodbLocal: DynamoDbLocal,
    readonly dynamo: DynamoDBClient,
    readonly clients: ReturnType<typeof localClients>,
    readonly stub: AwsStub,
    readonly template: CfnTemplate,
    readonly deployment: LocalDeployment,
    readonly outputDir: string,
  ) {
    this.speed = options.speed ?? 1;
    this.simulatedStart = Date.parse(options.start ?? new Date().toISOString());
  }

  /** Changes the time-acceleration factor from now on; the clock stays continuous. */
  setSpeed(speed: number): void {
    this.simulatedStart = this.nowMs();
    this.realStart = Date.now();
    this.speed = speed;
  }

  /** The simulated clock, shared with the handlers. */
  nowMs(): number {
    return this.simulatedStart + (Date.now() - this.realStart) * this.speed;
  }

  now(): string {
    return new Date(this.nowMs()).toISOString();
  }

  queueUrl(logicalId: string): string {
    return `${this.stub.endpoint}/${LOCAL_ACCOUNT}/${logicalId}`;
  }

  static async start(options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
    const log = options.log ?? (() => {});
    const outputDir = options.outputDir ?? join(ROOT, ".local");
    // Each run renders its own notices: last run's are cleared.
    rmSync(join(outputDir, "outbox"), { recursive: true, force: true });
    mkdirSync(join(outputDir, "outbox"), { recursive: true });
    writeFileSync(join(outputDir, "events.jsonl"), "");
    const dynamodbLocal = await startDynamoDbLocal({
      log,
      ...(options.dataDir ? { dbPath: options.dataDir } : {}),
    });
    const accessKeyId = options.accessKeyId ?? "local";
    const clients = localClients(dynamodbLocal.endpoint, accessKeyId);
    let runtime: LocalRuntime | undefined;
    const stub = await startAwsStub({
      onSms: (message) => runtime?.renderNotice(message, "sms"),
      onTopicMessage: (message) => runtime?.renderNotice(message, "email"),
      onEvent: async (entry) => {
        appendFileSync(
          join(outputDir, "events.jsonl"),
          `${JSON.stringify({ ...entry, detail: JSON.parse(entry.detail) })}\n`,
        );
        await options.onEvent?.(entry);
      },
    });
    try {
      const template = synthesizeTemplate(options.context ?? {});
      const { preload } = options;
      await createLocalTables(clients.dynamodb, template, preload && ((client) => preload(client, template)));
      await bootstrapLocalPolicies(clients.dynamodb, template);
      const urlOf = (logicalId: string) => `${stub.endpoint}/${LOCAL_ACCOUNT}/${logicalId}`;
      const deployment = readDeployment(template, { queueUrl: urlOf });
      configureQueues(stub, template, urlOf);
      runtime = new LocalRuntime(
        options,
        dynamodbLocal,
        clients.dynamodb,
        clients,
        stub,
        template,
        deployment,
        outputDir,
      );
      await runtime.wire(accessKeyId);
      return runtime;
    } catch (error) {
      await stub.stop();
      clients.destroy();
      await dynamodbLocal.stop();
      throw error;
    }
  }

  private renderNotice(message: SnsPublish, channel: "sms" | "email"): void {
    const { fileName, text } = renderedNotice(message, channel);
    writeFileSync(join(this.outputDir, "outbox", fileName), text);
    this.options.onNotice?.(message);
  }

  private async handlerFor(functionLogicalId: string): Promise<Handler> {
    const fn = this.deployment.functions.get(functionLogicalId);
    if (!fn) throw new Error(`no function ${functionLogicalId} in the template`);
    const module = (await import(pathToFileURL(join(ROOT, fn.entry)).href)) as {
      handler: (event: unknown, context: unknown) => Promise<unknown>;
    };
    let invocation = 0;
    return (event) => {
      invocation += 1;
      return invoke(fn, `${functionLogicalId}-${invocation}`, (context) => module.handler(event, context));
    };
  }

  /** Points the handlers at the local services and builds a mapping for each trigger of the template. */
  private async wire(accessKeyId: string): Promise<void> {
    const environment: Record<string, string> = {};
    for (const fn of this.deployment.functions.values()) Object.assign(environment, fn.environment);
    setClientHook(guardStoppedInvocations);
    Object.assign(process.env, environment, {
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: this.dynamodbLocal.endpoint,
      AWS_ENDPOINT_URL_SNS: this.stub.endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: this.stub.endpoint,
      AWS_ENDPOINT_URL_SQS: this.stub.endpoint,
      AWS_LAMBDA_FUNCTION_NAME: "margin-call-local",
      // The handlers' JSON logs would drown the progress line; MARGIN_CALL_LOG_LEVEL=INFO shows them.
      POWERTOOLS_LOG_LEVEL: process.env.MARGIN_CALL_LOG_LEVEL ?? "SILENT",
    });
    resetRuntime();
    setClock(() => this.now());

    for (const mapping of this.deployment.mappings) {
      const handler = await this.handlerFor(mapping.functionLogicalId);
      if (mapping.source.kind === "dynamodb") {
        const reader = new StreamReader(
          this.clients.streams,
          await streamArnOf(this.dynamo, mapping.source.table),
          mapping.startingPosition ?? "TRIM_HORIZON",
        );
        const onFailure = mapping.onFailureQueue;
        this.streamMappings.set(
          mapping.logicalId,
          new StreamMapping(
            mapping,
            reader,
            (event: DynamoDBStreamEvent) =>
              handler(event) as Promise<{ batchItemFailures?: { itemIdentifier: string }[] }>,
            async (record) => {
              const body = JSON.stringify(record);
              this.failures.push({ queue: onFailure ?? "(none)", body });
              if (onFailure) this.stub.sendLocal(this.queueUrl(onFailure), body);
            },
          ),
        );
      } else {
        this.queueMappings.set(
          mapping.logicalId,
          new QueueMapping(
            mapping,
            this.stub,
            this.queueUrl(mapping.source.queue),
            (event: SQSEvent) =>
              handler(event) as Promise<{ batchItemFailures?: { itemIdentifier: string }[] }>,
          ),
        );
      }
    }
  }

  /** Starts polling every mapping and running every schedule. */
  run(): void {
    if (this.running) return;
    this.running = true;
    const poller: Poller = {
      running: () => this.running,
      longestWaitMs: this.options.idlePollMs ?? IDLE_POLL_MAX_MS,
      failed: (name, error) => {
        if (this.running)
          this.options.log?.(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      },
    };
    for (const [name, mapping] of this.streamMappings) this.loops.push(pollStream(mapping, name, poller));
    // One poll loop per batch a queue mapping may run at once (the stub's receive is synchronous).
    for (const [name, mapping] of this.queueMappings) {
      const workers = Array.from({ length: mapping.mapping.maximumConcurrency }, () => name);
      this.loops.push(...workers.map(() => pollQueue(mapping, name, poller)));
    }
    for (const schedule of this.deployment.schedules) this.schedule(schedule);
  }

  private schedule(schedule: LocalSchedule): void {
    const stats: ScheduleStats = { invocations: 0, skipped: 0, failures: 0 };
    this.scheduleStats.set(schedule.logicalId, stats);
    let busy = false;
    const fire = async () => {
      // Locally, one machine does the work of many Lambdas: a run still going (or its fan-out still
      // queued) means the next one would only pile up. It is counted as skipped.
      if (busy || this.fanOutBusy()) {
        stats.skipped += 1;
        return;
      }
      busy = true;
      try {
        const handler = await this.handlerFor(schedule.functionLogicalId);
        const event: ScheduledEvent = {
          version: "0",
          id: `${schedule.logicalId}-${stats.invocations + 1}`,
          "detail-type": "Scheduled Event",
          source: "aws.events",
          account: LOCAL_ACCOUNT,
          time: this.now(),
          region: "us-east-1",
          resources: [schedule.logicalId],
          detail: {},
        };
        for (let attempt = 0; attempt <= schedule.maximumRetryAttempts; attempt += 1) {
          try {
            stats.invocations += 1;
            await handler(event);
            return;
          } catch (error) {
            // Stopping: the services go away under the run in flight, and its failure is not news.
            if (!this.running) return;
            stats.failures += 1;
            if (attempt === schedule.maximumRetryAttempts && schedule.deadLetterQueue) {
              this.stub.sendLocal(this.queueUrl(schedule.deadLetterQueue), JSON.stringify(event));
              this.options.log?.(
                `${schedule.logicalId}: gave up after ${attempt + 1} attempts: ${error instanceof Error ? error.message : String(error)}`,
              );
            }
          }
        }
      } finally {
        busy = false;
      }
    };
    // The schedule runs on the simulated clock: at speed 60, a one-minute rate fires every real second.
    let next = this.nowMs() + schedule.rateSeconds * 1000;
    this.timers.push(
      setInterval(() => {
        if (this.nowMs() < next) return;
        next = this.nowMs() + schedule.rateSeconds * 1000;
        void fire();
      }, 50),
    );
  }

  /**
   * Replaces a function as a redeploy under a new name would: a fresh environment (new clients, settings
   * read again), and stream mappings anew from TRIM_HORIZON, so all it handled is delivered to it again.
   */
  replaceFunction(prefix: string, newName: string): string[] {
    const replaced: string[] = [];
    for (const [name, mapping] of this.streamMappings) {
      if (!mapping.mapping.functionLogicalId.startsWith(prefix)) continue;
      mapping.reader.rewind();
      replaced.push(name);
    }
    process.env.AWS_LAMBDA_FUNCTION_NAME = newName;
    resetRuntime();
    setClock(() => this.now());
    return replaced;
  }

  /** Whether a revaluation queue (the fan-out queue) still holds work; the notice queue does not count. */
  private fanOutBusy(): boolean {
    return [...this.queueMappings.values()].some(
      (mapping) =>
        mapping.mapping.source.kind === "sqs" &&
        mapping.mapping.source.queue.startsWith("FanOut") &&
        mapping.depth() > 0,
    );
  }

  /** Runs one invocation of a schedule's target now, as EventBridge would at its next tick. */
  async fireSchedule(prefix: string): Promise<unknown> {
    const schedule = this.deployment.schedules.find((entry) => entry.logicalId.startsWith(prefix));
    if (!schedule) throw new Error(`no schedule ${prefix}`);
    const handler = await this.handlerFor(schedule.functionLogicalId);
    return handler({
      id: `${prefix}-manual-${Date.now()}`,
      time: this.now(),
      "detail-type": "Scheduled Event",
    });
  }

  /** Records waiting in streams and messages waiting in queues. */
  backlog(): Record<string, number> {
    const backlog: Record<string, number> = {};
    for (const [name, mapping] of this.streamMappings) backlog[name] = mapping.backlog();
    for (const [name, mapping] of this.queueMappings) backlog[name] = mapping.depth();
    return backlog;
  }

  /** Waits until every stream and queue is drained (or the timeout passes). */
  async settle(timeoutMs = 60_000): Promise<boolean> {
    const deadlineMs = Date.now() + timeoutMs;
    let quietRounds = 0;
    while (Date.now() < deadlineMs) {
      let pending = 0;
      for (const mapping of this.streamMappings.values()) {
        pending += mapping.backlog() + mapping.reader.lastFetched;
      }
      for (const mapping of this.queueMappings.values()) pending += mapping.depth();
      quietRounds = pending === 0 ? quietRounds + 1 : 0;
      if (quietRounds >= 5) return true;
      await sleep(SETTLE_ROUND_MS);
    }
    return false;
  }

  /** Stops polling and the schedules now, without waiting: for Ctrl-C, before stop(). */
  halt(): void {
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.allSettled(this.loops);
    resetRuntime();
    await this.stub.stop();
    this.clients.destroy();
    await this.dynamodbLocal.stop();
  }
}
