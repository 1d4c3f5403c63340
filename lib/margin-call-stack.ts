import { Duration, Stack, type StackProps, Tags, Token, Validations } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  Metric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type { ITable, Table } from "aws-cdk-lib/aws-dynamodb";
import { EventBus, Rule, RuleTargetInput, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction, SqsQueue } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Alias, Key } from "aws-cdk-lib/aws-kms";
import { FilterCriteria, FilterRule, StartingPosition } from "aws-cdk-lib/aws-lambda";
import { DynamoEventSource, SqsDlq, SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { FilterPattern } from "aws-cdk-lib/aws-logs";
import { SubscriptionFilter, Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription, SqsSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from "aws-cdk-lib/custom-resources";
import type { Construct, IConstruct } from "constructs";
import { ENV, parsePolicies } from "../functions/adapters/settings.ts";
import { OPERATOR_ALARMS } from "../functions/domain/alarms.ts";
import { EngineFunction } from "./engine-function.ts";
import { EngineTables } from "./tables.ts";

export const EVENT_SOURCE = "margin-call-engine";
/** Lambda's limit on a function's environment, all variables together. */
const ENVIRONMENT_LIMIT_BYTES = 4096;

export interface MarginCallStackProps extends StackProps {
  /** Deployment stage, e.g. `dev` or `prod`. Tags every resource and names the stack. */
  readonly stage: string;
  /** The margin policies (validated at synth time); each account's PROFILE names one by policyId. */
  readonly policies: readonly unknown[];
  /** How often the sweep runs. @default 1 minute */
  readonly sweepRate?: Duration;
  /** SNS's account-wide monthly SMS spend limit, in USD. @default 100 */
  readonly smsMonthlySpendLimitUsd?: number;
  /** Where alarms are emailed, if anywhere. */
  readonly alarmEmail?: string;
  /** Accounts one invocation revalues before handing the rest to the fan-out queue. @default 500 */
  readonly maxAccountsPerInvocation?: number;
  /** Segments of the sweep's parallel scan. @default 4 */
  readonly sweepSegments?: number;
}

interface StreamSettings {
  readonly batchSize: number;
  readonly parallelizationFactor: number;
  readonly retryAttempts: number;
  readonly maxRecordAge: Duration;
  readonly filters: Record<string, unknown>[];
}

/** The margin-call engine: tables, handlers and their triggers, notices, the liquidation bus and alarms. */
export class MarginCallStack extends Stack {
  readonly tables: EngineTables;
  readonly functions: Record<string, EngineFunction> = {};
  readonly eventBus: EventBus;
  readonly emailTopic: Topic;
  readonly alarmTopic: Topic;
  readonly fanOutQueue: Queue;
  readonly deadLetterQueues: Record<string, Queue> = {};

  constructor(scope: Construct, id: string, props: MarginCallStackProps) {
    super(scope, id, props);
    Tags.of(this).add("app", "margin-call-engine");
    Tags.of(this).add("stage", props.stage);
    this.tables = new EngineTables(this, "Tables");
    const t = this.tables;

    const snsKey = Alias.fromAliasName(this, "SnsKey", "alias/aws/sns");
    // CloudWatch cannot publish to a topic under the AWS-managed SNS key: alarms get a key of their own.
    const alarmKey = new Key(this, "AlarmKey", {
      enableKeyRotation: true,
      description: "Encrypts the alarm topic; CloudWatch may use it to publish alarms",
    });
    alarmKey.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
      }),
    );
    this.alarmTopic = new Topic(this, "AlarmTopic", { masterKey: alarmKey, enforceSSL: true });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));

    // Notices by email: one topic; the lender's mail gateway subscribes to the email channel (see
    // docs/notifications.md for why borrowers are not subscribed one by one).
    this.emailTopic = new Topic(this, "BorrowerEmailTopic", { masterKey: snsKey, enforceSSL: true });
    const emailDelivery = this.queue("EmailDelivery", Duration.days(4));
    this.emailTopic.addSubscription(
      new SqsSubscription(emailDelivery, {
        rawMessageDelivery: true,
        filterPolicy: { channel: SubscriptionFilter.stringFilter({ allowlist: ["email"] }) },
      }),
    );

    this.eventBus = new EventBus(this, "EventBus", { eventBusName: `margin-call-${props.stage}` });
    this.eventBus.archive("Archive", {
      eventPattern: { source: [EVENT_SOURCE] },
      retention: Duration.days(365),
      description: "Every liquidation request and loss, for replay and audit",
    });
    // An example downstream consumer: the execution system reads liquidation requests from a queue.
    const executionRequests = this.queue("ExecutionRequests", Duration.days(4));
    new Rule(this, "LiquidationRequestsToExecution", {
      eventBus: this.eventBus,
      description: "Example: route LiquidationRequested to the execution system's queue",
      eventPattern: { source: [EVENT_SOURCE], detailType: ["LiquidationRequested"] },
      targets: [new SqsQueue(executionRequests)],
    });

    // Visibility: six times the worker's timeout; retention: long enough for five receives to redrive.
    this.fanOutQueue = this.queue("FanOut", Duration.days(4), Duration.minutes(30));

    const policiesJson = JSON.stringify(props.policies);
    // A bad policy fails the synth, naming the policy and the field, not every function at cold start.
    parsePolicies(policiesJson);
    const environment: Record<string, string> = {
      [ENV.accountsTable]: t.accounts.tableName,
      [ENV.pricesTable]: t.prices.tableName,
      [ENV.marginCallsTable]: t.marginCalls.tableName,
      [ENV.triggerIndexTable]: t.triggerIndex.tableName,
      [ENV.outboxTable]: t.outbox.tableName,
      [ENV.auditLogTable]: t.auditLog.tableName,
      [ENV.quarantineTable]: t.quarantine.tableName,
      [ENV.idempotencyTable]: t.idempotency.tableName,
      [ENV.policies]: policiesJson,
      [ENV.fanOutQueueUrl]: this.fanOutQueue.queueUrl,
      [ENV.emailTopicArn]: this.emailTopic.topicArn,
      [ENV.eventBusName]: this.eventBus.eventBusName,
      [ENV.maxAccountsPerInvocation]: String(props.maxAccountsPerInvocation ?? 500),
      [ENV.sweepSegments]: String(props.sweepSegments ?? 4),
    };
    // Unresolved names, ARNs and URLs (tokens) resolve to at most ~128 bytes each at deploy time.
    const estimated = Object.entries(environment).reduce(
      (total, [key, value]) => total + key.length + (Token.isUnresolved(value) ? 128 : value.length),
      64,
    );
    if (estimated > ENVIRONMENT_LIMIT_BYTES) {
      throw new Error(
        `the policy set is ${policiesJson.length} bytes: with the other settings (about ${estimated} bytes) ` +
          "it does not fit Lambda's 4 KB environment. " +
          "Keep fewer or smaller policies per stage.",
      );
    }

    const revalue = [
      allow(["dynamodb:Query"], t.accounts, t.prices),
      allow(["dynamodb:GetItem", "dynamodb:PutItem"], t.marginCalls),
      allow(["dynamodb:PutItem"], t.outbox, t.auditLog),
      allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"], t.triggerIndex),
    ];
    const sendFanOut = new PolicyStatement({
      actions: ["sqs:SendMessage"],
      resources: [this.fanOutQueue.queueArn],
    });
    const idempotency = allow(
      ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
      t.idempotency,
    );

    const accountChanges = this.handler("AccountChanges", {
      entry: "functions/handlers/account-changes.ts",
      description: "Revalues each account upstream changes and applies the margin-call state machine",
      environment,
      timeout: Duration.seconds(60),
      statements: [...revalue, allow(["dynamodb:PutItem"], t.quarantine)],
    });
    this.streamTrigger("AccountChanges", accountChanges, t.accounts, {
      batchSize: 100,
      // Records of one account (one partition key) stay in order at any parallelization factor.
      parallelizationFactor: 4,
      retryAttempts: 10,
      maxRecordAge: Duration.hours(1),
      filters: [
        FilterCriteria.filter({ eventName: FilterRule.or("INSERT", "MODIFY") }),
        // Deletions by upstream, not DynamoDB's TTL expiry of settled deposits and old reports.
        pattern({ eventName: ["REMOVE"], userIdentity: { principalId: [{ exists: false }] } }),
      ],
    });

    const priceTicks = this.handler("PriceTicks", {
      entry: "functions/handlers/price-ticks.ts",
      description: "Revalues the accounts whose trigger prices a tick crosses",
      environment,
      timeout: Duration.seconds(120),
      memorySize: 1024,
      statements: [
        ...revalue,
        allow(["dynamodb:Query"], t.triggerIndex),
        allow(["dynamodb:PutItem"], t.quarantine),
        sendFanOut,
      ],
    });
    this.streamTrigger("PriceTicks", priceTicks, t.prices, {
      batchSize: 100,
      // One shard per asset in order: the asset's range cursor has a single writer.
      parallelizationFactor: 1,
      retryAttempts: 10,
      maxRecordAge: Duration.hours(1),
      filters: [FilterCriteria.filter({ eventName: FilterRule.or("INSERT", "MODIFY") })],
    });

    const fanOutWorker = this.handler("FanOutWorker", {
      entry: "functions/handlers/fan-out-worker.ts",
      description: "Revalues one page of a tick's range or of a sweep segment",
      environment,
      timeout: Duration.minutes(5),
      memorySize: 1024,
      statements: [
        ...revalue,
        allow(["dynamodb:Query"], t.triggerIndex),
        allow(["dynamodb:Scan"], t.accounts),
        sendFanOut,
      ],
    });
    fanOutWorker.fn.addEventSource(
      new SqsEventSource(this.fanOutQueue, {
        batchSize: 1,
        reportBatchItemFailures: true,
        maxConcurrency: 10,
      }),
    );

    const sweep = this.handler("Sweep", {
      entry: "functions/handlers/sweep.ts",
      description: "Safety net: escalates due calls and starts the segmented revaluation of every account",
      environment,
      timeout: Duration.minutes(2),
      statements: [
        ...revalue,
        new PolicyStatement({
          actions: ["dynamodb:Query"],
          resources: [`${t.marginCalls.tableArn}/index/byDeadline`],
        }),
        sendFanOut,
      ],
    });
    const sweepDlq = new Queue(this, "SweepDeadLetter", {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    new Rule(this, "SweepSchedule", {
      description: "Runs the sweep",
      schedule: Schedule.rate(props.sweepRate ?? Duration.minutes(1)),
      targets: [
        new LambdaFunction(sweep.fn, {
          event: RuleTargetInput.fromEventPath("$"),
          retryAttempts: 2,
          maxEventAge: Duration.minutes(2),
          deadLetterQueue: sweepDlq,
        }),
      ],
    });
    this.deadLetterQueues.Sweep = sweepDlq;

    const notifier = this.handler("Notifier", {
      entry: "functions/handlers/notifier.ts",
      description: "Sends each margin notice by SMS and email through SNS, once per notification id",
      environment,
      timeout: Duration.seconds(30),
      statements: [
        allow(["dynamodb:GetItem"], t.accounts),
        allow(["dynamodb:UpdateItem"], t.outbox),
        idempotency,
        // Publishing an SMS to a phone number has no resource ARN, so sns:Publish cannot be scoped tighter
        // than "*" (which also covers the email topic). See docs/notifications.md.
        new PolicyStatement({ actions: ["sns:Publish"], resources: ["*"] }),
      ],
    });
    this.streamTrigger("Notifier", notifier, t.outbox, {
      batchSize: 10,
      parallelizationFactor: 2,
      retryAttempts: 10,
      maxRecordAge: Duration.hours(6),
      filters: [pattern({ eventName: ["INSERT"], dynamodb: { NewImage: { kind: { S: ["NOTIFY"] } } } })],
    });

    const dispatcher = this.handler("LiquidationDispatcher", {
      entry: "functions/handlers/liquidation-dispatcher.ts",
      description: "Puts LiquidationRequested and LossRecorded on the engine's event bus, once per reference",
      environment,
      timeout: Duration.seconds(60),
      statements: [
        allow(["dynamodb:GetItem"], t.outbox),
        idempotency,
        new PolicyStatement({ actions: ["events:PutEvents"], resources: [this.eventBus.eventBusArn] }),
      ],
    });
    this.streamTrigger("LiquidationDispatcher", dispatcher, t.outbox, {
      batchSize: 10,
      parallelizationFactor: 2,
      retryAttempts: 10,
      maxRecordAge: Duration.hours(6),
      filters: [
        pattern({
          eventName: ["INSERT"],
          dynamodb: { NewImage: { kind: { S: ["REQUEST_LIQUIDATION", "RECORD_LOSS"] } } },
        }),
      ],
    });

    const spendLimit = props.smsMonthlySpendLimitUsd ?? 100;
    new AwsCustomResource(this, "SmsSettings", {
      installLatestAwsSdk: false,
      onUpdate: {
        service: "SNS",
        action: "setSMSAttributes",
        parameters: {
          attributes: { MonthlySpendLimit: String(spendLimit), DefaultSMSType: "Transactional" },
        },
        physicalResourceId: PhysicalResourceId.of(`sms-settings-${spendLimit}`),
      },
      policy: AwsCustomResourcePolicy.fromStatements([
        new PolicyStatement({ actions: ["sns:SetSMSAttributes"], resources: ["*"] }),
      ]),
    });

    this.alarms(spendLimit);
    this.acknowledge();
  }

  private queue(id: string, retention: Duration, visibilityTimeout?: Duration): Queue {
    const deadLetter = new Queue(this, `${id}DeadLetter`, {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    const queue = new Queue(this, id, {
      retentionPeriod: retention,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      ...(visibilityTimeout ? { visibilityTimeout } : {}),
      deadLetterQueue: { queue: deadLetter, maxReceiveCount: 5 },
    });
    this.deadLetterQueues[id] = deadLetter;
    return queue;
  }

  private handler(id: string, props: ConstructorParameters<typeof EngineFunction>[2]): EngineFunction {
    const engineFunction = new EngineFunction(this, id, props);
    this.functions[id] = engineFunction;
    return engineFunction;
  }

  private streamTrigger(id: string, target: EngineFunction, table: Table, settings: StreamSettings): void {
    const onFailure = new Queue(this, `${id}StreamFailures`, {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.deadLetterQueues[`${id}Stream`] = onFailure;
    target.fn.addEventSource(
      // CDK's ITable declares optional properties without `| undefined`, which exactOptionalPropertyTypes rejects.
      new DynamoEventSource(table as unknown as ITable, {
        startingPosition: StartingPosition.TRIM_HORIZON,
        batchSize: settings.batchSize,
        maxBatchingWindow: Duration.seconds(0),
        bisectBatchOnError: true,
        retryAttempts: settings.retryAttempts,
        maxRecordAge: settings.maxRecordAge,
        parallelizationFactor: settings.parallelizationFactor,
        reportBatchItemFailures: true,
        onFailure: new SqsDlq(onFailure),
        filters: settings.filters,
      }),
    );
  }

  private alarm(id: string, metric: IMetric, threshold: number, description: string, periods = 1): void {
    const alarm = new Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods: periods,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
  }

  private alarms(spendLimit: number): void {
    const minute = Duration.minutes(1);
    for (const [id, engineFunction] of Object.entries(this.functions)) {
      const fn = engineFunction.fn;
      this.alarm(`${id}Errors`, fn.metricErrors({ period: minute }), 1, `${id} failed an invocation`);
      this.alarm(`${id}Throttles`, fn.metricThrottles({ period: minute }), 1, `${id} was throttled`);
    }
    for (const id of ["AccountChanges", "PriceTicks", "Notifier", "LiquidationDispatcher"]) {
      const fn = this.functions[id]?.fn;
      if (!fn) continue;
      const iteratorAge = fn.metric("IteratorAge", { statistic: "Maximum", period: minute });
      this.alarm(`${id}IteratorAge`, iteratorAge, 60_000, `${id} is more than a minute behind its stream`, 3);
    }
    for (const [id, queue] of Object.entries(this.deadLetterQueues)) {
      const depth = queue.metricApproximateNumberOfMessagesVisible({ period: minute, statistic: "Maximum" });
      this.alarm(`${id}DeadLetterDepth`, depth, 1, `${id}: a message was set aside for an operator`);
    }
    // Log-based signals an operator must see: upstream records set aside, accounts that could not be
    // valued (a quarantined item or a policy gap keeps an account from being valued at all), and
    // liquidations the execution system never finished.
    const signals: Array<[string, string, string]> = [
      ["Quarantined", "record quarantined", "an upstream record broke the data contract and was quarantined"],
      ["NotRevalued", "account not revalued", "an account could not be valued; its call state is frozen"],
      ...Object.values(OPERATOR_ALARMS).map((alarm): [string, string, string] => [
        alarm.metric,
        alarm.message,
        alarm.description,
      ]),
    ];
    for (const [name, message, description] of signals) {
      const metric = new Metric({
        namespace: "MarginCallEngine",
        metricName: name,
        statistic: "Sum",
        period: minute,
      });
      for (const [id, engineFunction] of Object.entries(this.functions)) {
        engineFunction.logGroup.addMetricFilter(`${name}Filter`, {
          filterPattern: FilterPattern.stringValue("$.message", "=", `${message}*`),
          metricNamespace: "MarginCallEngine",
          metricName: name,
          metricValue: "1",
          filterName: `${id}-${name}`,
        });
      }
      this.alarm(`${name}Alarm`, metric, 1, description);
    }
    const smsFailed = new Metric({
      namespace: "AWS/SNS",
      metricName: "NumberOfNotificationsFailed",
      dimensionsMap: { PhoneNumber: "PhoneNumber" },
      statistic: "Sum",
      period: Duration.minutes(5),
    });
    this.alarm("SmsDeliveryFailures", smsFailed, 1, "SNS could not deliver a margin notice by SMS");
    const smsSpend = new Metric({
      namespace: "AWS/SNS",
      metricName: "SMSMonthToDateSpentUSD",
      statistic: "Maximum",
      period: Duration.hours(1),
    });
    this.alarm("SmsSpend", smsSpend, spendLimit * 0.8, "SMS spend passed 80% of the monthly limit");
    const emailFailed = this.emailTopic.metricNumberOfNotificationsFailed({ period: Duration.minutes(5) });
    this.alarm(
      "EmailDeliveryFailures",
      emailFailed,
      1,
      "SNS could not deliver a notice to the email channel",
    );
  }

  /** Every cdk-nag finding this stack accepts, each with its reason. */
  private acknowledge(): void {
    const ack = (scope: IConstruct, finding: string, reason: string) =>
      Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${finding}`, reason });
    for (const id of ["AccountChanges", "PriceTicks", "Notifier", "LiquidationDispatcher"]) {
      const role = this.functions[id]?.role;
      if (!role) continue;
      ack(
        role,
        "IAM5[Resource::*]",
        "dynamodb:ListStreams has no resource-level permission; the stream event source mapping adds it." +
          (id === "Notifier" ? " sns:Publish to a phone number (SMS) has no resource ARN either." : ""),
      );
    }
    const smsSettings = this.node.findChild("SmsSettings");
    ack(smsSettings, "IAM5[Resource::*]", "sns:SetSMSAttributes is account-wide: it has no resource ARN.");
    ack(
      this.node.findChild("SweepDeadLetter"),
      "SQS3",
      "This queue is the sweep schedule target's dead-letter queue itself; its depth is alarmed.",
    );
    for (const id of ["AccountChanges", "PriceTicks", "Notifier", "LiquidationDispatcher"]) {
      ack(
        this.node.findChild(`${id}StreamFailures`),
        "SQS3",
        "This queue is the stream mapping's on-failure destination, a dead-letter queue itself; its depth is alarmed.",
      );
    }
    const provider = this.node.tryFindChild(
      AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, "").replace(/^/, "AWS"),
    );
    if (provider) {
      ack(
        provider,
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "CDK's own AwsCustomResource provider function, which writes only its logs; its role is set by aws-cdk-lib.",
      );
    }
  }
}

/** A Lambda event filter pattern, in the form the event source mapping takes. */
function pattern(rule: Record<string, unknown>): Record<string, unknown> {
  return { pattern: JSON.stringify(rule) };
}

/** Allows `actions` on the tables themselves (no index, no stream). */
function allow(actions: string[], ...tables: Table[]): PolicyStatement {
  return new PolicyStatement({ actions, resources: tables.map((table) => table.tableArn) });
}
