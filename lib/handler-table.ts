/**
 * The engine's handlers as one table: for each, its entry module, its limits, what its role may call and
 * what triggers it. The functions, their triggers, their alarms and the cdk-nag acknowledgements are all
 * derived from this table, so a handler is added or changed in one place.
 */
import { Duration } from "aws-cdk-lib";
import type { Table } from "aws-cdk-lib/aws-dynamodb";
import type { EventBus } from "aws-cdk-lib/aws-events";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { FilterCriteria, FilterRule } from "aws-cdk-lib/aws-lambda";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { noticePublishStatements } from "./notice-permissions.ts";
import type { EngineTables, TableName } from "./tables.ts";

/** The resources that the handlers' statements name. */
export interface HandlerResources {
  readonly tables: EngineTables;
  readonly fanOutQueue: IQueue;
  /** The queue the outbox relay puts each notice on, for the notifier. */
  readonly noticeQueue: IQueue;
  readonly emailTopic: ITopic;
  readonly eventBus: EventBus;
}

/** A DynamoDB stream invokes the handler, with a dead-letter queue for the records it gives up on. */
export interface StreamTrigger {
  readonly kind: "stream";
  /** The table whose stream is read. */
  readonly table: TableName;
  readonly batchSize: number;
  readonly parallelizationFactor: number;
  readonly retryAttempts: number;
  readonly maximumRecordAge: Duration;
  /** Event filter patterns, as the event source mapping takes them. */
  readonly filters: ReadonlyArray<Record<string, unknown>>;
}

/** One of the engine's queues invokes the handler, which reports the messages that failed. */
export interface QueueTrigger {
  readonly kind: "queue";
  /** Which queue: the fan-out queue, or the notice queue. */
  readonly queue: "fanOutQueue" | "noticeQueue";
  readonly batchSize: number;
  /** Invocations at once, at most. */
  readonly maximumConcurrency: number;
}

/** A schedule invokes the handler, with bounded retries and a dead-letter queue. */
export interface ScheduleTrigger {
  readonly kind: "schedule";
  /** The rule's description. */
  readonly description: string;
  readonly retryAttempts: number;
  readonly maximumEventAge: Duration;
}

export type HandlerTrigger = StreamTrigger | QueueTrigger | ScheduleTrigger;

/** One row of the table: a handler, its function's settings and its trigger. */
export interface HandlerDefinition {
  /** The construct id of its function, and the prefix of its logical ids and alarms. */
  readonly id: string;
  /** The handler module, relative to the repository root. */
  readonly entry: string;
  readonly description: string;
  readonly timeout: Duration;
  /**
   * The function's memory, in megabytes.
   * @default 512
   */
  readonly memorySizeMegabytes?: number;
  /**
   * Concurrency reserved for the function (and its ceiling): where a noisy neighbour, a crash's fan-out
   * and notices using the account's concurrency, must never starve it. Deployed unless the stack's
   * `reserveConcurrency` is false (an account whose concurrency limit is still 10 cannot reserve any).
   * @default none
   */
  readonly reservedConcurrency?: number;
  /** Everything the handler calls, beyond its logs and its trigger (which the mapping grants). */
  readonly statements: (resources: HandlerResources) => PolicyStatement[];
  readonly trigger: HandlerTrigger;
  /**
   * Why the role holds statements on `*` beyond the one a stream mapping adds, for cdk-nag.
   * @default none beyond the stream mapping's
   */
  readonly wildcardResourceReason?: string;
}

/** Allows `actions` on the tables themselves (no index, no stream). */
/**
 * The notifier's invocations at once. Its SMS are paced to the account's rate whatever this is; five lets
 * the e-mails and the claims of a crash's notices go out while the SMS wait their turn (docs/notifications.md).
 */
export const NOTIFIER_MAXIMUM_CONCURRENCY = 5;

function allow(actions: string[], ...tables: Table[]): PolicyStatement {
  return new PolicyStatement({ actions, resources: tables.map((table) => table.tableArn) });
}

/**
 * `actions` on the Quarantine table's parked records only (partition keys `Parked#...`): the quarantined
 * items themselves stay add-only for the engine, evidence it can never change or delete.
 */
function parkedRecords(actions: string[], quarantine: Table): PolicyStatement {
  return new PolicyStatement({
    actions,
    resources: [quarantine.tableArn],
    conditions: { "ForAllValues:StringLike": { "dynamodb:LeadingKeys": ["Parked#*"] } },
  });
}

/** The active policy set and its versions (adapters/policy-store.ts `loadActivePolicies`): read only. */
function readPolicies({ tables }: HandlerResources): PolicyStatement {
  return allow(["dynamodb:GetItem", "dynamodb:BatchGetItem"], tables.policies);
}

