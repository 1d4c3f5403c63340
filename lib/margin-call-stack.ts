/**
 * The margin-call engine as one CloudFormation stack, composed of named parts: the tables, the borrower
 * notices, the liquidation bus, the handlers (from one table) and the alarms. This file only wires the
 * parts together; each part says what it deploys.
 *
 * Every part creates its resources in the stack's scope, beside itself, so the logical ids (hashed from the
 * construct paths) are those the stack was first deployed with: the local runtime and the tests read them,
 * and a new id would replace a deployed queue, topic or archive.
 */
import { Duration, Stack, type StackProps, Tags } from "aws-cdk-lib";
import type { EventBus } from "aws-cdk-lib/aws-events";
import type { IRole } from "aws-cdk-lib/aws-iam";
import type { Topic } from "aws-cdk-lib/aws-sns";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import type { PolicyDocument } from "../functions/domain/policy.ts";
import { BorrowerNotices } from "./borrower-notices.ts";
import { EngineAlarms } from "./engine-alarms.ts";
import { engineEnvironment } from "./engine-environment.ts";
import type { EngineFunction } from "./engine-function.ts";
import { EngineHandlers } from "./engine-handlers.ts";
import { NOTIFIER_MAXIMUM_CONCURRENCY } from "./handler-table.ts";
import { LiquidationBus } from "./liquidation-bus.ts";
import { acknowledgeNagFindings } from "./nag-acknowledgements.ts";
import { PolicySet } from "./policy-set.ts";
import { redrivenQueue } from "./queues.ts";
import { EngineTables } from "./tables.ts";

export { EVENT_SOURCE } from "./liquidation-bus.ts";

export interface MarginCallStackProps extends StackProps {
  /** Deployment stage, e.g. `dev` or `prod`. Tags every resource and names the stack and the event bus. */
  readonly stage: string;
  /**
   * The margin policies (validated at synth time), put into the Policies table and activated at deploy;
   * each account's PROFILE names one by policyId.
   */
  readonly policies: readonly PolicyDocument[];
  /**
   * How often the sweep runs.
   * @default 1 minute
   */
  readonly sweepRate?: Duration;
  /**
   * SNS's account-wide monthly SMS spend limit, in USD.
   * @default 100
   */
  readonly smsMonthlySpendLimitUsd?: number;
  /**
   * Where alarms are emailed.
   * @default no email subscription
   */
  readonly alarmEmail?: string;
  /**
   * Accounts one invocation revalues before handing the rest to the fan-out queue.
   * @default 500
   */
  readonly maxAccountsPerInvocation?: number;
  /**
   * Segments of the sweep's parallel scan.
   * @default 4
   */
  readonly sweepSegments?: number;
  /**
   * SMS per second the notifier may publish in all: the account's SNS SMS throughput (docs/notifications.md).
   * @default 10
   */
  readonly smsPerSecond?: number;
  /**
   * Whether the handlers that need one get reserved concurrency (the sweep: 2). Turn it off only in an
   * account whose Lambda concurrency limit is still 10, which cannot reserve any.
   * @default true
   */
  readonly reserveConcurrency?: boolean;
}

/** The margin-call engine: tables, handlers and their triggers, notices, the liquidation bus and alarms. */
export class MarginCallStack extends Stack {
  readonly tables: EngineTables;
  /** The stack's policies, deployed into the Policies table. */
  readonly policySet: PolicySet;
  readonly notices: BorrowerNotices;
  readonly liquidationBus: LiquidationBus;
  readonly handlers: EngineHandlers;
  readonly alarms: EngineAlarms;
  /** Each function, by handler id. */
  readonly functions: Readonly<Record<string, EngineFunction>>;
  readonly eventBus: EventBus;
  readonly emailTopic: Topic;
  readonly alarmTopic: Topic;
  /** Spreads a large revaluation (a tick's range, a sweep segment) over many invocations. */
  readonly fanOutQueue: Queue;
  /** Notices waiting for their turn at SNS: the outbox relay puts them, the notifier takes them. */
  readonly noticeQueue: Queue;
  /** Every queue that holds what was set aside for an operator, by name; each one's depth is alarmed. */
  readonly deadLetterQueues: Readonly<Record<string, Queue>>;

