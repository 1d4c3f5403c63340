/**
 * What every handler shares in one Lambda execution environment: the AWS clients, the settings read from
 * the environment, the policy set, the logger and the clock. Built once on first use and then reused
 * across invocations. The policy set is read from the Policies table and kept for POLICY_CACHE_SECONDS: a
 * handler that decides under a policy starts with `await runtimeWithPolicies()` (docs/policies.md). The
 * local runtime and the tests swap the clock (time acceleration) and can reset it.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { EngineDeps } from "../adapters/engine.ts";
import { DEFAULT_POLICY_CACHE_SECONDS, PolicyCache } from "../adapters/policy-cache.ts";
import { loadActivePolicies } from "../adapters/policy-store.ts";
import {
  ENV,
  type Environment,
  integer,
  type PolicyEntry,
  type Tables,
  tablesFrom,
} from "../adapters/settings.ts";
import { LOG_SIGNALS } from "../domain/alarms.ts";

export interface Runtime extends EngineDeps {
  readonly env: Environment;
  readonly logger: Logger;
  readonly sns: SNSClient;
  readonly eventBridge: EventBridgeClient;
  readonly sqs: SQSClient;
  readonly tables: Tables;
  /** The active policy set, as last read from the Policies table (`runtimeWithPolicies` reads it). */
  readonly policies: ReadonlyMap<string, PolicyEntry>;
  readonly policyCache: PolicyCache;
  readonly maxAccountsPerInvocation: number;
  /** The time a fan-out invocation spends starting revaluations (ENV.pageBudgetMs). */
  readonly pageBudgetMs: number;
  readonly sweepSegments: number;
  readonly fanOutQueueUrl: string | undefined;
  /** ISO-8601 UTC, millisecond precision. */
  readonly now: () => string;
}

let cached: Runtime | undefined;
let clock: () => string = () => new Date().toISOString();

type AwsClients = Pick<Runtime, "dynamo" | "sns" | "eventBridge" | "sqs">;
let clientHook: ((clients: AwsClients) => void) | undefined;

/**
 * For the local runtime: called with each new set of AWS clients, to add what Lambda does around them
 * (functions/local/invocation.ts refuses the calls of an invocation that timed out). Never set in Lambda.
 */
export function setClientHook(hook: (clients: AwsClients) => void): void {
  clientHook = hook;
}

function createRuntime(env: Environment): Runtime {
  const logger = new Logger({ serviceName: "margin-call-engine" });
  const dynamo = new DynamoDBClient({});
  const tables = tablesFrom(env);
  const policyCache = new PolicyCache({
    load: async (current) => {
      const loaded = await loadActivePolicies(dynamo, tables.policies, current);
      if (loaded !== current && loaded.unreadable.length > 0) {
        logger.error(LOG_SIGNALS.POLICY_UNREADABLE.message, { unreadable: loaded.unreadable });
      }
      return loaded;
    },
    ttlMs: integer(env, ENV.policyCacheSeconds, DEFAULT_POLICY_CACHE_SECONDS) * 1000,
    onStale: (error, kept) =>
      logger.warn("policy set unreadable: keeping the last good one", {
        revision: kept.revision,
        error: error instanceof Error ? error.message : String(error),
      }),
  });
  const created: Runtime = {
    env,
    logger,
    dynamo,
    // One attempt per publish and per put: a retry after a reply that was lost would send twice. The
    // callers classify each failure and decide (adapters/aws-outcome.ts).
    // A bounded request, so a hung publish is an UNCERTAIN outcome within the function's time, not a timeout
    // that leaves a claim behind.
    sns: new SNSClient({
      maxAttempts: 1,
      requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 },
    }),
    eventBridge: new EventBridgeClient({
      maxAttempts: 1,
      requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000 },
    }),
    sqs: new SQSClient({}),
    tables,
    get policies() {
      return policyCache.policies;
    },
    policyCache,
    openCallShards: integer(env, ENV.openCallShards, 8),
    maxAccountsPerInvocation: integer(env, ENV.maxAccountsPerInvocation, 500),
    pageBudgetMs: integer(env, ENV.pageBudgetMs, 120_000),
    sweepSegments: integer(env, ENV.sweepSegments, 4),
    fanOutQueueUrl: env[ENV.fanOutQueueUrl],
    now: () => clock(),
  };
  clientHook?.({ dynamo, sns: created.sns, eventBridge: created.eventBridge, sqs: created.sqs });
  return created;
}

export function runtime(): Runtime {
  cached ??= createRuntime(process.env);
  return cached;
}

/**
 * The runtime, with the active policy set read again if it is older than its TTL: the first thing each
 * invocation of a handler that decides under a policy does. Throws when no set could ever be read.
 */
export async function runtimeWithPolicies(): Promise<Runtime> {
  const engine = runtime();
  await engine.policyCache.refresh();
  return engine;
}

/** For the local runtime and the tests: a clock that can run faster than real time. */
export function setClock(next: () => string): void {
  clock = next;
}

/** For tests: forget the clients and settings, so the next invocation reads the environment again. */
export function resetRuntime(): void {
  cached = undefined;
  clock = () => new Date().toISOString();
}

/** What an invocation keeps after its page budget for finishing what it started, queueing and replying. */
const FINISH_RESERVE_MS = 30_000;

/**
 * When an invocation that revalues pages stops starting revaluations: its page budget from now, and never
 * later than its remaining time less FINISH_RESERVE_MS. What is not started goes back to the queue.
 */
export function pageDeadline(
  engine: Pick<Runtime, "pageBudgetMs">,
  context?: { getRemainingTimeInMillis(): number },
) {
  const remaining = context
    ? context.getRemainingTimeInMillis() - FINISH_RESERVE_MS
    : Number.POSITIVE_INFINITY;
  return Date.now() + Math.max(0, Math.min(engine.pageBudgetMs, remaining));
}