/** What revaluing an account reads and writes, whichever handler does it. */
function revalue(resources: HandlerResources): PolicyStatement[] {
  const { tables } = resources;
  return [
    readPolicies(resources),
    allow(["dynamodb:Query"], tables.accounts, tables.prices),
    // UpdateItem: the mark of an account change judged unchanged (engine.ts `markInputsSeen`).
    allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], tables.marginCalls),
    // An account that cannot be valued is parked (adapters/parked.ts).
    parkedRecords(["dynamodb:UpdateItem"], tables.quarantine),
    allow(["dynamodb:PutItem"], tables.auditLog),
    // GetItem: when a liquidation was dispatched (a retry counts from it).
    allow(["dynamodb:PutItem", "dynamodb:GetItem"], tables.outbox),
    allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"], tables.triggerIndex),
    // A liquidation request reads its assets' circuit breakers and commits only while they are active
    // (adapters/breakers.ts); the price-ticks handler writes them with PutItem in a transaction.
    allow(["dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"], tables.triggerIndex),
  ];
}

function sendToFanOut({ fanOutQueue }: HandlerResources): PolicyStatement {
  return new PolicyStatement({ actions: ["sqs:SendMessage"], resources: [fanOutQueue.queueArn] });
}

/** A Lambda event filter pattern, in the form the event source mapping takes. */
function pattern(rule: Record<string, unknown>): Record<string, unknown> {
  return { pattern: JSON.stringify(rule) };
}

const INSERT_OR_MODIFY = FilterCriteria.filter({ eventName: FilterRule.or("INSERT", "MODIFY") });