  constructor(scope: Construct, id: string, props: MarginCallStackProps) {
    super(scope, id, props);
    Tags.of(this).add("app", "margin-call-engine");
    Tags.of(this).add("stage", props.stage);
    this.tables = new EngineTables(this, "Tables");
    this.policySet = new PolicySet(this, "PolicySet", {
      table: this.tables.policies,
      policies: props.policies,
    });
    this.notices = new BorrowerNotices(this, "BorrowerNotices", {
      ...(props.smsMonthlySpendLimitUsd ? { smsMonthlySpendLimitUsd: props.smsMonthlySpendLimitUsd } : {}),
    });
    this.emailTopic = this.notices.emailTopic;
    this.liquidationBus = new LiquidationBus(this, "LiquidationBus", {
      eventBusName: `margin-call-${props.stage}`,
    });
    this.eventBus = this.liquidationBus.eventBus;
    // Visibility: six times the worker's timeout; retention: long enough for five receives to redrive.
    const fanOut = redrivenQueue(this, "FanOut", {
      retentionPeriod: Duration.days(4),
      visibilityTimeout: Duration.minutes(30),
    });
    this.fanOutQueue = fanOut.queue;
    // A notice waits here for its turn at SNS. Throttled notices come back after a backoff of at most 8 s
    // until their delivery deadline (notices.deliverWithinSeconds, default 600 s): hence the receives.
    const noticeQueue = redrivenQueue(this, "NoticeQueue", {
      retentionPeriod: Duration.days(4),
      visibilityTimeout: Duration.minutes(3),
      maxReceiveCount: 500,
    });
    this.noticeQueue = noticeQueue.queue;

    this.handlers = new EngineHandlers(this, "EngineHandlers", {
      tables: this.tables,
      fanOutQueue: this.fanOutQueue,
      noticeQueue: this.noticeQueue,
      emailTopic: this.emailTopic,
      eventBus: this.eventBus,
      reserveConcurrency: props.reserveConcurrency ?? true,
      environment: engineEnvironment({
        tables: this.tables,
        fanOutQueue: this.fanOutQueue,
        noticeQueue: this.noticeQueue,
        smsPerSecond: props.smsPerSecond ?? 10,
        notifierConcurrency: NOTIFIER_MAXIMUM_CONCURRENCY,
        emailTopic: this.emailTopic,
        eventBus: this.eventBus,
        maxAccountsPerInvocation: props.maxAccountsPerInvocation,
        sweepSegments: props.sweepSegments,
      }),
      scheduleRate: props.sweepRate,
    });
    this.functions = this.handlers.functions;
    for (const engineFunction of Object.values(this.functions)) {
      this.policySet.activeBefore(engineFunction.lambdaFunction);
    }
    // Only the relay may put engine events on the bus, and only the notifier may publish to the email topic.
    this.liquidationBus.restrictPublishersTo([this.roleOf("OutboxRelay")]);
    this.notices.restrictPublishersTo([this.roleOf("Notifier")]);
    this.deadLetterQueues = {
      EmailDelivery: this.notices.emailDeliveryDeadLetter,
      ExecutionRequests: this.liquidationBus.executionRequestsDeadLetter,
      FanOut: fanOut.deadLetter,
      NoticeQueue: noticeQueue.deadLetter,
      ...this.handlers.deadLetterQueues,
    };

    this.alarms = new EngineAlarms(this, "EngineAlarms", {
      functions: this.functions,
      streamConsumers: this.handlers.streamConsumers,
      deadLetterQueues: this.deadLetterQueues,
      workQueues: { FanOut: this.fanOutQueue },
      notices: this.notices,
      alarmEmail: props.alarmEmail,
    });
    this.alarmTopic = this.alarms.alarmTopic;
    acknowledgeNagFindings(this, {
      handlers: this.handlers,
      notices: this.notices,
      policySet: this.policySet,
    });
  }

  private roleOf(handlerId: string): IRole {
    const role = this.functions[handlerId]?.lambdaFunction.role;
    if (!role) throw new Error(`no function ${handlerId} with a role`);
    return role;
  }
}