/** Every handler of the engine, in the order their resources are created. */
export const HANDLERS: readonly HandlerDefinition[] = [
  {
    id: "AccountChanges",
    entry: "functions/handlers/account-changes.ts",
    description: "Revalues each account upstream changes and applies the margin-call state machine",
    timeout: Duration.seconds(60),
    statements: (resources) => [
      ...revalue(resources),
      allow(["dynamodb:PutItem"], resources.tables.quarantine),
    ],
    trigger: {
      kind: "stream",
      table: "accounts",
      batchSize: 100,
      // Records of one account (one partition key) stay in order at any parallelization factor.
      parallelizationFactor: 4,
      retryAttempts: 10,
      maximumRecordAge: Duration.hours(1),
      filters: [
        INSERT_OR_MODIFY,
        // Deletions by upstream, not DynamoDB's TTL expiry of settled deposits and old reports.
        pattern({ eventName: ["REMOVE"], userIdentity: { principalId: [{ exists: false }] } }),
      ],
    },
  },
  {
    id: "PriceTicks",
    entry: "functions/handlers/price-ticks.ts",
    description: "Revalues the accounts whose trigger prices a tick crosses",
    timeout: Duration.seconds(120),
    memorySizeMegabytes: 1024,
    statements: (resources) => [
      ...revalue(resources),
      allow(["dynamodb:Query"], resources.tables.triggerIndex),
      allow(["dynamodb:PutItem"], resources.tables.quarantine),
      sendToFanOut(resources),
    ],
    trigger: {
      kind: "stream",
      table: "prices",
      batchSize: 100,
      // One shard per asset in order: the asset's range cursor has a single writer.
      parallelizationFactor: 1,
      retryAttempts: 10,
      maximumRecordAge: Duration.hours(1),
      filters: [INSERT_OR_MODIFY],
    },
  },
  {
    id: "FanOutWorker",
    entry: "functions/handlers/fan-out-worker.ts",
    description: "Revalues one page of a tick's range or of a sweep segment",
    timeout: Duration.minutes(5),
    memorySizeMegabytes: 1024,
    statements: (resources) => [
      ...revalue(resources),
      allow(["dynamodb:Query"], resources.tables.triggerIndex),
      allow(["dynamodb:Scan"], resources.tables.accounts),
      // A sweep page reads its accounts' states and trigger-index KEYS items in bulk (bulk-revalue.ts).
      allow(["dynamodb:BatchGetItem"], resources.tables.marginCalls, resources.tables.triggerIndex),
      // The sweep pass record: a finished segment is counted on it.
      allow(["dynamodb:UpdateItem"], resources.tables.triggerIndex),
      sendToFanOut(resources),
    ],
    trigger: { kind: "queue", queue: "fanOutQueue", batchSize: 1, maximumConcurrency: 10 },
  },
  {
    id: "Sweep",
    entry: "functions/handlers/sweep.ts",
    description: "Safety net: escalates due calls and starts the segmented revaluation of every account",
    timeout: Duration.minutes(2),
    // The safety net runs every minute whatever else the account is running: a run and a retry.
    reservedConcurrency: 2,
    statements: (resources) => [
      ...revalue(resources),
      new PolicyStatement({
        actions: ["dynamodb:Query"],
        resources: [`${resources.tables.marginCalls.tableArn}/index/byDeadline`],
      }),
      // The parked accounts to retry, and their records once valued again.
      new PolicyStatement({
        actions: ["dynamodb:Query"],
        resources: [`${resources.tables.quarantine.tableArn}/index/byStatus`],
      }),
      parkedRecords(["dynamodb:DeleteItem"], resources.tables.quarantine),
      // The pass record (one pass at a time), and the table's size for the number of segments.
      allow(["dynamodb:UpdateItem"], resources.tables.triggerIndex),
      allow(["dynamodb:DescribeTable"], resources.tables.accounts),
      sendToFanOut(resources),
    ],
    trigger: {
      kind: "schedule",
      description: "Runs the sweep",
      retryAttempts: 2,
      maximumEventAge: Duration.minutes(2),
    },
  },
  {
    id: "OutboxRelay",
    entry: "functions/handlers/outbox-relay.ts",
    description:
      "Relays the outbox: notices to the notice queue, liquidation requests (after their call notice) and losses to the bus; fees and losses to the insurance fund",
    timeout: Duration.seconds(60),
    statements: (resources) => [
      // PutItem: the outbox items of the fund's events, in the transaction of their flow.
      allow(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"], resources.tables.outbox),
      // A fee's credit and a loss's waterfall (adapters/insurance-fund-store.ts, loss-waterfall-record.ts):
      // the head and the flow id read, then one transaction of Puts (ledger, outbox, audit); the policy
      // version that decided the step.
      allow(["dynamodb:GetItem", "dynamodb:PutItem"], resources.tables.insuranceFund),
      allow(["dynamodb:PutItem"], resources.tables.auditLog),
      readPolicies(resources),
      // A loss past the fund under ADL or a socialised loss: the holders of the bankrupt position's
      // instrument (the byInstrument index), each loaded and valued (adapters/counterparties.ts).
      new PolicyStatement({
        actions: ["dynamodb:Query"],
        resources: [`${resources.tables.accounts.tableArn}/index/byInstrument`],
      }),
      allow(["dynamodb:Query"], resources.tables.accounts, resources.tables.prices),
      new PolicyStatement({ actions: ["sqs:SendMessage"], resources: [resources.noticeQueue.queueArn] }),
      new PolicyStatement({ actions: ["events:PutEvents"], resources: [resources.eventBus.eventBusArn] }),
    ],
    trigger: {
      kind: "stream",
      table: "outbox",
      // Notices go to the queue ten to a request, and a request is one conditional write: a batch of 100
      // is short work, and a smaller one only multiplies invocations in a crash.
      batchSize: 100,
      parallelizationFactor: 2,
      retryAttempts: 10,
      maximumRecordAge: Duration.hours(6),
      filters: [
        pattern({
          eventName: ["INSERT"],
          dynamodb: {
            NewImage: {
              kind: { S: ["NOTIFY", "REQUEST_LIQUIDATION", "RECORD_LOSS", "FUND_FEE", "LIQUIDATION_EVENT"] },
            },
          },
        }),
        // A notice that got its outcome while liquidation requests were held on it: release them.
        pattern({
          eventName: ["MODIFY"],
          dynamodb: {
            NewImage: {
              kind: { S: ["NOTIFY"] },
              hasHeld: { BOOL: [true] },
              outcome: { S: [{ exists: true }] },
            },
          },
        }),
      ],
    },
  },
  {
    id: "Notifier",
    entry: "functions/handlers/notifier.ts",
    description:
      "Sends each margin notice by SMS and email through SNS, at most once per channel, at SNS's pace",
    timeout: Duration.seconds(30),
    statements: (resources) => [
      readPolicies(resources),
      // A batch's outbox items and PROFILEs are read ahead in bulk (notice-prefetch.ts); one at a time after.
      allow(
        ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
        resources.tables.accounts,
        resources.tables.outbox,
      ),
      allow(["dynamodb:UpdateItem"], resources.tables.outbox),
      ...noticePublishStatements(resources.emailTopic.topicArn),
    ],
    // Each of the invocations at once paces its SMS to its share of SMS_PER_SECOND.
    trigger: {
      kind: "queue",
      queue: "noticeQueue",
      batchSize: 10,
      maximumConcurrency: NOTIFIER_MAXIMUM_CONCURRENCY,
    },
  },
];
